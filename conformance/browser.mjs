// Browser test: Debian's Chromium (driven by playwright-core, no downloaded browser) uses the
// demo chat page that ringcast serves at GET /, which speaks the JSON pub/sub mode (docs/pubsub.md).
// Two pages join one topic and chat; the member list follows joins and leaves; a dropped
// connection resumes with since:{offset,epoch} and misses nothing; a reload shows the history
// (since:{last:50}). Screenshot: target/browser/demo.png.
// All of it runs twice: over http:// and ws://, then over https:// and wss:// against a server
// with --tls-cert/--tls-key (a self-signed certificate made with the openssl CLI at start; the
// browser context ignores certificate errors, as for a test CA) (docs/running.md#tls).
//
// What the page must provide (element ids): #room (topic), #name, #join (opens
// new WebSocket(`ws://${location.host}/`, ["pubsub"]) and subscribes with presence and history),
// #msg + #send (publishes #msg's text), #log (every received message's text is appended inside
// it), #members (one <li> per member) and #count; window.ringcastDemo.{drop(), resume(),
// recovered} for the recovery step. A page opened with ?room=T joins T by itself.
//
// Environment: RINGCAST_BIN, CHROMIUM_PATH (default /usr/bin/chromium), BROWSER_TIMEOUT (ms, 15000).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';
import { REPO, makeTestCertificate, startRingcast, within } from './common.mjs';

const T = Number(process.env.BROWSER_TIMEOUT || 15000);
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const OUT = path.join(REPO, 'target', 'browser');
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let passed = 0; let failed = 0;
async function step(name, fn) {
  const t0 = performance.now();
  try {
    const r = await within(fn(), 2 * T, name);
    passed++;
    console.log(`PASS ${name} (${(performance.now() - t0).toFixed(0)} ms)`);
    return r;
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message.split('\n')[0]}`);
    throw e;
  }
}

/** Resolves with the handshake response Chromium's network stack saw for the page's WebSocket. */
async function watchHandshake(context, page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  return new Promise((resolve) => cdp.on('Network.webSocketHandshakeResponseReceived', (e) => resolve(e.response)));
}

function headerOf(headers, name) {
  const k = Object.keys(headers).find((h) => h.toLowerCase() === name);
  return k === undefined ? undefined : headers[k];
}

/** The whole walk-through, over http/ws or (`tls`) https/wss; screenshots get `suffix`. */
async function walk(tls) {
  const suffix = tls ? '-tls' : '';
  let server; let context; let pages = [];
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'ringcast-chromium-'));
  try {
    const args = ['--history-size', '100', ...(tls ? makeTestCertificate(userDataDir).args : [])];
    server = await step(`start ringcast (history on${tls ? ', TLS' : ''})`, () => startRingcast(args, { logName: `browser-ringcast${suffix}` }));
    const httpUrl = server.url.replace(/^ws:/, 'http:').replace(/^wss:/, 'https:');
    context = await step('launch chromium', () => chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 900, height: 600 },
      ignoreHTTPSErrors: tls,
    }));
    const topic = `browser-${randomBytes(3).toString('hex')}`;
    pages = [context.pages()[0] ?? await context.newPage(), await context.newPage()];
    pages.forEach((p, i) => p.on('console', (m) => console.log(`# page${i + 1} console.${m.type()}: ${m.text()}`)));
    pages.forEach((p, i) => p.on('pageerror', (e) => console.log(`# page${i + 1} error: ${e.message}`)));
    const wait = (p, fn, arg) => p.waitForFunction(fn, arg, { timeout: T, polling: 50 });
    const logHas = (p, text) => wait(p, (t) => document.querySelector('#log')?.textContent.includes(t), text);
    const countIs = (p, n) => wait(p, (k) => document.querySelector('#count')?.textContent === String(k)
      && document.querySelectorAll('#members li').length === k, n);

    await step(`GET / (${httpUrl}) serves the demo page with #room #name #join #msg #send #log #members #count`, async () => {
      for (const p of pages) {
        const resp = await p.goto(httpUrl, { timeout: T });
        if (resp.status() !== 200) throw new Error(`GET / answered ${resp.status()}`);
        if (tls && !(await p.evaluate(() => window.isSecureContext && location.protocol === 'https:'))) {
          throw new Error('not a secure https:// page');
        }
        for (const id of ['#room', '#name', '#join', '#msg', '#send', '#log', '#members', '#count']) {
          await p.locator(id).waitFor({ state: 'attached', timeout: T });
        }
      }
    });

    await step(`both pages join topic ${topic} in pub/sub mode; the member list follows`, async () => {
      for (const [i, p] of pages.entries()) {
        await p.bringToFront();   // background tabs throttle rAF, which slows playwright's actions
        const handshake = watchHandshake(context, p);
        await p.fill('#room', topic);
        await p.fill('#name', i === 0 ? 'alice' : 'bob');
        await p.click('#join');
        const resp = await within(handshake, T, 'WebSocket handshake response');
        if (resp.status !== 101) throw new Error(`handshake status ${resp.status}`);
        // On an https:// page Chromium blocks ws:// (mixed content): a 101 there came over wss://.
        const proto = headerOf(resp.headers, 'sec-websocket-protocol');
        if (proto !== 'pubsub') throw new Error(`Sec-WebSocket-Protocol ${JSON.stringify(proto)}, want pubsub`);
        // Chromium offers permessage-deflate by default; ringcast accepts it (docs/compression.md).
        const ext = headerOf(resp.headers, 'sec-websocket-extensions') ?? '';
        if (!ext.includes('permessage-deflate')) throw new Error(`Sec-WebSocket-Extensions ${JSON.stringify(ext)}, want permessage-deflate`);
        await countIs(p, i + 1);   // the snapshot counts this page
      }
      await countIs(pages[0], 2);  // page 1 saw page 2 join
    });

    const first = `hello from page one ${randomBytes(3).toString('hex')} 🎉`;
    const send = async (from, to, text) => {
      await from.bringToFront();
      await from.fill('#msg', text);
      await from.click('#send');
      await logHas(to, text);
      await logHas(from, text);   // publishers that subscribe receive their own message
    };
    await step('message from page 1 appears in page 2 #log', () => send(pages[0], pages[1], first));
    await step('reply from page 2 appears in page 1 #log', () => send(pages[1], pages[0], `reply from page two ${randomBytes(3).toString('hex')}`));

    await step('a long message (sent and delivered compressed) appears in page 2 #log', () => send(pages[0], pages[1], `long ${'compressed chat text '.repeat(40)}${randomBytes(3).toString('hex')}`));

    await step('a dropped page resumes with since:{offset,epoch} and misses nothing', async () => {
      await pages[0].evaluate(() => window.ringcastDemo.drop());
      await countIs(pages[1], 1);   // page 2 saw page 1 leave
      const missed = `sent while page one was away ${randomBytes(3).toString('hex')}`;
      await pages[1].bringToFront();
      await pages[1].fill('#msg', missed);
      await pages[1].click('#send');
      await logHas(pages[1], missed);
      await pages[0].evaluate(() => window.ringcastDemo.resume());
      await logHas(pages[0], missed);
      const recovered = await pages[0].evaluate(() => window.ringcastDemo.recovered);
      if (recovered !== true) throw new Error(`recovered ${JSON.stringify(recovered)}, want true`);
      await countIs(pages[1], 2);
      const seen = await pages[0].evaluate((t) => [...document.querySelectorAll('#log div')]
        .filter((d) => d.textContent.includes(t)).length, missed);
      if (seen !== 1) throw new Error(`the missed message appears ${seen} times, want once`);
    });

    await step('a reload shows the history (since:{last:50}) and the member list', async () => {
      await pages[1].bringToFront();
      await pages[1].reload({ timeout: T });   // the URL carries ?room=<topic>: it joins by itself
      await logHas(pages[1], first);
      await countIs(pages[1], 2);
    });
    await step(`screenshot target/browser/demo${suffix}.png`, async () => {
      await pages[1].screenshot({ path: path.join(OUT, `demo${suffix}.png`), fullPage: true });
      await pages[0].screenshot({ path: path.join(OUT, `demo-sender${suffix}.png`), fullPage: true });
    });
  } catch (e) {
    for (const [i, p] of pages.entries()) {
      await p.screenshot({ path: path.join(OUT, `failure-page${i + 1}${suffix}.png`) }).catch(() => {});
    }
    if (!failed) { failed++; console.log(`FAIL ${e.message}`); }
  } finally {
    if (context) await context.close().catch(() => {});
    if (server) await server.stop();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  await walk(false);
  await walk(true);
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
