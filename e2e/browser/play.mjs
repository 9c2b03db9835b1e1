// Plays a live stream in headless Chromium with dash.js or hls.js and prints
// one JSON object on stdout: {ok, player, playing, advanced, start, end,
// latency, error, endlist, samples}. endlist: hls.js loaded a playlist with
// EXT-X-ENDLIST; samples: [wall ms, currentTime] every 500 ms of the watch. Used by e2e/browser_test.go; run by hand as
//   node play.mjs --player dash --url http://127.0.0.1:8080/dash/cam1/manifest.mpd
// The page and the player library are served from this process on loopback;
// the browser is the system's Chromium (never a downloaded one).
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
const player = args.player || 'dash';
const url = args.url;
const watch = Number(args.seconds || 5) * 1000;
const timeout = Number(args.timeout || 30) * 1000;
const chromiumPath = args.chromium || process.env.CHROMIUM || '/usr/bin/chromium';

const libs = {
  '/dash.js': path.join(here, 'node_modules/dashjs/dist/modern/umd/dash.all.min.js'),
  '/hls.js': path.join(here, 'node_modules/hls.js/dist/hls.min.js'),
};

// The page: a <video>, the player in low-latency mode, and window.latency()
// for the driver to read the player's own live-latency estimate.
const page = `<!doctype html><meta charset="utf-8"><title>whipcast ${player}</title>
<video id="v" muted autoplay playsinline></video>
<script src="/${player}.js"></script>
<script>
const v = document.getElementById('v');
window.state = { playing: false, error: null, endlist: false };
v.addEventListener('playing', () => { window.state.playing = true; });
const src = ${JSON.stringify(url)};
if (${JSON.stringify(player)} === 'dash') {
  const p = dashjs.MediaPlayer().create();
  // Low latency follows the MPD (availabilityTimeComplete=false,
  // ServiceDescription); catch-up on so the player holds the target.
  p.updateSettings({ streaming: { liveCatchup: { enabled: true } } });
  p.on(dashjs.MediaPlayer.events.ERROR, e => { window.state.error = JSON.stringify(e.error || e); });
  p.initialize(v, src, true);
  window.latency = () => p.getCurrentLiveLatency();
} else {
  const h = new Hls({ lowLatencyMode: true });
  h.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) window.state.error = d.type + ': ' + d.details; });
  h.on(Hls.Events.LEVEL_LOADED, (_, d) => { if (d.details && !d.details.live) window.state.endlist = true; });
  h.loadSource(src);
  h.attachMedia(v);
  window.latency = () => h.latency;
}
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

const out = { ok: false, player, playing: false, advanced: false, start: 0, end: 0, latency: null, error: null, endlist: false, samples: [] };
let browser;
try {
  browser = await launchChromium(chromiumPath, { player: true });
  const pg = await browser.newPage();
  pg.on('response', r => { if (r.status() >= 400) process.stderr.write(`http ${r.status()} ${r.url()}\n`); });
  pg.on('console', m => { if (m.type() === 'error') process.stderr.write(`console: ${m.text()}\n`); });
  await pg.goto(`http://127.0.0.1:${server.address().port}/`);
  await pg.waitForFunction(() => window.state.playing || window.state.error, null, { timeout });
  out.error = await pg.evaluate(() => window.state.error);
  out.playing = await pg.evaluate(() => window.state.playing);
  if (out.playing) {
    out.start = await pg.evaluate(() => document.getElementById('v').currentTime);
    for (const until = Date.now() + watch; Date.now() < until;) {
      await pg.waitForTimeout(Math.min(500, until - Date.now()));
      out.samples.push([Date.now(), await pg.evaluate(() => document.getElementById('v').currentTime)]);
    }
    out.end = await pg.evaluate(() => document.getElementById('v').currentTime);
    out.endlist = await pg.evaluate(() => window.state.endlist);
    if (!out.error) out.error = await pg.evaluate(() => window.state.error);
    out.advanced = out.end > out.start + 0.5 * watch / 1000;
    out.latency = await pg.evaluate(() => window.latency());
  }
  out.ok = out.playing && out.advanced && !out.error;
} catch (e) {
  out.error = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
  server.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
