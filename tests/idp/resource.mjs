// A bearer-protected API on the test IdP, for the authenticating proxy's tests: every request
// under /resource/ needs `Authorization: Bearer <access token>` issued by this server (checked
// with oidc-provider's own storage: `AccessToken.find`, or `ClientCredentials.find`), else 401 with
// `WWW-Authenticate: Bearer error="invalid_token"`. A token bound to a client certificate
// (mutual TLS, `x5t#S256`) is accepted only over the TLS listener presenting that certificate.
//
//   ANY  /resource/echo[/…]      {method, path, query, headers (no authorization, cookie or
//                                proxy-authorization), body_bytes, body_sha256, sub, scope}
//   GET  /resource/download?bytes=N
//                                N bytes (at most 1 GiB, default 100 MiB), streamed in 64 KiB
//                                chunks; byte i is i % 251 (so a client can check every byte)
//   POST|PUT /resource/upload    reads the body as it streams; {bytes, sha256}
//
// Test control (loopback only):
//   POST /__test/refuse-tokens   every access token seen so far is refused (401) once more,
//                                until the client comes back with a token not seen before;
//                                answers {refused: number of tokens marked}
//   GET  /__test/resource-stats  {requests, refused, unauthorized, connections (client connections
//                                that sent requests here: a kept-alive one counts once)}
//   POST /__test/reset-resource-stats
import { createHash } from "node:crypto";
import { Readable } from "node:stream";

const CHUNK = 251 * 256; // a multiple of 251, so every chunk continues the pattern
const PATTERN = Buffer.from(Array.from({ length: CHUNK }, (_, i) => i % 251));
const MAX_DOWNLOAD = 1024 * 1024 * 1024;

function newStats() {
  return { requests: 0, refused: 0, unauthorized: 0, connections: 0 };
}

function isLoopback(address) {
  return address === "127.0.0.1" || address === "::1" || address === "::ffff:127.0.0.1";
}

/** Koa middleware for oidc-provider: the protected resource and its test control. */
export function resource(provider) {
  /** Access tokens (their ids) accepted so far, and those to refuse once more. */
  const seen = new Set();
  let refused = new Set();
  let stats = newStats();
  /** The client connections seen (counted in `stats.connections`: kept-alive ones count once). */
  let sockets = new WeakSet();

  async function authenticate(ctx) {
    const header = ctx.get("authorization");
    const value = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    const token = value ? ((await provider.AccessToken.find(value)) ?? (await provider.ClientCredentials.find(value))) : undefined;
    if (!token || token.isExpired) return null;
    // A certificate-bound token (RFC 8705 §3) only over a TLS connection with its certificate.
    if (token["x5t#S256"]) {
      const peer = ctx.socket.getPeerCertificate?.();
      const print = peer?.raw ? createHash("sha256").update(peer.raw).digest("base64url") : null;
      if (print !== token["x5t#S256"]) return null;
    }
    if (refused.has(token.jti)) {
      refused.delete(token.jti);
      stats.refused += 1;
      return null;
    }
    seen.add(token.jti);
    return token;
  }

  return async function resourceMiddleware(ctx, next) {
    if (ctx.path.startsWith("/__test/") && ["/__test/refuse-tokens", "/__test/resource-stats", "/__test/reset-resource-stats"].includes(ctx.path)) {
      if (!isLoopback(ctx.req.socket.remoteAddress)) ctx.throw(403);
      if (ctx.method === "POST" && ctx.path === "/__test/refuse-tokens") {
        refused = new Set(seen);
        ctx.body = { refused: refused.size };
      } else if (ctx.method === "GET" && ctx.path === "/__test/resource-stats") {
        ctx.body = stats;
      } else if (ctx.method === "POST" && ctx.path === "/__test/reset-resource-stats") {
        stats = newStats();
        sockets = new WeakSet();
        ctx.body = stats;
      } else {
        ctx.throw(405);
      }
      ctx.set("cache-control", "no-store");
      return;
    }
    if (!ctx.path.startsWith("/resource/")) return next();

    stats.requests += 1;
    if (!sockets.has(ctx.req.socket)) {
      sockets.add(ctx.req.socket);
      stats.connections += 1;
    }
    const token = await authenticate(ctx);
    if (!token) {
      stats.unauthorized += 1;
      ctx.status = 401;
      ctx.set("www-authenticate", 'Bearer error="invalid_token"');
      ctx.body = { error: "invalid_token" };
      return;
    }

    if (ctx.path === "/resource/echo" || ctx.path.startsWith("/resource/echo/")) {
      const hash = createHash("sha256");
      let bytes = 0;
      for await (const chunk of ctx.req) {
        bytes += chunk.length;
        hash.update(chunk);
      }
      const headers = { ...ctx.headers };
      for (const secret of ["authorization", "proxy-authorization", "cookie"]) delete headers[secret];
      ctx.body = {
        method: ctx.method,
        path: ctx.path,
        query: ctx.querystring,
        headers,
        body_bytes: bytes,
        body_sha256: hash.digest("hex"),
        sub: token.accountId ?? null,
        scope: token.scope ?? null,
      };
    } else if (ctx.method === "GET" && ctx.path === "/resource/download") {
      const total = ctx.query.bytes === undefined ? 100 * 1024 * 1024 : Number(ctx.query.bytes);
      if (!Number.isInteger(total) || total < 0 || total > MAX_DOWNLOAD) ctx.throw(400, "bytes must be 0..1 GiB");
      ctx.set("content-type", "application/octet-stream");
      ctx.length = total;
      ctx.body = Readable.from(patternStream(total), { objectMode: false });
    } else if ((ctx.method === "POST" || ctx.method === "PUT") && ctx.path === "/resource/upload") {
      const hash = createHash("sha256");
      let bytes = 0;
      for await (const chunk of ctx.req) {
        bytes += chunk.length;
        hash.update(chunk);
      }
      ctx.body = { bytes, sha256: hash.digest("hex") };
    } else {
      ctx.throw(404);
    }
    ctx.set("cache-control", "no-store");
  };
}

/** `total` bytes of the pattern, produced as the client reads them. */
async function* patternStream(total) {
  let left = total;
  while (left > 0) {
    const n = Math.min(left, CHUNK);
    yield n === CHUNK ? PATTERN : PATTERN.subarray(0, n);
    left -= n;
  }
}
