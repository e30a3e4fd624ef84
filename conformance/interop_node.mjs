// Interop test: the npm `ws` client against a real ringcast process.
// Starts $RINGCAST_BIN (default target/release/ringcast) on an ephemeral port, reads the port from
// its listening line, runs each check as a real client. No sleeps: waits are for events, with
// timeouts. Ends with "N passed, M failed"; exit code 1 on any failure.
// The room and pub/sub phases run twice: over ws://, then over wss:// against a server with
// --tls-cert/--tls-key (a certificate made with the openssl CLI at start, verified by the client
// through `ca`) and a --plain-listen port beside it, where a wss:// and a ws:// client share a
// room (docs/running.md#tls).
// Environment: RINGCAST_BIN, INTEROP_SERVER_ARGS, INTEROP_TIMEOUT (ms, default 10000).
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { BIN, makeTestCertificate, startRingcast, within } from './common.mjs';

const T = Number(process.env.INTEROP_TIMEOUT || 10000);
const SERVER_ARGS = (process.env.INTEROP_SERVER_ARGS ?? '--max-message-bytes 4194304 --max-backpressure 16777216')
  .split(/\s+/).filter(Boolean);
let server;
// The client's TLS options in the wss:// phases: trust the certificate made by makeCertificate.
let tlsOpts = {};

/** A fresh self-signed certificate; returns the client's `ca` and the server's TLS flags. */
function makeCertificate() {
  const { cert, args } = makeTestCertificate(mkdtempSync(path.join(tmpdir(), 'ringcast-interop-tls-')));
  return { ca: readFileSync(cert), args: [...args, '--plain-listen', '127.0.0.1:0'] };
}

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
  const { url = server.url, ...rest } = opts;
  const ws = new WebSocket(url, protocols, { handshakeTimeout: T, maxPayload: 0, perMessageDeflate: false, ...tlsOpts, ...rest });
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
  async deflate_negotiated_and_relayed() {
    // permessage-deflate (docs/compression.md): ws offers it with perMessageDeflate: true; a long
    // message (compressed both ways: ws compresses from 1 KiB) and a short one relay intact,
    // to a client that negotiated it and to one that did not.
    const r = room('deflate');
    const a = await open([r], { perMessageDeflate: true });
    const b = await open([r], { perMessageDeflate: true });
    const plain = await open([r]);
    try {
      for (const c of [a, b]) {
        const answer = c.response.headers['sec-websocket-extensions'] ?? '';
        check(answer.includes('permessage-deflate') && answer.includes('client_no_context_takeover'),
          `answer ${JSON.stringify(answer)}`);
        check(c.ws.extensions.includes('permessage-deflate'), `extensions ${JSON.stringify(c.ws.extensions)}`);
      }
      check(plain.response.headers['sec-websocket-extensions'] === undefined, 'no offer, yet an extension');
      const long = JSON.stringify({ user: 'bob', text: 'the quick brown fox '.repeat(300) });
      for (const [payload, isBinary] of [[long, false], ['short', false], [Buffer.from(long), true]]) {
        await a.send(payload, { binary: isBinary });
        await expectFirst(b, payload, isBinary);
        await expectFirst(plain, payload, isBinary);
      }
    } finally { [a, b, plain].forEach((c) => c.terminate()); }
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

// ---- pub/sub mode (docs/pubsub.md) and token auth (docs/tokens.md), against a second server ----
// Started with --auth-secret and history on (INTEROP_PUBSUB_ARGS adds flags); tokens are minted
// here with node:crypto.
const AUTH_SECRET = `interop-${randomBytes(8).toString('hex')}`;
const PUBSUB_ARGS = ['--auth-secret', AUTH_SECRET, '--history-size', '100',
  ...(process.env.INTEROP_PUBSUB_ARGS ?? '').split(/\s+/).filter(Boolean)];
let psServer;

/** An HS256 JWT; `secret` and `alg` overridable to forge bad ones. */
function mint({ sub, rooms, read, expIn = 300, secret = AUTH_SECRET, alg = 'HS256' } = {}) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const claims = { exp: Math.floor(Date.now() / 1000) + expIn };
  if (sub !== undefined) claims.sub = sub;
  if (rooms !== undefined) claims.rooms = rooms;
  if (read !== undefined) claims.read = read;
  const signed = `${b64({ alg, typ: 'JWT' })}.${b64(claims)}`;
  return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`;
}

/** A client of the pub/sub server: token in the query, or in Authorization: Bearer. */
async function authed(token, protocol = 'pubsub', { header = false } = {}) {
  const url = header || token === undefined ? psServer.url : `${psServer.url}?token=${token}`;
  const headers = header ? { Authorization: `Bearer ${token}` } : {};
  const ws = new WebSocket(url, [protocol], { handshakeTimeout: T, perMessageDeflate: false, headers, ...tlsOpts });
  const c = new Client(ws);
  await within(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode })));
  }), T, 'open');
  return c;
}

async function refusedWith(status, token, protocol = 'pubsub', opts = {}) {
  let c;
  try {
    c = await authed(token, protocol, opts);
  } catch (e) {
    check(e.status === status, `refused with ${e.status ?? e.message}, want ${status}`);
    return;
  }
  c.terminate();
  throw new Error(`handshake accepted, want ${status}`);
}

const topic = (name) => `node-${name}-${randomBytes(4).toString('hex')}`;
const sendJson = (c, obj) => c.send(JSON.stringify(obj));

/** The next message is a JSON object with this op and these fields; returns { m, raw }. */
async function expectOp(c, op, fields = {}) {
  const { data, isBinary } = await c.next(`op ${op}`);
  check(!isBinary, `expected text, got binary ${short(data)}`);
  const m = JSON.parse(data);
  check(m.op === op, `expected op ${op}, got ${short(data)}`);
  for (const [k, v] of Object.entries(fields)) {
    check(JSON.stringify(m[k]) === JSON.stringify(v), `${op}: ${k}=${JSON.stringify(m[k])}, want ${JSON.stringify(v)} in ${short(data)}`);
  }
  return { m, raw: data };
}

async function using(clients, fn) {
  try { return await fn(...clients); } finally { clients.forEach((c) => c.terminate()); }
}

const pubsubTests = {
  async auth_token_accepted() {
    await using([await authed(mint({ sub: 'ann' })), await authed(mint({ sub: 'ann' }), 'pubsub', { header: true })], async (q, h) => {
      check(q.ws.protocol === 'pubsub' && h.ws.protocol === 'pubsub', 'pubsub not echoed');
    });
    const r = room('authed');
    await using([await authed(mint(), r), await authed(mint(), r, { header: true })], async (a, b) => {
      await a.send('room mode with a token');
      await expectFirst(b, 'room mode with a token');
    });
  },
  async auth_refused_401() {
    await refusedWith(401, undefined);
    await refusedWith(401, mint({ secret: 'not-the-secret' }));
    await refusedWith(401, mint({ expIn: -60 }), 'pubsub', { header: true });
    await refusedWith(401, mint({ alg: 'none' }));
    await refusedWith(401, 'garbage', 'pubsub', { header: true });
  },
  async auth_room_claim_403() {
    const tok = mint({ rooms: ['node-allowed-*'] });
    (await authed(tok, `node-allowed-${randomBytes(2).toString('hex')}`)).terminate();
    await refusedWith(403, tok, 'node-other');
    (await authed(tok)).terminate();   // the pubsub token itself is always allowed
  },
  async pubsub_subscribe_publish() {
    const t = topic('pub');
    const data = '{"n" : [1, 2.50],  "s":"\\u00e9 é"}';   // passed through byte for byte
    await using([await authed(mint()), await authed(mint())], async (a, b) => {
      await sendJson(a, { op: 'subscribe', topic: t, id: 1 });
      await expectOp(a, 'subscribed', { topic: t, id: 1 });
      await b.send(`{"op":"publish","topic":${JSON.stringify(t)},"data":${data},"id":"p1"}`);
      const { m } = await expectOp(b, 'published', { topic: t, id: 'p1' });
      check(Number.isInteger(m.offset), `no offset with history on: ${JSON.stringify(m)}`);
      const { raw } = await expectOp(a, 'message', { topic: t, offset: m.offset });
      check(raw.includes(data), `data re-printed: ${short(raw)}`);
      await sendJson(a, { op: 'nonsense', id: 7 });
      await expectOp(a, 'error', { code: 'unknown_op', id: 7 });
      await sendJson(a, { op: 'unsubscribe', topic: t, id: 2 });
      await expectOp(a, 'unsubscribed', { topic: t, id: 2 });
    });
  },
  async pubsub_presence() {
    const t = topic('presence');
    await using([await authed(mint({ sub: 'alice' }))], async (a) => {
      await sendJson(a, { op: 'subscribe', topic: t, id: 1, presence: true });
      await expectOp(a, 'subscribed', { topic: t, id: 1 });
      const { m: snap, raw } = await expectOp(a, 'presence', { topic: t, count: 1 });
      check(JSON.stringify(snap.clients.map((c) => c.user)) === '["alice"]', `snapshot ${short(raw)}`);
      const b = await authed(mint({ sub: 'bob' }));
      await sendJson(b, { op: 'subscribe', topic: t });
      const { m: joined } = await expectOp(a, 'join', { topic: t, user: 'bob' });
      await b.close();
      const { m: left } = await expectOp(a, 'leave', { topic: t, user: 'bob' });
      check(joined.client === left.client, 'join and leave name different clients');
    });
  },
  async pubsub_recovery() {
    const t = topic('recover');
    await using([await authed(mint())], async (pub) => {
      const publish = async (i) => {
        await sendJson(pub, { op: 'publish', topic: t, data: { i }, id: i });
        return (await expectOp(pub, 'published', { id: i })).m.offset;
      };
      const a = await authed(mint());
      await sendJson(a, { op: 'subscribe', topic: t, id: 1 });
      const { m: sub } = await expectOp(a, 'subscribed', { id: 1 });
      const epoch = sub.epoch; let last = sub.offset;
      for (const i of [0, 1, 2]) {
        await publish(i);
        const { m } = await expectOp(a, 'message', { topic: t, offset: last + 1, data: { i } });
        last = m.offset;
      }
      await a.close();
      const missed = [await publish(3), await publish(4)];
      check(missed[0] === last + 1 && missed[1] === last + 2, `offsets ${missed} after ${last}`);
      await using([await authed(mint())], async (a2) => {
        await sendJson(a2, { op: 'subscribe', topic: t, id: 2, since: { offset: last, epoch } });
        await expectOp(a2, 'subscribed', { id: 2, recovered: true });
        await expectOp(a2, 'message', { offset: missed[0], data: { i: 3 } });
        await expectOp(a2, 'message', { offset: missed[1], data: { i: 4 } });
        const live = await publish(5);
        await expectOp(a2, 'message', { offset: live, data: { i: 5 } });   // no duplicate, no gap
      });
      await using([await authed(mint())], async (a3) => {
        await sendJson(a3, { op: 'subscribe', topic: t, id: 3, since: { last: 2 } });
        await expectOp(a3, 'subscribed');
        await expectOp(a3, 'message', { data: { i: 4 } });
        await expectOp(a3, 'message', { data: { i: 5 } });
      });
    });
  },
  async pubsub_forbidden() {
    await using([await authed(mint({ rooms: ['node-ok-*'], read: ['node-ro-*'] }))], async (a) => {
      await sendJson(a, { op: 'subscribe', topic: topic('nope'), id: 1 });
      await expectOp(a, 'error', { code: 'forbidden', id: 1 });
      const ro = topic('ro');
      await sendJson(a, { op: 'subscribe', topic: ro, id: 2 });
      await expectOp(a, 'subscribed', { id: 2 });
      await sendJson(a, { op: 'publish', topic: ro, data: 1, id: 3 });
      await expectOp(a, 'error', { code: 'forbidden', id: 3 });
      await sendJson(a, { op: 'publish', topic: topic('ok'), data: 1, id: 4 });
      await expectOp(a, 'published', { id: 4 });   // still usable after the errors
    });
  },
};

/** In the rooms-wss phase: a wss:// client and a ws:// client of the plain listener share a room. */
async function wss_and_ws_share_a_room() {
  check(server.url.startsWith('wss://') && server.plainUrl, `not a TLS server: ${server.url}`);
  const r = room('mixed');
  const secureClient = await open([r]);
  const plainClient = await open([r], { url: server.plainUrl });
  try {
    await secureClient.send('over tls');
    await expectFirst(plainClient, 'over tls');
    await plainClient.send('over tcp');
    await expectFirst(secureClient, 'over tcp');
  } finally {
    secureClient.terminate();
    plainClient.terminate();
  }
}

/** Runs `suite` against a fresh server with `args`; returns [passed, failed]. */
async function runPhase(args, logName, suite, setServer) {
  let passed = 0; let failed = 0;
  let srv;
  try {
    srv = await startRingcast(args, { logName });
  } catch (e) {
    console.log(`FAIL start ${logName}: ${e.message} (binary ${BIN})`);
    return [0, 1];
  }
  setServer(srv);
  try {
    for (const [name, fn] of Object.entries(suite)) {
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
    const ex = await srv.stop();
    if (ex.code !== 0) console.log(`# ringcast exit ${JSON.stringify(ex)}`);
  }
  return [passed, failed];
}

async function main() {
  const only = process.env.INTEROP_ONLY;   // "rooms", "pubsub", "rooms-wss" or "pubsub-wss"
  let passed = 0; let failed = 0;
  const tls = makeCertificate();
  const secure = (s) => { tlsOpts = { ca: tls.ca }; return s; };
  const phases = [
    ['rooms', SERVER_ARGS, 'node-ringcast', tests, (s) => { server = s; }],
    ['pubsub', PUBSUB_ARGS, 'node-pubsub-ringcast', pubsubTests, (s) => { psServer = s; server = s; }],
    ['rooms-wss', [...SERVER_ARGS, ...tls.args], 'node-wss-ringcast', { wss_and_ws_share_a_room, ...tests },
      (s) => { server = secure(s); }],
    ['pubsub-wss', [...PUBSUB_ARGS, ...tls.args], 'node-pubsub-wss-ringcast', pubsubTests,
      (s) => { psServer = secure(s); server = s; }],
  ];
  for (const [phase, args, logName, suite, set] of phases) {
    if (only && only !== phase) continue;
    const [p, f] = await runPhase(args, logName, suite, set);
    passed += p; failed += f;
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
