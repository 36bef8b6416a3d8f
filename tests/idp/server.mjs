// A real OAuth 2.0 / OpenID Connect authorization server for the end-to-end tests, built on
// oidc-provider and listening on 127.0.0.1 only.
//
//   node tests/idp/server.mjs [--port N] [--config FILE]
//   (or GK_IDP_PORT / GK_IDP_CONFIG_FILE in the environment; port 0 picks a free one)
//
// Once listening it prints exactly one line on stdout,
//   {"issuer":"http://127.0.0.1:PORT","port":PORT}
// and serves until SIGTERM (or SIGINT). Everything else it says goes to stderr.
//
// The config file is JSON; every key is optional:
//   accessTokenTtl   seconds an access token (and a client_credentials token) lives, default 3600
//   refreshTokenTtl  seconds a refresh token lives, default 14 days
//   deviceCodeTtl    seconds a device code lives, default 600
//   refreshTokenRequiresOfflineAccess  true: refresh tokens only for a granted offline_access
//                    scope (which needs prompt=consent); default false: always, see below
//   refreshTokenReuseGraceSecs  seconds a rotated (consumed) refresh token stays usable, like
//                    Xero's 30-minute grace period: presented again within them, it is accepted
//                    and rotated once more (new access and refresh tokens; the grant lives on).
//                    Default 0: strict single use, a consumed refresh token presented again is
//                    reuse, and the provider revokes the whole grant (invalid_grant)
//   extraScopes      more static scopes to accept (e.g. a catalog preset's, for risk tests)
//   clients          client metadata (oidc-provider / RFC 7591 names) replacing the defaults below
//   extraClients     client metadata added to the defaults (or to `clients`)
//   idTokenSigningAlgValues  the algorithms clients may ask for in `id_token_signed_response_alg`
//                    (oidc-provider's enabledJWA), e.g. ["RS256", "HS256"] for ID tokens signed
//                    with the client secret; default oidc-provider's (asymmetric only)
//   clientAuthSigningAlgValues  the algorithms private_key_jwt assertions may be signed with
//                    (oidc-provider's enabledJWA, listed in discovery's
//                    token_endpoint_auth_signing_alg_values_supported), e.g. ["RS256", "ES256"];
//                    default oidc-provider's (PS256 among them)
//   requirePushedAuthorizationRequests  true: authorization requests are accepted only when
//                    pushed first (RFC 9126); discovery says so. Default false (PAR is offered)
//   dpop             true, or {"requireNonce": true}: DPoP (RFC 9449) on: discovery advertises
//                    dpop_signing_alg_values_supported, a token request with a proof gets a
//                    DPoP-bound token (and a public client's refresh token is bound too), and
//                    with requireNonce every proof must carry a server nonce (use_dpop_nonce
//                    says which), at the token endpoint and at the DPoP-protected resource
//                    /dpop/api (tests/idp/dpop-resource.mjs), which the server always serves.
//                    Default off
//   mtls             {"port": N, "key": FILE, "cert": FILE, "ca": FILE}: mutual TLS (RFC 8705) on:
//                    the same server also listens with TLS on 127.0.0.1:N (0 picks a free port)
//                    with the certificate and key given (signed by the test's CA), asking each
//                    client for its certificate (checked against `ca` for tls_client_auth; a
//                    self-signed one is matched by the client's registered x5c); discovery
//                    names the TLS listener's endpoints in mtls_endpoint_aliases and offers
//                    tls_client_certificate_bound_access_tokens. The ready line then also has
//                    "mtls": "https://127.0.0.1:N". Default off
//
// It also serves a bearer-protected API under /resource/ (see resource.mjs).
// Besides the OAuth endpoints, the same server answers a small test-control surface:
//   GET  /__test/stats        counters, see `newStats()` below
//   POST /__test/reset-stats  zeroes them
//   POST /__test/stall-token {"ms": N}
//                             a provider that hangs: from now on every token endpoint request is
//                             held N ms before it is handled (and then answered normally).
//                             {"ms": 0} ends the stall; requests still held then are dropped
//                             without an answer (their connection is closed, before they reach
//                             the provider: no token was issued or rotated), like a provider that
//                             never answered. Answers {"ms": N, "held": requests dropped or held}
//   POST /__test/fail-revocation {"status": S}
//                             a provider that refuses revocations: from now on the revocation
//                             endpoint answers HTTP S (e.g. 503) with a JSON error and revokes
//                             nothing. {"status": 0} restores normal revocation
import { X509Certificate, generateKeyPairSync, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { parseArgs } from "node:util";
import { resource } from "./resource.mjs";

import { dpopResource } from "./dpop-resource.mjs";

// oidc-provider prints its development notices with console.info, i.e. on stdout, which must carry
// nothing but the ready line: send all console chatter to stderr.
console.log = console.info = console.debug = console.error;

const { default: Provider, errors } = await import("oidc-provider");
// oidc-provider's own in-memory storage (the package has no exports map, so its files can be
// imported), wrapped below for the refresh token reuse grace period.
const { createMemoryAdapter } = await import("oidc-provider/lib/adapters/memory_adapter.js");

const HOST = "127.0.0.1";

/** The clients every test can use unless the config file replaces them. */
const DEFAULT_CLIENTS = [
  {
    // Grantkeeper as a public native app: loopback redirect on any port (RFC 8252 §7.3), PKCE.
    client_id: "grantkeeper-test",
    client_name: "Grantkeeper (test)",
    application_type: "native",
    token_endpoint_auth_method: "none",
    redirect_uris: ["http://127.0.0.1/callback"],
    grant_types: ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
    response_types: ["code"],
  },
  {
    // The same app registered as a confidential client (secret sent in the form body).
    client_id: "grantkeeper-confidential",
    client_name: "Grantkeeper (confidential test)",
    client_secret: "confidential-test-secret",
    application_type: "native",
    token_endpoint_auth_method: "client_secret_post",
    redirect_uris: ["http://127.0.0.1/callback"],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
  },
  {
    // A machine client for the client credentials grant (secret in HTTP Basic).
    client_id: "grantkeeper-service",
    client_name: "Grantkeeper (service test)",
    client_secret: "service-test-secret",
    token_endpoint_auth_method: "client_secret_basic",
    redirect_uris: [],
    grant_types: ["client_credentials"],
    response_types: [],
    scope: "api:read api:write",
  },
];

const GRANT_TYPE_NAMES = {
  authorization_code: "authorization_code",
  refresh_token: "refresh_token",
  "urn:ietf:params:oauth:grant-type:device_code": "device_code",
  client_credentials: "client_credentials",
};

function newStats() {
  const perGrant = () => ({ authorization_code: 0, refresh_token: 0, device_code: 0, client_credentials: 0 });
  return {
    authorization_requests: 0, // hits on the authorization endpoint (not the resume after login)
    token_requests: perGrant(), // every token endpoint request, by grant type, whatever the outcome
    token_errors: perGrant(), // of those, the ones answered with an error
    refresh_reuse_detected: 0, // an already rotated refresh token was presented (grant revoked)
    refresh_reuse_within_grace: 0, // ... within refreshTokenReuseGraceSecs, and accepted
    refresh_durations_ms: [], // how long the server took to answer each refresh_token request
    grants_revoked: 0, // grants revoked for any reason (revocation, reuse detection)
    revocations: 0, // successful RFC 7009 revocation requests
    introspections: 0, // successful RFC 7662 introspection requests
    pushed_authorization_requests: 0, // successful RFC 9126 pushed authorization requests
    device_authorizations: 0, // successful RFC 8628 device authorization requests
    token_requests_stalled: 0, // token endpoint requests held by /__test/stall-token
    token_requests_dropped: 0, // ... of those, dropped unanswered when the stall ended
    revocations_refused: 0, // revocation requests refused by /__test/fail-revocation
    dpop_resource_ok: 0, // requests /dpop/api answered (token and proof checked)
    dpop_resource_refused: 0, // ... refused with 401 (no proof, a bad one, a bearer token, …)
    dpop_resource_nonce_asked: 0, // ... of those, refused to ask for a nonce (use_dpop_nonce)
    dpop_proofs: {}, // successful requests with a DPoP header, by route (token, revocation, …)
  };
}

function readConfig() {
  const { values } = parseArgs({
    options: { port: { type: "string" }, config: { type: "string" } },
    strict: true,
  });
  const port = Number(values.port ?? process.env.GK_IDP_PORT ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port: ${values.port}`);
  const file = values.config ?? process.env.GK_IDP_CONFIG_FILE;
  const config = file ? JSON.parse(readFileSync(file, "utf8")) : {};
  return { port, config };
}

const epochSecs = () => Math.floor(Date.now() / 1000);

/**
 * Storage for `refreshTokenReuseGraceSecs` (oidc-provider v9): its refresh_token grant refuses a
 * refresh token whose stored `consumed` is set (reuse: the grant is revoked), so within the grace
 * period `find` hides the mark, and `consume` keeps the time of the first consumption, which
 * starts the period. Every other model, and every other operation, is oidc-provider's memory
 * storage unchanged.
 */
function graceAdapter(graceSecs, clockTolerance, stats) {
  const memory = createMemoryAdapter(clockTolerance);
  return (model) => {
    const inner = memory(model);
    if (model !== "RefreshToken") return inner;
    return {
      upsert: (id, payload, expiresIn) => inner.upsert(id, payload, expiresIn),
      destroy: (id) => inner.destroy(id),
      revokeByGrantId: (grantId) => inner.revokeByGrantId(grantId),
      findByUid: (uid) => inner.findByUid(uid),
      findByUserCode: (userCode) => inner.findByUserCode(userCode),
      async find(id) {
        const stored = await inner.find(id);
        if (!stored?.consumed || epochSecs() - stored.consumed >= graceSecs) return stored;
        const { consumed: _, ...unconsumed } = stored;
        return unconsumed;
      },
      // Only the refresh_token grant consumes refresh tokens (when rotating one).
      async consume(id) {
        const stored = await inner.find(id);
        if (stored?.consumed) {
          stats.current.refresh_reuse_within_grace += 1;
          return;
        }
        await inner.consume(id);
      },
    };
  };
}

function providerConfiguration(config, stats) {
  const accessTokenTtl = config.accessTokenTtl ?? 3600;
  const refreshTokenTtl = config.refreshTokenTtl ?? 14 * 24 * 3600;
  const reuseGraceSecs = config.refreshTokenReuseGraceSecs ?? 0;
  if (!Number.isInteger(reuseGraceSecs) || reuseGraceSecs < 0) {
    throw new Error(`refreshTokenReuseGraceSecs must be a whole number of seconds >= 0: ${reuseGraceSecs}`);
  }
  const clockTolerance = 15; // oidc-provider's default, stated because the grace storage needs it
  const clients = [...(config.clients ?? DEFAULT_CLIENTS), ...(config.extraClients ?? [])];

  return {
    clients,
    clockTolerance,
    // oidc-provider's default methods, and with mutual TLS the two certificate methods.
    clientAuthMethods: [
      "client_secret_basic",
      "client_secret_jwt",
      "client_secret_post",
      "private_key_jwt",
      "none",
      ...(config.mtls ? ["tls_client_auth", "self_signed_tls_client_auth"] : []),
    ],
    enabledJWA: {
      ...(config.idTokenSigningAlgValues ? { idTokenSigningAlgValues: config.idTokenSigningAlgValues } : {}),
      ...(config.clientAuthSigningAlgValues ? { clientAuthSigningAlgValues: config.clientAuthSigningAlgValues } : {}),
    },
    // With a grace period, refresh tokens live in the storage above; else in the default one.
    ...(reuseGraceSecs > 0 ? { adapter: graceAdapter(reuseGraceSecs, clockTolerance, stats) } : {}),
    // A fresh signing key per run; nothing outlives the process.
    jwks: { keys: [{ ...generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" }), kid: "test-rs256", use: "sig", alg: "RS256" }] },
    cookies: { keys: [randomBytes(32).toString("base64url")] },

    // The API scopes are plain static scopes (like `email`), so they can be requested without a
    // resource indicator and show up in the token response's `scope` and in introspection.
    scopes: ["openid", "profile", "email", "offline_access", "api:read", "api:write", ...(config.extraScopes ?? [])],
    claims: {
      openid: ["sub"],
      profile: ["name", "preferred_username"],
      email: ["email", "email_verified"],
    },
    // Any login works on the dev login page; the account is whatever was typed.
    async findAccount(_ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return { sub, name: sub, preferred_username: sub, email: `${sub}@example.test`, email_verified: true };
        },
      };
    },

    // Authorization code only: no implicit or hybrid flows.
    responseTypes: ["code"],
    // PKCE on every authorization code request (oidc-provider v9 only knows S256).
    pkce: { required: () => true },
    // Every client registered for the refresh_token grant gets a refresh token. (oidc-provider
    // follows OpenID Connect: offline_access is dropped from an authorization request unless it
    // also says prompt=consent, so that scope alone would make refresh tokens rare.) With
    // `refreshTokenRequiresOfflineAccess: true` in the config, that strict rule applies instead.
    async issueRefreshToken(_ctx, client, code) {
      if (!client.grantTypeAllowed("refresh_token")) return false;
      return !config.refreshTokenRequiresOfflineAccess || code.scopes.has("offline_access");
    },
    // Refresh tokens outlive the IdP's browser session (the test browser is thrown away each time).
    expiresWithSession: async () => false,
    // Every refresh returns a new refresh token; presenting a consumed one is "reuse": the
    // provider then revokes the whole grant and answers invalid_grant (unless within
    // refreshTokenReuseGraceSecs, see `graceAdapter`).
    rotateRefreshToken: true,

    // Grantkeeper is a desktop app, never a browser origin.
    clientBasedCORS: () => false,

    features: {
      devInteractions: { enabled: true }, // the login form and consent page the test browser clicks
      deviceFlow: { enabled: true },
      clientCredentials: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      // No resource servers: the API scopes are static scopes (see `scopes`).
      resourceIndicators: { enabled: false },
      // Off unless asked for: with it on, discovery offers DPoP and Grantkeeper binds its tokens.
      dPoP: {
        enabled: config.dpop !== undefined && config.dpop !== false,
        ...(config.dpop?.requireNonce ? { nonceSecret: randomBytes(32), requireNonce: () => true } : {}),
      },
      // With a TLS listener: client certificates authenticate clients and bind their tokens.
      mTLS: {
        enabled: config.mtls !== undefined,
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        selfSignedTlsClientAuth: true,
        getCertificate(ctx) {
          const peer = ctx.socket.getPeerCertificate?.();
          return peer?.raw ? new X509Certificate(peer.raw) : undefined;
        },
        // Verified against the test CA by the TLS listener (rejectUnauthorized is off so that
        // self-signed certificates reach oidc-provider, which matches them itself).
        certificateAuthorized: (ctx) => ctx.socket.authorized === true,
        certificateSubjectMatches(ctx, property, expected) {
          const cert = new X509Certificate(ctx.socket.getPeerCertificate().raw);
          if (property !== "tls_client_auth_subject_dn") return false;
          return cert.subject.split("\n").join(",") === expected;
        },
      },
      pushedAuthorizationRequests: {
        enabled: true,
        requirePushedAuthorizationRequests: config.requirePushedAuthorizationRequests === true,
      },
    },

    ttl: {
      AccessToken: accessTokenTtl,
      ClientCredentials: accessTokenTtl,
      RefreshToken: refreshTokenTtl,
      AuthorizationCode: 60,
      DeviceCode: config.deviceCodeTtl ?? 600,
      IdToken: 3600,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
    },

    // RFC 9207 `iss` in authorization responses is always on in oidc-provider v9, and discovery
    // advertises authorization_response_iss_parameter_supported: true.

    renderError(ctx, out) {
      ctx.type = "html";
      ctx.body = `<!DOCTYPE html><title>Error</title><h1>oops! something went wrong</h1><pre id="error">${JSON.stringify(out).replace(/</g, "&lt;")}</pre>`;
    },
  };
}

function isLoopback(address) {
  return address === "127.0.0.1" || address === "::1" || address === "::ffff:127.0.0.1";
}

/** The JSON body of a test-control request ({} when empty). */
async function jsonBody(req) {
  let text = "";
  for await (const chunk of req) text += chunk;
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A whole number >= 0 from a test-control body, or null. */
function count0(value) {
  return Number.isInteger(value) && value >= 0 ? value : null;
}

/**
 * The faults the test-control surface turns on: a stalling token endpoint and a refusing
 * revocation endpoint.
 */
function newFaults() {
  return {
    stallTokenMs: 0,
    /** Token requests being held: their release functions (true: handle it, false: drop it). */
    held: new Set(),
    revocationStatus: 0,
  };
}

/** Holds a token request for `faults.stallTokenMs`; false when the stall ended meanwhile. */
function stall(faults) {
  return new Promise((resolve) => {
    const release = (handle) => {
      clearTimeout(timer);
      faults.held.delete(release);
      resolve(handle);
    };
    const timer = setTimeout(() => release(true), faults.stallTokenMs);
    faults.held.add(release);
  });
}

/** Koa middleware: the /__test/ surface, the RFC 8414 alias, the faults and the counters. */
function testSurface(stats, faults) {
  return async function testSurfaceMiddleware(ctx, next) {
    if (ctx.path.startsWith("/__test/")) {
      if (!isLoopback(ctx.req.socket.remoteAddress)) ctx.throw(403);
      if (ctx.method === "GET" && ctx.path === "/__test/stats") {
        ctx.body = stats.current;
      } else if (ctx.method === "POST" && ctx.path === "/__test/reset-stats") {
        stats.current = newStats();
        ctx.body = stats.current;
      } else if (ctx.method === "POST" && ctx.path === "/__test/stall-token") {
        const ms = count0((await jsonBody(ctx.req))?.ms);
        if (ms === null) ctx.throw(400, 'expected {"ms": N} with N >= 0');
        faults.stallTokenMs = ms;
        const held = faults.held.size;
        if (ms === 0) for (const release of [...faults.held]) release(false);
        ctx.body = { ms, held };
      } else if (ctx.method === "POST" && ctx.path === "/__test/fail-revocation") {
        const status = count0((await jsonBody(ctx.req))?.status);
        if (status === null || (status !== 0 && (status < 400 || status > 599))) {
          ctx.throw(400, 'expected {"status": S} with S = 0 or an HTTP error status');
        }
        faults.revocationStatus = status;
        ctx.body = { status };
      } else {
        ctx.throw(404);
      }
      ctx.set("cache-control", "no-store");
      return;
    }

    // RFC 8414 metadata is the same document as OpenID discovery here.
    if (ctx.path === "/.well-known/oauth-authorization-server") ctx.path = "/.well-known/openid-configuration";

    if (ctx.method === "POST" && ctx.path === "/token" && faults.stallTokenMs > 0) {
      stats.current.token_requests_stalled += 1;
      if (!(await stall(faults))) {
        stats.current.token_requests_dropped += 1;
        ctx.respond = false;
        ctx.req.socket.destroy();
        return;
      }
    }
    if (ctx.method === "POST" && ctx.path === "/token/revocation" && faults.revocationStatus > 0) {
      stats.current.revocations_refused += 1;
      ctx.status = faults.revocationStatus;
      ctx.body = { error: "temporarily_unavailable", error_description: "revocation is refused for this test" };
      ctx.set("cache-control", "no-store");
      return;
    }

    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      count(ctx, stats.current, Number(process.hrtime.bigint() - started) / 1e6);
    }
  };
}

/**
 * Koa middleware: discovery names the TLS listener at `base` for each endpoint a client
 * authenticating with its certificate uses (RFC 8705 §5).
 */
function mtlsAliases(issuer, base) {
  return async function mtlsAliasesMiddleware(ctx, next) {
    await next();
    if (ctx.path !== "/.well-known/openid-configuration" || !ctx.body || typeof ctx.body !== "object") return;
    const aliases = {};
    for (const key of [
      "token_endpoint",
      "revocation_endpoint",
      "introspection_endpoint",
      "device_authorization_endpoint",
      "pushed_authorization_request_endpoint",
      "userinfo_endpoint",
    ]) {
      const url = ctx.body[key];
      if (typeof url === "string" && url.startsWith(issuer)) aliases[key] = base + url.slice(issuer.length);
    }
    ctx.body = { ...ctx.body, mtls_endpoint_aliases: aliases };
  };
}

function count(ctx, s, ms) {
  const route = ctx.oidc?.route;
  const ok = ctx.status >= 200 && ctx.status < 300;
  if (ok && route && ctx.get("dpop")) s.dpop_proofs[route] = (s.dpop_proofs[route] ?? 0) + 1;
  switch (route) {
    case "authorization":
      s.authorization_requests += 1;
      break;
    case "token": {
      const grant = GRANT_TYPE_NAMES[ctx.oidc.params?.grant_type ?? ctx.oidc.body?.grant_type];
      if (grant) {
        s.token_requests[grant] += 1;
        if (!ok) s.token_errors[grant] += 1;
        if (grant === "refresh_token") s.refresh_durations_ms.push(Math.round(ms * 100) / 100);
      }
      break;
    }
    case "revocation":
      if (ok) s.revocations += 1;
      break;
    case "introspection":
      if (ok) s.introspections += 1;
      break;
    case "pushed_authorization_request":
      if (ok) s.pushed_authorization_requests += 1;
      break;
    case "device_authorization":
      if (ok) s.device_authorizations += 1;
      break;
    default:
  }
}

async function main() {
  const { port, config } = readConfig();
  const stats = { current: newStats() };
  const faults = newFaults();

  // The issuer names the port, so listen first and build the provider once the port is known.
  const server = createServer();
  await new Promise((res, rej) => {
    server.once("error", rej);
    server.listen(port, HOST, res);
  });
  const actualPort = server.address().port;
  const issuer = `http://${HOST}:${actualPort}`;

  const provider = new Provider(issuer, providerConfiguration(config, stats));
  // The TLS listener for client certificates: the same provider on another port.
  let tls;
  if (config.mtls) {
    const file = (name) => readFileSync(config.mtls[name]);
    tls = createTlsServer({
      key: file("key"),
      cert: file("cert"),
      ca: [file("ca")],
      requestCert: true,
      rejectUnauthorized: false,
    });
    await new Promise((res, rej) => {
      tls.once("error", rej);
      tls.listen(config.mtls.port ?? 0, HOST, res);
    });
    provider.use(mtlsAliases(issuer, `https://${HOST}:${tls.address().port}`));
  }
  provider.use(resource(provider)); // the protected API under /resource/ (see resource.mjs)
  provider.use(testSurface(stats, faults));
  provider.use(dpopResource(provider, stats, { requireNonce: config.dpop?.requireNonce === true }));
  provider.on("grant.error", (_ctx, err) => {
    if (err instanceof errors.InvalidGrant && err.error_detail === "refresh token already used") {
      stats.current.refresh_reuse_detected += 1;
    }
  });
  provider.on("grant.revoked", () => {
    stats.current.grants_revoked += 1;
  });
  provider.on("server_error", (_ctx, err) => console.error("idp server_error:", err));
  server.on("request", provider.callback());
  tls?.on("request", provider.callback());

  const stop = () => {
    tls?.close();
    tls?.closeAllConnections();
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);

  const mtls = tls ? { mtls: `https://${HOST}:${tls.address().port}` } : {};
  process.stdout.write(`${JSON.stringify({ issuer, port: actualPort, ...mtls })}\n`);
}

main().catch((err) => {
  console.error("idp: failed to start:", err);
  process.exit(1);
});
