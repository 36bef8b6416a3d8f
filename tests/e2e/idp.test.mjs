// The test identity provider and the test user's browser, proven without Grantkeeper: discovery,
// a full authorization code + PKCE flow through headless Chromium, refresh token rotation with
// reuse detection, revocation, introspection, a denied consent, the device flow and client
// credentials.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import {
  alive, clients, pkcePair, readBrowserLog, runBrowser, startCallbackServer, startIdp, stopBrowsersFromLog, testBrowser,
} from "./idp.mjs";
import { sleep, waitFor } from "./lib.mjs";

const TIMEOUT = 90_000;

/** POSTs a form to `url`; returns { status, body } with the JSON body. */
async function postForm(url, form, headers = {}) {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form),
  });
  return { status: r.status, body: await r.json() };
}

/** Starts an IdP, a callback listener and (via `fn`) browsers; always stops them all. */
async function withIdp(config, fn) {
  const idp = await startIdp(config);
  const callback = await startCallbackServer();
  const browsers = [];
  try {
    await fn({
      idp,
      callback,
      browse: (url, opts) => {
        const b = runBrowser(url, opts);
        browsers.push(b);
        return b;
      },
    });
  } finally {
    await Promise.all(browsers.map((b) => b.stop()));
    await callback.stop();
    await idp.stop();
  }
}

function authorizeUrl(meta, redirectUri, { challenge, state, scope, extra = {} }) {
  const u = new URL(meta.authorization_endpoint);
  u.search = new URLSearchParams({
    response_type: "code",
    client_id: clients.native.client_id,
    redirect_uri: redirectUri,
    scope,
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...extra,
  }).toString();
  return u.href;
}

test("discovery advertises what Grantkeeper relies on", { timeout: TIMEOUT }, async () => {
  const idp = await startIdp();
  try {
    const meta = await idp.discovery();
    assert.equal(meta.issuer, idp.issuer);
    assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(meta.code_challenge_methods_supported, ["S256"]);
    assert.equal(meta.authorization_response_iss_parameter_supported, true);
    assert.equal(meta.revocation_endpoint, `${idp.issuer}/token/revocation`);
    assert.equal(meta.introspection_endpoint, `${idp.issuer}/token/introspection`);
    assert.equal(meta.device_authorization_endpoint, `${idp.issuer}/device/auth`);
    for (const g of ["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"]) {
      assert.ok(meta.grant_types_supported.includes(g), g);
    }
    for (const s of ["openid", "offline_access", "api:read", "api:write"]) {
      assert.ok(meta.scopes_supported.includes(s), s);
    }
    // RFC 8414 metadata is served too, with the same content.
    const r = await fetch(`${idp.issuer}/.well-known/oauth-authorization-server`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), meta);
  } finally {
    await idp.stop();
  }
});

test("authorization code + PKCE through the browser, rotation, reuse detection, revocation", { timeout: TIMEOUT }, async () => {
  await withIdp({ accessTokenTtl: 120 }, async ({ idp, callback, browse }) => {
    const meta = await idp.discovery();
    const { verifier, challenge } = pkcePair();
    const state = "st-approve";
    // offline_access is only granted with prompt=consent (OpenID Connect Core §11).
    const url = authorizeUrl(meta, callback.redirectUri, {
      challenge, state, scope: "openid offline_access api:read", extra: { prompt: "consent" },
    });

    const browser = browse(url, { action: "approve" });
    const cb = await callback.next();
    assert.equal(await browser.done, 0, "the browser exits by itself, successfully");

    assert.equal(cb.searchParams.get("state"), state);
    assert.equal(cb.searchParams.get("iss"), idp.issuer, "RFC 9207 iss in the authorization response");
    assert.equal(cb.searchParams.get("error"), null);
    const code = cb.searchParams.get("code");
    assert.ok(code);

    // The browser logged its path and screenshotted the pages it acted on.
    const log = readBrowserLog(browser.log);
    assert.ok(log.some((l) => l.event === "visit" && l.url.startsWith(callback.redirectUri)));
    assert.deepEqual(log.filter((l) => l.event === "final").map((l) => l.outcome), ["redirected"]);
    assert.deepEqual(log.filter((l) => l.event === "screenshot").map((l) => l.page), ["login", "consent", "redirect"]);
    assert.deepEqual(readdirSync(browser.shots).sort(), ["1.png", "2.png", "3.png"]);

    // Code for tokens, with the PKCE verifier.
    const tokenForm = { client_id: clients.native.client_id };
    const t1 = await postForm(meta.token_endpoint, {
      ...tokenForm, grant_type: "authorization_code", code, redirect_uri: callback.redirectUri, code_verifier: verifier,
    });
    assert.equal(t1.status, 200, JSON.stringify(t1.body));
    assert.ok(t1.body.access_token);
    assert.ok(t1.body.refresh_token);
    assert.ok(t1.body.id_token);
    assert.equal(t1.body.token_type, "Bearer");
    assert.equal(t1.body.expires_in, 120, "configured access token TTL");
    assert.deepEqual(t1.body.scope.split(" ").sort(), ["api:read", "offline_access", "openid"]);

    // The access token is live.
    const live = await postForm(meta.introspection_endpoint, { ...tokenForm, token: t1.body.access_token });
    assert.equal(live.body.active, true);
    assert.match(live.body.scope, /api:read/);

    // Refresh rotates the refresh token.
    const t2 = await postForm(meta.token_endpoint, { ...tokenForm, grant_type: "refresh_token", refresh_token: t1.body.refresh_token });
    assert.equal(t2.status, 200, JSON.stringify(t2.body));
    assert.ok(t2.body.access_token);
    assert.ok(t2.body.refresh_token);
    assert.notEqual(t2.body.refresh_token, t1.body.refresh_token);

    // The old one again is reuse: refused, and the provider revokes the whole grant.
    const reused = await postForm(meta.token_endpoint, { ...tokenForm, grant_type: "refresh_token", refresh_token: t1.body.refresh_token });
    assert.equal(reused.status, 400);
    assert.equal(reused.body.error, "invalid_grant");
    let stats = await idp.stats();
    assert.equal(stats.refresh_reuse_detected, 1);
    const afterReuse = await postForm(meta.token_endpoint, { ...tokenForm, grant_type: "refresh_token", refresh_token: t2.body.refresh_token });
    assert.equal(afterReuse.body.error, "invalid_grant", "reuse detection revoked the rotated token too");
    const at2 = await postForm(meta.introspection_endpoint, { ...tokenForm, token: t2.body.access_token });
    assert.equal(at2.body.active, false, "and the access tokens");

    // The code is single-use.
    const again = await postForm(meta.token_endpoint, {
      ...tokenForm, grant_type: "authorization_code", code, redirect_uri: callback.redirectUri, code_verifier: verifier,
    });
    assert.equal(again.body.error, "invalid_grant");

    stats = await idp.stats();
    assert.equal(stats.authorization_requests, 1);
    assert.deepEqual(stats.token_requests, { authorization_code: 2, refresh_token: 3, device_code: 0, client_credentials: 0 });
    assert.deepEqual(stats.token_errors, { authorization_code: 1, refresh_token: 2, device_code: 0, client_credentials: 0 });
    assert.equal(stats.introspections, 2);
    assert.equal(stats.grants_revoked, 1);
    await idp.resetStats();
    assert.equal((await idp.stats()).token_requests.refresh_token, 0);
  });
});

test("revocation makes the tokens inactive", { timeout: TIMEOUT }, async () => {
  await withIdp({}, async ({ idp, callback, browse }) => {
    const meta = await idp.discovery();
    const { verifier, challenge } = pkcePair();
    const url = authorizeUrl(meta, callback.redirectUri, { challenge, state: "st-revoke", scope: "openid api:write" });

    // replay: as approve, and the redirect URL is logged for the test to reuse.
    const browser = browse(url, { action: "replay" });
    const cb = await callback.next();
    assert.equal(await browser.done, 0);
    const redirect = readBrowserLog(browser.log).find((l) => l.event === "redirect");
    assert.equal(redirect.url, cb.href);

    const form = { client_id: clients.native.client_id };
    const t = await postForm(meta.token_endpoint, {
      ...form, grant_type: "authorization_code", code: cb.searchParams.get("code"), redirect_uri: callback.redirectUri, code_verifier: verifier,
    });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.ok(t.body.refresh_token, "a refresh token even without offline_access");
    assert.deepEqual(t.body.scope.split(" ").sort(), ["api:write", "openid"]);

    // Revoking the refresh token revokes the grant, so the access token dies with it.
    const rv = await fetch(meta.revocation_endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ ...form, token: t.body.refresh_token, token_type_hint: "refresh_token" }),
    });
    assert.equal(rv.status, 200);
    for (const token of [t.body.refresh_token, t.body.access_token]) {
      const i = await postForm(meta.introspection_endpoint, { ...form, token });
      assert.equal(i.status, 200);
      assert.deepEqual(i.body, { active: false });
    }
    const stats = await idp.stats();
    assert.equal(stats.revocations, 1);
    assert.equal(stats.introspections, 2);
  });
});

test("denied consent redirects with access_denied", { timeout: TIMEOUT }, async () => {
  await withIdp({}, async ({ idp, callback, browse }) => {
    const meta = await idp.discovery();
    const { challenge } = pkcePair();
    const url = authorizeUrl(meta, callback.redirectUri, { challenge, state: "st-deny", scope: "openid offline_access" });
    const browser = browse(url, { action: "deny" });
    const cb = await callback.next();
    assert.equal(await browser.done, 0);
    assert.equal(cb.searchParams.get("error"), "access_denied");
    assert.equal(cb.searchParams.get("state"), "st-deny");
    assert.equal(cb.searchParams.get("iss"), idp.issuer);
    assert.equal(cb.searchParams.get("code"), null);
  });
});

test("the authorization endpoint requires PKCE", { timeout: TIMEOUT }, async () => {
  await withIdp({}, async ({ idp, callback }) => {
    const meta = await idp.discovery();
    const u = new URL(meta.authorization_endpoint);
    u.search = new URLSearchParams({
      response_type: "code", client_id: clients.native.client_id, redirect_uri: callback.redirectUri, scope: "openid", state: "s",
    }).toString();
    const r = await fetch(u, { redirect: "manual" });
    assert.equal(r.status, 303);
    const back = new URL(r.headers.get("location"));
    assert.equal(back.origin + back.pathname, callback.redirectUri);
    assert.equal(back.searchParams.get("error"), "invalid_request");
    assert.match(back.searchParams.get("error_description"), /PKCE/);
  });
});

test("device flow approved in the browser", { timeout: TIMEOUT }, async () => {
  await withIdp({}, async ({ idp, browse }) => {
    const meta = await idp.discovery();
    const form = { client_id: clients.native.client_id };
    const da = await postForm(meta.device_authorization_endpoint, { ...form, scope: "openid offline_access api:read" });
    assert.equal(da.status, 200, JSON.stringify(da.body));
    assert.ok(da.body.verification_uri_complete);

    const pending = await postForm(meta.token_endpoint, {
      ...form, grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: da.body.device_code,
    });
    assert.equal(pending.body.error, "authorization_pending");

    const browser = browse(da.body.verification_uri_complete, { action: "approve" });
    assert.equal(await browser.done, 0);
    assert.deepEqual(readBrowserLog(browser.log).filter((l) => l.event === "final").map((l) => l.outcome), ["device-success"]);

    const t = await postForm(meta.token_endpoint, {
      ...form, grant_type: "urn:ietf:params:oauth:grant-type:device_code", device_code: da.body.device_code,
    });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.ok(t.body.access_token);
    assert.ok(t.body.refresh_token);
    const stats = await idp.stats();
    assert.equal(stats.device_authorizations, 1);
    assert.equal(stats.token_requests.device_code, 2);
    assert.equal(stats.token_errors.device_code, 1);
  });
});

test("client credentials for the service client", { timeout: TIMEOUT }, async () => {
  const idp = await startIdp({ accessTokenTtl: 30 });
  try {
    const meta = await idp.discovery();
    const basic = Buffer.from(`${clients.service.client_id}:${clients.service.client_secret}`).toString("base64");
    const t = await postForm(meta.token_endpoint, { grant_type: "client_credentials", scope: "api:read api:write" }, { authorization: `Basic ${basic}` });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.equal(t.body.expires_in, 30);
    assert.equal(t.body.scope, "api:read api:write");
    assert.equal(t.body.refresh_token, undefined);
    const bad = await postForm(meta.token_endpoint, { grant_type: "client_credentials" }, { authorization: `Basic ${Buffer.from("grantkeeper-service:wrong").toString("base64")}` });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.error, "invalid_client");
    assert.deepEqual((await idp.stats()).token_requests.client_credentials, 2);
  } finally {
    await idp.stop();
  }
});

test("test controls: a stalling token endpoint and refused revocations", { timeout: TIMEOUT }, async () => {
  const idp = await startIdp();
  try {
    const meta = await idp.discovery();
    const basic = { authorization: `Basic ${Buffer.from("grantkeeper-service:service-test-secret").toString("base64")}` };
    const ask = () => postForm(meta.token_endpoint, { grant_type: "client_credentials", scope: "api:read" }, basic);

    // Stalled: held; ending the stall drops the held request unanswered, before it is handled.
    assert.deepEqual(await idp.stallToken(20_000), { ms: 20_000, held: 0 });
    const started = Date.now();
    const held = ask().then(() => "answered", (e) => `dropped: ${e.cause?.code ?? e.message}`);
    await waitFor("the request to be held", async () => (await idp.stats()).token_requests_stalled === 1, 5_000);
    await sleep(500);
    assert.deepEqual(await idp.stallToken(0), { ms: 0, held: 1 });
    assert.match(await held, /^dropped/);
    assert.ok(Date.now() - started < 10_000);
    let stats = await idp.stats();
    assert.equal(stats.token_requests_dropped, 1);
    assert.equal(stats.token_requests.client_credentials, 0, "never reached the provider");
    // Not stalled any more; a short stall delays, then answers normally.
    assert.equal((await ask()).status, 200);
    await idp.stallToken(700);
    const t0 = Date.now();
    assert.equal((await ask()).status, 200);
    assert.ok(Date.now() - t0 >= 650);
    await idp.stallToken(0);

    // Refused revocations: the status asked for, and nothing revoked.
    const token = (await ask()).body.access_token;
    await idp.failRevocation(503);
    const refused = await postForm(meta.revocation_endpoint, { token, token_type_hint: "access_token" }, basic);
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error, "temporarily_unavailable");
    const still = await postForm(meta.introspection_endpoint, { token }, basic);
    assert.equal(still.body.active, true);
    await idp.failRevocation(0);
    const revoked = await fetch(meta.revocation_endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...basic },
      body: new URLSearchParams({ token, token_type_hint: "access_token" }),
    });
    assert.equal(revoked.status, 200);
    stats = await idp.stats();
    assert.equal(stats.revocations_refused, 1);
    assert.equal(stats.revocations, 1);
    await assert.rejects(idp.stallToken(-1), /HTTP 400/);
    await assert.rejects(idp.failRevocation(200), /HTTP 400/);
  } finally {
    await idp.stop();
  }
});

test("as $BROWSER it returns at once; ignore leaves the page open", { timeout: TIMEOUT }, async () => {
  await withIdp({}, async ({ idp, callback }) => {
    const meta = await idp.discovery();
    const { challenge } = pkcePair();
    const url = authorizeUrl(meta, callback.redirectUri, { challenge, state: "st-ignore", scope: "openid" });
    const log = join(mkdtempSync(join(tmpdir(), "gk-browser-")), "browser.jsonl");
    const env = { ...process.env, GK_TEST_BROWSER_ACTION: "ignore", GK_TEST_BROWSER_LOG: log };
    delete env.GK_TEST_BROWSER_WAIT;
    try {
      const started = Date.now();
      const { stdout, stderr } = await promisify(execFile)(testBrowser, [url], { env, timeout: 10_000 });
      assert.ok(Date.now() - started < 5_000, "the launcher does not wait for the browser");
      assert.equal(stdout, "");
      assert.equal(stderr, "");

      // The detached browser opens the login page, then does nothing.
      await waitFor("the browser to open the page", () => readBrowserLog(log).some((l) => l.event === "ignoring"), 30_000);
      await sleep(1_000);
      const lines = readBrowserLog(log);
      assert.ok(lines.some((l) => l.event === "visit" && l.url === url));
      assert.ok(!lines.some((l) => l.event === "visit" && l.url.startsWith(callback.redirectUri)));
      assert.equal((await idp.stats()).authorization_requests, 1);
      const { pid } = lines.find((l) => l.event === "start");
      assert.ok(alive(pid), "still running");
    } finally {
      await stopBrowsersFromLog(log);
    }
    const { pid } = readBrowserLog(log).find((l) => l.event === "start");
    assert.ok(!alive(pid), "stopped");
  });
});
