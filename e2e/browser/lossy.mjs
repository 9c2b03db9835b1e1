// Publishes Chromium's fake camera and microphone over WHIP from a page of
// its own, for a while, and prints one JSON object with what the browser's
// sender counted: {published, video: {framesEncoded, framesSent,
// packetsSent, retransmittedPacketsSent, nackCount, pliCount, frameWidth,
// frameHeight}, error}. The offer goes without our ICE candidates, so the
// gateway only ever reaches the browser through the address the browser
// first sent from (e2e/lossrelay_test.go puts a lossy relay there).
//   node lossy.mjs --whip http://127.0.0.1:8080/whip/cam --seconds 20
import http from 'node:http';
import { launchChromium } from './chromium.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const whip = args.whip;
const seconds = Number(args.seconds || 20);
const chromiumPath = args.chromium || process.env.CHROMIUM || '/usr/bin/chromium';

// getUserMedia needs a secure context: a page from http://127.0.0.1.
const page = `<!doctype html><meta charset="utf-8"><title>lossy publish</title><script>
window.run = async (whip, seconds) => {
  const out = { published: false, video: null, error: null };
  let pc;
  try {
    const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360, frameRate: 30 }, audio: true });
    pc = new RTCPeerConnection();
    for (const track of media.getTracks()) {
      const tr = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
      if (track.kind === 'video') {
        const codecs = RTCRtpSender.getCapabilities('video').codecs;
        tr.setCodecPreferences(codecs.filter(c => /h264|rtx/i.test(c.mimeType)));
        // Keep the picture size: the frame count is what is compared.
        const p = tr.sender.getParameters();
        p.degradationPreference = 'maintain-resolution';
        await tr.sender.setParameters(p).catch(() => {});
      }
    }
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise(r => { if (pc.iceGatheringState === 'complete') r(); pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); setTimeout(r, 2000); });
    const sdp = pc.localDescription.sdp.split('\\r\\n').filter(l => !l.startsWith('a=candidate') && l !== 'a=end-of-candidates').join('\\r\\n');
    const res = await fetch(whip, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: sdp });
    if (res.status !== 201) throw new Error('WHIP ' + res.status + ': ' + (await res.text()).trim());
    const loc = new URL(res.headers.get('Location'), whip).href;
    await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    await new Promise((ok, bad) => {
      const t = setTimeout(() => bad(new Error('not connected in 15 s: ' + pc.connectionState)), 15000);
      pc.onconnectionstatechange = () => { if (pc.connectionState === 'connected') { clearTimeout(t); ok(); } };
    });
    out.published = true;
    await new Promise(r => setTimeout(r, seconds * 1000));
    (await pc.getStats()).forEach(s => {
      if (s.type === 'outbound-rtp' && s.kind === 'video') {
        out.video = { framesEncoded: s.framesEncoded, framesSent: s.framesSent, packetsSent: s.packetsSent,
          retransmittedPacketsSent: s.retransmittedPacketsSent, nackCount: s.nackCount, pliCount: s.pliCount,
          frameWidth: s.frameWidth, frameHeight: s.frameHeight };
      }
    });
    media.getTracks().forEach(t => t.stop());
    await fetch(loc, { method: 'DELETE' }).catch(() => {});
  } catch (e) {
    out.error = String(e && e.message || e);
  } finally {
    if (pc) pc.close();
  }
  return out;
};
</script>`;

const server = http.createServer((req, res) => { res.setHeader('Content-Type', 'text/html'); res.end(page); });
await new Promise(r => server.listen(0, '127.0.0.1', r));
let out = { published: false, video: null, error: null };
let browser;
try {
  browser = await launchChromium(chromiumPath, { camera: true });
  const p = await browser.newPage();
  p.on('pageerror', e => process.stderr.write(`lossy page error: ${e}\n`));
  await p.goto(`http://127.0.0.1:${server.address().port}/`);
  out = await p.evaluate(([w, s]) => window.run(w, s), [whip, seconds]);
} catch (e) {
  out.error = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
  server.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
