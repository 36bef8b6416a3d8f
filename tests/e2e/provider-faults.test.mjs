// The window when a provider misbehaves, end to end (the real Tauri binary under Xvfb over
// WebDriver, the real Secret Service, the real oidc-provider, headless Chromium for consent):
// a token endpoint that stalls shows a refresh's progress with Cancel after a second, and Cancel
// ends the wait at once with nothing stored (refresh, and a copy that must refresh first), or,
// when the provider still answers, the window says the new tokens were kept; a revocation the provider refuses is a warning, never a success (single revoke, delete with
// revoke, bulk revoke in the grant review).
import assert from "node:assert/strict";
import { test } from "node:test";
import { startIdp, testBrowser } from "./idp.mjs";
import { AppSession, cli, freshHome, waitFor } from "./lib.mjs";

const approve = { BROWSER: testBrowser, GK_TEST_BROWSER_ACTION: "approve" };
const json = (home, args) => JSON.parse(cli(home, [...args, "--json"]));
const history = (home, target, kind) =>
  json(home, ["history", target, ...(kind ? ["--kind", kind] : [])]);
const shown = (home, target) => json(home, ["show", target]).connection;
const absent = (app, css) => app.exec("return document.querySelector(arguments[0]) === null;", [css]);

/** Adds tenant Acme Corp with provider app `idp` on `idp` and connects `names` through the CLI. */
function seed(home, idp, names) {
  cli(home, ["tenant", "add", "Acme Corp"]);
  cli(home, ["provider", "add", "acme-corp/idp", "--preset", "generic-oidc", "--issuer", idp.issuer,
    "--client-id", "grantkeeper-test", "--scopes", "openid email offline_access api:read"]);
  for (const n of names) cli(home, ["connect", `acme-corp/${n}`, "--provider", "idp"], approve);
}

/** Opens a connection's detail from the list and waits for its history. */
async function openDetail(app, name) {
  await app.click(await waitFor(`row ${name}`, () => app.find(`[data-connection="${name}"] td`)));
  await waitFor(`the detail of ${name}`, async () =>
    (await app.exec("return document.querySelector('section.detail')?.dataset.detail ?? null;")) === name);
  await app.waitMatch("section.detail .history", /consented/);
}

/**
 * Clicks `action` in the open detail while the token endpoint stalls: the progress appears after
 * about a second, not before, with Cancel; Cancel ends the wait. Returns what the window said.
 */
async function cancelStalled(app, action, shot) {
  const clicked = Date.now();
  await app.clickOn(`section.detail [data-action="${action}"]`);
  assert.ok(await absent(app, "[data-progress]"), "no progress in the first second");
  const progress = await app.waitText(`[data-progress="${action}"]`, 10_000);
  const after = Date.now() - clicked;
  assert.ok(after >= 900 && after < 5_000, `progress shown after ${after} ms`);
  assert.match(progress, /the provider has not answered yet/);
  assert.match(await app.text(await app.find('[data-progress] [data-action="cancel-refresh"]')), /Cancel/);
  if (shot) await app.screenshot(shot);
  const cancelAt = Date.now();
  await app.clickOn('[data-progress] [data-action="cancel-refresh"]');
  const said = await app.waitText("[data-cancelled]", 10_000);
  const took = Date.now() - cancelAt;
  assert.ok(took < 3_000, `the cancel was answered in ${took} ms`);
  assert.ok(await absent(app, "[data-progress]"));
  assert.ok(await absent(app, 'section.detail [role="alert"]'), "a cancel is no error");
  return { said, total: Date.now() - clicked };
}

test("a stalled refresh shows progress with Cancel; Cancel stores nothing", { timeout: 300_000 }, async () => {
  // Access tokens live 65 s: a copy hands out only a token valid for a minute more, so a few
  // seconds after it was issued, a copy has to refresh first.
  const idp = await startIdp({ accessTokenTtl: 65 });
  const home = freshHome();
  let app;
  try {
    seed(home, idp, ["crm"]);
    const before = shown(home, "acme-corp/crm");
    const events = history(home, "acme-corp/crm").length;
    app = await AppSession.start({ GRANTKEEPER_HOME: home });
    await openDetail(app, "crm");

    // The provider hangs for 20 s: Refresh now shows its progress, and Cancel ends the wait.
    await idp.stallToken(20_000);
    const refresh = await cancelStalled(app, "refresh", "refresh-progress");
    assert.equal(refresh.said, "Refresh cancelled. Nothing was stored: acme-corp/crm keeps its current tokens.");
    assert.ok(refresh.total < 10_000, `over after ${refresh.total} ms, well before the 20 s stall ends`);
    await app.screenshot("refresh-cancelled");

    // A copy needs a fresh token first: it waits, and can be cancelled too. (It waits behind the
    // cancelled refresh, whose request the provider still holds.)
    await waitFor("the token to need a refresh", () => before.access_expires_at - Date.now() < 58_000, 30_000);
    const copy = await cancelStalled(app, "copy");
    assert.match(copy.said, /^Copy cancelled while the token was being refreshed\. Nothing was copied and nothing was stored\.$/);

    // Nothing changed: same tokens, no new event, still active.
    const after = shown(home, "acme-corp/crm");
    assert.equal(after.status, "active");
    assert.equal(after.access_expires_at, before.access_expires_at);
    assert.equal(after.last_refresh_at, before.last_refresh_at);
    assert.equal(history(home, "acme-corp/crm").length, events, "no event: nothing refreshed, copied or revealed");
    let stats = await idp.stats();
    assert.equal(stats.token_requests_stalled, 1, "the refresh's request is held; the copy never sent one");
    assert.equal(stats.token_requests.refresh_token, 0);

    // The stall ends without an answer to the held request: the cancelled refresh ends having
    // stored nothing (its failed attempt is on record), and the window has nothing to correct.
    assert.equal((await idp.stallToken(0)).held, 1);
    await waitFor("the cut-short attempt on record", () => history(home, "acme-corp/crm", "refresh_failed").length === 1, 30_000);
    const settled = shown(home, "acme-corp/crm");
    assert.equal(settled.status, "active");
    assert.equal(settled.access_expires_at, before.access_expires_at);
    assert.equal(history(home, "acme-corp/crm", "refreshed").length, 0);
    assert.ok(await absent(app, '[role="status"][data-tone="warn"]'), "no late refresh to report");

    // With the provider answering again, Refresh now and Copy work, without progress or Cancel.
    await app.clickOn('section.detail [data-action="refresh"]');
    await app.waitMatch('[role="status"]', /Refreshed acme-corp\/crm\./, 30_000);
    assert.ok(await absent(app, "[data-cancelled]"));
    assert.equal(history(home, "acme-corp/crm", "refreshed").length, 1);
    const refreshed = shown(home, "acme-corp/crm");
    assert.equal(refreshed.status, "active");
    assert.ok(refreshed.last_refresh_at > (before.last_refresh_at ?? 0));
    await app.clickOn('section.detail [data-action="copy"]');
    await app.waitMatch('[role="status"]', /Copied/, 30_000);
    assert.equal(history(home, "acme-corp/crm", "revealed").length, 1);
    assert.ok(await absent(app, "[data-progress]"));

    // A cancelled refresh that the provider answers after all (its stall ends on its own): the
    // core keeps the new tokens (the provider rotated the refresh token), and the window takes
    // back its "nothing was stored" and says what happened.
    await idp.stallToken(4_000);
    const refreshes = history(home, "acme-corp/crm", "refreshed").length;
    const late = await cancelStalled(app, "refresh");
    assert.match(late.said, /^Refresh cancelled\. Nothing was stored/);
    const lateNote = await app.waitMatch('[role="status"][data-tone="warn"]', /after you cancelled it/, 20_000);
    assert.match(lateNote, /^The provider answered the refresh of acme-corp\/crm after you cancelled it: its new tokens were stored/);
    await waitFor("the cancelled notice to go", () => absent(app, "[data-cancelled]"), 5_000);
    await app.screenshot("refresh-answered-late");
    assert.equal(history(home, "acme-corp/crm", "refreshed").length, refreshes + 1);
    await idp.stallToken(0);
    // The kept refresh token is the provider's current one.
    const beforeCli = (await idp.stats()).token_requests.refresh_token;
    cli(home, ["refresh", "acme-corp/crm"]);
    stats = await idp.stats();
    assert.equal(stats.token_requests.refresh_token, beforeCli + 1);
    assert.equal(stats.token_errors.refresh_token, 0);
    assert.equal(shown(home, "acme-corp/crm").status, "active");
    assert.match(cli(home, ["audit", "verify"]), /intact/);
  } finally {
    if (app) await app.stop();
    await idp.stop();
  }
});

test("a revocation the provider refuses is a warning, not a success", { timeout: 300_000 }, async () => {
  const idp = await startIdp();
  const home = freshHome();
  let app;
  try {
    seed(home, idp, ["crm", "books", "ledger", "payroll"]);
    await idp.failRevocation(503);
    app = await AppSession.start({ GRANTKEEPER_HOME: home });

    // Single revoke: a warning with the provider's answer and what to do.
    await openDetail(app, "crm");
    await app.clickOn('section.detail [data-action="revoke"]');
    await app.clickOn('[role="dialog"] [data-confirm]');
    const outcome = await app.waitText('[data-outcome="unconfirmed"]', 30_000);
    assert.match(outcome, /Not revoked at the provider — only forgotten here\./);
    assert.match(outcome, /not revoked at the provider: .*503/);
    assert.match(outcome, /Revoke it at the provider yourself/);
    assert.ok(await absent(app, '[data-outcome="confirmed"]'));
    const note = await app.waitText('[role="status"][data-tone="warn"]');
    assert.match(note, /acme-corp\/crm was forgotten here, but the provider did not confirm the revocation/);
    assert.doesNotMatch(note, /^Revoked/);
    await app.waitMatch('[data-connection="crm"]', /Revoked/, 15_000);
    await app.screenshot("revoke-unconfirmed");
    assert.equal(shown(home, "acme-corp/crm").status, "revoked");
    const [revoked] = history(home, "acme-corp/crm", "revoked");
    assert.equal(revoked.detail.at_provider, false);
    await app.clickOn('[role="status"] [data-action="dismiss"]');

    // Delete with revoke: the note says the provider did not confirm.
    await openDetail(app, "books");
    await app.clickOn('section.detail [data-action="delete"]');
    assert.equal(await app.exec("return document.querySelector('[role=\"dialog\"] input[name=\"also_revoke\"]').checked;"), true);
    await app.clickOn('[role="dialog"] [data-confirm]');
    const deleted = await app.waitMatch('[role="status"][data-tone="warn"]', /Deleted acme-corp\/books/, 30_000);
    assert.match(deleted, /^Deleted acme-corp\/books here, not revoked at the provider: .*503.*Revoke it at the provider yourself/);
    await app.screenshot("delete-unconfirmed");
    assert.ok(!json(home, ["list"]).some((c) => c.name === "books"));
    await app.clickOn('[role="status"] [data-action="dismiss"]');

    // Bulk revoke in the review: the summary counts the provider's confirmations.
    await app.clickOn('[data-nav="review"]');
    await app.waitText('[data-view="review"] tr[data-grant="acme-corp/ledger"]');
    await app.clickOn('tr[data-grant="acme-corp/ledger"] input[data-select]');
    await app.clickOn('tr[data-grant="acme-corp/payroll"] input[data-select]');
    await app.clickOn('[data-action="bulk-revoke"]');
    await app.clickOn('[role="dialog"] [data-confirm]');
    const summary = await app.waitText('[data-bulk-results][data-tone="warn"] .bulk-summary', 30_000);
    assert.equal(summary,
      "2 grants revoked here; the provider confirmed 0 of 2 — revoke these 2 at the provider yourself: acme-corp/ledger, acme-corp/payroll.");
    const toast = await app.waitText('[role="status"][data-tone="warn"]');
    assert.equal(toast, summary);
    for (const g of ["acme-corp/ledger", "acme-corp/payroll"]) {
      assert.equal(await app.exec(`return document.querySelector('[data-result="${g}"]').dataset.state;`), "unconfirmed");
      assert.match(await app.text(await app.find(`[data-result="${g}"]`)), /not confirmed: forgotten here only — not revoked at the provider/);
      await app.waitText(`tr[data-grant="${g}"] [data-unconfirmed]`);
    }
    assert.ok(await absent(app, '[data-bulk-results] li[data-state="ok"]'));
    await app.screenshot("bulk-revoke-unconfirmed");
    const list = json(home, ["list"]);
    for (const n of ["ledger", "payroll"]) assert.equal(list.find((c) => c.name === n).status, "revoked");
    assert.equal((await idp.stats()).revocations, 0, "the provider revoked nothing");
    assert.ok((await idp.stats()).revocations_refused >= 4);
  } finally {
    if (app) await app.stop();
    await idp.stop();
  }
});
