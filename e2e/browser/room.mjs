// Two Chromium pages join one room through whipcast's /room page (the room
// signalling socket): each publishes the fake camera and microphone and must
// play the other's video with currentTime advancing. Then a third page plays
// the room's composite with hls.js on /watch. Prints one JSON object:
// {ok, pages: {name: {published, watching}}, composite: {playing, start, end}, error}.
//   node room.mjs --base http://127.0.0.1:8080 --room meet --names alice,bob --shots /tmp/x
import { launchChromium } from './chromium.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const base = args.base;
const room = args.room || 'meet';
const names = (args.names || 'alice,bob').split(',');
const shots = args.shots || '.';
const token = args.token || '';
const chromiumPath = args.chromium || '/usr/bin/chromium';
const timeout = 30000;

const out = { ok: false, pages: {}, composite: null, error: null };
let browser;
try {
  browser = await launchChromium(chromiumPath, { camera: true, player: true });
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const pages = {};
  for (const name of names) {
    const p = await ctx.newPage();
    p.on('console', m => { if (m.type() === 'error') process.stderr.write(`${name} console: ${m.text()}\n`); });
    p.on('pageerror', e => process.stderr.write(`${name} error: ${e}\n`));
    await p.goto(`${base}/room?room=${encodeURIComponent(room)}&participant=${encodeURIComponent(name)}&join=1` + (token ? `&token=${encodeURIComponent(token)}` : ''));
    pages[name] = p;
  }
  // Every page plays every other participant, its picture advancing.
  for (const name of names) {
    const p = pages[name];
    const others = names.filter(n => n !== name);
    await p.waitForFunction(others => others.every(o => {
      const w = window.roomState.watching[o];
      return w && w.playing && w.width > 0;
    }) || window.roomState.error, others, { timeout });
    const t0 = await p.evaluate(() => ({ ...window.roomState.watching }));
    await p.waitForTimeout(2000);
    const st = await p.evaluate(() => window.roomState);
    out.pages[name] = { published: st.published, error: st.error, refusals: st.refusals, watching: {} };
    for (const o of others) {
      const w = st.watching[o] || {};
      out.pages[name].watching[o] = { playing: !!w.playing, width: w.width || 0, advanced: (w.time || 0) > ((t0[o] || {}).time || 0) };
    }
    await p.screenshot({ path: `${shots}/room-${name}.png` });
  }
  // The room's composite, in a real player.
  const watch = await ctx.newPage();
  await watch.goto(`${base}/watch?stream=${encodeURIComponent(room + '/composite')}&player=hls`);
  await watch.waitForFunction(() => window.watchState.playing || window.watchState.error, null, { timeout });
  const c = { playing: await watch.evaluate(() => window.watchState.playing), error: await watch.evaluate(() => window.watchState.error) };
  if (c.playing) {
    c.start = await watch.evaluate(() => document.getElementById('v').currentTime);
    await watch.waitForTimeout(3000);
    c.end = await watch.evaluate(() => document.getElementById('v').currentTime);
    c.width = await watch.evaluate(() => document.getElementById('v').videoWidth);
  }
  await watch.screenshot({ path: `${shots}/room-composite.png` });
  out.composite = c;
  out.ok = Object.values(out.pages).every(p => p.published && p.refusals.length === 0 && Object.values(p.watching).every(w => w.playing && w.width > 0 && w.advanced))
    && c.playing && c.end > c.start;
} catch (e) {
  out.error = String(e && e.message || e);
} finally {
  if (browser) await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
