// Watches a live stream in headless Chromium with dash.js or hls.js for a
// while and reports what a viewer would notice, as one JSON object on
// stdout: {player, playing, samples, stall, sizes, errors, resets, end}.
// The watch lasts --seconds of the stream's time (currentTime advanced that
// far from the first 'playing'), not of the wall clock: a player that
// catches up to the live edge slowly (dash.js plays below 1x while its
// buffer is short) or a machine busy with other work still watches the
// whole span. --bound (default 2 x --seconds + 10) caps the wall time of
// the watch, so a player that stands still ends it too.
//   samples: [[wall s, currentTime s], ...] every 200 ms after 'playing'
//   stall:   the longest wall time currentTime did not advance (s)
//   stallAt: [wall s, currentTime] where that stall began
//   stallState: at that stall (once past 1 s): currentTime, buffered
//            ranges, readyState, and for hls.js its last 120 events
//   sizes:   [[currentTime, "WxH"], ...] each time the picture size changed
//   errors:  every player error event and <video> error, as text
//   resets:  dash.js MediaSource resets / decode-error recoveries seen in its log
//   startup: s from the page's load to the first 'playing' (the player's own
//            start plus the gateway's wait for a first segment)
//   manifest: s from the page's load to the first playlist / MPD loaded
// Used by e2e/resolution_test.go; run by hand as
//   node watch.mjs --player dash --url http://127.0.0.1:8080/dash/cam/manifest.mpd --seconds 20
// Unlike play.mjs it opens the page right away (no wait for the stream to be
// ready): a player that opens the stream in its first second must play.
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
const watch = Number(args.seconds || 20) * 1000;
const timeout = Number(args.timeout || 30) * 1000;
const bound = Number(args.bound || 2 * watch / 1000 + 10) * 1000;
const logLevel = Number(args.log || 0); // dash.js debug.logLevel; 0: none kept
const chromiumPath = args.chromium || process.env.CHROMIUM || '/usr/bin/chromium';

const libs = {
  '/dash.js': path.join(here, 'node_modules/dashjs/dist/modern/umd/dash.all.min.js'),
  '/hls.js': path.join(here, 'node_modules/hls.js/dist/hls.min.js'),
};

const page = `<!doctype html><meta charset="utf-8"><title>whipcast ${player}</title>
<video id="v" muted autoplay playsinline></video>
<script src="/${player}.js"></script>
<script>
const v = document.getElementById('v');
window.state = { playing: false, errors: [], sizes: [], resets: 0, startup: 0, manifest: 0 };
const manifestLoaded = () => { if (!window.state.manifest) window.state.manifest = performance.now() / 1000; };
v.addEventListener('playing', () => { if (!window.state.playing) window.state.startup = performance.now() / 1000; window.state.playing = true; });
v.addEventListener('error', () => { window.state.errors.push('video: ' + (v.error && (v.error.code + ' ' + v.error.message))); });
v.addEventListener('resize', () => { window.state.sizes.push([v.currentTime, v.videoWidth + 'x' + v.videoHeight]); });
const src = ${JSON.stringify(url)};
if (${JSON.stringify(player)} === 'dash') {
  const p = dashjs.MediaPlayer().create();
  p.updateSettings({ streaming: { liveCatchup: { enabled: true } }${logLevel ? ", debug: { logLevel: " + logLevel + " }" : ""} });
  p.on(dashjs.MediaPlayer.events.ERROR, e => { window.state.errors.push('dash: ' + JSON.stringify(e.error || e)); });
  p.on(dashjs.MediaPlayer.events.PLAYBACK_ERROR, e => { window.state.errors.push('dash playback: ' + JSON.stringify(e.error || e)); });
  p.on(dashjs.MediaPlayer.events.MANIFEST_LOADED, manifestLoaded);
  p.initialize(v, src, true);
} else {
  const h = new Hls({ lowLatencyMode: true });
  // The last events, kept for a stall's report: which fragments came and
  // where hls.js put them.
  const note = s => { const l = window.state.hlog; l.push((performance.now() / 1000).toFixed(2) + ' ' + s); if (l.length > 120) l.shift(); };
  window.state.hlog = [];
  h.on(Hls.Events.ERROR, (_, d) => {
    window.state.errors.push((d.fatal ? 'fatal ' : '') + d.type + ': ' + d.details + (d.frag ? ' (' + d.frag.type + ' sn=' + d.frag.sn + ' level=' + d.frag.level + (d.part ? ' part=' + d.part.index : '') + ')' : ''));
    note('error ' + d.details + (d.frag ? ' sn=' + d.frag.sn : ''));
  });
  h.on(Hls.Events.FRAG_BUFFERED, (_, d) => { const f = d.frag; note('buffered ' + f.type + ' sn=' + f.sn + ' cc=' + f.cc + ' start=' + f.start.toFixed(3) + ' dur=' + f.duration.toFixed(3) + (d.part ? ' part=' + d.part.index : '')); });
  h.on(Hls.Events.LEVEL_UPDATED, (_, d) => { const x = d.details; note('level ' + x.startSN + '..' + x.endSN + ' cc=' + x.startCC + '..' + x.endCC + ' parts=' + (x.partList ? x.partList.length : 0)); });
  h.on(Hls.Events.AUDIO_TRACK_LOADED, (_, d) => { const x = d.details; note('audio ' + x.startSN + '..' + x.endSN + ' cc=' + x.startCC + '..' + x.endCC + ' parts=' + (x.partList ? x.partList.length : 0)); });
  h.on(Hls.Events.FRAG_LOADING, (_, d) => { const f = d.frag; note('loading ' + f.type + ' sn=' + f.sn + (d.part ? ' part=' + d.part.index : '')); });
  h.on(Hls.Events.MANIFEST_LOADED, manifestLoaded);
  h.loadSource(src);
  h.attachMedia(v);
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

const out = { player, playing: false, samples: [], stall: 0, stallAt: null, sizes: [], errors: [], resets: 0, log: [] };
let browser;
try {
  browser = await launchChromium(chromiumPath, { player: true });
  const pg = await browser.newPage();
  pg.on('console', m => {
    const t = m.text();
    if (logLevel && out.log.length < 3000 && !/ratechange|Throughput|AbrController/.test(t)) out.log.push(((Date.now() - (globalThis.t0 || 0)) / 1000).toFixed(1) + ' ' + t.slice(0, 300));
    // dash.js logs its recovery from a decode error (it resets MediaSource).
    if (/PIPELINE_ERROR|MediaSource.*(reset|reopen)|Recovering|MEDIA_ERR_DECODE/i.test(t)) {
      out.resets++;
      if (out.log.length < 20) out.log.push(t.slice(0, 300));
    }
  });
  pg.on('pageerror', e => { out.errors.push('page: ' + String(e && e.message || e)); });
  await pg.goto(`http://127.0.0.1:${server.address().port}/`);
  await pg.waitForFunction(() => window.state.playing || window.state.errors.length > 0, null, { timeout });
  const t0 = Date.now();
  globalThis.t0 = t0;
  let last = null, since = t0, stateSince = null, first = null;
  while (Date.now() - t0 < bound && (first === null || last - first < watch / 1000)) {
    const ct = await pg.evaluate(() => document.getElementById('v').currentTime);
    const now = Date.now();
    if (first === null) first = ct;
    out.samples.push([(now - t0) / 1000, ct]);
    if (last === null || ct > last + 0.001) {
      last = ct;
      since = now;
    }
    if ((now - since) / 1000 > 1 && (now - since) / 1000 > out.stall && stateSince !== since) {
      // What the player held when it stood still, taken once per stall
      // and kept for the longest one (the one a test fails on): buffered
      // ranges, and for hls.js its last events.
      stateSince = since;
      out.stallState = await pg.evaluate(() => {
        const v = document.getElementById('v');
        const r = [];
        for (let i = 0; i < v.buffered.length; i++) r.push([v.buffered.start(i), v.buffered.end(i)]);
        return { currentTime: v.currentTime, buffered: r, readyState: v.readyState, hlog: window.state.hlog || [] };
      });
    }
    if ((now - since) / 1000 > out.stall) {
      out.stall = (now - since) / 1000;
      out.stallAt = [(since - t0) / 1000, last];
    }
    await pg.waitForTimeout(200);
  }
  const st = await pg.evaluate(() => window.state);
  out.playing = st.playing;
  out.startup = st.startup;
  out.manifest = st.manifest;
  out.sizes = st.sizes;
  out.errors = st.errors;
  out.hlog = st.hlog || [];
} catch (e) {
  out.errors.push('driver: ' + String(e && e.message || e));
} finally {
  if (browser) await browser.close();
  server.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
