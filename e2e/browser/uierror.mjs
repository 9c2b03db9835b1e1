// Opens the gateway's /watch page on a stream and reports what its state
// line says after a while: {state, info, error}. Used by e2e/ui_test.go to
// check that a player error is shown, not "playing".
//   node uierror.mjs --url 'http://127.0.0.1:8080/watch?stream=x&player=dash' --seconds 8
import { launchChromium } from './chromium.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const out = { state: '', info: '', error: null };
let browser;
try {
  browser = await launchChromium(args.chromium || '/usr/bin/chromium', { player: true });
  const pg = await browser.newPage();
  await pg.goto(args.url);
  await pg.waitForFunction(() => document.getElementById('state').textContent === 'error', null,
    { timeout: Number(args.seconds || 8) * 1000 }).catch(() => {});
  out.state = await pg.textContent('#state');
  out.info = await pg.textContent('#info');
  out.error = await pg.evaluate(() => window.watchState.error);
} catch (e) {
  out.error = 'driver: ' + String(e && e.message || e);
} finally {
  if (browser) await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
