// The installed desktop app (run by scripts/test-installed-package inside a private test
// session, after the .deb was installed): starts /usr/bin/grantkeeper-app on a fresh vault over
// WebDriver under Xvfb, waits for the first paint and the first run's welcome, prints the cold
// start (process start -> first paint, measured as scripts/bench-app does), takes a screenshot.
//   GRANTKEEPER_HOME=... GK_APP_BIN=/usr/bin/grantkeeper-app node tests/package/installed-app.mjs
import { readFileSync, readdirSync } from "node:fs";
import { AppSession, appBin, waitFor } from "../e2e/lib.mjs";

/** A /proc/<pid>/stat start time as Unix milliseconds. */
function processStartMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const startTicks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  const btime = Number(/btime (\d+)/.exec(readFileSync("/proc/stat", "utf8"))[1]);
  return btime * 1000 + (startTicks * 1000) / 100; // USER_HZ is 100 on Linux
}

/** The newest process running `appBin`. */
function appPid() {
  const mine = readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0")[0] === appBin;
    } catch {
      return false;
    }
  });
  if (!mine.length) throw new Error(`no process runs ${appBin}`);
  return Math.max(...mine);
}

const marks = async (app, name) =>
  app.exec("return (window.__gkPerf?.marks ?? []).filter((m) => m.name === arguments[0]).map((m) => m.ms);", [name]);

const app = await AppSession.start({ GRANTKEEPER_HOME: process.env.GRANTKEEPER_HOME });
try {
  const pid = appPid();
  const firstPaint = (await waitFor("the first paint", async () => (await marks(app, "first-paint"))[0], 60_000));
  const origin = await app.exec("return performance.timeOrigin;");
  console.log(`installed app: cold start, process start -> first paint: ${(origin + firstPaint - processStartMs(pid)).toFixed(0)} ms`);
  const title = await app.exec("return document.title;");
  if (title !== "Grantkeeper") throw new Error(`the window's title is ${JSON.stringify(title)}`);
  // A new vault: the first run's welcome, with the keychain the vault opened with.
  const where = await app.waitText("[data-welcome-keychain]", 30_000);
  if (!/will live in the Secret Service/.test(where)) throw new Error(`the welcome says: ${where}`);
  await app.screenshot("installed-app-welcome");
} finally {
  await app.stop();
}
