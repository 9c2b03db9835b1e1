// Publishes Chromium's fake camera and microphone through whipcast's own
// /publish page for a while, then stops, and prints one JSON object:
// {published, sizes, error}. sizes: the frame sizes the browser's encoder
// sent, in order, as the page's status line shows them ([[seconds, "WxH"], ...]):
// Chromium's fake camera starts small and ramps up in its first seconds, as
// a real browser under bandwidth estimation does. Used by
// e2e/browser_ramp_test.go; run by hand as
//   node publish.mjs --base http://127.0.0.1:8080 --stream cam --seconds 30
// With --stdin 1 it stops as soon as its stdin closes (at most --seconds):
// a test ends the publish when its players are done, whenever they began.
// --spki HASH trusts a test server certificate (https --base).
// --relay 1 opens /publish?relay=1 (TURN only); the output then also has
// iceServers (what the page read from the gateway's Link headers) and pair
// (the candidate types of the pair ICE selected, {local, remote}).
import { launchChromium } from './chromium.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const base = args.base;
const stream = args.stream || 'cam';
const seconds = Number(args.seconds || 30);
const chromiumPath = args.chromium || process.env.CHROMIUM || '/usr/bin/chromium';
let stopped = false;
if (args.stdin) {
  process.stdin.on('end', () => { stopped = true; }).resume();
}

const out = { published: false, sizes: [], iceServers: null, pair: null, error: null };
let browser;
try {
  browser = await launchChromium(chromiumPath, { camera: true, spki: args.spki || '' });
  const pub = await browser.newPage();
  pub.on('pageerror', e => process.stderr.write(`publish error: ${e}\n`));
  await pub.goto(`${base}/publish?stream=${encodeURIComponent(stream)}${args.relay ? '&relay=1' : ''}`);
  await pub.click('#go');
  await pub.waitForFunction(() => window.publishState === 'live' || window.publishState === 'error', null, { timeout: 30000 });
  out.published = await pub.evaluate(() => window.publishState === 'live');
  if (!out.published) throw new Error('publish: ' + await pub.textContent('#info'));
  // What the encoder sends (outbound-rtp frame size, shown by the page), sampled.
  const t0 = Date.now();
  let last = '';
  while (!stopped && Date.now() - t0 < seconds * 1000) {
    // The page's own status line: "video/H264 1280x720 · 2400 kb/s".
    const m = /(\d+x\d+)/.exec(await pub.textContent('#info') || '');
    const size = m ? m[1] : '';
    if (size && size !== last) {
      out.sizes.push([(Date.now() - t0) / 1000, size]);
      last = size;
    }
    await pub.waitForTimeout(250);
  }
  out.iceServers = await pub.evaluate(() => window.iceServers || null);
  out.pair = await pub.evaluate(() => window.candidatePair || null);
  await pub.click('#stop');
} catch (e) {
  out.error = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
