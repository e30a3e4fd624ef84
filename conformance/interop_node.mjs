// Interop test: the npm `ws` client against a real ringcast process.
// Starts $RINGCAST_BIN (default target/release/ringcast) on an ephemeral port, reads the port from
// its listening line, runs each check as a real client. No sleeps: waits are for events, with
// timeouts. Ends with "N passed, M failed"; exit code 1 on any failure.
// Environment: RINGCAST_BIN, INTEROP_SERVER_ARGS, INTEROP_TIMEOUT (ms, default 10000).
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { BIN, startRingcast, within } from './common.mjs';

const T = Number(process.env.INTEROP_TIMEOUT || 10000);
const SERVER_ARGS = (process.env.INTEROP_SERVER_ARGS ?? '--max-message-bytes 4194304 --max-backpressure 16777216')
  .split(/\s+/).filter(Boolean);
let server;

const room = (name) => `node-${name}-${randomBytes(4).toString('hex')}`;
const check = (cond, msg) => { if (!cond) throw new Error(msg); };
const short = (v) => { const s = Buffer.isBuffer(v) ? `<${v.length} bytes>` : JSON.stringify(v); return s.length > 80 ? s.slice(0, 77) + '...' : s; };

/** A client that queues every event so tests can await "the next message". */
class Client {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data, isBinary) => this.push({ data: isBinary ? data : data.toString('utf8'), isBinary }));
    ws.on('error', (e) => { this.error = e; });
  }
  push(m) { const w = this.waiters.shift(); if (w) w(m); else this.queue.push(m); }
  next(what = 'a message') {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    return within(new Promise((resolve) => this.waiters.push(resolve)), T, what);
  }
  send(data, opts = {}) { return new Promise((res, rej) => this.ws.send(data, opts, (e) => (e ? rej(e) : res()))); }
  async close(code = 1000, reason = 'bye') { this.ws.close(code, reason); return within(this.closed, T, 'close'); }
  terminate() { if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate(); }
}

async function open(protocols, opts = {}) {
  const ws = new WebSocket(server.url, protocols, { handshakeTimeout: T, maxPayload: 0, perMessageDeflate: false, ...opts });
  const c = new Client(ws);
  const upgrade = new Promise((resolve) => ws.once('upgrade', resolve));
  await within(new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); }), T, 'open');
  c.response = await upgrade;
  return c;
}

async function withClients(specs, fn) {
  const clients = [];
  try {
    for (const p of specs) clients.push(await open(p));
    return await fn(...clients);
  } finally {
    clients.forEach((c) => c.terminate());
  }
}

async function expectFirst(c, want, isBinary = false) {
  const m = await c.next(`first message ${short(want)}`);
  check(m.isBinary === isBinary, `opcode: got ${m.isBinary ? 'binary' : 'text'}, want ${isBinary ? 'binary' : 'text'}`);
  const same = isBinary ? Buffer.compare(m.data, want) === 0 : m.data === want;
  check(same, `expected ${short(want)}, first message received was ${short(m.data)}`);
}

async function relay(payload, isBinary) {
  const r = room('relay');
  await withClients([[r], [r]], async (a, b) => {
    await a.send(payload, { binary: isBinary });
    await expectFirst(b, payload, isBinary);
    const marker = `marker-${randomBytes(4).toString('hex')}`;
    await b.send(marker);
    await expectFirst(a, marker);   // a's first message is b's marker: its own was not echoed
  });
}

const tests = {
  async handshake_subprotocol() {
    const r = room('hs');
    await withClients([[r]], async (a) => {
      check(a.ws.protocol === r, `server chose ${JSON.stringify(a.ws.protocol)}, want ${r}`);
      check(a.response.statusCode === 101, `status ${a.response.statusCode}`);
      check(a.response.headers['sec-websocket-protocol'] === r, 'Sec-WebSocket-Protocol not echoed');
    });
  },
  async handshake_offers_deflate_gets_none() {
    const a = await open([room('deflate')], { perMessageDeflate: true });
    try {
      check(a.response.headers['sec-websocket-extensions'] === undefined,
        `unexpected extension ${a.response.headers['sec-websocket-extensions']}`);
    } finally { a.terminate(); }
  },
  async lobby_without_subprotocol() {
    await withClients([[], []], async (a, b) => {
      check(a.ws.protocol === '', `no protocol offered but server chose ${JSON.stringify(a.ws.protocol)}`);
      const msg = `lobby-${randomBytes(4).toString('hex')}`;
      await a.send(msg);
      for (;;) { const m = await b.next('lobby message'); if (m.data === msg) break; }
    });
  },
  text: () => relay('hello, room', false),
  binary: () => relay(Buffer.from(Array.from({ length: 1024 }, (_, i) => i & 255)), true),
  unicode_text: () => relay('héllo wörld — 日本語 — 🎉🚀 — ∑∞ — ʕ•ᴥ•ʔ', false),
  binary_1mib: () => relay(randomBytes(1 << 20), true),
  async fragmented_text() {
    const r = room('frag');
    await withClients([[r], [r]], async (a, b) => {
      const whole = Buffer.from('frag-one frag-two 🎉 three four');
      // split inside the 4-byte emoji as well: fragments need not end on code points
      const cuts = [0, 9, 20, 23, whole.length];
      for (let i = 0; i + 1 < cuts.length; i++) {
        await a.send(whole.subarray(cuts[i], cuts[i + 1]), { binary: false, fin: i + 2 === cuts.length });
      }
      await expectFirst(b, whole.toString('utf8'));
    });
  },
  async fragmented_binary() {
    const r = room('fragb');
    await withClients([[r], [r]], async (a, b) => {
      const parts = [randomBytes(1000), randomBytes(70000), randomBytes(3)];
      for (let i = 0; i < parts.length; i++) await a.send(parts[i], { binary: true, fin: i === parts.length - 1 });
      await expectFirst(b, Buffer.concat(parts), true);
    });
  },
  async ping_during_fragmented_message() {
    const r = room('fragping');
    await withClients([[r], [r]], async (a, b) => {
      const pong = new Promise((resolve) => a.ws.once('pong', resolve));
      await a.send('first half, ', { fin: false });
      a.ws.ping(Buffer.from('mid-message'));
      const got = await within(pong, T, 'pong in the middle of a fragmented message');
      check(got.toString() === 'mid-message', `pong payload ${short(got.toString())}`);
      await a.send('second half', { fin: true });
      await expectFirst(b, 'first half, second half');
    });
  },
  async order() {
    const r = room('order');
    await withClients([[r], [r]], async (a, b) => {
      for (let i = 0; i < 200; i++) a.ws.send(`seq ${i}`);
      for (let i = 0; i < 200; i++) {
        const m = await b.next(`message ${i}`);
        check(m.data === `seq ${i}`, `message ${i} arrived as ${short(m.data)}`);
      }
    });
  },
  async ping_pong() {
    await withClients([[room('ping')]], async (a) => {
      for (const payload of [Buffer.from('ringcast-ping-\x00\xff', 'latin1'), Buffer.alloc(0), Buffer.from(Array.from({ length: 125 }, (_, i) => i))]) {
        const pong = new Promise((resolve) => a.ws.once('pong', resolve));
        a.ws.ping(payload);
        const got = await within(pong, T, 'pong');
        check(Buffer.compare(got, payload) === 0, `pong payload ${got.toString('hex')} for ping ${payload.toString('hex')}`);
      }
    });
  },
  async close_1000() {
    const a = await open([room('close')]);
    const { code } = await a.close(1000, 'bye from node');
    check(code === 1000, `server closed with ${code}, want 1000 echoed`);
  },
  async close_4000() {
    const a = await open([room('close')]);
    const { code } = await a.close(4000, 'application code');
    check(code === 4000, `server closed with ${code}, want 4000 echoed`);
  },
  async room_isolation() {
    const x = room('iso-x'); const y = room('iso-y');
    await withClients([[x], [x], [y], [y]], async (a, b, c, d) => {
      await a.send('secret for x');
      await expectFirst(b, 'secret for x');
      await a.send(Buffer.from('secret binary for x'), { binary: true });
      await expectFirst(b, Buffer.from('secret binary for x'), true);
      await d.send('marker for y');
      await expectFirst(c, 'marker for y');   // nothing sent in x reached y
    });
  },
  async sigterm_close_1001() {
    // last: SIGTERM → Close 1001 to every client, exit status 0
    const a = await open([room('bye')]);
    server.proc.kill('SIGTERM');
    const { code } = await within(a.closed, T, 'Close after SIGTERM');
    check(code === 1001, `close code ${code}, want 1001`);
    const ex = await within(server.exited, T, 'ringcast exit');
    check(ex.code === 0, `ringcast exited with ${JSON.stringify(ex)}, want status 0`);
  },
};

async function main() {
  let passed = 0; let failed = 0;
  try {
    server = await startRingcast(SERVER_ARGS, { logName: 'node-ringcast' });
  } catch (e) {
    console.log(`FAIL start: ${e.message} (binary ${BIN})`);
    console.log('0 passed, 1 failed');
    return 1;
  }
  try {
    for (const [name, fn] of Object.entries(tests)) {
      const t0 = performance.now();
      try {
        await within(fn(), 6 * T, name);
        passed++;
        console.log(`PASS ${name} (${(performance.now() - t0).toFixed(0)} ms)`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${name}: ${e.message}`);
      }
    }
  } finally {
    const ex = await server.stop();
    if (ex.code !== 0) console.log(`# ringcast exit ${JSON.stringify(ex)}`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
