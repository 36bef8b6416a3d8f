// The README's run command: the app with `--demo` brings its own identity provider on 127.0.0.1
// and a demo tenant, so a newcomer can connect, see scopes and expiry, and revoke, offline.
import assert from "node:assert/strict";
import { test } from "node:test";
import { testBrowser } from "./idp.mjs";
import { AppSession, cli, freshHome } from "./lib.mjs";

test("demo mode: connect to the embedded provider and revoke", { timeout: 240_000 }, async () => {
  const home = freshHome();
  const app = await AppSession.start(
    { GRANTKEEPER_HOME: home, BROWSER: testBrowser, GK_TEST_BROWSER_ACTION: "approve" },
    ["--demo"],
  );
  try {
    await app.waitContent('[data-tenant="demo-client"]', /Demo Client/);
    await app.clickOn('[data-action="connect"]');
    await app.choose('[data-wizard] select[name="tenant"]', "Demo Client");
    await app.choose('[data-wizard] select[name="provider_app"]', "demo");
    await app.type('[data-wizard] input[name="name"]', "books");
    await app.clickOn('[data-action="open-browser"]');
    await app.waitMatch('[data-connection="books"]', /Active/, 90_000);
    await app.waitContent('[data-connection="books"]', /ada@demo\.example/);
    if (!(await app.exec("return document.querySelector('section.detail') !== null;"))) {
      await app.click(await app.find('[data-connection="books"] td'));
    }
    assert.match(await app.waitText('section.detail [data-scope="profile"]'), /low/i);
    assert.match(await app.waitText('section.detail [data-scope="invoices.read"]'), /medium/i);
    await app.screenshot("demo-detail");
    const shown = JSON.parse(cli(home, ["show", "demo-client/books", "--json"]));
    assert.equal(shown.connection.account.username, "ada@demo.example");
    assert.ok(shown.connection.access_expires_at > Date.now(), "an expiry from the provider");
    await app.clickOn('section.detail [data-action="revoke"]');
    await app.clickOn('[role="dialog"] [data-confirm]');
    await app.waitMatch('[data-connection="books"]', /Revoked/, 30_000);
    const revoked = JSON.parse(cli(home, ["history", "demo-client/books", "--kind", "revoked", "--json"]));
    assert.equal(revoked.length, 1);
  } finally {
    await app.stop();
  }
});
