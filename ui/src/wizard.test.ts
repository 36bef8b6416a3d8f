import { describe, expect, it } from "vitest";
import type { Preset } from "./bindings/Preset";
import type { ProviderApp } from "./bindings/ProviderApp";
import {
  authMethods,
  buildConnectForm,
  buildSpec,
  chosenScopes,
  defaultRedirect,
  defaultScopes,
  defaultVars,
  demoPreset,
  emptyForm,
  fieldOfError,
  keyFilesOf,
  parseScopes,
  scopeOptions,
  suggestName,
  validate,
} from "./wizard";

function preset(over: Partial<Preset> = {}): Preset {
  return {
    id: "okta",
    name: "Okta (org authorization server)",
    oidc: true,
    local: false,
    docs: "https://developer.okta.com",
    variables: [{ name: "domain", description: "your Okta org domain", default: null }],
    endpoints: { issuer: "https://{domain}", authorization: null, token: null, revocation: null, introspection: null, device_authorization: null, jwks: null, userinfo: null },
    scope_separator: " ",
    scope_param: "scope",
    pkce: "supported",
    client_auth: "client_secret_basic",
    auth_methods: ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
    authorize_params: {},
    token_headers: {},
    default_scopes: ["openid", "offline_access"],
    device_flow: false,
    response: { access_token: "access_token", refresh_token: "refresh_token", scope: "scope", scope_separator: " ", expires_in: "expires_in", refresh_expires_in: null, refresh_hard_expires_in: null, ok_field: null, token_types: [], metadata: {}, redirect_metadata: [] },
    expiry: { access_default_secs: null, refresh_idle_days: null, refresh_max_days: null, refresh_rotates: false, rotation_grace_secs: null, testing_refresh_days: null },
    revocation: { style: "rfc7009" },
    redirect: { loopback: true, fixed_port: false, https_only: false, note: null },
    scopes: [
      { name: "openid", meaning: "Sign in", risk: "low" },
      { name: "offline_access", meaning: "Refresh token", risk: "medium" },
      { name: "okta.users.manage", meaning: "Manage users", risk: "high" },
    ],
    api: { base: null, headers: {}, defaults: {}, git_hosts: [], git_username: null, source: null },
    ...over,
  };
}

function app(over: Partial<ProviderApp> = {}): ProviderApp {
  return {
    id: "app1",
    tenant_id: "t1",
    name: "okta",
    preset: "okta",
    endpoints: { issuer: null, authorization: null, token: null, revocation: null, introspection: null, device_authorization: null, jwks: null, userinfo: null },
    client_id: "cid",
    has_client_secret: false,
    redirect_mode: "relay",
    redirect_port: null,
    relay_url: "https://relay.example/cb",
    default_scopes: ["openid", "custom:scope"],
    created_at: 0,
    ...over,
  };
}

describe("scopes", () => {
  it("parses free text", () => {
    expect(parseScopes(" a  b,c a\n d ")).toEqual(["a", "b", "c", "d"]);
    expect(parseScopes("")).toEqual([]);
  });
  it("offers the catalog plus the app's own scopes", () => {
    const opts = scopeOptions(preset(), app());
    expect(opts.map((o) => o.name)).toEqual(["openid", "offline_access", "okta.users.manage", "custom:scope"]);
    expect(opts[3]).toEqual({ name: "custom:scope", meaning: null, risk: null });
    expect(scopeOptions(null, null)).toEqual([]);
  });
  it("pre-checks the app's defaults, else the preset's", () => {
    expect(defaultScopes(preset(), app())).toEqual(["openid", "custom:scope"]);
    expect(defaultScopes(preset(), null)).toEqual(["openid", "offline_access"]);
    expect(defaultScopes(null, null)).toEqual([]);
  });
  it("collects checked (in catalog order) and extra scopes without duplicates", () => {
    const opts = scopeOptions(preset(), null);
    expect(chosenScopes({ scopes: ["offline_access", "openid"], extraScopes: "api:read openid" }, opts)).toEqual(["openid", "offline_access", "api:read"]);
    expect(chosenScopes({ scopes: [], extraScopes: "" }, opts)).toEqual([]);
  });
});

describe("defaults", () => {
  it("picks the redirect mode", () => {
    expect(defaultRedirect(preset(), app())).toBe("relay");
    expect(defaultRedirect(preset(), null)).toBe("loopback");
    expect(defaultRedirect(preset({ redirect: { loopback: false, fixed_port: false, https_only: true, note: "Slack" } }), null)).toBe("paste");
    expect(defaultRedirect(null, null)).toBe("loopback");
  });
  it("fills variable defaults and suggests names", () => {
    expect(defaultVars(preset({ variables: [{ name: "host", description: "", default: "a.example" }, { name: "x", description: "", default: null }] }))).toEqual({ host: "a.example", x: "" });
    expect(suggestName("Salesforce (sandbox)")).toBe("salesforce-sandbox");
    expect(suggestName("  GitHub App!! ")).toBe("github-app");
  });
  it("finds the demo preset", () => {
    expect(demoPreset([preset(), preset({ id: "gk-demo", name: "Grantkeeper demo provider" })])?.id).toBe("gk-demo");
    expect(demoPreset([preset()])).toBeNull();
  });
});

describe("validate", () => {
  const base = () => ({ ...emptyForm("t1"), name: "okta-prod", appName: "okta", clientId: "cid", preset: "okta", vars: { domain: "acme.okta.com" } });
  it("accepts a complete preset form", () => {
    expect(validate(base(), preset())).toEqual({});
  });
  it("asks for what is missing", () => {
    const errs = validate({ ...emptyForm(""), source: "preset" }, null);
    expect(Object.keys(errs).sort()).toEqual(["app_name", "client_id", "name", "preset", "tenant"]);
    expect(Object.keys(validate({ ...base(), vars: { domain: " " } }, preset()))).toEqual(["var:domain"]);
  });
  it("checks names like the vault does", () => {
    expect(validate({ ...base(), name: "acme/crm" }, preset()).name).toMatch(/letters, digits/);
    expect(validate({ ...base(), name: "has space" }, preset()).name).toBeDefined();
    expect(validate({ ...base(), name: "ok_name.v2-x" }, preset()).name).toBeUndefined();
    expect(validate({ ...base(), appName: "my app" }, preset()).app_name).toBeDefined();
  });
  it("checks issuer and explicit endpoints", () => {
    expect(validate({ ...base(), source: "issuer", issuer: "id.example.com" }, null).issuer).toBeDefined();
    expect(validate({ ...base(), source: "issuer", issuer: "https://id.example.com" }, null)).toEqual({});
    expect(validate({ ...base(), source: "issuer", issuer: "http://127.0.0.1:8080" }, null)).toEqual({});
    const explicit = { ...base(), source: "explicit" as const, authorization: "https://a.example/auth", token: "ftp://x" };
    expect(Object.keys(validate(explicit, null))).toEqual(["token"]);
    expect(validate({ ...explicit, token: "https://a.example/token", revocation: "nope" }, null).revocation).toBeDefined();
  });
  it("skips app fields for an existing app", () => {
    expect(validate({ ...emptyForm("t1"), providerApp: "app1", name: "x" }, null)).toEqual({});
  });
  it("checks relay page and port", () => {
    expect(validate({ ...base(), redirect: "relay" }, preset()).relay_url).toBeDefined();
    expect(validate({ ...base(), port: "70000" }, preset()).port).toBeDefined();
    expect(validate({ ...base(), port: "8765" }, preset()).port).toBeUndefined();
  });
});

describe("requests", () => {
  it("builds a preset spec with trimmed variables and a null secret when empty", () => {
    const f = { ...emptyForm("t1"), preset: "okta", vars: { domain: " acme.okta.com ", other: "" }, appName: " okta ", clientId: " cid " };
    expect(buildSpec(f, ["openid"])).toEqual({
      name: "okta",
      preset: "okta",
      endpoints: { kind: "preset", vars: { domain: "acme.okta.com" } },
      client_id: "cid",
      client_secret: null,
      scopes: ["openid"],
      redirect: "loopback",
      port: null,
      relay_url: null,
    });
  });
  it("sends a chosen client authentication, and offers what the catalog says the provider accepts", () => {
    const f = { ...emptyForm("t1"), preset: "okta", clientAuth: "private_key_jwt" as const };
    expect(buildSpec(f, []).client_auth).toBe("private_key_jwt");
    expect("client_auth" in buildSpec({ ...f, clientAuth: "" }, [])).toBe(false);
    expect(authMethods(preset({ auth_methods: ["client_secret_post"] }))).toEqual(["client_secret_post"]);
    expect(authMethods(null)).toEqual([
      "client_secret_basic",
      "client_secret_post",
      "private_key_jwt",
      "tls_client_auth",
      "self_signed_tls_client_auth",
      "none",
    ]);
  });
  it("sends key files only for the methods that take them, and asks a certificate of tls_client_auth", () => {
    const f = { ...emptyForm("t1"), keyFile: " /k.pem ", certFile: "/c.pem" };
    expect(keyFilesOf({ ...f, clientAuth: "private_key_jwt" })).toEqual({ key_file: "/k.pem", cert_file: null });
    expect(keyFilesOf({ ...f, clientAuth: "private_key_jwt", keyFile: "" })).toBeUndefined();
    expect(keyFilesOf({ ...f, clientAuth: "tls_client_auth" })).toEqual({ key_file: "/k.pem", cert_file: "/c.pem" });
    expect(keyFilesOf({ ...f, clientAuth: "client_secret_basic" })).toBeUndefined();
    expect(validate({ ...f, clientAuth: "tls_client_auth", certFile: "" }, null).cert_file).toMatch(/certificate file/);
    expect(fieldOfError("the key file cannot be used: it is an RSA key shorter than 2048 bits")).toBe("key_file");
  });
  it("builds issuer and explicit specs", () => {
    const f = { ...emptyForm("t1"), source: "issuer" as const, issuer: "https://id.example.com ", clientSecret: "s3cret", port: "8765" };
    const spec = buildSpec(f, []);
    expect(spec.endpoints).toEqual({ kind: "issuer", issuer: "https://id.example.com" });
    expect(spec.preset).toBeNull();
    expect(spec.client_secret).toBe("s3cret");
    expect(spec.scopes).toBeNull();
    expect(spec.port).toBe(8765);
    const e = buildSpec({ ...emptyForm("t1"), source: "explicit", authorization: "https://a/x", token: "https://a/t", redirect: "relay", relayUrl: "https://r/cb" }, []);
    expect(e.endpoints).toEqual({ kind: "explicit", authorization: "https://a/x", token: "https://a/t", revocation: null });
    expect(e.relay_url).toBe("https://r/cb");
  });
  it("builds the connect form", () => {
    expect(buildConnectForm({ ...emptyForm("t1"), name: " crm ", redirect: "paste" }, "app1", ["openid"])).toEqual({
      name: "crm",
      provider_app: "app1",
      scopes: ["openid"],
      redirect: "paste",
      timeout_secs: null,
    });
    expect(buildConnectForm(emptyForm("t1"), "app1", []).scopes).toBeNull();
  });
});
