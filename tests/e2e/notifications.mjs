// The desktop's notification server for end-to-end tests: Debian's dunst on the test session's
// D-Bus, drawing its pop-ups on the Xvfb display, with `dunstctl` to read what it received.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { artifacts, sleep, waitFor } from "./lib.mjs";

const ctl = (...args) => execFileSync("dunstctl", args, { encoding: "utf8", timeout: 5000 });

/** Starts dunst (unless the session's bus has a notification server already: dunst is also
 * D-Bus activated by its service file) and notes what its history already holds, so only
 * notifications that came later are reported (Debian 12's dunst 1.9 has no `history-clear`). */
export async function startNotificationServer() {
  const child = spawn("dunst", [], { stdio: "ignore", detached: true });
  const all = () => (JSON.parse(ctl("history")).data[0] ?? [])
    .map((n) => ({ id: n.id.data, summary: n.summary.data, body: n.body.data, appname: n.appname.data }));
  const before = new Set(await waitFor("the notification server", () => all().map((n) => n.id), 10_000));
  return {
    /** Notifications on screen now. */
    displayed: () => Number(ctl("count", "displayed").trim()),
    /** Closes every pop-up (dunst keeps closed ones in its history). */
    closeAll: () => ctl("close-all"),
    /** Every notification closed since the start: { id, summary, body, appname }. */
    history: () => all().filter((n) => !before.has(n.id)),
    stop: async () => {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // Gone already (another server held the bus name).
      }
      await sleep(100);
    },
  };
}

/** A screenshot of the whole X display (pop-ups included), in the test artifacts. */
export function screenshotScreen(name) {
  mkdirSync(join(artifacts, "screenshots"), { recursive: true });
  const path = join(artifacts, "screenshots", `${name}.png`);
  execFileSync("import", ["-window", "root", path], { timeout: 15_000 });
  return path;
}
