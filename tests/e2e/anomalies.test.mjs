// Anomaly flags in the real window: a provider that stops answering makes refreshes fail three
// times in a row through the CLI, and the connection's detail shows the flag with the core's
// one-sentence explanation; the grant review filtered by that flag (or any flag) lists it and not
// the connection without a flag.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startIdp, testBrowser } from "./idp.mjs";
import { AppSession, cli, freshHome, waitFor } from "./lib.mjs";

test("the detail shows a connection's anomaly flags", { timeout: 180_000 }, async () => {
  const idp = await startIdp();
  const home = freshHome();
  let app;
  try {
    cli(home, ["tenant", "add", "Acme Corp"]);
    cli(home, ["provider", "add", "acme-corp/idp", "--preset", "generic-oidc", "--issuer", idp.issuer,
      "--client-id", "grantkeeper-test", "--scopes", "openid offline_access api:read"]);
    for (const name of ["crm", "erp"]) {
      cli(home, ["connect", `acme-corp/${name}`, "--provider", "idp"], { BROWSER: testBrowser, GK_TEST_BROWSER_ACTION: "approve" });
    }
    await idp.stop();
    for (let i = 0; i < 3; i++) {
      assert.throws(() => cli(home, ["refresh", "acme-corp/crm"]), /refresh/);
    }
    const [flag] = JSON.parse(cli(home, ["anomalies", "--json"]));
    assert.equal(flag.kind, "refresh_failures");

    app = await AppSession.start({ GRANTKEEPER_HOME: home });
    await app.waitText('[data-connection="crm"]');
    await app.click(await app.find('[data-connection="crm"] td'));
    const shown = await app.waitText('[data-flag="refresh_failures"]');
    assert.equal(shown, `Refreshes failing ${flag.explanation}`);
    assert.match(await app.waitText('[aria-label="Anomaly flags"] strong'), /^1 anomaly flag$/);
    await app.screenshot("window-anomaly-flag");

    // The review: every grant, then only the flagged one by its kind or by "any flag".
    const listed = () => app.exec(`return [...document.querySelectorAll('[data-view="review"] tr[data-grant]')]
      .map((tr) => tr.dataset.grant);`);
    const listedAs = (want) => waitFor(`review lists ${want}`, async () =>
      JSON.stringify(await listed()) === JSON.stringify(want));
    await app.clickOn('[data-nav="review"]');
    await listedAs(["acme-corp/crm", "acme-corp/erp"]);
    await app.choose('select[data-review-filter="flag"]', "Refreshes failing");
    await listedAs(["acme-corp/crm"]);
    await app.choose('select[data-review-filter="flag"]', "Burst of use");
    await listedAs([]);
    await app.waitText('[data-view="review"] .empty');
    await app.choose('select[data-review-filter="flag"]', "Any flag");
    await listedAs(["acme-corp/crm"]);
    await app.screenshot("review-filtered-by-flag");
    // The CLI's review takes the same filter.
    const exported = JSON.parse(cli(home, ["export", "--format", "json", "--flag", "refresh_failures"]));
    assert.deepEqual(exported.map((r) => r.connection), ["crm"]);
    // The notifications' expiry warning is a setting of the vault (7 days until set).
    assert.equal(JSON.parse(cli(home, ["notifications", "--json"])).expiring_days, 7);
    assert.equal(JSON.parse(cli(home, ["notifications", "--expiring-days", "3", "--json"])).expiring_days, 3);
    assert.match(cli(home, ["notifications"]), /within 3 days/);
    assert.throws(() => cli(home, ["notifications", "--expiring-days", "0"]), /not in 1\.\.=3650/);
  } finally {
    if (app) await app.stop();
    await idp.stop().catch(() => {});
  }
});
