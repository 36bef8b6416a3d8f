// The desktop app end to end: the real Tauri binary under Xvfb driven over WebDriver, the real
// Secret Service, the real oidc-provider on 127.0.0.1 and headless Chromium as the system browser.
// Connect through the wizard (waiting, cancel, then approve), the connection's scopes and live
// countdown, refresh now, copy (clipboard + recorded), reveal (recorded, gone from the DOM after),
// revoke, the grant review's filters, export and bulk revoke, live updates from the CLI, a
// desktop notification when a grant comes to need re-consent.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { get } from "node:http";
import { join } from "node:path";
import { test } from "node:test";
import { startIdp, testBrowser } from "./idp.mjs";
import { AppSession, cli, cliBin, freshHome, sleep, waitFor } from "./lib.mjs";
import { screenshotScreen, startNotificationServer } from "./notifications.mjs";

const json = (home, args) => JSON.parse(cli(home, [...args, "--json"]));
const history = (home, target, kind) => json(home, ["history", target, "--kind", kind]);

/** `grantkeeper token TARGET ARGS…` run by this test (a program of the user) in the background:
 * resolves to its exit code and output once it ends. */
function tokenLater(home, target, args = []) {
  return new Promise((resolve, reject) => {
    const p = spawn(cliBin, ["token", target, ...args], { env: { ...process.env, GRANTKEEPER_HOME: home } });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The HTTP status of a plain GET of `url`. */
function statusOf(url) {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      res.resume();
      resolve(res.statusCode);
    }).on("error", reject);
  });
}

/** The clipboard of the Xvfb display, as another program would read it. */
function clipboard() {
  try {
    return execFileSync("xclip", ["-o", "-selection", "clipboard"], { encoding: "utf8", timeout: 5000 });
  } catch {
    return "";
  }
}

test("connect, use, review and revoke grants from the window", { timeout: 420_000 }, async () => {
  const idp = await startIdp({ extraScopes: ["invoices.write", "invoices.read"] });
  // A second provider whose refresh tokens die after 2 s: its grant ends up needing re-consent.
  const shortIdp = await startIdp({ refreshTokenTtl: 2 });
  // A third one that goes away mid-test: the window must say it is offline.
  const goneIdp = await startIdp();
  const home = freshHome();
  const work = mkdtempSync(join(tmpdir(), "gk-app-e2e-"));
  const actionFile = join(work, "browser-action");
  let app;
  const notifications = await startNotificationServer();
  try {
    cli(home, ["tenant", "add", "Acme Corp"]);
    cli(home, ["tenant", "add", "Globex", "--slug", "globex"]);
    cli(home, ["provider", "add", "acme-corp/idp", "--preset", "generic-oidc", "--issuer", idp.issuer,
      "--client-id", "grantkeeper-test", "--scopes", "openid email offline_access api:read"]);
    cli(home, ["provider", "add", "acme-corp/short", "--preset", "generic-oidc", "--issuer", shortIdp.issuer,
      "--client-id", "grantkeeper-test", "--scopes", "openid offline_access"]);
    cli(home, ["provider", "add", "acme-corp/gone", "--preset", "generic-oidc", "--issuer", goneIdp.issuer,
      "--client-id", "grantkeeper-test", "--scopes", "openid offline_access"]);
    // The demo preset's scope catalog (invoices.write is high risk) on the test provider.
    cli(home, ["provider", "add", "globex/books", "--preset", "grantkeeper-demo", "--issuer", idp.issuer,
      "--client-id", "grantkeeper-test", "--scopes", "openid invoices.read invoices.write offline_access"]);
    const approve = { BROWSER: testBrowser, GK_TEST_BROWSER_ACTION: "approve" };
    cli(home, ["connect", "globex/ledger", "--provider", "books"], approve);
    cli(home, ["connect", "acme-corp/legacy", "--provider", "short"], approve);
    cli(home, ["connect", "acme-corp/remote", "--provider", "gone"], approve);

    writeFileSync(actionFile, "ignore");
    app = await AppSession.start({
      GRANTKEEPER_HOME: home,
      BROWSER: testBrowser,
      GK_TEST_BROWSER_ACTION_FILE: actionFile,
      GK_TEST_BROWSER_TIMEOUT_MS: "20000",
      HOME: work,
      GK_TEST_SAVE_DIALOG_DIR: work, // the save dialog's answer (a GTK dialog cannot be clicked here)
      XDG_CONFIG_HOME: join(work, "config"),
    });
    await app.waitText('[data-tenant="acme-corp"]');

    // The wizard: an existing provider app, the browser opens, the window waits; cancel.
    await app.clickOn('[data-action="connect"]');
    await app.waitText("[data-wizard]");
    await app.choose('[data-wizard] select[name="tenant"]', "Acme Corp");
    await app.choose('[data-wizard] select[name="provider_app"]', "idp");
    await app.type('[data-wizard] input[name="name"]', "crm");
    await app.clickOn('[data-action="open-browser"]');
    assert.match(await app.waitText('[data-wizard-state="waiting"]', 30_000), /browser/i);
    await app.screenshot("wizard-waiting");
    await app.clickOn('[data-action="cancel"]');
    await waitFor("the waiting state to end", async () =>
      (await app.exec('return document.querySelector(\'[data-wizard-state="waiting"]\') === null;')));

    // Again, and this time the user approves in the browser.
    writeFileSync(actionFile, "approve");
    await app.clickOn('[data-action="open-browser"]');
    await app.waitText('[data-wizard-state="waiting"]', 30_000);
    const row = await app.waitMatch('[data-connection="crm"]', /Active/, 90_000);
    assert.match(row, /\d+:\d\d|in \d+ (min|h)/, "a live countdown of the access token");
    const countdown1 = await app.waitText('[data-connection="crm"] .countdown');
    await sleep(2200);
    assert.notEqual(await app.waitText('[data-connection="crm"] .countdown'), countdown1, "the countdown moves");
    assert.equal(json(home, ["show", "acme-corp/crm"]).connection.status, "active");

    // The detail (opened by the wizard, or by a click): scopes with meaning and risk.
    if (!(await app.exec("return document.querySelector('section.detail') !== null;"))) {
      await app.click(await app.find('[data-connection="crm"] td'));
    }
    assert.match(await app.waitText('section.detail [data-scope="openid"]'), /low/i);
    assert.match(await app.waitText('section.detail [data-scope="offline_access"]'), /medium/i);
    await app.waitMatch("section.detail .history", /consented/);

    // Refresh now.
    await app.clickOn('section.detail [data-action="refresh"]');
    await app.waitMatch("section.detail .history", /refreshed/, 30_000);
    assert.equal(history(home, "acme-corp/crm", "refreshed").length, 1);

    // Copy: the token reaches the clipboard, never the window, and the copy is recorded.
    await app.clickOn('section.detail [data-action="copy"]');
    await app.waitMatch('[role="status"]', /copied/i);
    const copies = history(home, "acme-corp/crm", "revealed");
    assert.equal(copies.length, 1);
    assert.equal(copies[0].detail.how, "copy");
    const token = cli(home, ["token", "acme-corp/crm"]).trim();
    assert.equal(clipboard().trim(), token, "the clipboard holds the access token");
    assert.ok(!(await app.source()).includes(token), "no token in the DOM after a copy");

    // Reveal: shown on request, recorded, and gone once hidden.
    await app.clickOn('section.detail [data-action="reveal"]');
    assert.equal((await app.waitText('[data-secret="access-token"]')).trim(), token);
    const reveals = history(home, "acme-corp/crm", "revealed").filter((e) => e.detail.how === "reveal");
    assert.equal(reveals.length, 1);
    await app.screenshot("detail");
    await app.exec("document.querySelector('section.detail .history')?.scrollIntoView();");
    await app.screenshot("detail-history");

    // The hand-out policy's "ask": a program's hand-out (the CLI run by this test, answered by
    // the window's agent) waits for the user's answer in the window. Allow once → exit 0 with
    // the token; Deny → exit 5 and a hand_out_refused event; no answer in the hand-out's time →
    // the dialog closes by itself and the hand-out is refused.
    cli(home, ["policy", "set", "acme-corp/crm", "ask"]);
    const question = '[data-hand-out-question]';
    const noQuestion = () => waitFor("the question to close", async () =>
      (await app.exec("return document.querySelector(arguments[0]) === null;", [question])));
    const allowed = tokenLater(home, "acme-corp/crm");
    await app.waitText(question, 30_000);
    assert.equal(await app.waitText("[data-question-program]"), realpathSync(process.execPath), "the program the kernel names");
    assert.equal(await app.waitText("[data-question-target]"), "acme-corp/crm");
    assert.equal(await app.exec("return document.activeElement?.dataset.answer;"), "deny", "Deny has the focus");
    await app.screenshot("ask-dialog");
    await app.clickOn('[data-answer="allow"]');
    const allow = await allowed;
    assert.equal(allow.code, 0, allow.stderr);
    assert.equal(allow.stdout.trim(), token);
    await noQuestion();
    assert.equal(history(home, "acme-corp/crm", "hand_out_refused").length, 0);

    const denied = tokenLater(home, "acme-corp/crm");
    await app.clickOn(`${question} [data-answer="deny"]`, 30_000);
    const deny = await denied;
    assert.equal(deny.code, 5, deny.stderr);
    assert.equal(deny.stdout, "", "no token on a refusal");
    assert.match(deny.stderr, /hand-out policy of acme-corp\/crm refused .*the user denied it in the window/);
    await noQuestion();
    let refused = history(home, "acme-corp/crm", "hand_out_refused");
    assert.equal(refused.length, 1);
    assert.equal(refused[0].detail.mode, "ask");

    const unanswered = tokenLater(home, "acme-corp/crm", ["--timeout", "2s"]);
    await app.waitText(question, 30_000);
    const late = await unanswered;
    assert.equal(late.code, 5, late.stderr);
    assert.match(late.stderr, /nobody answered in the window within 2 s/);
    await noQuestion();
    refused = history(home, "acme-corp/crm", "hand_out_refused");
    assert.equal(refused.length, 2);
    cli(home, ["policy", "set", "acme-corp/crm", "any"]);
    // The connection's proxy, run by the app: started from the detail, its bearer revealed
    // (recorded), a call through it to the provider's protected API listed live, then stopped
    // (its port closes).
    await app.exec("document.querySelector('section.detail [data-proxy]')?.scrollIntoView();");
    await app.type('[data-proxy-option="api_base"]', `${idp.issuer}/resource`);
    await app.clickOn('[data-action="proxy-start"]');
    const listen = await app.waitText("[data-proxy-listen]");
    assert.match(listen, /^http:\/\/127\.0\.0\.1:\d+$/);
    // (Node's fetch turns any 407 into a network error, as the Fetch standard says: plain HTTP.)
    assert.equal(await statusOf(`${listen}/echo/items`), 407, "no bearer, no call");
    await app.clickOn('[data-action="proxy-bearer"]');
    const bearer = (await app.waitText('[data-secret="proxy-bearer"]')).trim();
    assert.equal(history(home, "acme-corp/crm", "revealed").filter((e) => e.detail.secret === "proxy_bearer").length, 1);
    const through = await fetch(`${listen}/echo/items?page=2`, { headers: { "proxy-authorization": `Bearer ${bearer}` } });
    assert.equal(through.status, 200);
    const echo = await through.json();
    assert.equal(echo.path, "/resource/echo/items");
    assert.ok(!JSON.stringify(echo).includes(token), "the token never reaches the client");
    const callRows = () => app.exec(`return [...document.querySelectorAll('[data-proxy-calls] tbody tr')]
      .map((tr) => [...tr.cells].map((td) => td.textContent));`);
    const calls = await waitFor("the call in the list", async () => {
      const rows = await callRows();
      return rows.some((r) => r[2] === "/echo/items" && r[3] === "200") ? rows : null;
    });
    const ok = calls.find((r) => r[3] === "200");
    assert.equal(ok[0], "GET");
    assert.equal(ok[1], "127.0.0.1", "the API's host");
    assert.match(ok[4], /^\d+(\.\d)? k?B$/);
    assert.match(ok[5], /^\d+\.\d ms$/);
    await app.exec("document.querySelector('[data-proxy-calls]')?.scrollIntoView();");
    await app.screenshot("detail-proxy");
    await app.clickOn('[data-action="proxy-stop"]');
    await waitFor("the proxy to stop", async () =>
      (await app.exec("return document.querySelector('[data-proxy]')?.dataset.proxy;")) === "stopped");
    await assert.rejects(fetch(`${listen}/echo/items`), "the port is closed");
    assert.ok(!(await app.source()).includes(bearer), "the bearer is gone from the DOM once stopped");
    await app.exec("document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));");
    await waitFor("the detail to close", async () =>
      (await app.exec("return document.querySelector('section.detail') === null;")));
    assert.ok(!(await app.source()).includes(token), "no token in the DOM after closing the detail");
    await app.screenshot("connections");

    // Live: the CLI makes `legacy` need re-consent (its refresh token has expired); the window
    // shows it without a reload.
    await sleep(2500);
    assert.throws(() => cli(home, ["refresh", "acme-corp/legacy"]));
    await app.waitMatch('[data-connection="legacy"]', /re-consent/i, 15_000);
    // The window sends a desktop notification, seen on screen, once.
    const reconsent = "Re-consent needed: acme-corp/legacy";
    await waitFor("the notification on screen", () => notifications.displayed() > 0, 15_000);
    screenshotScreen("notification-reconsent");
    await sleep(4000); // the window looks again 3 s after a change: no second notification
    notifications.closeAll();
    // Exactly one for legacy; another grant may have its own (a notice per grant and cause).
    const said = notifications.history();
    const forLegacy = said.filter((n) => n.summary.includes("acme-corp/legacy"));
    assert.equal(forLegacy.length, 1, JSON.stringify(said));
    assert.equal(forLegacy[0].summary, reconsent);
    assert.match(forLegacy[0].body, /reconnect/);
    for (const n of said) {
      assert.ok(!`${n.summary} ${n.body}`.includes(token), "no token in a notification");
      assert.doesNotMatch(`${n.summary} ${n.body}`, /eyJ|rt-|Bearer/);
    }

    // Offline: the provider is unreachable; refresh fails in plain words and the window says it
    // is offline, while everything that needs no network keeps working.
    await goneIdp.stop();
    await app.click(await app.find('[data-connection="remote"] td'));
    await app.clickOn('section.detail [data-action="refresh"]');
    assert.match(await app.waitText("[data-offline]", 60_000), /offline/i);
    await app.screenshot("offline");
    await app.waitMatch("section.detail .history", /consented/);

    // Revoke from the detail, with confirmation.
    await app.click(await app.find('[data-connection="crm"] td'));
    await app.clickOn('section.detail [data-action="revoke"]');
    await app.clickOn('[role="dialog"] [data-confirm]');
    await app.waitMatch('[data-connection="crm"]', /Revoked/, 30_000);
    assert.equal(json(home, ["show", "acme-corp/crm"]).connection.status, "revoked");

    // The grant review: filters, export, bulk revoke.
    await app.clickOn('[data-nav="review"]');
    await app.waitText('[data-view="review"] tr[data-grant="globex/ledger"]');
    const grants = async () => app.exec(
      "return [...document.querySelectorAll('[data-view=\"review\"] tr[data-grant]')].map((r) => r.dataset.grant).sort();");
    assert.deepEqual(await grants(), ["acme-corp/crm", "acme-corp/legacy", "acme-corp/remote", "globex/ledger"]);
    await app.clickOn('input[data-review-filter="high_risk"]');
    await waitFor("the high-risk filter", async () => JSON.stringify(await grants()) === '["globex/ledger"]');
    await app.screenshot("review");
    await app.clickOn('input[data-review-filter="high_risk"]');
    await app.clickOn('input[data-review-filter="needs_reconsent"]');
    await waitFor("the re-consent filter", async () => JSON.stringify(await grants()) === '["acme-corp/legacy"]');
    await app.clickOn('input[data-review-filter="needs_reconsent"]');
    await app.type('input[data-review-filter="unused_days"]', "1");
    await waitFor("the unused filter", async () => (await grants()).length === 0);
    await app.type('input[data-review-filter="unused_days"]', "");
    await waitFor("all grants again", async () => (await grants()).length === 4);

    await app.clickOn('[data-action="export-csv"]');
    const note = await app.waitMatch('[role="status"]', /Saved 4 grants? to /);
    const csvPath = note.match(/to (\S+\.csv)/)[1];
    assert.ok(existsSync(csvPath), csvPath);
    const csv = readFileSync(csvPath, "utf8");
    assert.match(csv, /^tenant,tenant_name,connection/);
    assert.match(csv, /globex,Globex,ledger/);
    assert.ok(!csv.includes(token));
    await app.clickOn('[data-action="export-json"]');
    const jsonNote = await app.waitMatch('[role="status"]', /\.json/);
    const rows = JSON.parse(readFileSync(jsonNote.match(/to (\S+\.json)/)[1], "utf8"));
    assert.equal(rows.length, 4);
    assert.equal(history(home, "globex/ledger", "exported").length, 0, "exports are vault events");
    assert.ok(json(home, ["history", "--kind", "exported"]).length >= 2);

    await app.clickOn('tr[data-grant="globex/ledger"] input[data-select]');
    await app.clickOn('tr[data-grant="acme-corp/legacy"] input[data-select]');
    await app.clickOn('[data-action="bulk-revoke"]');
    assert.match(await app.waitText('[role="dialog"]'), /2/);
    await app.clickOn('[role="dialog"] [data-confirm]');
    await waitFor("both revoked", () => {
      const list = json(home, ["list"]);
      const status = (n) => list.find((c) => c.name === n)?.status;
      return status("ledger") === "revoked" && status("legacy") === "revoked";
    }, 30_000);
    assert.equal(cli(home, ["audit", "verify"]).includes("intact"), true);
  } finally {
    await notifications.stop();
    if (app) await app.stop();
    await idp.stop();
    await shortIdp.stop();
    await goneIdp.stop();
  }
});
