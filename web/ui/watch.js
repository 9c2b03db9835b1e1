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

v.addEventListener('playing', () => { window.watchState.playing = true; setState('playing'); });
v.addEventListener('waiting', () => setState('buffering'));

if (stream) {
  setState('loading');
  const hls = withToken('/hls/' + stream + '/index.m3u8');
  const dash = withToken('/dash/' + stream + '/manifest.mpd');
  if (player === 'hls') {
    const h = new Hls({ lowLatencyMode: true });
    h.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) { window.watchState.error = d.type + ': ' + d.details; setState('error', d.details); } });
    h.loadSource(hls);
    h.attachMedia(v);
    latency = () => h.latency;
  } else if (player === 'dash') {
    const p = dashjs.MediaPlayer().create();
    p.updateSettings({ streaming: { liveCatchup: { enabled: true } } });
    p.on(dashjs.MediaPlayer.events.ERROR, e => { window.watchState.error = JSON.stringify(e.error || e); setState('error', 'player error'); });
    p.initialize(v, dash, true);
    latency = () => p.getCurrentLiveLatency();
  } else {
    v.src = hls;
    latency = () => v.seekable.length ? v.seekable.end(v.seekable.length - 1) - v.currentTime : null;
  }
  setInterval(() => {
    const l = latency();
    window.watchState.latency = l;
    if (window.watchState.playing) {
      $('info').textContent = player + ' · latency ' + (l == null || isNaN(l) ? '?' : l.toFixed(2) + ' s') + ' · t=' + v.currentTime.toFixed(1) +
        (v.videoWidth ? ' · ' + v.videoWidth + 'x' + v.videoHeight : '');
    }
  }, 500);
}
