// The real Tauri binary under Xvfb, driven over WebDriver (WebKitWebDriver), with
// the real Secret Service: the window opens and shows tenants seeded through the CLI.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startIdp, testBrowser } from "./idp.mjs";
import { AppSession, cli, freshHome } from "./lib.mjs";

test("the window starts and lists seeded tenants", { timeout: 120_000 }, async () => {
  const home = freshHome();
  cli(home, ["tenant", "add", "Acme Corp"]);
  cli(home, ["tenant", "add", "Globex", "--slug", "globex"]);
  const app = await AppSession.start({ GRANTKEEPER_HOME: home });
  try {
    // The name is truncated with an ellipsis by CSS, which WebKitWebDriver's text leaves out.
    await app.waitContent('[data-tenant="acme-corp"]', /Acme Corp/);
    await app.waitContent('[data-tenant="globex"]', /Globex/);
    assert.match(await app.waitText("main h1"), /All connections/);
    assert.match(await app.waitText(".where"), /Secret Service/);
    await app.screenshot("window-tenants");
    // The capability grants this app's own commands and event listening, nothing else.
    const call = (cmd) => app.execAsync(
      `const done = arguments[arguments.length - 1];
       window.__TAURI_INTERNALS__.invoke(arguments[0], {}).then(() => done("allowed"), (e) => done("refused: " + e));`,
      [cmd],
    );
    assert.equal(await call("list_tenants"), "allowed");
    for (const cmd of ["plugin:app|version", "plugin:window|close", "plugin:webview|print", "plugin:path|resolve_directory"]) {
      assert.match(await call(cmd), /^refused/, `${cmd} must be refused`);
    }
    await app.click(await app.find('[data-tenant="globex"]'));
    assert.equal(await app.waitText("main h1"), "Globex");
  } finally {
    await app.stop();
  }
});

test("the window explains a vault it cannot open", { timeout: 120_000 }, async () => {
  const home = freshHome();
  cli(home, ["tenant", "add", "Acme Corp"]);
  // The same vault seen through a session bus with no Secret Service on it.
  const app = await AppSession.start({
    GRANTKEEPER_HOME: home,
    DBUS_SESSION_BUS_ADDRESS: "unix:path=/nonexistent/bus",
    GRANTKEEPER_KEYCHAIN_TIMEOUT_SECS: "5",
  });
  try {
    const msg = await app.waitText('[data-vault-screen="no_session_bus"]');
    assert.match(msg, /No D-Bus session bus/);
    assert.match(msg, /dbus-run-session/);
    assert.match(msg, /Try again/);
    await app.screenshot("window-keychain-error");
  } finally {
    await app.stop();
  }
});

test("a connection made through the CLI shows its scopes and history", { timeout: 180_000 }, async () => {
  const idp = await startIdp();
  const home = freshHome();
  let app;
  try {
    cli(home, ["tenant", "add", "Acme Corp"]);
    cli(home, ["provider", "add", "acme-corp/idp", "--preset", "generic-oidc", "--issuer", idp.issuer,
      "--client-id", "grantkeeper-test", "--scopes", "openid email offline_access api:read"]);
    cli(home, ["connect", "acme-corp/crm", "--provider", "idp"], { BROWSER: testBrowser, GK_TEST_BROWSER_ACTION: "approve" });
    cli(home, ["token", "acme-corp/crm", "--hint", "nightly-sync"]);
    app = await AppSession.start({ GRANTKEEPER_HOME: home });
    const row = await app.waitText('[data-connection="crm"]');
    assert.match(row, /Active/);
    assert.match(row, /\d+:\d\d|in \d+ (min|h)/);
    await app.screenshot("window-connections");
    await app.click(await app.find('[data-connection="crm"] td'));
    assert.match(await app.waitText('[data-scope="openid"]'), /low/i);
    assert.match(await app.waitText('[data-scope="offline_access"]'), /medium/i);
    const history = await app.waitText(".history");
    assert.match(history, /handed out/);
    assert.match(history, /nightly-sync/);
    assert.match(history, /consented/);
    const page = (await app.req("GET", `/session/${app.id}/source`)).value;
    const token = cli(home, ["token", "acme-corp/crm"]).trim();
    assert.ok(!page.includes(token), "no token in the DOM");
    await app.screenshot("window-detail");
  } finally {
    if (app) await app.stop();
    await idp.stop();
  }
});
