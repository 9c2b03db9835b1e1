// Plays a live stream: LL-HLS with hls.js, DASH with dash.js, or HLS in the
// browser's own player (Safari). Shows the player's live latency.
const $ = id => document.getElementById(id);
const v = $('v');
const q = new URLSearchParams(window.location.search);
window.watchState = { playing: false, error: null, latency: null };
const setState = (s, info) => { $('state').textContent = s; $('state').className = 'state ' + s; if (info !== undefined) $('info').textContent = info; };

const stream = q.get('stream') || '';
const token = q.get('token') || '';
let player = q.get('player') || '';
if (!player) player = window.Hls && Hls.isSupported() ? 'hls' : (v.canPlayType('application/vnd.apple.mpegurl') ? 'native' : 'dash');
$('stream').value = stream; $('player').value = player; $('token').value = token;

const withToken = u => token ? u + '?token=' + encodeURIComponent(token) : u;
let latency = () => null;

// A player error stays on screen: the state says "error" with the message
// until playback has gone on for a while after it (players such as dash.js
// reset and retry after a decode error, and the picture may never come
// back), and a picture that stands still while "playing" says "stalled".
let errorAt = null; // currentTime when the last error came
const showError = msg => {
  window.watchState.error = msg;
  errorAt = v.currentTime;
  setState('error', msg);
};
v.addEventListener('playing', () => {
  window.watchState.playing = true;
  if (errorAt === null) setState('playing');
});
v.addEventListener('waiting', () => { if (errorAt === null) setState('buffering'); });
v.addEventListener('error', () => showError('video: ' + (v.error ? v.error.code + ' ' + v.error.message : 'error')));

if (stream) {
  setState('loading');
  const hls = withToken('/hls/' + stream + '/index.m3u8');
  const dash = withToken('/dash/' + stream + '/manifest.mpd');
  if (player === 'hls') {
    const h = new Hls({ lowLatencyMode: true });
    h.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) showError(d.type + ': ' + d.details); });
    h.loadSource(hls);
    h.attachMedia(v);
    latency = () => h.latency;
  } else if (player === 'dash') {
    const p = dashjs.MediaPlayer().create();
    p.updateSettings({ streaming: { liveCatchup: { enabled: true } } });
    p.on(dashjs.MediaPlayer.events.ERROR, e => {
      const err = e.error || e;
      showError('dash.js: ' + (err.message || JSON.stringify(err)) + (err.code !== undefined ? ' (' + err.code + ')' : ''));
    });
    p.initialize(v, dash, true);
    latency = () => p.getCurrentLiveLatency();
  } else {
    v.src = hls;
    latency = () => v.seekable.length ? v.seekable.end(v.seekable.length - 1) - v.currentTime : null;
  }
  let lastTime = -1, still = 0;
  setInterval(() => {
    const l = latency();
    window.watchState.latency = l;
    still = v.currentTime === lastTime && !v.paused ? still + 1 : 0;
    lastTime = v.currentTime;
    if (errorAt !== null) {
      if (v.currentTime < errorAt + 5) return; // keep the error shown
      errorAt = null; // played on for 5 s: recovered, the message stays below
    }
    if (window.watchState.playing) {
      setState(still >= 6 ? 'stalled' : 'playing');
      $('info').textContent = player + ' · latency ' + (l == null || isNaN(l) ? '?' : l.toFixed(2) + ' s') + ' · t=' + v.currentTime.toFixed(1) +
        (v.videoWidth ? ' · ' + v.videoWidth + 'x' + v.videoHeight : '') +
        (window.watchState.error ? ' · last error: ' + window.watchState.error : '');
    }
  }, 500);
}
