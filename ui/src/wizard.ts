// The connect wizard's form logic (pure): scope options, defaults, validation, and the
// ProviderAppSpec / ConnectForm it sends. The backend validates again; this only catches
// what the user can fix before the browser opens.
import type { ClientAuth } from "./bindings/ClientAuth";
import type { ConnectForm } from "./bindings/ConnectForm";
import type { KeyFiles } from "./bindings/KeyFiles";
import type { Preset } from "./bindings/Preset";
import type { ProviderApp } from "./bindings/ProviderApp";
import type { ProviderAppEdit } from "./bindings/ProviderAppEdit";
import type { ProviderAppSpec } from "./bindings/ProviderAppSpec";
import type { RegistrationDraft } from "./bindings/RegistrationDraft";
import type { RedirectMode } from "./bindings/RedirectMode";
import type { Risk } from "./bindings/Risk";

export type Source = "preset" | "issuer" | "explicit";

export type WizardForm = {
  tenant: string;
  /** Existing provider app id, or "" for a new one. */
  providerApp: string;
  source: Source;
  /** Preset id ("" = none; required for the preset source). */
  preset: string;
  vars: Record<string, string>;
  issuer: string;
  authorization: string;
  token: string;
  revocation: string;
  appName: string;
  clientId: string;
  clientSecret: string;
  /** Client authentication ("" = the provider's default, or what discovery says). */
  clientAuth: ClientAuth | "";
  /** private_key_jwt: the user's own key file ("" = a key pair Grantkeeper makes); with
   * tls_client_auth: the certificate's key file when apart. */
  keyFile: string;
  /** tls_client_auth: the client certificate file. */
  certFile: string;
  /** Checked scope options. */
  scopes: string[];
  extraScopes: string;
  redirect: RedirectMode;
  relayUrl: string;
  port: string;
  name: string;
};

/** Every client authentication method, for a provider the catalog does not know. */
export const ALL_AUTH_METHODS: ClientAuth[] = [
  "client_secret_basic",
  "client_secret_post",
  "private_key_jwt",
  "tls_client_auth",
  "self_signed_tls_client_auth",
  "none",
];

/** What each method means, as the wizard offers it. */
export const AUTH_LABELS: Record<ClientAuth, string> = {
  client_secret_basic: "Client secret, HTTP Basic (client_secret_basic)",
  client_secret_post: "Client secret in the form (client_secret_post)",
  private_key_jwt: "Signed assertion with a key pair (private_key_jwt)",
  tls_client_auth: "Client certificate from a CA (tls_client_auth)",
  self_signed_tls_client_auth: "Self-signed client certificate (self_signed_tls_client_auth)",
  none: "Public client, no secret (none)",
};

/** The key files of a new app's form, when its method takes any. */
export function keyFilesOf(form: WizardForm): KeyFiles | undefined {
  const key = form.keyFile.trim();
  const cert = form.certFile.trim();
  if (form.clientAuth === "private_key_jwt" && key !== "") return { key_file: key, cert_file: null };
  if (form.clientAuth === "tls_client_auth" && cert !== "") return { key_file: key === "" ? null : key, cert_file: cert };
  return undefined;
}

/** The methods to offer: the ones the catalog says the provider accepts. */
export function authMethods(preset: Preset | null): ClientAuth[] {
  return preset?.auth_methods ?? ALL_AUTH_METHODS;
}

export type ScopeOption = { name: string; meaning: string | null; risk: Risk | null };

export function emptyForm(tenant: string): WizardForm {
  return {
    tenant,
    providerApp: "",
    source: "preset",
    preset: "",
    vars: {},
    issuer: "",
    authorization: "",
    token: "",
    revocation: "",
    appName: "",
    clientId: "",
    clientSecret: "",
    clientAuth: "",
    keyFile: "",
    certFile: "",
    scopes: [],
    extraScopes: "",
    redirect: "loopback",
    relayUrl: "",
    port: "",
    name: "",
  };
}

/** Space- (or comma-) separated scopes, deduplicated, in order. */
export function parseScopes(text: string): string[] {
  const out: string[] = [];
  for (const s of text.split(/[\s,]+/)) if (s !== "" && !out.includes(s)) out.push(s);
  return out;
}

/** The scopes offered as checkboxes: the preset's catalog, then the app's defaults it does not know. */
export function scopeOptions(preset: Preset | null, app: ProviderApp | null): ScopeOption[] {
  const out: ScopeOption[] = (preset?.scopes ?? []).map((s) => ({ name: s.name, meaning: s.meaning, risk: s.risk }));
  for (const s of app?.default_scopes ?? []) if (!out.some((o) => o.name === s)) out.push({ name: s, meaning: null, risk: null });
  return out;
}

/** Scopes checked at first: the app's defaults, else the preset's. */
export function defaultScopes(preset: Preset | null, app: ProviderApp | null): string[] {
  return [...(app?.default_scopes ?? preset?.default_scopes ?? [])];
}

/** The redirect mode to start with: the app's, else loopback unless the preset refuses it. */
export function defaultRedirect(preset: Preset | null, app: ProviderApp | null): RedirectMode {
  if (app) return app.redirect_mode;
  if (preset && (preset.redirect.https_only || !preset.redirect.loopback)) return "paste";
  return "loopback";
}

/** Initial variable values: each variable's default. */
export function defaultVars(preset: Preset | null): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const v of preset?.variables ?? []) vars[v.name] = v.default ?? "";
  return vars;
}

/** A connection or app name suggested from a display name: "Salesforce (sandbox)" → "salesforce-sandbox". */
export function suggestName(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40);
}

/** Every scope to ask for: checked options (in option order), then the extra ones. */
export function chosenScopes(form: Pick<WizardForm, "scopes" | "extraScopes">, options: ScopeOption[]): string[] {
  const out = options.map((o) => o.name).filter((n) => form.scopes.includes(n));
  for (const s of form.scopes) if (!out.includes(s)) out.push(s);
  for (const s of parseScopes(form.extraScopes)) if (!out.includes(s)) out.push(s);
  return out;
}

/** Connection and provider-app names: letters, digits, '-', '_' and '.' (as the vault requires). */
function validName(n: string): boolean {
  return /^[A-Za-z0-9._-]{1,128}$/.test(n);
}

function validUrl(u: string): boolean {
  try {
    const url = new URL(u);
    return url.protocol === "https:" || (url.protocol === "http:" && (url.hostname === "127.0.0.1" || url.hostname === "localhost"));
  } catch {
    return false;
  }
}

/** What is missing or wrong, keyed by field name; empty when the form can be sent. */
export function validate(form: WizardForm, preset: Preset | null): Record<string, string> {
  const errs: Record<string, string> = {};
  if (form.tenant === "") errs.tenant = "Choose a tenant.";
  if (form.name.trim() === "") errs.name = "Give the connection a name, e.g. salesforce-prod.";
  else if (!validName(form.name.trim())) errs.name = "Use letters, digits, '-', '_' and '.' only, e.g. salesforce-prod.";
  if (form.providerApp !== "") return errs;
  if (form.appName.trim() === "") errs.app_name = "Name the provider app, e.g. salesforce.";
  else if (!validName(form.appName.trim())) errs.app_name = "Use letters, digits, '-', '_' and '.' only, e.g. salesforce.";
  if (form.clientId.trim() === "") errs.client_id = "Enter the client id from the provider's app registration.";
  if (form.clientAuth === "tls_client_auth" && form.certFile.trim() === "")
    errs.cert_file = "Enter the path of the client certificate file (PEM), or choose a self-signed certificate.";
  if (form.source === "preset") {
    if (!preset) errs.preset = "Choose a provider.";
    else
      for (const v of preset.variables)
        if ((form.vars[v.name] ?? "").trim() === "" && v.default === null) errs[`var:${v.name}`] = `Enter ${v.description}.`;
  } else if (form.source === "issuer") {
    if (!validUrl(form.issuer.trim())) errs.issuer = "Enter the issuer URL, e.g. https://id.example.com.";
  } else {
    if (!validUrl(form.authorization.trim())) errs.authorization = "Enter the authorization endpoint (an https URL).";
    if (!validUrl(form.token.trim())) errs.token = "Enter the token endpoint (an https URL).";
    if (form.revocation.trim() !== "" && !validUrl(form.revocation.trim()))
      errs.revocation = "The revocation endpoint must be an https URL, or empty.";
  }
  if (form.redirect === "relay" && !validUrl(form.relayUrl.trim()))
    errs.relay_url = "Enter the https relay page registered as redirect URI.";
  if (form.port.trim() !== "") {
    const p = Number(form.port);
    if (!Number.isInteger(p) || p < 1 || p > 65535) errs.port = "The port is a number from 1 to 65535.";
  }
  return errs;
}

/** The provider app to register for a new-app form. */
export function buildSpec(form: WizardForm, scopes: string[]): ProviderAppSpec {
  const trimVars: Record<string, string> = {};
  for (const [k, v] of Object.entries(form.vars)) if (v.trim() !== "") trimVars[k] = v.trim();
  const endpoints: ProviderAppSpec["endpoints"] =
    form.source === "preset"
      ? { kind: "preset", vars: trimVars }
      : form.source === "issuer"
        ? { kind: "issuer", issuer: form.issuer.trim() }
        : {
            kind: "explicit",
            authorization: form.authorization.trim(),
            token: form.token.trim(),
            revocation: form.revocation.trim() === "" ? null : form.revocation.trim(),
          };
  return {
    name: form.appName.trim(),
    preset: form.preset === "" ? null : form.preset,
    endpoints,
    client_id: form.clientId.trim(),
    client_secret: form.clientSecret === "" ? null : form.clientSecret,
    ...(form.clientAuth === "" ? {} : { client_auth: form.clientAuth }),
    scopes: scopes.length > 0 ? scopes : null,
    redirect: form.redirect,
    port: form.port.trim() === "" ? null : Number(form.port),
    relay_url: form.redirect !== "loopback" && form.relayUrl.trim() !== "" ? form.relayUrl.trim() : null,
  };
}

/** The sign-in request for an app id. */
export function buildConnectForm(form: WizardForm, appId: string, scopes: string[]): ConnectForm {
  return {
    name: form.name.trim(),
    provider_app: appId,
    scopes: scopes.length > 0 ? scopes : null,
    redirect: form.redirect,
    timeout_secs: null,
  };
}

/** The demo preset, when the catalog has it. */
export function demoPreset(catalog: Preset[]): Preset | null {
  return (
    catalog.find((p) => p.name === "Grantkeeper demo provider") ??
    catalog.find((p) => /demo/i.test(p.id) && /grantkeeper/i.test(p.name)) ??
    null
  );
}

/** A port typed in the form, or null when empty or not a port. */
export function portOf(text: string): number | null {
  const p = Number(text.trim());
  return text.trim() !== "" && Number.isInteger(p) && p >= 1 && p <= 65535 ? p : null;
}

/** The settings the core computes the registration values from: the form's (a new app), or the
 * chosen app's with the form's redirect, port and relay page. */
export function registrationDraft(form: WizardForm, app: ProviderApp | null, scopes: string[]): RegistrationDraft | null {
  if (form.tenant === "") return null;
  const relay = form.relayUrl.trim() === "" ? null : form.relayUrl.trim();
  if (app)
    return {
      preset: app.preset,
      redirect: form.redirect,
      port: portOf(form.port),
      relay_url: relay,
      scopes: scopes.length > 0 ? scopes : app.default_scopes,
      has_client_secret: app.has_client_secret,
      client_auth: app.client_auth,
    };
  return {
    preset: form.preset === "" ? null : form.preset,
    redirect: form.redirect,
    port: portOf(form.port),
    relay_url: relay,
    scopes: scopes.length > 0 ? scopes : null,
    has_client_secret: form.clientSecret !== "",
  };
}

/** What the form changes in an existing app's redirect settings (its redirect, port and relay
 * page, kept for later sign-ins), or null when nothing. */
export function redirectEdit(form: WizardForm, app: ProviderApp): ProviderAppEdit | null {
  const relay = form.relayUrl.trim() === "" ? null : form.relayUrl.trim();
  const port = portOf(form.port);
  const edit: ProviderAppEdit = { client_id: null, client_secret: null, remove_client_secret: false, scopes: null, redirect: null, dpop: null };
  let changed = false;
  if (form.redirect !== app.redirect_mode) {
    edit.redirect = form.redirect;
    changed = true;
  }
  if (relay !== app.relay_url) {
    edit.relay_url = relay;
    changed = true;
  }
  if (port !== app.redirect_port && form.redirect !== "relay") {
    edit.port = port;
    changed = true;
  }
  return changed ? edit : null;
}

/** The form field a failure from the core is about, when its message names one. */
export function fieldOfError(message: string): string | null {
  if (/\bkey file\b/i.test(message)) return "key_file";
  if (/certificate file|certificate .*cannot be used/i.test(message)) return "cert_file";
  if (/relay/i.test(message)) return "relay_url";
  if (/provider app '.*' already exists/i.test(message)) return "app_name";
  if (/connection '.*' already exists/i.test(message)) return "name";
  if (/\bport\b/i.test(message)) return "port";
  if (/client id/i.test(message)) return "client_id";
  return null;
}
