// Publishing with a second independent WHIP client: Eyevinn's
// @eyevinn/whip-web-client in headless Chromium sends the fake camera and
// microphone to the gateway from a page on another origin, as a creator's
// web app would. The client decides to trickle from the OPTIONS answer
// (Access-Control-Allow-Methods listing PATCH), POSTs its offer before
// gathering, PATCHes each candidate (with an `ETag` request header, not
// If-Match), and destroy() sends DELETE. Its published build needs two
// CommonJS packages (events, sdp-transform); this server wraps the three
// CommonJS files into one ES module for the page, no bundler.
// Prints one JSON object:
//   {ok, samples: [{t, framesSent, ice, connection}], iceServers, resource,
//    requests: [{method, url, status, etag, error?, body?}], error}
// Used by e2e/eyevinn_test.go; by hand:
//   node eyevinn.mjs --base http://127.0.0.1:8080 --stream cam --token T --seconds 12
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
const token = args.token || '';
const seconds = Number(args.seconds || 12);
const timeout = Number(args.timeout || 20) * 1000;
const chromiumPath = args.chromium || process.env.CHROMIUM || '/usr/bin/chromium';

// cjsModule wraps CommonJS files as one ES module: each file becomes a
// function of (module, exports, require), and require resolves only the
// names listed for that file.
function cjsModule(files, main, exportName) {
  const nm = path.join(here, 'node_modules');
  let src = 'const defs = {}, cache = {};\n';
  for (const [id, { file, deps }] of Object.entries(files)) {
    src += `defs[${JSON.stringify(id)}] = [function (module, exports, require) {\n` +
      fs.readFileSync(path.join(nm, file), 'utf8') + `\n}, ${JSON.stringify(deps || {})}];\n`;
  }
  src += `function load(id) {
  if (cache[id]) return cache[id].exports;
  const [fn, deps] = defs[id];
  const module = cache[id] = { exports: {} };
  fn(module, module.exports, name => {
    if (!(name in deps)) throw new Error(id + ' requires ' + name + ', which is not served');
    return load(deps[name]);
  });
  return module.exports;
}
export const ${exportName} = load(${JSON.stringify(main)}).${exportName};\n`;
  return src;
}

const client = cjsModule({
  whip: { file: '@eyevinn/whip-web-client/dist/whip-client.js', deps: { events: 'events', 'sdp-transform': 'sdp' } },
  events: { file: 'events/events.js' },
  sdp: { file: 'sdp-transform/lib/index.js', deps: { './parser': 'parser', './writer': 'writer', './grammar': 'grammar' } },
  parser: { file: 'sdp-transform/lib/parser.js', deps: { './grammar': 'grammar' } },
  writer: { file: 'sdp-transform/lib/writer.js', deps: { './grammar': 'grammar' } },
  grammar: { file: 'sdp-transform/lib/grammar.js' },
}, 'whip', 'WHIPClient');

// The page. fetch is wrapped to record every request the client makes and
// its answer, as the browser saw it (a CORS failure is status 0).
const page = `<!doctype html><meta charset="utf-8"><title>Eyevinn WHIP client</title>
<script type="module">
import { WHIPClient } from '/whip-client.js';
const requests = window.requests = [];
const plainFetch = window.fetch.bind(window);
window.fetch = async (url, opts = {}) => {
  const entry = { method: opts.method || 'GET', url: String(url), status: 0, etag: (opts.headers || {}).ETag || null };
  requests.push(entry);
  const r = await plainFetch(url, opts);
  entry.status = r.status;
  if (r.status >= 400) {
    // What the gateway said, and what it was sent: a refusal is read
    // from the test log.
    entry.error = await r.clone().text();
    entry.body = typeof opts.body === 'string' ? opts.body : null;
  }
  return r;
};
let client, pc;
window.publish = async (url, token) => {
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
  client = new WHIPClient({ endpoint: url, opts: { authkey: token || undefined, iceServers: [] },
    peerConnectionFactory: c => (pc = new RTCPeerConnection(c)) });
  if (token) await client.setIceServersFromEndpoint();
  window.iceServers = pc.getConfiguration().iceServers;
  await client.ingest(media);
  window.resource = await client.getResourceUrl();
};
window.stop = () => client.destroy();
window.sample = async () => {
  let framesSent = 0;
  if (pc) (await pc.getStats()).forEach(s => { if (s.type === 'outbound-rtp' && s.kind === 'video') framesSent += s.framesSent || 0; });
  return { framesSent, ice: pc ? pc.iceConnectionState : null, connection: pc ? pc.connectionState : null };
};
window.ready = true;
</script>`;

const server = http.createServer((req, res) => {
  if (req.url === '/') {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(page);
  } else if (req.url === '/whip-client.js') {
    res.writeHead(200, { 'Content-Type': 'text/javascript' });
    res.end(client);
  } else {
    res.writeHead(404);
    res.end();
  }
});
await new Promise(r => server.listen(0, '127.0.0.1', r));

const out = { ok: false, samples: [], iceServers: null, resource: null, requests: [], error: null };
let browser;
try {
  browser = await launchChromium(chromiumPath, { camera: true });
  const pg = await browser.newPage();
  pg.on('pageerror', e => process.stderr.write(`eyevinn page error: ${e}\n`));
  pg.on('console', m => { if (m.type() === 'error') process.stderr.write(`eyevinn console: ${m.text()}\n`); });
  await pg.goto(`http://127.0.0.1:${server.address().port}/`);
  await pg.waitForFunction(() => window.ready, null, { timeout });
  await pg.evaluate(([u, tok]) => window.publish(u, tok), [`${base}/whip/${stream}`, token]);
  out.iceServers = await pg.evaluate(() => window.iceServers);
  out.resource = await pg.evaluate(() => window.resource);
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    out.samples.push({ t: (Date.now() - t0) / 1000, ...(await pg.evaluate(() => window.sample())) });
    await pg.waitForTimeout(1000);
  }
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
