// pusher-js (Node), the `pusher` server SDK (its channel and user signatures) and laravel-echo
// against a running ringcast with app id 1, key "key1", secret "secret1":
//   node pusher_js.mjs HOST PORT
// Public, private, presence and private-encrypted channels, client events (delivered, not
// echoed), presence member_added/member_removed, Echo's here/joining/leaving/whisper, signin
// and the server-to-user channel, a reconnect that resubscribes, cache channels
// (pusher:cache_miss, the last event on subscribe), watchlist online/offline events. Exits 0 when every step
// passed; each step waits for an event, never for a time (one overall deadline).
import Pusher from "pusher-js";
import PusherServer from "pusher";
import Echo from "laravel-echo";

const [host, port] = [process.argv[2], Number(process.argv[3])];
const masterKey = Buffer.alloc(32, 7).toString("base64");
const server = new PusherServer({
  appId: "1", key: "key1", secret: "secret1", host, port: String(port), useTLS: false,
  encryptionMasterKeyBase64: masterKey,
});
const deadline = setTimeout(() => { console.error("FAIL: timed out"); process.exit(1); }, 20000);
const log = (m) => console.log(`ok - ${m}`);
const fail = (m) => { console.error(`FAIL: ${m}`); process.exit(1); };
const clients = [];

function client(userId, watchlist) {
  const p = new Pusher("key1", {
    wsHost: host, wsPort: port, forceTLS: false, enabledTransports: ["ws"],
    disableStats: true, cluster: "mt1",
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, cb) => {
        const presence = channelName.startsWith("presence-")
          ? { user_id: userId, user_info: { name: userId } } : undefined;
        cb(null, server.authorizeChannel(socketId, channelName, presence));
      },
    },
    userAuthentication: {
      customHandler: ({ socketId }, cb) => cb(null, server.authenticateUser(socketId, { id: userId, watchlist })),
    },
  });
  clients.push(p);
  return p;
}
const once = (target, event) => new Promise((resolve) => target.bind(event, function h(d) {
  target.unbind(event, h); resolve(d);
}));
const subscribed = (p, name) => {
  const ch = p.subscribe(name);
  return new Promise((resolve, reject) => {
    ch.bind("pusher:subscription_succeeded", (d) => resolve([ch, d]));
    ch.bind("pusher:subscription_error", (e) => reject(new Error(`${name}: ${JSON.stringify(e)}`)));
  });
};

try {
  const a = client("ann");
  const b = client("bob");
  await Promise.all([once(a.connection, "connected"), once(b.connection, "connected")]);
  log(`connected (${a.connection.socket_id}, ${b.connection.socket_id})`);

  await subscribed(a, "news");
  log("public channel");

  const [pa] = await subscribed(a, "private-chat");
  const [pb] = await subscribed(b, "private-chat");
  let echoed = 0;
  pa.bind("client-msg", () => { echoed += 1; });
  const got = once(pb, "client-msg");
  if (!pa.trigger("client-msg", { text: "hi" })) fail("trigger refused");
  const msg = await got;
  if (msg.text !== "hi") fail(`client event data ${JSON.stringify(msg)}`);
  const ack = once(pa, "client-ack");
  pb.trigger("client-ack", { ok: true });
  await ack;
  if (echoed !== 0) fail("a client event came back to its sender");
  log("private channel: client event delivered, not echoed");

  const [, members] = await subscribed(a, "presence-team");
  if (members.count !== 1 || members.me.id !== "ann") fail(`members ${JSON.stringify(members)}`);
  const added = once(a.channel("presence-team"), "pusher:member_added");
  const [, bMembers] = await subscribed(b, "presence-team");
  const member = await added;
  if (member.id !== "bob" || member.info.name !== "bob" || bMembers.count !== 2) {
    fail(`member_added ${JSON.stringify(member)} / ${bMembers.count}`);
  }
  const removed = once(a.channel("presence-team"), "pusher:member_removed");
  b.unsubscribe("presence-team");
  if ((await removed).id !== "bob") fail("member_removed");
  log("presence: member_added, member_removed, counts");

  await subscribed(a, "private-encrypted-secret");
  log("private-encrypted channel (shared_secret from the SDK)");

  a.signin();
  await a.user.signinDonePromise;
  await new Promise((resolve) => {
    const ch = a.user.serverToUserChannel;
    if (ch.subscribed) resolve(); else ch.bind("pusher:subscription_succeeded", resolve);
  });
  log("signin and the server-to-user channel");

  // Watchlists: wendy watches ann (signed in above) and zed (not yet).
  const w = client("wendy", ["ann", "zed"]);
  await once(w.connection, "connected");
  const firstOnline = once(w.user.watchlist, "online");
  const firstOffline = once(w.user.watchlist, "offline");
  w.signin();
  const [on, off] = await Promise.all([firstOnline, firstOffline]);
  if (JSON.stringify([on.user_ids, off.user_ids]) !== '[["ann"],["zed"]]') {
    fail(`watchlist at signin: ${JSON.stringify([on, off])}`);
  }
  log("watchlist: who is online at signin");
  const z = client("zed");
  await once(z.connection, "connected");
  const zedOnline = once(w.user.watchlist, "online");
  z.signin();
  if (JSON.stringify((await zedOnline).user_ids) !== '["zed"]') fail("watchlist online");
  const zedOffline = once(w.user.watchlist, "offline");
  z.disconnect();
  if (JSON.stringify((await zedOffline).user_ids) !== '["zed"]') fail("watchlist offline");
  log("watchlist: online and offline events");

  // Reconnect: the client resubscribes its channels by itself.
  const again = once(a.channel("private-chat"), "pusher:subscription_succeeded");
  const down = once(a.connection, "disconnected");
  a.disconnect();
  await down;
  a.connect();
  await again;
  const back = once(a.channel("private-chat"), "client-msg");
  pb.trigger("client-msg", { text: "after reconnect" });
  if ((await back).text !== "after reconnect") fail("after reconnect");
  log("reconnect resubscribes and receives");

  // Laravel Echo on pusher-js: here / joining / leaving / whisper.
  const echoA = new Echo({ broadcaster: "pusher", client: client("eve") });
  const echoB = new Echo({ broadcaster: "pusher", client: client("zed") });
  const here = new Promise((resolve) => echoA.join("room").here(resolve));
  const hereUsers = await here;
  if (hereUsers.length !== 1) fail(`here ${JSON.stringify(hereUsers)}`);
  const joining = new Promise((resolve) => echoA.join("room").joining(resolve));
  const leaving = new Promise((resolve) => echoA.join("room").leaving(resolve));
  const whisper = new Promise((resolve) => echoA.join("room").listenForWhisper("typing", resolve));
  const hereB = new Promise((resolve) => echoB.join("room").here(resolve));
  if ((await joining).name !== "zed") fail("joining");
  await hereB;
  echoB.join("room").whisper("typing", { name: "zed" });
  if ((await whisper).name !== "zed") fail("whisper");
  echoB.leave("room");
  if ((await leaving).name !== "zed") fail("leaving");
  log("laravel-echo: here, joining, whisper, leaving");

  // The HTTP API through the `pusher` server SDK.
  const viaApi = once(pb, "from-api");
  let selfGot = 0;
  pa.bind("from-api", () => { selfGot += 1; });
  await server.trigger("private-chat", "from-api", { n: 1 }, { socket_id: a.connection.socket_id });
  if ((await viaApi).n !== 1) fail("trigger");
  const second = once(pa, "from-api-2");
  await server.trigger(["private-chat", "news"], "from-api-2", "text");
  if ((await second) !== "text") fail("trigger to two channels");
  if (selfGot !== 0) fail("socket_id exclusion");
  log("HTTP API: trigger (socket_id excluded), two channels");
  const batch = once(pb, "b2");
  await server.triggerBatch([
    { channel: "private-chat", name: "b1", data: "1" },
    { channel: "private-chat", name: "b2", data: "2" },
  ]);
  await batch;
  log("HTTP API: batch events");

  // Cache channels: pusher:cache_miss while a channel has no event, then its last event (a
  // client event on private-cache-, an HTTP API event on cache-) for a later subscriber.
  const missed = (p, name) => {
    const ch = p.subscribe(name);
    return once(ch, "pusher:cache_miss").then(() => ch);
  };
  const [docA, docB] = await Promise.all([missed(a, "private-cache-doc"), missed(b, "private-cache-doc")]);
  const edited = once(docB, "client-edit");
  docA.trigger("client-edit", { rev: 1 });
  await edited;
  await server.trigger("cache-ticker", "price", { v: 42 });
  const late = client("cat");
  await once(late.connection, "connected");
  const edit = once(late.subscribe("private-cache-doc"), "client-edit");
  const price = once(late.subscribe("cache-ticker"), "price");
  if ((await edit).rev !== 1) fail("cached client event");
  if ((await price).v !== 42) fail("cached HTTP API event");
  log("cache channels: pusher:cache_miss, then the last event on subscribe");
  const json = async (r) => { if (r.status !== 200) fail(`status ${r.status}`); return r.json(); };
  const channels = await json(await server.get({ path: "/channels" }));
  for (const c of ["news", "private-chat"]) {
    if (!(c in channels.channels)) fail(`channels ${JSON.stringify(channels)}`);
  }
  const presence = await json(await server.get({
    path: "/channels", params: { filter_by_prefix: "presence-", info: "user_count" },
  }));
  if (presence.channels["presence-room"]?.user_count !== 1) fail(`presence ${JSON.stringify(presence)}`);
  const one = await json(await server.get({
    path: "/channels/private-chat", params: { info: "subscription_count" },
  }));
  if (!one.occupied || one.subscription_count !== 2) fail(`channel ${JSON.stringify(one)}`);
  const users = await json(await server.get({ path: "/channels/presence-room/users" }));
  if (users.users.length !== 1 || users.users[0].id !== "eve") fail(`users ${JSON.stringify(users)}`);
  const withInfo = await json(await server.trigger("presence-room", "x", {}, { info: "user_count,subscription_count" }));
  if (withInfo.channels["presence-room"].user_count !== 1) fail(`info ${JSON.stringify(withInfo)}`);
  log("HTTP API: channels, channel, users, info");
  const wrong = new PusherServer({ appId: "1", key: "key1", secret: "wrong", host, port: String(port), useTLS: false });
  try { await wrong.trigger("news", "x", {}); fail("a wrong secret was accepted"); } catch (e) {
    if (e.status !== 401) fail(`wrong secret: ${e.status}`);
  }
  log("HTTP API: a bad signature gets 401");
  const gone = once(a.connection, "disconnected");
  const down2 = new Promise((resolve) => a.connection.bind("state_change", (s) => {
    if (s.current !== "connected") resolve(s);
  }));
  await server.terminateUserConnections("ann");
  await Promise.race([gone, down2]);
  log("HTTP API: terminate_connections");

  for (const c of clients) c.disconnect();
  clearTimeout(deadline);
  console.log("all pusher-js steps passed");
  process.exit(0);
} catch (e) {
  fail(e.stack || String(e));
}
