// A room over the room signalling socket (/v1/rooms/{room}/ws, docs/api.md):
// publish the camera and microphone on one RTCPeerConnection, watch every
// other participant on one RTCPeerConnection each, trickle ICE, signal mutes,
// follow joins and leaves as the server pushes them.
const $ = id => document.getElementById(id);
let ws = null, me = '', pub = null, local = null, muted = false;
const subs = new Map(); // participant → {pc, id, tile}
const pending = new Map(); // ref → resolve
let refs = 0;
// window.roomState is read by the e2e test.
window.roomState = { state: 'idle', published: false, watching: {}, error: null, refusals: [] };
const setState = (s, info) => {
  $('state').textContent = s; $('state').className = 'state ' + s; $('info').textContent = info || '';
  window.roomState.state = s;
  if (s === 'error') window.roomState.error = info;
};

function send(msg) {
  const ref = 'r' + (++refs);
  ws.send(JSON.stringify({ ...msg, ref }));
  return new Promise(resolve => pending.set(ref, resolve));
}

function preferH264(tr) {
  const caps = RTCRtpSender.getCapabilities('video');
  if (!caps || !tr.setCodecPreferences) return;
  const h264 = caps.codecs.filter(c => c.mimeType.toLowerCase() === 'video/h264');
  const rest = caps.codecs.filter(c => c.mimeType.toLowerCase() !== 'video/h264');
  if (h264.length) tr.setCodecPreferences([...h264, ...rest]);
}

// negotiate sends pc's offer as msg, applies the answer and trickles the
// candidates gathered after it under the session id.
async function negotiate(pc, msg) {
  const early = [];
  let id = null;
  pc.onicecandidate = e => {
    const c = e.candidate ? e.candidate.toJSON() : '';
    if (id) ws.send(JSON.stringify({ type: 'candidate', id, candidate: c })); else early.push(c);
  };
  await pc.setLocalDescription(await pc.createOffer());
  const ans = await send({ ...msg, sdp: pc.localDescription.sdp });
  if (ans.type !== 'answer') throw new Error(msg.type + ': ' + ans.code + ' ' + ans.message);
  id = ans.id;
  await pc.setRemoteDescription({ type: 'answer', sdp: ans.sdp });
  for (const c of early) ws.send(JSON.stringify({ type: 'candidate', id, candidate: c }));
  return id;
}

async function publish() {
  local = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
  $('self').srcObject = local;
  pub = new RTCPeerConnection();
  for (const track of local.getTracks()) {
    const tr = pub.addTransceiver(track, { direction: 'sendonly', streams: [local] });
    if (track.kind === 'video') preferH264(tr);
  }
  pub.onconnectionstatechange = () => {
    if (pub && pub.connectionState === 'connected') { window.roomState.published = true; setState('live'); }
  };
  await negotiate(pub, { type: 'publish' });
}

async function watch(name) {
  if (name === me || subs.has(name)) return;
  const fig = document.createElement('figure');
  const v = document.createElement('video');
  v.autoplay = true; v.playsInline = true; v.muted = true; // autoplay without a gesture; unmute by the controls
  v.controls = true;
  const cap = document.createElement('figcaption');
  cap.textContent = name;
  fig.append(v, cap);
  $('tiles').append(fig);
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const ms = new MediaStream();
  pc.ontrack = e => { ms.addTrack(e.track); v.srcObject = ms; };
  const sub = { pc, id: null, fig, video: v };
  subs.set(name, sub);
  const state = window.roomState.watching[name] = { playing: false, width: 0, time: 0 };
  v.addEventListener('playing', () => { state.playing = true; });
  v.addEventListener('timeupdate', () => { state.time = v.currentTime; state.width = v.videoWidth; });
  try {
    sub.id = await negotiate(pc, { type: 'subscribe', participant: name });
  } catch (e) {
    unwatch(name);
    $('info').textContent = String(e.message || e);
  }
}

function unwatch(name) {
  const sub = subs.get(name);
  if (!sub) return;
  subs.delete(name);
  sub.pc.close();
  sub.fig.remove();
  delete window.roomState.watching[name];
}

function onMessage(ev) {
  const m = JSON.parse(ev.data);
  if (m.ref && pending.has(m.ref)) {
    pending.get(m.ref)(m);
    pending.delete(m.ref);
    return;
  }
  switch (m.type) {
    case 'room':
      for (const p of m.participants) watch(p.name);
      break;
    case 'joined':
      watch(m.participant);
      break;
    case 'left':
      unwatch(m.participant);
      break;
    case 'closed':
      for (const [name, sub] of subs) if (sub.id === m.id) unwatch(name);
      break;
    case 'ended':
      setState('idle', 'the room ended: ' + m.reason);
      break;
    case 'error':
      $('info').textContent = m.code + ' ' + m.message;
      window.roomState.refusals.push(m.code + ' ' + m.message);
      break;
  }
}

async function join() {
  const room = $('room').value.trim();
  me = $('participant').value.trim();
  const token = $('token').value;
  $('go').disabled = true;
  setState('starting');
  const q = new URLSearchParams({ participant: me });
  if (token) q.set('token', token);
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/v1/rooms/' + encodeURIComponent(room) + '/ws?' + q;
  ws = new WebSocket(url);
  ws.onmessage = onMessage;
  ws.onclose = e => { if (window.roomState.state !== 'idle') setState(e.code === 1000 ? 'idle' : 'error', 'socket closed ' + e.code + ' ' + e.reason); leave(true); };
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error('the room socket did not open (unknown room or bad token?)')); });
  try {
    await publish();
    setState('connecting');
    $('stop').disabled = false;
  } catch (e) {
    setState('error', String(e.message || e));
  }
}

async function toggleMute() {
  if (!local || !ws) return;
  muted = !muted;
  local.getAudioTracks().forEach(t => { t.enabled = !muted; });
  ws.send(JSON.stringify({ type: 'mute', kind: 'audio', muted }));
  $('mute').textContent = muted ? 'Unmute' : 'Mute';
}

function leave(fromClose) {
  for (const name of [...subs.keys()]) unwatch(name);
  if (pub) pub.close();
  pub = null;
  if (local) local.getTracks().forEach(t => t.stop());
  local = null;
  if (ws && !fromClose) ws.close(1000);
  ws = null;
  window.roomState.published = false;
  $('go').disabled = false;
  $('stop').disabled = true;
}

const q = new URLSearchParams(window.location.search);
for (const k of ['room', 'participant', 'token']) if (q.get(k)) $(k).value = q.get(k);
$('go').onclick = join;
$('stop').onclick = () => { leave(false); setState('idle'); };
$('mute').onclick = toggleMute;
setState('idle');
if (q.get('join') === '1') join();
