package bench

import (
	"strconv"
	"strings"
)

// expand fills a template: {i} is the publisher's index (0-based) and
// {name} its stream name. Unknown braces are left as they are, so a URL
// with other braces still works.
func expand(tmpl, name string, i int) string {
	return strings.NewReplacer("{name}", name, "{i}", strconv.Itoa(i)).Replace(tmpl)
}

// streamName is the name of publisher i from the -name template (which may
// only use {i}).
func streamName(tmpl string, i int) string {
	return strings.ReplaceAll(tmpl, "{i}", strconv.Itoa(i))
}
