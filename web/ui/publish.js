// WHIP (RFC 9725) from the browser: sendonly H.264 + Opus, POST the offer
// as application/sdp, DELETE the session's Location on stop.
const $ = id => document.getElementById(id);
let pc = null, location_ = null, stream = null, statsTimer = null;
const setState = (s, info) => { $('state').textContent = s; $('state').className = 'state ' + s; $('info').textContent = info || ''; window.publishState = s; };

function preferH264(tr) {
  const caps = RTCRtpSender.getCapabilities('video');
  if (!caps || !tr.setCodecPreferences) return;
  const h264 = caps.codecs.filter(c => c.mimeType.toLowerCase() === 'video/h264');
  const rest = caps.codecs.filter(c => c.mimeType.toLowerCase() !== 'video/h264');
  if (h264.length) tr.setCodecPreferences([...h264, ...rest]);
}

// iceServersFrom reads the STUN/TURN servers of RFC 9725 §4.6 from a Link
// header (several Link headers arrive joined by ", "): <url>; rel="ice-server"
// with, for TURN, username and credential parameters.
function iceServersFrom(link) {
  const servers = [];
  for (const m of (link || '').matchAll(/<([^>]*)>((?:\s*;\s*[\w-]+\s*=\s*(?:"[^"]*"|[^;,]*))*)/g)) {
    const params = {};
    for (const p of m[2].matchAll(/;\s*([\w-]+)\s*=\s*(?:"([^"]*)"|([^;,]*))/g)) {
      params[p[1].toLowerCase()] = p[2] !== undefined ? p[2] : p[3].trim();
    }
    if (params.rel !== 'ice-server') continue;
    const server = { urls: m[1] };
    if (params.username !== undefined) { server.username = params.username; server.credential = params.credential || ''; }
    servers.push(server);
  }
  return servers;
}

// The ICE servers the gateway gives this stream's publisher (OPTIONS
// answers with them when the request passes auth); none when it has none
// or cannot be asked.
async function iceServersFor(name, token) {
  try {
    const res = await fetch('/whip/' + name, { method: 'OPTIONS', headers: token ? { Authorization: 'Bearer ' + token } : {} });
    return iceServersFrom(res.headers.get('Link'));
  } catch (e) {
    return [];
  }
}

async function publish() {
  const name = $('stream').value.trim();
  const token = $('token').value;
  $('go').disabled = true;
  setState('starting');
  try {
    stream = $('source').value === 'screen'
      ? await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true })
      : await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: true });
    $('preview').srcObject = stream;
    // ?relay=1 sends everything through the TURN server the gateway names
    // (iceTransportPolicy "relay"): a way to check a TURN set-up.
    const iceServers = await iceServersFor(name, token);
    window.iceServers = iceServers;
    pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: q.get('relay') ? 'relay' : 'all' });
    for (const track of stream.getTracks()) {
      const tr = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
      if (track.kind === 'video') preferH264(tr);
    }
    if (!stream.getAudioTracks().length) pc.addTransceiver('audio', { direction: 'sendonly' });
    pc.onconnectionstatechange = () => {
      const s = pc && pc.connectionState;
      if (s === 'connected') setState('live');
      else if (s === 'failed' || s === 'disconnected') setState('error', 'connection ' + s);
    };
    await pc.setLocalDescription(await pc.createOffer());
    // Non-trickle: wait for ICE gathering (bounded), then one POST.
    await new Promise(r => { if (pc.iceGatheringState === 'complete') r(); pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); setTimeout(r, 2000); });
    const headers = { 'Content-Type': 'application/sdp' };
    if (token) headers.Authorization = 'Bearer ' + token;
    const res = await fetch('/whip/' + name, { method: 'POST', headers, body: pc.localDescription.sdp });
    if (res.status !== 201) throw new Error('WHIP ' + res.status + ': ' + (await res.text()).trim());
    location_ = new URL(res.headers.get('Location'), window.location.href).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    setState('connecting');
    $('stop').disabled = false;
    $('links').innerHTML = 'Watch: <a href="/watch?stream=' + encodeURIComponent(name) + '">/watch?stream=' + name.replace(/</g, '&lt;') + '</a>';
    statsTimer = setInterval(showStats, 1000);
  } catch (e) {
    setState('error', String(e.message || e));
    cleanup();
  }
}

let lastBytes = 0, lastT = 0;
async function showStats() {
  if (!pc) return;
  let bytes = 0, codec = '', size = '';
  const stats = await pc.getStats();
  stats.forEach(s => {
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      const pair = stats.get(s.selectedCandidatePairId);
      const local = pair && stats.get(pair.localCandidateId), remote = pair && stats.get(pair.remoteCandidateId);
      if (local && remote) window.candidatePair = { local: local.candidateType, remote: remote.candidateType };
    }
    if (s.type === 'outbound-rtp') { bytes += s.bytesSent; if (s.kind === 'video') { size = s.frameWidth ? s.frameWidth + 'x' + s.frameHeight : ''; const c = stats.get(s.codecId); if (c) codec = c.mimeType; } }
  });
  const now = performance.now();
  const rate = lastT ? (bytes - lastBytes) * 8 / (now - lastT) : 0;
  lastBytes = bytes; lastT = now;
  if (window.publishState === 'live') $('info').textContent = codec + ' ' + size + ' · ' + rate.toFixed(0) + ' kb/s';
}

function cleanup() {
  clearInterval(statsTimer);
  if (pc) pc.close();
  pc = null;
  if (stream) stream.getTracks().forEach(t => t.stop());
  stream = null;
  $('go').disabled = false;
  $('stop').disabled = true;
}

async function stop() {
  const loc = location_;
  location_ = null;
  // DELETE first (RFC 9725 §4.3): closing the connection first would end
  // the session on the gateway before the request arrives.
  if (loc) {
    const headers = $('token').value ? { Authorization: 'Bearer ' + $('token').value } : {};
    await fetch(loc, { method: 'DELETE', headers }).catch(() => {});
  }
  cleanup();
  setState('idle');
}

const q = new URLSearchParams(window.location.search);
if (q.get('stream')) $('stream').value = q.get('stream');
$('go').onclick = publish;
$('stop').onclick = stop;
window.addEventListener('pagehide', () => { if (location_) navigator.sendBeacon && fetch(location_, { method: 'DELETE', keepalive: true }); });
setState('idle');
