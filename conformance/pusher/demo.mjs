// ringcast's Pusher demo page (GET /pusher-demo, docs/pusher.md#demo-page) in Debian's
// Chromium (playwright-core, no downloaded browser), against a ringcast started with app
// 1 / key1 / secret1 and --pusher-demo-auth:
//   node demo.mjs HOST PORT
// Two pages open the demo as ann and bob: each sees both in the member list, a message typed
// by ann shows in bob's log, and ann's list drops bob when his page closes. The page loads
// pusher-js from the server and gets its presence signatures from the demo signer, so
// nothing comes from this process. Exits 0 when every step passed.
// Environment: CHROMIUM_PATH (default /usr/bin/chromium).
import { deadline, fail, launch } from "./chromium.mjs";

const [host, port] = [process.argv[2], Number(process.argv[3])];

const browser = await launch();
try {
  async function open(user) {
    const p = await browser.newPage();
    p.on("pageerror", (e) => fail(`${user}'s page: ${e.message}`));
    await p.goto(`http://${host}:${port}/pusher-demo?user=${user}`);
    return p;
  }
  // The member list's ids once it is exactly `want`.
  const members = (p, want) => p.waitForFunction((w) => {
    const ids = [...document.querySelectorAll("#members li")].map((li) => li.dataset.id).sort();
    return JSON.stringify(ids) === JSON.stringify(w) && document.getElementById("count").textContent === String(w.length);
  }, want, { timeout: 15000 });
  const a = await open("ann");
  await members(a, ["ann"]);
  const b = await open("bob");
  await members(b, ["ann", "bob"]);
  await members(a, ["ann", "bob"]);
  console.log("ok - both pages list ann and bob");
  await a.waitForSelector("#text:not([disabled])");
  await a.fill("#text", "hello from ann");
  await a.press("#text", "Enter");
  await b.waitForFunction(() => [...document.querySelectorAll("#log p")]
    .some((p) => p.textContent === "ann: hello from ann"), null, { timeout: 15000 });
  await a.waitForFunction(() => [...document.querySelectorAll("#log p")]
    .filter((p) => p.textContent === "ann: hello from ann").length === 1, null, { timeout: 15000 });
  console.log("ok - ann's message in bob's log (and once in her own)");
  await b.close();
  await members(a, ["ann"]);
  console.log("ok - bob left ann's member list when his page closed");
  clearTimeout(deadline);
  console.log("all demo steps passed");
} catch (e) {
  fail(e.stack || String(e));
} finally {
  await browser.close();
}
process.exit(0);
