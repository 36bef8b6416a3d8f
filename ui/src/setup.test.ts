import { describe, expect, it } from "vitest";
import type { ProviderApp } from "./bindings/ProviderApp";
import { deletedSummary } from "./settingsApi";
import { emptyForm, fieldOfError, portOf, redirectEdit, registrationDraft } from "./wizard";

function app(over: Partial<ProviderApp> = {}): ProviderApp {
  return {
    id: "app1",
    tenant_id: "t1",
    name: "qb",
    preset: "quickbooks",
    endpoints: { issuer: null, authorization: null, token: null, revocation: null, introspection: null, device_authorization: null, jwks: null, userinfo: null },
    client_id: "cid",
    has_client_secret: true,
    redirect_mode: "paste",
    redirect_port: null,
    relay_url: null,
    default_scopes: ["com.intuit.quickbooks.accounting"],
    created_at: 0,
    ...over,
  };
}

describe("registration draft", () => {
  it("is the form's settings for a new app", () => {
    const form = { ...emptyForm("t1"), preset: "slack", redirect: "relay" as const, relayUrl: " https://r.example/relay/ ", port: "x", clientSecret: "s" };
    expect(registrationDraft(form, null, ["chat:write"])).toEqual({
      preset: "slack",
      redirect: "relay",
      port: null,
      relay_url: "https://r.example/relay/",
      scopes: ["chat:write"],
      has_client_secret: true,
    });
    expect(registrationDraft({ ...form, tenant: "" }, null, [])).toBeNull();
  });

  it("is the app's, with the form's redirect, for an existing app", () => {
    const form = { ...emptyForm("t1"), redirect: "loopback" as const, port: "8765" };
    const d = registrationDraft(form, app(), []);
    expect(d).toMatchObject({ preset: "quickbooks", redirect: "loopback", port: 8765, relay_url: null, has_client_secret: true });
    expect(d?.scopes).toEqual(["com.intuit.quickbooks.accounting"]);
  });
});

describe("redirect settings kept on an existing app", () => {
  it("names only what the form changes", () => {
    const same = { ...emptyForm("t1"), redirect: "paste" as const };
    expect(redirectEdit(same, app())).toBeNull();
    const relay = { ...same, redirect: "relay" as const, relayUrl: "https://r.example/relay/" };
    expect(redirectEdit(relay, app())).toMatchObject({ redirect: "relay", relay_url: "https://r.example/relay/", client_id: null });
    expect(redirectEdit(relay, app())).not.toHaveProperty("port");
    const port = { ...same, port: "9000" };
    expect(redirectEdit(port, app())).toMatchObject({ redirect: null, port: 9000 });
  });

  it("reads ports", () => {
    expect([portOf(""), portOf("80"), portOf("70000"), portOf("1.5"), portOf(" 443 ")]).toEqual([null, 80, null, null, 443]);
  });
});

describe("errors at their field", () => {
  it("finds the field a core message is about", () => {
    expect(fieldOfError("this provider app has no relay page: give the HTTPS address of its relay page (the relay URL)")).toBe("relay_url");
    expect(fieldOfError("provider app 'acme/qb' already exists")).toBe("app_name");
    expect(fieldOfError("connection 'acme/crm' already exists")).toBe("name");
    expect(fieldOfError("the token endpoint could not be reached")).toBeNull();
  });
});

describe("deleted connections", () => {
  const caveat = "Access tokens already issued may keep working.";
  it("counts what the provider confirmed and names what it did not", () => {
    const ok = { name: "crm", revocation: { revoked_at_provider: true, detail: "the provider revoked the refresh token", caveat } };
    const bad = { name: "books", revocation: { revoked_at_provider: false, detail: "not revoked at the provider: HTTP 503", caveat } };
    const gone = { name: "old", revocation: null };
    expect(deletedSummary("provider app idp", [ok])).toEqual({ text: "Deleted provider app idp. 1 of 1 connection revoked at the provider.", warn: false });
    const mixed = deletedSummary("tenant Acme", [ok, bad, gone]);
    expect(mixed.warn).toBe(true);
    expect(mixed.text).toContain("1 of 3 connections revoked at the provider.");
    expect(mixed.text).toContain("books: forgotten here only (not revoked at the provider: HTTP 503)");
    expect(deletedSummary("provider app x", [])).toEqual({ text: "Deleted provider app x.", warn: false });
  });
});
