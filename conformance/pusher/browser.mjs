// pusher-js's browser build in Debian's Chromium (driven by playwright-core, no downloaded
// browser) against a running ringcast with app 1 / key1 / secret1:
//   node browser.mjs HOST PORT
// Two pages load pusher-js (dist/web/pusher.min.js), get their channel signatures from the
// `pusher` server SDK in this process (page.exposeFunction), join one presence channel, see
// each other (subscription_succeeded, member_added), exchange a client event, and the first
// sees member_removed when the second page closes. Exits 0 when every step passed.
// Environment: CHROMIUM_PATH (default /usr/bin/chromium).
import path from "node:path";
import { fileURLToPath } from "node:url";
import { deadline, fail, launch } from "./chromium.mjs";
import PusherServer from "pusher";

const [host, port] = [process.argv[2], Number(process.argv[3])];
const here = path.dirname(fileURLToPath(import.meta.url));
const server = new PusherServer({ appId: "1", key: "key1", secret: "secret1", host, port: String(port), useTLS: false });

const browser = await launch();
try {
  async function page(user) {
    const p = await browser.newPage();
    await p.exposeFunction("authorize", (socketId, channel) =>
      server.authorizeChannel(socketId, channel, { user_id: user, user_info: { name: user } }));
    await p.addScriptTag({ path: path.join(here, "node_modules/pusher-js/dist/web/pusher.min.js") });
    await p.evaluate(([host, port]) => {
      window.events = [];
      window.pusher = new Pusher("key1", {
        wsHost: host, wsPort: port, forceTLS: false, enabledTransports: ["ws"], disableStats: true,
        cluster: "mt1",
        channelAuthorization: { customHandler: ({ socketId, channelName }, cb) =>
          window.authorize(socketId, channelName).then((a) => cb(null, a), (e) => cb(e, null)) },
      });
      const ch = window.pusher.subscribe("presence-browser");
      for (const e of ["pusher:subscription_succeeded", "pusher:member_added", "pusher:member_removed", "client-hello"]) {
        ch.bind(e, (d) => window.events.push([e, d]));
      }
    }, [host, port]);
    return p;
  }
  const waitFor = (p, name) => p.waitForFunction((n) => window.events.find(([e]) => e === n), name, { timeout: 15000 })
    .then((h) => h.jsonValue());
  const a = await page("ann");
  const [, first] = await waitFor(a, "pusher:subscription_succeeded");
  if (first.count !== 1) fail(`ann's members ${JSON.stringify(first)}`);
  const b = await page("bob");
  const [, second] = await waitFor(b, "pusher:subscription_succeeded");
  if (second.count !== 2) fail(`bob's members ${JSON.stringify(second)}`);
  const [, added] = await waitFor(a, "pusher:member_added");
  if (added.id !== "bob" || added.info.name !== "bob") fail(`member_added ${JSON.stringify(added)}`);
  console.log("ok - presence in Chromium: subscription_succeeded, member_added");
  await a.evaluate(() => window.pusher.channel("presence-browser").trigger("client-hello", { from: "ann" }));
  const [, hello] = await waitFor(b, "client-hello");
  if (hello.from !== "ann") fail(`client event ${JSON.stringify(hello)}`);
  console.log("ok - client event from one page to the other");
  await b.close();
  const [, removed] = await waitFor(a, "pusher:member_removed");
  if (removed.id !== "bob") fail(`member_removed ${JSON.stringify(removed)}`);
  console.log("ok - member_removed when a page closes");
  clearTimeout(deadline);
  console.log("all browser steps passed");
} catch (e) {
  fail(e.stack || String(e));
} finally {
  await browser.close();
}
process.exit(0);
