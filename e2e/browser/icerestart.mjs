// ICE restart with an independent client: medooze's whip-whep (npm
// whip-whep, by RFC 9725's author) in headless Chromium publishes the fake
// camera over WHIP with trickle ICE and plays it back over WHEP in the same
// page, then restarts ICE on the publisher (WHIPClient.restart: a PATCH with
// If-Match: * and new credentials) while the viewer plays, then on the
// viewer (WHEPClient.restart), and stops both (stop(): close, then DELETE).
// The library's ES modules are served as they are published, no build step.
// Prints one JSON object:
//   {ok, steps: [{name, pub: {local, remote, state}, view: {...}, framesSent,
//    framesDecoded, currentTime}], requests: [{method, status, ifMatch, etag}],
//    error}
// where local/remote are the ice-ufrags of each PeerConnection's local and
// remote descriptions. Used by e2e/icerestart_test.go; by hand:
//   node icerestart.mjs --base http://127.0.0.1:8080 --stream cam
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const base = args.base;
const stream = args.stream || 'cam';
const timeout = Number(args.timeout || 20) * 1000;
const chromiumPath = args.chromium || process.env.CHROMIUM || '/usr/bin/chromium';

const libs = {
  '/whip.js': path.join(here, 'node_modules/whip-whep/whip.js'),
  '/whep.js': path.join(here, 'node_modules/whip-whep/whep.js'),
};

// The page: one publisher and one viewer PeerConnection, each driven by the
// library; fetch is wrapped to record every WHIP/WHEP request's answer.
const page = `<!doctype html><meta charset="utf-8"><title>whip-whep ICE restart</title>
<video id="v" muted autoplay playsinline></video>
<script type="module">
import { WHIPClient } from '/whip.js';
import { WHEPClient } from '/whep.js';
const requests = window.requests = [];
const plainFetch = window.fetch.bind(window);
window.fetch = async (url, opts = {}) => {
  const r = await plainFetch(url, opts);
  const h = opts.headers || {};
  requests.push({ method: opts.method || 'GET', url: String(url), status: r.status,
    ifMatch: h['If-Match'] || null, etag: r.headers.get('etag') });
  return r;
};
const ufrag = d => { const m = d && /a=ice-ufrag:(.*)\\r\\n/.exec(d.sdp); return m ? m[1] : null; };
const ice = pc => pc ? { local: ufrag(pc.localDescription), remote: ufrag(pc.remoteDescription), state: pc.iceConnectionState } : null;
let pub, view, whip, whep;
window.publish = async (url) => {
  const media = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  pub = new RTCPeerConnection();
  for (const track of media.getTracks()) pub.addTransceiver(track, { direction: 'sendonly' });
  whip = new WHIPClient();
  await whip.publish(pub, url);
};
window.view = async (url) => {
  view = new RTCPeerConnection();
  view.addTransceiver('video', { direction: 'recvonly' });
  view.addTransceiver('audio', { direction: 'recvonly' });
  const ms = new MediaStream();
  view.ontrack = e => { ms.addTrack(e.track); document.getElementById('v').srcObject = ms; };
  whep = new WHEPClient();
  await whep.view(view, url);
};
window.restartPublisher = () => whip.restart();
window.restartViewer = () => whep.restart();
window.stop = async () => { await whep.stop(); await whip.stop(); };
window.sample = async () => {
  let framesSent = 0, framesDecoded = 0;
  if (pub) (await pub.getStats()).forEach(s => { if (s.type === 'outbound-rtp' && s.kind === 'video') framesSent += s.framesSent || 0; });
  if (view) (await view.getStats()).forEach(s => { if (s.type === 'inbound-rtp' && s.kind === 'video') framesDecoded += s.framesDecoded || 0; });
  return { pub: ice(pub), view: ice(view), framesSent, framesDecoded, currentTime: document.getElementById('v').currentTime };
};
window.ready = true;
</script>`;

const server = http.createServer((req, res) => {
  if (req.url === '/') {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(page);
  } else if (libs[req.url]) {
    res.writeHead(200, { 'Content-Type': 'text/javascript' });
    fs.createReadStream(libs[req.url]).pipe(res);
  } else {
    res.writeHead(404);
    res.end();
  }
});
await new Promise(r => server.listen(0, '127.0.0.1', r));

const out = { ok: false, steps: [], requests: [], error: null };
let browser;
try {
  browser = await launchChromium(chromiumPath, { camera: true, player: true });
  const pg = await browser.newPage();
  pg.on('pageerror', e => process.stderr.write(`icerestart page error: ${e}\n`));
  await pg.goto(`http://127.0.0.1:${server.address().port}/`);
  await pg.waitForFunction(() => window.ready, null, { timeout });
  // Waits until the viewer decoded `more` frames past `from` and its
  // currentTime moved a second past the sample's; returns the last sample.
  const advance = async (name, from, more) => {
    const t0 = Date.now();
    for (;;) {
      const s = await pg.evaluate(() => window.sample());
      if (s.framesDecoded >= from.framesDecoded + more && s.currentTime >= from.currentTime + 1) {
        out.steps.push({ name, ...s });
        return s;
      }
      if (Date.now() - t0 > timeout) {
        out.steps.push({ name: name + ' (timed out)', ...s });
        throw new Error(`${name}: the viewer did not advance: ${JSON.stringify(s)} from ${JSON.stringify(from)}`);
      }
      await pg.waitForTimeout(100);
    }
  };
  await pg.evaluate(u => window.publish(u), `${base}/whip/${stream}`);
  await pg.evaluate(u => window.view(u), `${base}/whep/${stream}`);
  let s = await advance('playing', { framesDecoded: 0, currentTime: 0 }, 30);
  await pg.evaluate(() => window.restartPublisher());
  s = await advance('after the publisher restarted ICE', s, 60);
  await pg.evaluate(() => window.restartViewer());
  s = await advance('after the viewer restarted ICE', s, 60);
  await pg.evaluate(() => window.stop());
  out.ok = true;
} catch (e) {
  out.error = String(e && e.message || e);
} finally {
  if (browser) {
    try {
      const pg = browser.contexts()[0]?.pages()[0];
      if (pg) out.requests = await pg.evaluate(() => window.requests || []);
    } catch (e) { /* the page is gone */ }
    await browser.close();
  }
  server.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
