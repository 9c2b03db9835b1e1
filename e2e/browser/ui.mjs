// Drives whipcast's own web UI in headless Chromium: opens /publish, publishes
// the fake camera and microphone over WHIP, then opens /watch and waits until
// the player plays with currentTime advancing. Saves a screenshot of each page
// into --shots and prints one JSON object: {ok, published, playing, advanced,
// start, end, latency, error}.
//   node ui.mjs --base http://127.0.0.1:8080 --stream cam1 --player hls --token T --shots /tmp/x
import { launchChromium } from './chromium.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const base = args.base;
const stream = args.stream || 'ui';
const player = args.player || 'hls';
const token = args.token || '';
const shots = args.shots || '.';
const chromiumPath = args.chromium || '/usr/bin/chromium';
const timeout = 30000;

const out = { ok: false, published: false, playing: false, advanced: false, start: 0, end: 0, latency: null, error: null, dashboard: '' };
let browser;
try {
  browser = await launchChromium(chromiumPath, { camera: true, player: true });
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const log = (p, name) => {
    p.on('console', m => { if (m.type() === 'error') process.stderr.write(`${name} console: ${m.text()}\n`); });
    p.on('pageerror', e => process.stderr.write(`${name} error: ${e}\n`));
  };
  const pub = await ctx.newPage();
  log(pub, 'publish');
  await pub.goto(`${base}/publish?stream=${encodeURIComponent(stream)}`);
  await pub.click('#go');
  await pub.waitForFunction(() => window.publishState === 'live' || window.publishState === 'error', null, { timeout });
  out.published = await pub.evaluate(() => window.publishState === 'live');
  if (!out.published) throw new Error('publish: ' + await pub.textContent('#info'));
  out.offerH264 = await pub.evaluate(async () => {
    const c = RTCRtpSender.getCapabilities('video');
    return c.codecs.some(x => x.mimeType.toLowerCase() === 'video/h264');
  });
  await pub.waitForTimeout(1500); // the send rate shows
  await pub.screenshot({ path: `${shots}/publish.png` });

  const watch = await ctx.newPage();
  log(watch, 'watch');
  const q = new URLSearchParams({ stream, player });
  if (token) q.set('token', token);
  await watch.goto(`${base}/watch?${q}`);
  await watch.waitForFunction(() => window.watchState.playing || window.watchState.error, null, { timeout });
  out.error = await watch.evaluate(() => window.watchState.error);
  out.playing = await watch.evaluate(() => window.watchState.playing);
  if (out.playing) {
    out.start = await watch.evaluate(() => document.getElementById('v').currentTime);
    await watch.waitForTimeout(4000);
    out.end = await watch.evaluate(() => document.getElementById('v').currentTime);
    out.advanced = out.end > out.start + 1;
    out.latency = await watch.evaluate(() => window.watchState.latency);
  }
  await watch.screenshot({ path: `${shots}/watch.png` });

  const dash = await ctx.newPage();
  log(dash, 'dashboard');
  await dash.goto(`${base}/`);
  await dash.waitForFunction(() => document.querySelectorAll('#streams tbody tr').length > 0, null, { timeout: 10000 }).catch(() => {});
  await dash.waitForTimeout(2500); // a second poll: a bitrate over an interval
  out.dashboard = await dash.textContent('#streams tbody');
  await dash.screenshot({ path: `${shots}/dashboard.png` });

  await pub.click('#stop');
  await pub.waitForFunction(() => window.publishState === 'idle', null, { timeout: 5000 });
  out.ok = out.published && out.playing && out.advanced && !out.error;
} catch (e) {
  out.error = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
