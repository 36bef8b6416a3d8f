// The window when the keychain is missing, and when Grantkeeper is started twice, with the real
// binary: the keyring-stopped screen names the cause and the fix and recovers with Try again once
// a keyring daemon runs; a second start brings the running window to the front and exits.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { AppSession, appBin, cli, freshHome, sleep, waitFor } from "./lib.mjs";

/** A session bus of its own with no service files: nothing starts a Secret Service on it. */
async function bareBus() {
  const dir = mkdtempSync(join(tmpdir(), "gk-bus-"));
  const address = `unix:path=${join(dir, "bus")}`;
  writeFileSync(join(dir, "bus.conf"), `<busconfig>
  <type>session</type>
  <listen>${address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>\n`);
  const daemon = spawn("dbus-daemon", [`--config-file=${join(dir, "bus.conf")}`, "--nofork", "--nopidfile"], {
    stdio: "ignore",
    detached: true,
  });
  await waitFor("the bus", () => {
    try {
      execFileSync("dbus-send", [`--bus=${address}`, "--print-reply", "--dest=org.freedesktop.DBus", "/", "org.freedesktop.DBus.ListNames"], { timeout: 5000 });
      return true;
    } catch {
      return false;
    }
  });
  return { dir, address, stop: () => kill(daemon) };
}

function kill(child) {
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // Gone already.
  }
}

/** Starts gnome-keyring's Secret Service on `bus`, unlocked, with keyrings of its own. */
async function startKeyring(bus) {
  const home = mkdtempSync(join(tmpdir(), "gk-keyring-"));
  const runtime = join(home, "runtime");
  mkdirSync(runtime, { mode: 0o700 });
  const daemon = spawn("gnome-keyring-daemon", ["--foreground", "--unlock", "--components=secrets"], {
    env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: bus.address, HOME: home, XDG_DATA_HOME: join(home, "data"), XDG_RUNTIME_DIR: runtime },
    stdio: ["pipe", "ignore", "ignore"],
    detached: true,
  });
  daemon.stdin.end("keyring-test-password");
  await waitFor("the Secret Service on the bus", () => {
    try {
      const out = execFileSync("dbus-send", [`--bus=${bus.address}`, "--print-reply", "--dest=org.freedesktop.DBus", "/",
        "org.freedesktop.DBus.NameHasOwner", "string:org.freedesktop.secrets"], { encoding: "utf8", timeout: 5000 });
      return /boolean true/.test(out);
    } catch {
      return false;
    }
  });
  return { stop: () => kill(daemon) };
}

test("the keyring-stopped screen names the fix and recovers with Try again", { timeout: 180_000 }, async () => {
  const bus = await bareBus();
  const home = freshHome();
  let app;
  let keyring;
  try {
    app = await AppSession.start({ GRANTKEEPER_HOME: home, DBUS_SESSION_BUS_ADDRESS: bus.address, GRANTKEEPER_KEYCHAIN_TIMEOUT_SECS: "10" });
    const screen = await app.waitText('[data-vault-screen="no_secret_service"]', 60_000);
    assert.match(screen, /No Secret Service is running/);
    assert.match(screen, /gnome-keyring-daemon --start --components=secrets/);
    assert.match(screen, /Try again/);
    assert.equal(await app.exec("return document.querySelector('[data-tenant-all]');"), null, "no empty list behind it");
    await app.screenshot("vault-no-secret-service");

    // Try again while nothing changed: the same screen, checked afresh.
    await app.clickOn('[data-action="retry"]');
    await app.waitText('[data-vault-screen="no_secret_service"]', 60_000);

    keyring = await startKeyring(bus);
    await app.clickOn('[data-action="retry"]');
    // A new vault in the keyring that now runs: the first-run welcome, no error screen.
    await app.waitText("[data-welcome]", 60_000);
    assert.equal(await app.exec("return document.querySelector('[data-vault-screen]');"), null);
    await app.waitText("[data-tenant-all]");
  } finally {
    if (app) await app.stop();
    keyring?.stop();
    bus.stop();
  }
});

test("a vault folder that is a file is named with the variable and the fix", { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "gk-badhome-"));
  const file = join(dir, "not-a-folder");
  writeFileSync(file, "");
  const app = await AppSession.start({ GRANTKEEPER_HOME: file });
  try {
    const screen = await app.waitText('[data-vault-screen="bad_home"]', 60_000);
    assert.match(screen, new RegExp(`GRANTKEEPER_HOME=${file} is not a folder`));
    assert.match(screen, /Set GRANTKEEPER_HOME to a folder you own/);
    await app.screenshot("vault-bad-home");
  } finally {
    await app.stop();
  }
});

test("a second start focuses the running window and exits", { timeout: 120_000 }, async () => {
  const home = freshHome();
  cli(home, ["tenant", "add", "Acme Corp"]);
  const app = await AppSession.start({ GRANTKEEPER_HOME: home });
  try {
    await app.waitContent('[data-tenant="acme-corp"]', /Acme Corp/);
    const started = Date.now();
    const second = spawn(appBin, [], { env: { ...process.env, GRANTKEEPER_HOME: home }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    second.stderr.on("data", (d) => {
      stderr += d;
    });
    const code = await new Promise((res) => second.once("exit", res));
    assert.equal(code, 0, `the second start exits cleanly: ${stderr}`);
    assert.ok(Date.now() - started < 30_000);
    assert.doesNotMatch(stderr, /grantkeeper:/, "no failure message");
    // The first window was told (and brought to the front).
    assert.match(await app.waitText('[role="status"]', 20_000), /already open: this is its window/);
    // A second start asking for the demo is told apart.
    const demo = spawn(appBin, ["--demo"], { env: { ...process.env, GRANTKEEPER_HOME: home }, stdio: "ignore" });
    assert.equal(await new Promise((res) => demo.once("exit", res)), 0);
    assert.match(await app.waitText('[role="status"][data-tone="warn"]', 20_000), /already open with your vault: quit it first to open the demo/);
    await sleep(200);
    await app.screenshot("second-instance");
  } finally {
    await app.stop();
  }
});
