// Publishes Chromium's fake camera over WHIP and plays it back over WHEP,
// both with iceTransportPolicy "relay": every packet goes through the TURN
// server the gateway names in its Link rel="ice-server" headers (RFC 9725
// §4.6), with the credentials given there. Prints one JSON object:
// {links, publish: {state, local, remote}, play: {state, local, remote,
// framesBefore, framesAfter}, answers: [whip, whep], error}.
//   node turn.mjs --base http://127.0.0.1:8080 --stream cam
import { launchChromium } from './chromium.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const chromiumPath = args.chromium || process.env.CHROMIUM || '/usr/bin/chromium';

const out = { links: [], publish: null, play: null, answers: [], error: null };
let browser;
try {
  browser = await launchChromium(chromiumPath, { camera: true, player: true });
  const page = await browser.newPage();
  page.on('pageerror', e => process.stderr.write(`turn page error: ${e}\n`));
  // A secure context of the gateway's origin (getUserMedia, same-origin fetch).
  await page.goto(`${args.base}/healthz`);
  Object.assign(out, await page.evaluate(async (stream) => {
    const res = { links: [], answers: [] };
    // Link: <turn:h:p?transport=udp>; rel="ice-server"; username="u"; credential="c"; ...
    const iceServers = async (path) => {
      const r = await fetch(path, { method: 'OPTIONS' });
      const links = (r.headers.get('Link') || '').split(/,\s*(?=<)/).filter(l => /rel="ice-server"/.test(l));
      res.links.push(...links);
      return links.map(l => {
        const s = { urls: /^<([^>]+)>/.exec(l)[1] };
        const u = /username="([^"]*)"/.exec(l), c = /credential="([^"]*)"/.exec(l);
        if (u) s.username = u[1];
        if (c) s.credential = c[1];
        return s;
      });
    };
    // With the relay policy every candidate is a relay one: the first is
    // enough to offer, as max-bundle gathers for the one bundled transport
    // only (with "balanced" the first could belong to another m-line, and
    // the gateway, bundling on the first, would have no candidate to check:
    // a TURN server drops what arrives from a peer it has no permission
    // for, so not even a peer-reflexive one). Gathering on other
    // interfaces may still run; Chromium can take seconds to end it.
    const gathered = pc => new Promise(resolve => {
      if (pc.iceGatheringState === 'complete') return resolve();
      pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
      pc.addEventListener('icecandidate', e => e.candidate && e.candidate.type === 'relay' && resolve());
      setTimeout(resolve, 10000);
    });
    const connected = pc => new Promise((resolve, reject) => {
      const check = () => {
        if (pc.connectionState === 'connected') resolve();
        if (pc.connectionState === 'failed') reject(new Error('connection failed'));
      };
      pc.addEventListener('connectionstatechange', check);
      check();
      setTimeout(() => reject(new Error('not connected within 20 s: ' + pc.connectionState)), 20000);
    });
    // The candidate types of the pair in use.
    const pair = async pc => {
      const st = await pc.getStats();
      let p;
      st.forEach(s => { if (s.type === 'transport' && s.selectedCandidatePairId) p = st.get(s.selectedCandidatePairId); });
      if (!p) st.forEach(s => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') p = s; });
      if (!p) return { local: null, remote: null };
      return { local: st.get(p.localCandidateId).candidateType, remote: st.get(p.remoteCandidateId).candidateType };
    };
    const signal = async (pc, path) => {
      await pc.setLocalDescription(await pc.createOffer());
      const g0 = Date.now();
      await gathered(pc);
      res.gatherMs = (res.gatherMs || []).concat(Date.now() - g0);
      const r = await fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
      const answer = await r.text();
      if (r.status !== 201) throw new Error(`POST ${path}: ${r.status} ${answer}`);
      res.answers.push(answer);
      res.offers = (res.offers || []).concat(pc.localDescription.sdp);
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      return new URL(r.headers.get('Location'), location.href).href;
    };

    try {
    const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
    const pub = new RTCPeerConnection({ iceServers: await iceServers('/whip/' + stream), iceTransportPolicy: 'relay', bundlePolicy: 'max-bundle' });
    for (const tr of media.getTracks()) pub.addTransceiver(tr, { direction: 'sendonly' });
    const pubLoc = await signal(pub, '/whip/' + stream);
    await connected(pub);
    res.publish = { state: pub.connectionState, ...await pair(pub) };

    // Wait until the stream is there for WHEP (the first keyframe).
    const play = new RTCPeerConnection({ iceServers: await iceServers('/whep/' + stream), iceTransportPolicy: 'relay', bundlePolicy: 'max-bundle' });
    play.addTransceiver('video', { direction: 'recvonly' });
    play.addTransceiver('audio', { direction: 'recvonly' });
    let playLoc;
    for (let i = 0; ; i++) {
      try { playLoc = await signal(play, '/whep/' + stream); break; } catch (e) {
        if (i >= 20 || !/ 404 /.test(String(e))) throw e;
        await new Promise(r => setTimeout(r, 500));
      }
    }
    await connected(play);
    const decoded = async () => {
      let n = 0;
      (await play.getStats()).forEach(s => { if (s.type === 'inbound-rtp' && s.kind === 'video') n = s.framesDecoded || 0; });
      return n;
    };
    const t0 = Date.now();
    let before = await decoded();
    while (before === 0 && Date.now() - t0 < 15000) { await new Promise(r => setTimeout(r, 250)); before = await decoded(); }
    await new Promise(r => setTimeout(r, 3000));
    res.play = { state: play.connectionState, ...await pair(play), framesBefore: before, framesAfter: await decoded() };
    await fetch(playLoc, { method: 'DELETE' });
    await fetch(pubLoc, { method: 'DELETE' });
    play.close();
    pub.close();
    } catch (e) {
      res.error = String(e && e.message || e);
    }
    return res;
  }, args.stream || 'cam'));
} catch (e) {
  out.error = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
