package web

import "net/http"

// getLimits is GET /v1/limits: the admission limits (limits.*), the load
// they are compared with and whether a new publisher would be admitted now.
func (a *API) getLimits(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	if a.opt.Limits == nil {
		writeError(w, notImplemented("admission control"))
		return
	}
	writeJSON(w, http.StatusOK, a.opt.Limits())
}
