// Presence at scale, by hand (issue 24's goal, not run by CI): N pusher-js clients join one
// presence channel one after the other, then leave; prints joins/s and leaves/s (each join
// waits for its own subscription_succeeded; each leave for the last member_removed seen by a
// watcher; all clients live in this one Node process, which handles every member_added of
// every client, so joins/s measures the client more than the server), the server's CPU
// seconds for the joins and for the leaves (/proc/PID/stat), and its RSS before, with all
// members, and after (/proc/PID/status).
//   node presence_scale.mjs HOST PORT SERVER_PID N
// The server needs an app id 1 / key1 / secret1 with max_presence_members >= N.
import fs from "node:fs";
import Pusher from "pusher-js";
import PusherServer from "pusher";

const [host, port, pid, n] = [process.argv[2], Number(process.argv[3]), process.argv[4], Number(process.argv[5])];
const server = new PusherServer({ appId: "1", key: "key1", secret: "secret1", host, port: String(port), useTLS: false });
const cpu = () => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, USER_HZ 100
};
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
const client = (id) => new Pusher("key1", {
  wsHost: host, wsPort: port, forceTLS: false, enabledTransports: ["ws"], disableStats: true, cluster: "mt1",
  channelAuthorization: { customHandler: ({ socketId, channelName }, cb) =>
    cb(null, server.authorizeChannel(socketId, channelName, { user_id: id, user_info: { n: id } })) },
});
const joined = (p) => new Promise((resolve, reject) => {
  const ch = p.subscribe("presence-big");
  ch.bind("pusher:subscription_succeeded", resolve);
  ch.bind("pusher:subscription_error", reject);
});
const before = rss();
const watcher = client("watcher");
await joined(watcher);
const clients = [];
let t = performance.now();
let c0 = cpu();
for (let i = 0; i < n; i++) {
  const p = client(`u${i}`);
  clients.push(p);
  await joined(p);
}
const joinS = (performance.now() - t) / 1000;
const joinCpu = cpu() - c0;
const full = rss();
let removed = 0;
const allGone = new Promise((resolve) => watcher.channel("presence-big").bind("pusher:member_removed", () => {
  removed += 1; if (removed === n) resolve();
}));
t = performance.now();
c0 = cpu();
for (const p of clients) p.disconnect();
await allGone;
const leaveS = (performance.now() - t) / 1000;
const leaveCpu = cpu() - c0;
const after = rss();
console.log(JSON.stringify({
  members: n, joins_per_s: Math.round(n / joinS), leaves_per_s: Math.round(n / leaveS),
  server_cpu_s_joins: joinCpu, server_cpu_s_leaves: leaveCpu,
  rss_kib_before: before, rss_kib_full: full, rss_kib_after: after,
  kib_per_member_incl_connection: +((full - before) / n).toFixed(2),
}));
watcher.disconnect();
process.exit(0);
