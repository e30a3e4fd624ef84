// Presence at scale, by hand (issue 24's goal, not run by CI; docs/pusher.md#performance).
// N WebSocket clients speaking the Pusher protocol directly (Node's built-in WebSocket, run
// with `node --experimental-websocket` on Node 20; pusher-js itself parses every event, which
// made the client the bottleneck long before the server) connect, then join one presence
// channel with at most W subscriptions in flight, each waiting for its own
// subscription_succeeded; then every member unsubscribes while one watcher counts the
// member_removed events. Prints joins/s and leaves/s, the server's CPU seconds for each
// (/proc/PID/stat), and its RSS with N idle connections, with N members and after they left
// (/proc/PID/status), so memory per member excludes the connection's own.
// Signatures come from the `pusher` server SDK. Every member gets every later member_added:
// the protocol's N²/2 events, most of the run's client CPU.
//   node --experimental-websocket presence_scale.mjs HOST PORT SERVER_PID N [W]
// The server needs an app id 1 / key1 / secret1 with max_presence_members >= N + 1.
import fs from "node:fs";
import PusherServer from "pusher";

const [host, port, pid, n, w] = [process.argv[2], Number(process.argv[3]), process.argv[4],
  Number(process.argv[5]), Number(process.argv[6] ?? 64)];
const server = new PusherServer({ appId: "1", key: "key1", secret: "secret1", host, port: String(port), useTLS: false });
const cpu = () => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, USER_HZ 100
};
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
const CHANNEL = "presence-big";

// One connection: resolves with {ws, socketId, on} once connection_established arrived.
const connect = () => new Promise((resolve, reject) => {
  const ws = new WebSocket(`ws://${host}:${port}/app/key1?protocol=7&client=scale&version=1`);
  const c = { ws, socketId: null, on: null };
  ws.onmessage = (e) => {
    const text = e.data;
    if (c.socketId === null) {
      const m = JSON.parse(text);
      if (m.event !== "pusher:connection_established") return reject(new Error(text));
      c.socketId = JSON.parse(m.data).socket_id;
      return resolve(c);
    }
    if (c.on) c.on(text);
  };
  ws.onerror = (e) => reject(new Error(`connect: ${e.message ?? e}`));
});
const join = (c, id) => new Promise((resolve, reject) => {
  c.on = (text) => {
    if (text.includes("pusher_internal:subscription_succeeded")) { c.on = null; resolve(); }
    else if (text.includes("pusher:error") || text.includes("subscription_error")) reject(new Error(text));
  };
  const a = server.authorizeChannel(c.socketId, CHANNEL, { user_id: id, user_info: { n: id } });
  c.ws.send(JSON.stringify({ event: "pusher:subscribe", data: { channel: CHANNEL, ...a } }));
});
// Runs f(i) for i in 0..count with at most `width` in flight.
const windowed = async (count, width, f) => {
  let next = 0;
  const lane = async () => { while (next < count) { const i = next++; await f(i); } };
  await Promise.all(Array.from({ length: Math.min(width, count) }, lane));
};

const base = rss();
const clients = new Array(n);
await windowed(n, 100, async (i) => { clients[i] = await connect(); });
const watcher = await connect();
await join(watcher, "watcher");
const idle = rss();
let t = performance.now();
let c0 = cpu();
await windowed(n, w, (i) => join(clients[i], `u${i}`));
const joinS = (performance.now() - t) / 1000;
const joinCpu = cpu() - c0;
const full = rss();
let removed = 0;
const allGone = new Promise((resolve) => {
  watcher.on = (text) => { if (text.includes("pusher_internal:member_removed") && ++removed === n) resolve(); };
});
t = performance.now();
c0 = cpu();
for (const c of clients) c.ws.send(JSON.stringify({ event: "pusher:unsubscribe", data: { channel: CHANNEL } }));
await allGone;
const leaveS = (performance.now() - t) / 1000;
const leaveCpu = cpu() - c0;
const after = rss();
console.log(JSON.stringify({
  members: n, in_flight: w, joins_per_s: Math.round(n / joinS), leaves_per_s: Math.round(n / leaveS),
  server_cpu_s_joins: +joinCpu.toFixed(2), server_cpu_s_leaves: +leaveCpu.toFixed(2),
  rss_kib_before: base, rss_kib_connected: idle, rss_kib_members: full, rss_kib_after_leaving: after,
  kib_per_idle_connection: +((idle - base) / (n + 1)).toFixed(2),
  kib_per_member: +((full - idle) / n).toFixed(2),
}));
for (const c of clients) c.ws.close();
watcher.ws.close();
process.exit(0);
