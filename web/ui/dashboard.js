// The dashboard: polls GET /v1/streams every 2 s and starts/stops recordings.
const tokenInput = document.getElementById('token');
tokenInput.value = localStorage.getItem('whipcast.admin') || '';
tokenInput.addEventListener('change', () => { localStorage.setItem('whipcast.admin', tokenInput.value); poll(); });
const headers = () => tokenInput.value ? { Authorization: 'Bearer ' + tokenInput.value } : {};
const esc = s => String(s).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const kbps = b => b >= 1e6 ? (b / 1e6).toFixed(2) + ' Mb/s' : (b / 1e3).toFixed(0) + ' kb/s';
const dur = s => { s = Math.floor(s); return Math.floor(s / 3600) + ':' + String(Math.floor(s / 60) % 60).padStart(2, '0') + ':' + String(s % 60).padStart(2, '0'); };

async function record(name, on) {
  const res = await fetch('/v1/streams/' + name + '/recording', { method: on ? 'POST' : 'DELETE', headers: headers() });
  if (!res.ok) alert((await res.json()).error);
  poll();
}
window.record = record;

async function poll() {
  const st = document.getElementById('status');
  try {
    const res = await fetch('/v1/streams', { headers: headers() });
    const body = await res.json();
    if (!res.ok) { st.textContent = body.error; return; }
    st.textContent = 'updated ' + new Date().toLocaleTimeString();
    const tb = document.querySelector('#streams tbody');
    tb.innerHTML = body.streams.map(s => {
      const tracks = s.tracks.map(t => esc(t.codec) + (t.width ? ' ' + t.width + 'x' + t.height : '')).join(', ');
      const rec = s.recording ? '<span class="rec">● REC</span> <button class="stop" onclick="record(\'' + esc(s.name) + '\', false)">stop</button>'
        : '<button onclick="record(\'' + esc(s.name) + '\', true)">record</button>';
      return '<tr><td>' + esc(s.name) + '</td><td><span class="state ' + esc(s.state) + '">' + esc(s.state) + '</span></td><td>' + tracks +
        '</td><td>' + kbps(s.bitrate_in) + '</td><td>' + dur(s.uptime_seconds) + '</td><td>' + s.readers + '</td><td>' + rec +
        '</td><td><a href="/watch?stream=' + encodeURIComponent(s.name) + '">watch</a> · <a href="' + esc(s.hls) + '">HLS</a> · <a href="' + esc(s.dash) + '">DASH</a></td></tr>';
    }).join('');
    document.getElementById('empty').hidden = body.streams.length > 0;
  } catch (e) { st.textContent = String(e); }
}
poll();
setInterval(poll, 2000);
