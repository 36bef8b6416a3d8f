// Setting Grantkeeper up from the window, with the real Tauri binary under Xvfb, the real Secret
// Service, the test IdP and headless Chromium as the user's browser: tenants created (from the
// first start and from the sidebar), renamed and deleted; the wizard showing what to register at
// the provider before the browser opens, its errors in view at 960×600, Esc asking before it
// throws a sign-in away; provider apps edited and deleted; an HTTPS-only (Intuit/Slack-style)
// provider connected through the relay page, for a new app and for an existing one. The tests
// with screenshots run in the light and the dark scheme.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, createPublicKey, generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { startIdp, testBrowser } from "./idp.mjs";
import { AppSession, cli, cliBin, colorSchemeEnv, freePort, freshHome, root, waitFor } from "./lib.mjs";

const json = (home, args) => JSON.parse(cli(home, [...args, "--json"]));

/** Resizes the window (WebDriver Set Window Rect) and waits until the page has that size. */
async function resize(app, width, height) {
  await app.req("POST", `/session/${app.id}/window/rect`, { width, height });
  await waitFor(`a ${width}×${height} window`, async () => {
    const [w, h] = await app.exec("return [window.outerWidth, window.outerHeight];");
    return Math.abs(w - width) <= 2 && Math.abs(h - height) <= 2;
  }, 10_000);
}

/** The colour scheme the running test started the window in (light or dark). */
let scheme = "light";

/** Screenshots of the current screen at 960×600 and 1440×900 (back to 960×600 after). */
async function shots(app, name) {
  await app.screenshot(`${name}-${scheme}-960x600`);
  await resize(app, 1440, 900);
  await app.screenshot(`${name}-${scheme}-1440x900`);
  await resize(app, 960, 600);
}

/**
 * Whether the element `css` is on screen as it is: inside the viewport and every scrolling
 * ancestor, and not covered (the topmost element at its centre is it or inside it).
 */
async function inView(app, css) {
  return app.exec(
    `const el = document.querySelector(arguments[0]);
     if (!el) return { ok: false, why: "missing" };
     const r = el.getBoundingClientRect();
     if (r.width === 0 || r.height === 0) return { ok: false, why: "not rendered" };
     if (r.top < 0 || r.bottom > window.innerHeight || r.left < 0 || r.right > window.innerWidth)
       return { ok: false, why: "outside the viewport " + JSON.stringify(r) + " in " + window.innerHeight };
     for (let p = el.parentElement; p; p = p.parentElement) {
       const s = getComputedStyle(p);
       if (!/(auto|scroll|hidden)/.test(s.overflowY)) continue;
       const pr = p.getBoundingClientRect();
       if (r.top < pr.top - 1 || r.bottom > pr.bottom + 1) return { ok: false, why: "scrolled out of " + p.className };
     }
     const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
     if (!top || !(el === top || el.contains(top))) return { ok: false, why: "covered by " + (top && top.className) };
     return { ok: true };`,
    [css],
  );
}

async function assertInView(app, css) {
  const v = await inView(app, css);
  assert.ok(v.ok, `${css} is visible without scrolling: ${v.why}`);
}

/** The value of the registration row `name` (redirect_uri, scopes, client). */
const registered = (app, name) =>
  app.exec("return document.querySelector(`[data-register='${arguments[0]}'] input`)?.value ?? null;", [name]);

/** Clicks `css` after scrolling it to the middle of its dialog (where no status note covers it). */
async function press(app, css) {
  await waitFor(`element ${css}`, () => app.exec("const e = document.querySelector(arguments[0]); e?.scrollIntoView({ block: 'center' }); return !!e;", [css]));
  await app.clickOn(css);
}

/** Waits until nothing matches `css`. */
const gone = (app, css) => waitFor(`${css} to go`, async () => !(await app.exec("return !!document.querySelector(arguments[0]);", [css])));

const escape = (app) =>
  app.exec("(document.activeElement ?? document.body).dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));");

/** Serves the repository's relay/ folder on 127.0.0.1, as any static host would. */
async function serveRelay() {
  const files = { "/relay/index.html": "text/html", "/relay/relay.js": "text/javascript", "/relay/relay.css": "text/css" };
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    const type = files[path];
    if (!type) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": type }).end(readFileSync(join(root, path.slice(1))));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${server.address().port}/relay/index.html`, stop: () => new Promise((r) => server.close(r)) };
}

for (const s of ["light", "dark"]) test(`tenants: created at the first start and from the sidebar, renamed, deleted with revocation (${s})`, { timeout: 300_000 }, async () => {
  scheme = s;
  const home = freshHome();
  const app = await AppSession.start({ GRANTKEEPER_HOME: home, BROWSER: testBrowser, GK_TEST_BROWSER_ACTION: "approve", ...colorSchemeEnv(scheme) });
  try {
    await app.waitText("[data-welcome-keychain]", 60_000);
    await resize(app, 960, 600);
    await app.type("[data-welcome-tenant]", "Acme Corp");
    await app.clickOn("[data-welcome-create]");
    await app.waitText("[data-welcome-created]");
    await app.clickOn("[data-welcome-demo]");
    await app.waitText("[data-welcome-demo-ready]", 30_000);
    await app.clickOn("[data-welcome-done]");
    await app.waitContent('[data-tenant="acme-corp"]', /Acme Corp/);

    // A second tenant from the sidebar; an empty name is refused next to the field.
    await app.clickOn('[data-action="new-tenant"]');
    await app.clickOn('[data-new-tenant] [data-action="create-tenant"]');
    assert.match(await app.waitText('[data-field-error="new_tenant"]'), /Give the tenant a name/);
    await assertInView(app, '[data-field-error="new_tenant"]');
    await app.type('[data-new-tenant] input[name="new_tenant"]', "Globex");
    await app.clickOn('[data-new-tenant] [data-action="create-tenant"]');
    await app.waitContent('[data-tenant="globex"]', /Globex/);
    assert.equal(await app.waitText("main h1"), "Globex");
    assert.deepEqual(json(home, ["tenant", "list"]).map((t) => t.tenant.slug).sort(), ["acme-corp", "globex"]);

    // A connection in Acme Corp through the demo provider, to be revoked when the tenant goes.
    await app.clickOn('[data-tenant="acme-corp"]');
    await app.clickOn('[data-action="connect"]');
    await app.choose('[data-wizard] select[name="tenant"]', "Acme Corp");
    await app.choose('[data-wizard] select[name="provider_app"]', "demo");
    await app.type('[data-wizard] input[name="name"]', "books");
    await app.clickOn('[data-action="open-browser"]');
    await app.waitMatch('[data-connection="books"]', /Active/, 90_000);

    // Renamed in the tenant's settings: the slug stays.
    await app.clickOn('[data-action="tenant-settings"]');
    await app.waitText("[data-tenant-settings]");
    await shots(app, "tenant-settings");
    await app.type('[data-tenant-settings] input[name="tenant_name"]', "Acme Holdings");
    await app.clickOn('[data-action="rename-tenant"]');
    await app.waitContent('[data-tenant="acme-corp"]', /Acme Holdings/);
    assert.equal(json(home, ["tenant", "list"]).find((t) => t.tenant.slug === "acme-corp").tenant.name, "Acme Holdings");
    const renamed = json(home, ["history", "--kind", "config_changed"]).filter((e) => e.detail?.change === "tenant_renamed");
    assert.deepEqual(renamed.map((e) => e.detail.name), ["Acme Holdings"], "the rename is recorded");

    // Deleted: the confirmation says it revokes and crypto-shreds; the demo provider confirms.
    await press(app, '[data-action="delete-tenant"]');
    const fate = await app.waitText("[data-tenant-fate]");
    assert.match(fate, /1 grant is revoked at the providers/);
    assert.match(fate, /crypto-shredded/);
    await shots(app, "tenant-delete-confirm");
    await app.clickOn("[data-confirm-delete-tenant] [data-confirm]");
    const note = await app.waitMatch('[role="status"]', /Deleted tenant/, 60_000);
    assert.match(note, /1 of 1 connection revoked at the provider/);
    await waitFor("the tenant gone from the sidebar", async () => !(await app.exec('return !!document.querySelector(\'[data-tenant="acme-corp"]\');')));
    assert.deepEqual(json(home, ["tenant", "list"]).map((t) => t.tenant.slug), ["globex"]);
    const deleted = json(home, ["history", "--kind", "tenant_deleted"]);
    assert.equal(deleted.length, 1, "the deletion is recorded");
  } finally {
    await app.stop();
  }
});

/** A private_key_jwt app added in the wizard with the user's RSA key file (the path field): the
 * public JWK is shown before the sign-in (no private member in the DOM), the sign-in works with
 * it, and the tenant settings show and export the same JWK. */
async function privateKeyJwtApp(app, { home, work, idp, keyFile, rsaJwk }) {
  await app.clickOn('[data-tenant-settings] [data-action="close"]');
  await gone(app, "[data-tenant-settings]");
  await app.clickOn('[data-action="connect"]');
  await app.clickOn('[data-wizard] [data-source="issuer"]');
  await app.choose('[data-wizard] select[name="preset"]', "OpenID Connect (generic)");
  await app.type('[data-wizard] input[name="issuer"]', idp.issuer);
  await app.type('[data-wizard] input[name="app_name"]', "idp-key");
  await app.type('[data-wizard] input[name="client_id"]', "gk-window-key");
  await app.choose('[data-wizard] select[name="client_auth"]', "(private_key_jwt)");
  await app.type('[data-wizard] input[name="key_file"]', keyFile);
  await app.type('[data-wizard] input[name="name"]', "crm-key");
  // Saving registers the app and stops before the browser: the JWK to register is shown.
  await app.clickOn('[data-action="open-browser"]');
  const shown = JSON.parse(await app.waitText('[data-wizard] [data-material-text="jwks"]', 60_000));
  const jwk = shown.keys[0];
  assert.deepEqual([jwk.kty, jwk.n, jwk.e, jwk.kid, jwk.alg], ["RSA", rsaJwk.n, rsaJwk.e, rsaJwk.kid, "PS256"]);
  for (const member of ["d", "p", "q", "dp", "dq", "qi"]) assert.ok(!(member in jwk), `no "${member}" in the JWK`);
  const dom = await app.source();
  assert.doesNotMatch(dom, /&quot;d&quot;|"d"\s*:/, "no private exponent anywhere in the DOM");
  assert.match(await app.waitText('[data-action="open-browser"]'), /Open browser to sign in/);
  await app.exec("document.querySelector('[data-public-material]').scrollIntoView({ block: 'center' });");
  await app.screenshot(`wizard-private-key-jwt-${scheme}-960x600`);
  const [added] = json(home, ["provider", "apps", "acme-corp"]).filter((a) => a.name === "idp-key");
  assert.equal(added.client_auth, "private_key_jwt");
  assert.deepEqual(json(home, ["list"]), [], "no sign-in before the key is registered");

  // The provider checks the PS256 assertion against the JWK it was given.
  await app.clickOn('[data-action="open-browser"]');
  await app.waitMatch('[data-connection="crm-key"]', /Active/, 90_000);
  assert.equal((await idp.stats()).token_errors.authorization_code, 0);

  // The tenant settings show the same JWK, and export it through the save dialog's test answer.
  await app.clickOn('[data-tenant="acme-corp"]');
  await app.clickOn('[data-action="tenant-settings"]');
  await press(app, '[data-provider-app="idp-key"] [data-action="edit-app"]');
  const again = JSON.parse(await app.waitText('[data-app-editor="idp-key"] [data-material-text="jwks"]', 30_000));
  assert.deepEqual(again, shown);
  await press(app, '[data-app-editor="idp-key"] [data-export="jwks"]');
  const saved = await app.waitMatch("[data-material-status]", /Saved to/);
  const path = join(work, "idp-key-public-jwks.json");
  assert.ok(saved.includes(path), saved);
  assert.deepEqual(JSON.parse(readFileSync(path, "utf8")), shown);
  const pem = readFileSync(keyFile, "utf8");
  const body = pem.split("\n").filter((l) => l && !l.startsWith("-----")).join("");
  // The PEM's tail holds the private CRT values (its head holds the public modulus).
  assert.ok(!(await app.source()).includes(body.slice(-90, -10)), "no part of the private key in the DOM");
}

for (const s of ["light", "dark"]) test(`the wizard shows what to register first; errors in view; Esc asks; apps edited and deleted${s === "light" ? "; a private_key_jwt app with an RSA key file" : ""} (${s})`, { timeout: 400_000 }, async () => {
  scheme = s;
  // The user's own RSA key (PKCS #1 PEM); the provider knows only its public JWK, computed here
  // by Node (not by Grantkeeper), and takes PS256 assertions only.
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const { n, e } = createPublicKey(privateKey).export({ format: "jwk" });
  // Its key id as the provider selects it: the RFC 7638 thumbprint.
  const kid = createHash("sha256").update(JSON.stringify({ e, kty: "RSA", n })).digest("base64url");
  const rsaJwk = { kty: "RSA", n, e, kid };
  const idp = await startIdp({ extraClients: [{
    client_id: "gk-window-key",
    application_type: "native",
    token_endpoint_auth_method: "private_key_jwt",
    token_endpoint_auth_signing_alg: "PS256",
    jwks: { keys: [rsaJwk] },
    redirect_uris: ["http://127.0.0.1/callback"],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
  }] });
  const home = freshHome();
  const work = mkdtempSync(join(tmpdir(), "gk-setup-e2e-"));
  const keyFile = join(work, "client-key.pem");
  writeFileSync(keyFile, privateKey.export({ format: "pem", type: "pkcs1" }));
  const actionFile = join(work, "browser-action");
  writeFileSync(actionFile, "ignore");
  cli(home, ["tenant", "add", "Acme Corp"]);
  const app = await AppSession.start({
    GRANTKEEPER_HOME: home,
    ...colorSchemeEnv(scheme),
    BROWSER: testBrowser,
    GK_TEST_BROWSER_ACTION_FILE: actionFile,
    GK_TEST_BROWSER_TIMEOUT_MS: "20000",
    GK_TEST_SAVE_DIALOG_DIR: work,
  });
  try {
    await app.waitContent('[data-tenant="acme-corp"]', /Acme Corp/, 60_000);
    await resize(app, 960, 600);
    await app.clickOn('[data-action="connect"]');
    await app.waitText("[data-wizard]");
    // An untouched form closes on Esc without asking.
    await escape(app);
    await waitFor("the wizard to close", async () => !(await app.exec("return !!document.querySelector('[data-wizard]');")));

    // A provider that matches the port: the exact URI with the port, before the browser opens.
    await app.clickOn('[data-action="connect"]');
    await app.choose('[data-wizard] select[name="preset"]', "Salesforce (production)");
    await waitFor("the redirect URI", async () => (await registered(app, "redirect_uri")) === "http://127.0.0.1:8765/callback");
    assert.match(await registered(app, "scopes"), /refresh_token/);
    assert.match(await registered(app, "client"), /Public client/);
    await app.exec("document.querySelector('[data-register-values]').scrollIntoView({ block: 'center' });");
    await shots(app, "wizard-register-values");

    // The error of a missing client id is next to its field, in view, with the focus.
    await app.clickOn('[data-action="open-browser"]');
    assert.match(await app.waitText('[data-field-error="client_id"]'), /client id/);
    await assertInView(app, '[data-field-error="client_id"]');
    assert.equal(await app.exec("return document.activeElement?.name;"), "client_id");
    await app.screenshot(`wizard-error-in-view-${scheme}-960x600`);

    // A standard server by its issuer: the redirect URI on any port, with its path.
    await app.clickOn('[data-wizard] [data-source="issuer"]');
    await app.choose('[data-wizard] select[name="preset"]', "OpenID Connect (generic)");
    await app.type('[data-wizard] input[name="issuer"]', idp.issuer);
    await app.type('[data-wizard] input[name="app_name"]', "idp");
    await app.type('[data-wizard] input[name="client_id"]', "grantkeeper-test");
    await app.type('[data-wizard] input[name="extra_scopes"]', "api:read");
    await app.type('[data-wizard] input[name="name"]', "crm");
    await waitFor("the loopback redirect URI", async () => (await registered(app, "redirect_uri")) === "http://127.0.0.1/callback");
    // The scopes follow the typed field as the URI does (once rendered).
    await waitFor("the scopes to register", async () => /api:read/.test(await registered(app, "scopes")));

    // Esc on a changed form asks first; "Cancel" keeps it.
    await escape(app);
    assert.match(await app.waitText("[data-confirm-close]"), /Discard this form/);
    await app.clickOn("[data-confirm-close] [data-cancel]");
    await gone(app, "[data-confirm-close]");
    assert.equal(await app.exec("return document.querySelector('[data-wizard] input[name=\"name\"]').value;"), "crm");

    // Mid-sign-in (the user has not approved yet), Esc asks before stopping the sign-in.
    await app.clickOn('[data-action="open-browser"]');
    await app.waitText('[data-wizard-state="waiting"]', 60_000);
    await escape(app);
    assert.match(await app.waitText("[data-confirm-close]"), /Stop this sign-in\?[\s\S]*still running/);
    await shots(app, "wizard-esc-mid-sign-in");
    await app.clickOn("[data-confirm-close] [data-cancel]");
    await gone(app, "[data-confirm-close]");
    await app.waitText('[data-wizard-state="waiting"]');
    await app.clickOn('[data-wizard] [data-action="cancel"]');
    await app.waitText('[data-wizard-state="form"]');
    writeFileSync(actionFile, "approve");
    await app.clickOn('[data-action="open-browser"]');
    await app.waitMatch('[data-connection="crm"]', /Active/, 90_000);

    // The app edited in the tenant's settings: a new client id, a secret and a fixed port.
    await app.clickOn('[data-tenant="acme-corp"]');
    await app.clickOn('[data-action="tenant-settings"]');
    await press(app, '[data-provider-app="idp"] [data-action="edit-app"]');
    await app.type('[data-app-editor="idp"] input[name="client_id"]', "grantkeeper-other");
    await app.clickOn('[data-app-editor="idp"] input[name="secret_choice"][value="replace"]');
    await app.type('[data-app-editor="idp"] input[name="client_secret"]', "s3cret-from-window");
    await app.type('[data-app-editor="idp"] input[name="port"]', "8766");
    await waitFor("the fixed-port URI", async () => (await registered(app, "redirect_uri")) === "http://127.0.0.1:8766/callback");
    assert.match(await registered(app, "client"), /Confidential/);
    // A relay redirect without its page: the error is at the relay field, in view, naming no flag.
    await app.choose('[data-app-editor="idp"] select[name="redirect"]', "Relay page");
    await press(app, '[data-action="save-app"]');
    const relayError = await app.waitText('[data-app-editor] [data-field-error="relay_url"]');
    assert.doesNotMatch(relayError, /--/);
    await assertInView(app, '[data-app-editor] [data-field-error="relay_url"]');
    await shots(app, "provider-app-edit");
    await app.choose('[data-app-editor="idp"] select[name="redirect"]', "Loopback");
    // The values to register follow the choice (and the form grows) before Save is pressed.
    await waitFor("the loopback URI again", async () => (await registered(app, "redirect_uri")) === "http://127.0.0.1:8766/callback");
    await press(app, '[data-action="save-app"]');
    const updated = await app.waitMatch('[role="status"]', /Updated provider app idp/);
    assert.match(updated, /client id, client secret, port/);
    assert.match(updated, /crm needs a new consent/);
    let stored = json(home, ["provider", "apps", "acme-corp"]).find((a) => a.name === "idp");
    assert.deepEqual([stored.client_id, stored.has_client_secret, stored.redirect_port], ["grantkeeper-other", true, 8766]);
    assert.ok(!(await app.source()).includes("s3cret-from-window"), "the secret left the DOM");

    // Back to the registered client; the secret removed (a public client again).
    await press(app, '[data-provider-app="idp"] [data-action="edit-app"]');
    await app.type('[data-app-editor="idp"] input[name="client_id"]', "grantkeeper-test");
    await app.clickOn('[data-app-editor="idp"] input[name="secret_choice"][value="remove"]');
    await app.type('[data-app-editor="idp"] input[name="port"]', "");
    await waitFor("a public client", async () => /Public client/.test(await registered(app, "client")));
    await press(app, '[data-action="save-app"]');
    await app.waitMatch('[role="status"]', /Updated provider app idp: client id, client secret, port/);
    stored = json(home, ["provider", "apps", "acme-corp"]).find((a) => a.name === "idp");
    assert.deepEqual([stored.client_id, stored.has_client_secret, stored.redirect_port], ["grantkeeper-test", false, null]);
    const changes = json(home, ["history", "--kind", "config_changed"]).filter((e) => e.detail?.change === "provider_app_edited");
    assert.equal(changes.length, 2, "each edit is an event");

    // Deleted: the confirmation states the connection's fate; the provider confirms its revocation.
    await press(app, '[data-provider-app="idp"] [data-action="delete-app"]');
    assert.match(await app.waitText("[data-app-fate]"), /1 connection uses it \(crm\): each is revoked at the provider, then deleted with it/);
    await shots(app, "provider-app-delete-confirm");
    await app.clickOn("[data-confirm-delete-app] [data-confirm]");
    assert.match(await app.waitMatch('[role="status"]', /Deleted provider app idp/, 60_000), /1 of 1 connection revoked at the provider/);
    assert.deepEqual(json(home, ["provider", "apps", "acme-corp"]), []);
    const appDeleted = json(home, ["history", "--kind", "config_changed"]).filter((e) => e.detail?.change === "provider_app_deleted");
    assert.equal(appDeleted.length, 1, "the deletion is recorded");
    assert.deepEqual(json(home, ["list"]), []);
    assert.ok((await idp.stats()).revocations >= 1, "the provider revoked the grant");
    if (scheme === "light") await privateKeyJwtApp(app, { home, work, idp, keyFile, rsaJwk });
  } catch (e) {
    await app.screenshot("failed-setup-window").catch(() => {});
    throw e;
  } finally {
    await app.stop();
    await idp.stop();
  }
});

for (const s of ["light", "dark"]) test(`an HTTPS-only provider connects through the relay page from the window (${s})`, { timeout: 300_000 }, async () => {
  scheme = s;
  const relay = await serveRelay();
  // A client whose only registered redirect is the relay page (as at Intuit or Slack).
  const idp = await startIdp({
    extraScopes: ["com.intuit.quickbooks.accounting"],
    extraClients: [{
      client_id: "grantkeeper-relay",
      client_secret: "relay-test-secret",
      application_type: "native",
      token_endpoint_auth_method: "client_secret_basic",
      redirect_uris: ["http://127.0.0.1/relay/index.html"],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    }],
  });
  const home = freshHome();
  cli(home, ["tenant", "add", "Acme Corp"]);
  // An existing app of the same kind, added without a relay page (the dead end of before).
  execCli(home, ["provider", "add", "acme-corp/qb-old", "--preset", "quickbooks", "--issuer", idp.issuer,
    "--client-id", "grantkeeper-relay", "--client-secret", "--scopes", "com.intuit.quickbooks.accounting openid offline_access"], "relay-test-secret\n");
  const app = await AppSession.start({ GRANTKEEPER_HOME: home, BROWSER: testBrowser, GK_TEST_BROWSER_ACTION: "approve", ...colorSchemeEnv(scheme) });
  try {
    await app.waitContent('[data-tenant="acme-corp"]', /Acme Corp/, 60_000);
    await resize(app, 960, 600);

    // A new app: the preset starts without a redirect the provider takes; the relay field says why.
    await app.clickOn('[data-action="connect"]');
    await app.choose('[data-wizard] select[name="provider_app"]', "New provider app");
    await app.clickOn('[data-wizard] [data-source="issuer"]');
    // Slack: HTTPS redirects only, so the relay page is asked for at its field, with what to host.
    await app.choose('[data-wizard] select[name="preset"]', "Slack (bot token)");
    const slack = await app.waitText('[data-wizard] [data-field-error="relay_url"]');
    assert.match(slack, /only HTTPS redirect URIs[\s\S]*relay\//);
    assert.equal(await registered(app, "redirect_uri"), null, "no redirect URI to register until the relay page is known");
    await app.choose('[data-wizard] select[name="redirect"]', "Relay page");
    await app.type('[data-wizard] input[name="relay_url"]', "https://relay.example.com/grantkeeper/");
    await waitFor("Slack's redirect URI", async () => (await registered(app, "redirect_uri")) === "https://relay.example.com/grantkeeper/");
    await app.type('[data-wizard] input[name="relay_url"]', "");
    // The provider this test can sign in to, Intuit-style (HTTPS only, a client secret).
    await app.choose('[data-wizard] select[name="preset"]', "Intuit QuickBooks Online");
    const why = await app.waitText('[data-wizard] [data-field-error="relay_url"]');
    assert.match(why, /only HTTPS redirect URIs/);
    assert.match(why, /relay\//);
    assert.doesNotMatch(why, /--/);
    await app.choose('[data-wizard] select[name="redirect"]', "Relay page");
    await app.type('[data-wizard] input[name="relay_url"]', relay.url);
    await waitFor("the relay page as redirect URI", async () => (await registered(app, "redirect_uri")) === relay.url);
    await app.type('[data-wizard] input[name="issuer"]', idp.issuer);
    await app.type('[data-wizard] input[name="app_name"]', "qb");
    await app.type('[data-wizard] input[name="client_id"]', "grantkeeper-relay");
    await app.type('[data-wizard] input[name="client_secret"]', "relay-test-secret");
    await app.type('[data-wizard] input[name="extra_scopes"]', "openid offline_access");
    await app.type('[data-wizard] input[name="name"]', "books");
    await waitFor("a confidential client", async () => /Confidential/.test(await registered(app, "client")));
    await app.exec("document.querySelector('[data-register-values]').scrollIntoView({ block: 'center' });");
    await shots(app, "wizard-relay");
    await app.clickOn('[data-action="open-browser"]');
    await app.waitMatch('[data-connection="books"]', /Active/, 90_000);

    // The existing app gets its relay page from the wizard.
    await app.clickOn('[data-action="connect"]');
    await app.choose('[data-wizard] select[name="provider_app"]', "qb-old");
    assert.match(await app.waitText('[data-wizard] [data-field-error="relay_url"]'), /relay page/);
    await app.choose('[data-wizard] select[name="redirect"]', "Relay page");
    await app.type('[data-wizard] input[name="relay_url"]', relay.url);
    await app.type('[data-wizard] input[name="name"]', "books-2");
    await waitFor("the relay page as redirect URI", async () => (await registered(app, "redirect_uri")) === relay.url);
    await app.clickOn('[data-action="open-browser"]');
    await app.waitMatch('[data-connection="books-2"]', /Active/, 90_000);
    const old = json(home, ["provider", "apps", "acme-corp"]).find((a) => a.name === "qb-old");
    assert.deepEqual([old.redirect_mode, old.relay_url], ["relay", relay.url]);
    // Both grants work: a token comes back for each.
    for (const c of ["books", "books-2"]) assert.ok(cli(home, ["token", `acme-corp/${c}`]).trim().length > 10);
  } finally {
    await app.stop();
    await idp.stop();
    await relay.stop();
  }
});

/** Runs the CLI with `input` on stdin. */
function execCli(home, args, input) {
  return execFileSync(cliBin, args, { env: { ...process.env, GRANTKEEPER_HOME: home }, input, encoding: "utf8", timeout: 60_000 });
}

test("demo mode: the values to register, and a fixed port set in the window is the one sent", { timeout: 240_000 }, async () => {
  const home = freshHome();
  const port = await freePort();
  const log = join(mkdtempSync(join(tmpdir(), "gk-setup-demo-")), "browser.jsonl");
  const app = await AppSession.start(
    { GRANTKEEPER_HOME: home, BROWSER: testBrowser, GK_TEST_BROWSER_ACTION: "approve", GK_TEST_BROWSER_LOG: log },
    ["--demo"],
  );
  try {
    await app.waitContent('[data-tenant="demo-client"]', /Demo Client/);
    await resize(app, 960, 600);
    // The demo app is preselected: a public client, redirected to 127.0.0.1 on any port.
    await app.clickOn('[data-action="connect"]');
    await waitFor("the demo app's scopes", async () => /invoices\.read/.test(await registered(app, "scopes")));
    assert.equal(await registered(app, "redirect_uri"), "http://127.0.0.1/callback");
    assert.match(await registered(app, "client"), /Public client/);
    await escape(app); // untouched: closes without asking
    await gone(app, "[data-wizard]");

    // A fixed port set on the app in its tenant's settings...
    await app.clickOn('[data-tenant="demo-client"]');
    await app.clickOn('[data-action="tenant-settings"]');
    await press(app, '[data-provider-app="demo"] [data-action="edit-app"]');
    await app.type('[data-app-editor="demo"] input[name="port"]', String(port));
    await waitFor("the fixed-port URI", async () => (await registered(app, "redirect_uri")) === `http://127.0.0.1:${port}/callback`);
    await press(app, '[data-action="save-app"]');
    await app.waitMatch('[role="status"]', /Updated provider app demo: port/);
    await app.exec("document.querySelector('[data-tenant-settings] [data-action=\"close\"]').click();");
    await gone(app, "[data-tenant-settings]");

    // ...is what the wizard shows and what the sign-in sends.
    await app.clickOn('[data-action="connect"]');
    await waitFor("the fixed-port URI in the wizard", async () => (await registered(app, "redirect_uri")) === `http://127.0.0.1:${port}/callback`);
    await app.type('[data-wizard] input[name="name"]', "books");
    await app.clickOn('[data-action="open-browser"]');
    await app.waitMatch('[data-connection="books"]', /Active/, 90_000);
    const visits = readFileSync(log, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const sent = visits.map((v) => v.url ?? "").find((u) => u.includes("redirect_uri="));
    assert.ok(sent, "the browser opened the authorization request");
    assert.equal(new URL(sent).searchParams.get("redirect_uri"), `http://127.0.0.1:${port}/callback`);
  } finally {
    await app.stop();
  }
});
