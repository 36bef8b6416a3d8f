// A DPoP-protected resource (RFC 9449 §7) served by the test IdP at /dpop/api, for the tests of
// DPoP-bound grants: it answers only a request with `Authorization: DPoP <token>` and a `DPoP`
// proof that verifies with the key embedded in it, names this request (htm, htu), is fresh (iat,
// a jti never seen before), names the token (ath), carries the resource's nonce when nonces are
// required, and whose key is the one the access token is bound to (its `jkt`, looked up in the
// IdP's own token storage). Anything else is refused with 401 and a `WWW-Authenticate: DPoP`
// challenge, so a token without its proof is useless here.
//
//   GET|POST /dpop/api  -> 200 {"sub", "client_id", "jkt"} or 401 {"error", "error_description"}
import { createHash, randomBytes, verify } from "node:crypto";

export const DPOP_RESOURCE_PATH = "/dpop/api";

/** How far a proof's iat may be from now, in seconds. */
const IAT_WINDOW = 60;

const b64url = (buf) => Buffer.from(buf).toString("base64url");
const sha256 = (text) => b64url(createHash("sha256").update(text).digest());

/** RFC 7638 thumbprint of a P-256 public JWK. */
function thumbprint(jwk) {
  return sha256(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }));
}

/** The proof's header and claims once its ES256 signature verifies with its embedded key. */
function verifiedProof(proof) {
  const parts = proof.split(".");
  if (parts.length !== 3) throw new Error("the DPoP proof is not a JWS");
  const [header, claims] = parts.slice(0, 2).map((p) => JSON.parse(Buffer.from(p, "base64url").toString("utf8")));
  if (header.typ !== "dpop+jwt" || header.alg !== "ES256") throw new Error("the DPoP proof's typ or alg is wrong");
  const jwk = header.jwk;
  if (!jwk || jwk.kty !== "EC" || jwk.crv !== "P-256" || jwk.d !== undefined) {
    throw new Error("the DPoP proof carries no public P-256 key");
  }
  const ok = verify(
    "sha256",
    Buffer.from(`${parts[0]}.${parts[1]}`),
    { key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, format: "jwk", dsaEncoding: "ieee-p1363" },
    Buffer.from(parts[2], "base64url"),
  );
  if (!ok) throw new Error("the DPoP proof's signature does not verify");
  return { jwk, claims };
}

/**
 * Koa middleware for `provider.use`: the resource at DPOP_RESOURCE_PATH. `requireNonce`: every
 * proof must carry the resource's current nonce (a `use_dpop_nonce` challenge gives it).
 * Counts in `stats.current`: dpop_resource_ok, dpop_resource_refused, dpop_resource_nonce_asked.
 */
export function dpopResource(provider, stats, { requireNonce = false } = {}) {
  const seen = new Set();
  let nonce = randomBytes(16).toString("base64url");

  return async function dpopResourceMiddleware(ctx, next) {
    if (ctx.path !== DPOP_RESOURCE_PATH) return next();
    const refuse = (error, description, extra = {}) => {
      stats.current.dpop_resource_refused += 1;
      ctx.status = 401;
      ctx.set("www-authenticate", `DPoP error="${error}", error_description="${description}", algs="ES256"`);
      for (const [k, v] of Object.entries(extra)) ctx.set(k, v);
      ctx.set("cache-control", "no-store");
      ctx.body = { error, error_description: description };
    };

    const authorization = ctx.get("authorization");
    const [scheme, token] = authorization.split(" ");
    if (scheme !== "DPoP" || !token) {
      return refuse("invalid_token", "a DPoP-bound token is required (Authorization: DPoP <token>)");
    }
    const proof = ctx.get("dpop");
    if (!proof) return refuse("invalid_dpop_proof", "the request carries no DPoP proof");

    let checked;
    try {
      checked = verifiedProof(proof);
    } catch (e) {
      return refuse("invalid_dpop_proof", e.message);
    }
    const { jwk, claims } = checked;
    const htu = new URL(ctx.href);
    htu.search = "";
    htu.hash = "";
    if (claims.htm !== ctx.method) return refuse("invalid_dpop_proof", "htm does not name this request's method");
    if (claims.htu !== htu.href) return refuse("invalid_dpop_proof", "htu does not name this resource");
    if (typeof claims.iat !== "number" || Math.abs(Date.now() / 1000 - claims.iat) > IAT_WINDOW) {
      return refuse("invalid_dpop_proof", "iat is not recent");
    }
    if (typeof claims.jti !== "string" || claims.jti === "" || seen.has(claims.jti)) {
      return refuse("invalid_dpop_proof", "jti is missing or was used before (a replayed proof)");
    }
    if (claims.ath !== sha256(token)) return refuse("invalid_dpop_proof", "ath does not name this access token");
    if (requireNonce && claims.nonce !== nonce) {
      stats.current.dpop_resource_nonce_asked += 1;
      return refuse("use_dpop_nonce", "a nonce is required in the DPoP proof", { "dpop-nonce": nonce });
    }
    seen.add(claims.jti);

    const accessToken = await provider.AccessToken.find(token);
    if (!accessToken || accessToken.isExpired) return refuse("invalid_token", "the access token is not valid");
    if (!accessToken.jkt) return refuse("invalid_token", "the access token is not DPoP-bound");
    const jkt = thumbprint(jwk);
    if (accessToken.jkt !== jkt) return refuse("invalid_token", "the proof's key is not the one the token is bound to");

    // A new nonce for the next request, as RFC 9449 §9 allows.
    if (requireNonce) {
      nonce = randomBytes(16).toString("base64url");
      ctx.set("dpop-nonce", nonce);
    }
    stats.current.dpop_resource_ok += 1;
    ctx.set("cache-control", "no-store");
    ctx.body = { sub: accessToken.accountId, client_id: accessToken.clientId, jkt };
  };
}
