// The window tells the truth about status, against the real test IdP: a grant past its expiry
// shows "expired" (never "Active") in the list, the detail and the CLI, and its tenant is marked;
// a bulk revoke where one provider cannot revoke shows one success and one warning, counted alike.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startIdp, testBrowser } from "./idp.mjs";
import { AppSession, cli, freshHome, sleep, waitFor } from "./lib.mjs";

const approve = { BROWSER: testBrowser, GK_TEST_BROWSER_ACTION: "approve" };
const json = (home, args) => JSON.parse(cli(home, [...args, "--json"]));

test("an expired grant is 'expired' and marks its tenant; a mixed bulk revoke counts right", { timeout: 300_000 }, async () => {
  // Access tokens live 6 s; refresh tokens only with offline_access.
  const idp = await startIdp({ accessTokenTtl: 6, refreshTokenRequiresOfflineAccess: true });
  const home = freshHome();
  let app;
  try {
    cli(home, ["tenant", "add", "Acme Corp"]);
    cli(home, ["tenant", "add", "Globex", "--slug", "globex"]);
    // No offline_access: no refresh token, so nothing renews the grant once its token expires.
    cli(home, ["provider", "add", "acme-corp/idp", "--preset", "generic-oidc", "--issuer", idp.issuer,
      "--client-id", "grantkeeper-test", "--scopes", "openid email"]);
    cli(home, ["provider", "add", "globex/idp", "--preset", "generic-oidc", "--issuer", idp.issuer,
      "--client-id", "grantkeeper-test", "--scopes", "openid email offline_access"]);
    // The same provider with its endpoints given by hand and no revocation endpoint.
    cli(home, ["provider", "add", "globex/norevoke", "--authorize-url", `${idp.issuer}/auth`,
      "--token-url", `${idp.issuer}/token`, "--client-id", "grantkeeper-test", "--scopes", "email offline_access"]);
    cli(home, ["connect", "acme-corp/short", "--provider", "idp"], approve);
    const connected = Date.now();
    cli(home, ["connect", "globex/ledger", "--provider", "idp"], approve);
    cli(home, ["connect", "globex/legacy", "--provider", "norevoke"], approve);

    app = await AppSession.start({ GRANTKEEPER_HOME: home });
    await app.waitContent('[data-connection="short"]', /short/);
    await sleep(Math.max(0, connected + 7_000 - Date.now()));

    // The list's badge turns to Expired by itself (no reload), never back to Active.
    await app.waitMatch('[data-connection="short"]', /Expired/, 45_000);
    assert.doesNotMatch(await app.text(await app.find('[data-connection="short"]')), /Active/);
    // Its tenant is marked, with a count and a label a screen reader reads.
    const mark = await app.waitText('[data-tenant="acme-corp"] .attention', 30_000);
    assert.equal(mark, "1");
    const label = await app.exec(`return document.querySelector('[data-tenant="acme-corp"] .attention').getAttribute("aria-label");`);
    assert.equal(label, "1 need attention: 1 expired");
    // The detail says the same.
    await app.click(await app.find('[data-connection="short"] td'));
    await app.waitMatch("section.detail .detail-head", /Expired/);
    await app.screenshot("status-expired");

    // The CLI computes it with the same function.
    const listed = json(home, ["list"]).find((c) => c.name === "short");
    assert.equal(listed.state, "expired");
    assert.equal(listed.needs_attention, true);
    assert.equal(listed.status, "active", "the stored state is unchanged");
    assert.match(cli(home, ["list"]), /acme-corp\/short\s+\S+\s+expired/);
    assert.match(cli(home, ["show", "acme-corp/short"]), /\(idp, expired, needs attention\)/);
    assert.equal(json(home, ["tenant", "list"]).find((t) => t.tenant.slug === "acme-corp").needs_attention, 1);

    // Bulk revoke: one provider confirms, one cannot revoke.
    await app.clickOn('[data-nav="review"]');
    await app.waitText('[data-view="review"] tr[data-grant="globex/legacy"]');
    await app.clickOn('tr[data-grant="globex/ledger"] input[data-select]');
    await app.clickOn('tr[data-grant="globex/legacy"] input[data-select]');
    await app.clickOn('[data-action="bulk-revoke"]');
    await app.clickOn('[role="dialog"] [data-confirm]');
    const summary = await app.waitText('[data-bulk-results] .bulk-summary', 30_000);
    assert.equal(summary,
      "2 grants revoked here; the provider confirmed 1 of 2 — revoke this one at the provider yourself: globex/legacy.");
    const states = await app.exec(`return Object.fromEntries([...document.querySelectorAll('[data-bulk-results] li')]
      .map((li) => [li.dataset.result, li.dataset.state]));`);
    assert.deepEqual(states, { "globex/ledger": "ok", "globex/legacy": "unconfirmed" });
    assert.equal(await app.waitText('[role="status"][data-tone="warn"]'), summary);
    await app.screenshot("status-bulk-mixed");
    assert.equal((await idp.stats()).revocations, 1, "the provider revoked one grant");
  } finally {
    if (app) await app.stop();
    await idp.stop();
  }
});

test("every failed refresh reaches History", { timeout: 180_000 }, async () => {
  const idp = await startIdp();
  const home = freshHome();
  let app;
  try {
    cli(home, ["tenant", "add", "Acme Corp"]);
    cli(home, ["provider", "add", "acme-corp/idp", "--preset", "generic-oidc", "--issuer", idp.issuer,
      "--client-id", "grantkeeper-test", "--scopes", "openid offline_access"]);
    cli(home, ["connect", "acme-corp/crm", "--provider", "idp"], approve);
    await idp.stop(); // The provider is gone: every refresh fails.
    app = await AppSession.start({ GRANTKEEPER_HOME: home });
    await app.click(await waitFor("row crm", () => app.find('[data-connection="crm"] td')));
    await app.waitMatch("section.detail .history", /consented/);
    const failedShown = () => app.exec(`return document.querySelectorAll('section.detail .history li[data-kind="refresh_failed"]').length;`);
    for (let i = 1; i <= 2; i++) {
      await app.clickOn('section.detail [data-action="refresh"]:not([disabled])', 60_000);
      await waitFor(`failed refresh ${i} recorded`, () => json(home, ["history", "acme-corp/crm", "--kind", "refresh_failed"]).length === i, 90_000);
      await waitFor(`failed refresh ${i} in History`, async () => (await failedShown()) === i, 30_000);
    }
    // The chart's refreshes (incl. failed) count them: today's bar says 2.
    const bars = await app.exec(`return [...document.querySelectorAll("section.detail svg title")].map((t) => t.textContent);`);
    assert.ok(bars.some((t) => /\b2 refreshes/.test(t)), JSON.stringify(bars));
  } finally {
    if (app) await app.stop();
  }
});
