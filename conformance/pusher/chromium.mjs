// Shared by browser.mjs and demo.mjs: Debian's Chromium through playwright-core (no downloaded
// browser), a FAIL line and exit 1 on failure, and a 30 s deadline for the whole script.
// Environment: CHROMIUM_PATH (default /usr/bin/chromium).
import { chromium } from "playwright-core";

/** Prints FAIL: `m` and exits 1. */
export const fail = (m) => { console.error(`FAIL: ${m}`); process.exit(1); };

/** Fails the script if it is still running after 30 s; clearTimeout() it when done. */
export const deadline = setTimeout(() => fail("timed out"), 30000);

/** Headless Chromium with nothing fetched in the background. */
export const launch = () => chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
