// Anomaly flags in the real window: a provider that stops answering makes refreshes fail three
// times in a row through the CLI, and the connection's detail shows the flag with the core's
// one-sentence explanation.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startIdp, testBrowser } from "./idp.mjs";
import { AppSession, cli, freshHome } from "./lib.mjs";

test("the detail shows a connection's anomaly flags", { timeout: 180_000 }, async () => {
  const idp = await startIdp();
  const home = freshHome();
  let app;
  try {
    cli(home, ["tenant", "add", "Acme Corp"]);
    cli(home, ["provider", "add", "acme-corp/idp", "--preset", "generic-oidc", "--issuer", idp.issuer,
      "--client-id", "grantkeeper-test", "--scopes", "openid offline_access api:read"]);
    cli(home, ["connect", "acme-corp/crm", "--provider", "idp"], { BROWSER: testBrowser, GK_TEST_BROWSER_ACTION: "approve" });
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
  } finally {
    if (app) await app.stop();
    await idp.stop().catch(() => {});
  }
});
