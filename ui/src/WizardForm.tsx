// The connect wizard's form: tenant, provider app (existing or new from a preset, an issuer or
// explicit endpoints), scopes, redirect mode and name. Its state lives in `useWizardForm`, held
// by the wizard, so it outlasts the waiting step (a cancelled sign-in comes back to it).
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, errorMessage, isOffline } from "./api";
import type { ConnectStarted } from "./bindings/ConnectStarted";
import type { ProviderApp } from "./bindings/ProviderApp";
import type { RedirectMode } from "./bindings/RedirectMode";
import type { TenantId } from "./bindings/TenantId";
import { useShell } from "./ctx";
import { useBusy } from "./hooks";
import { withHint } from "./online";
import { hasPublicMaterial, PublicMaterial } from "./PublicMaterial";
import { RegisterValues, useRegistration } from "./RegisterValues";
import { settingsApi } from "./settingsApi";
import { Alert, BusyButton, RiskBadge, onText } from "./ui";
import {
  type Source,
  type WizardForm as Form,
  authMethods,
  AUTH_LABELS,
  keyFilesOf,
  buildConnectForm,
  buildSpec,
  chosenScopes,
  defaultRedirect,
  defaultScopes,
  defaultVars,
  demoPreset,
  emptyForm,
  fieldOfError,
  redirectEdit,
  registrationDraft,
  scopeOptions,
  suggestName,
  validate,
} from "./wizard";

const redirectLabels: Record<RedirectMode, string> = {
  loopback: "Loopback (127.0.0.1)",
  relay: "Relay page (https)",
  paste: "Paste the address",
};

const redirectHints: Record<RedirectMode, string> = {
  loopback: "The browser comes back to Grantkeeper on http://127.0.0.1 by itself.",
  relay: "An https page registered at the provider passes the answer on to Grantkeeper.",
  paste: "After consent, copy the address the browser shows and paste it here.",
};

const sourceLabels: Record<Source, string> = { preset: "From the catalog", issuer: "Issuer URL (discovery)", explicit: "Endpoints" };

type FormOptions = {
  initialTenant: TenantId | null;
  /** A re-consent has no form: nothing is loaded. */
  reconsent: boolean;
  demo: boolean;
  /** A provider app was registered (the list's provider names need it). */
  onAppAdded: (app: ProviderApp) => void;
  /** The sign-in started. */
  begin: (s: ConnectStarted) => void;
};

/** The form's state and what changes it. */
export function useWizardForm({ initialTenant, reconsent, demo, onAppAdded, begin }: FormOptions) {
  const { net, tenants, catalog } = useShell();
  const [busy, run] = useBusy();
  const [form, setForm] = useState<Form>(() => emptyForm(initialTenant ?? tenants[0]?.tenant.id ?? ""));
  const [touched, setTouched] = useState<{ name: boolean; appName: boolean }>({ name: false, appName: false });
  const [apps, setApps] = useState<ProviderApp[] | null>(null);
  const [showErrors, setShowErrors] = useState(false);
  const [submitError, setSubmitError] = useState<string | null>(null);
  /** A failure from the core about one field: shown next to it. */
  const [fieldError, setFieldError] = useState<{ field: string; message: string } | null>(null);
  /** The user changed something: closing asks first. */
  const [dirty, setDirty] = useState(false);
  /** Bumped whenever an error appears, so the form brings it into view. */
  const [errorTick, setErrorTick] = useState(0);
  // Whether the user chose an app or preset: a late list of apps then keeps that choice.
  const userPicked = useRef(false);

  const setQuiet = <K extends keyof Form>(k: K, v: Form[K]) => setForm((f) => ({ ...f, [k]: v }));
  /** A change the user made. */
  const set = <K extends keyof Form>(k: K, v: Form[K]) => {
    setDirty(true);
    setFieldError(null);
    setQuiet(k, v);
  };

  // Tenants that arrive after the wizard opened: start with the first.
  useEffect(() => {
    if (form.tenant === "" && tenants.length > 0) setQuiet("tenant", tenants[0].tenant.id);
  }, [tenants]);

  // The tenant's provider apps; the first one is preselected, else a new one from the catalog.
  useEffect(() => {
    if (reconsent || form.tenant === "") return;
    let live = true;
    api.providerApps(form.tenant).then(
      (list) => {
        if (!live) return;
        setApps(list);
        if (userPicked.current) return; // the user chose already: keep it
        // Demo mode starts with the demo provider (its app when the tenant has one).
        const demoP = demo ? demoPreset(catalog) : null;
        const demoApp = demoP ? list.find((a) => a.preset === demoP.id) : undefined;
        if (demoApp) selectApp(demoApp.id, list);
        else if (demoP) selectPreset(demoP.id, "preset");
        else selectApp(list[0]?.id ?? "", list);
      },
      (e) => live && (setApps([]), setSubmitError(errorMessage(e))),
    );
    return () => {
      live = false;
    };
  }, [form.tenant]);

  const app = form.providerApp === "" ? null : (apps?.find((a) => a.id === form.providerApp) ?? null);
  const presetId = app ? app.preset : form.preset;
  const preset = presetId ? (catalog.find((p) => p.id === presetId) ?? null) : null;
  const options = useMemo(() => scopeOptions(preset, app), [preset, app]);
  const scopes = chosenScopes(form, options);
  const registration = useRegistration(registrationDraft(form, app, scopes));
  const problem = registration?.problem ?? null;
  const errors: Record<string, string> = showErrors ? validate(form, form.providerApp === "" ? preset : null) : {};
  // What the core says cannot work yet is shown at its field from the start.
  if (problem && !errors[problem.field]) errors[problem.field] = problem.message;
  if (fieldError) errors[fieldError.field] = fieldError.message;

  function selectApp(id: string, list: ProviderApp[] | null = apps) {
    const a = id === "" ? null : (list?.find((x) => x.id === id) ?? null);
    const p = a?.preset ? (catalog.find((x) => x.id === a.preset) ?? null) : null;
    setForm((f) => {
      const fp = a ? p : f.preset ? (catalog.find((x) => x.id === f.preset) ?? null) : null;
      return {
        ...f,
        providerApp: id,
        scopes: defaultScopes(fp, a),
        extraScopes: "",
        redirect: defaultRedirect(fp, a),
        relayUrl: a ? (a.relay_url ?? "") : f.relayUrl,
        port: a ? (a.redirect_port?.toString() ?? "") : f.port,
        name: touched.name ? f.name : a ? a.name : f.name,
      };
    });
  }

  function selectPreset(id: string, source?: Source) {
    const p = catalog.find((x) => x.id === id) ?? null;
    setForm((f) => ({
      ...f,
      providerApp: "",
      source: source ?? f.source,
      preset: id,
      vars: defaultVars(p),
      scopes: defaultScopes(p, null),
      extraScopes: "",
      redirect: defaultRedirect(p, null),
      appName: touched.appName ? f.appName : p ? suggestName(p.id) : f.appName,
      name: touched.name ? f.name : p ? suggestName(p.id) : f.name,
    }));
  }

  /** Another tenant: its apps load, and the other tenant's are forgotten at once (no stale choice). */
  const chooseTenant = (tenant: TenantId) => {
    if (tenant === form.tenant) return; // the same tenant: its apps stay
    userPicked.current = false;
    setApps(null);
    set("tenant", tenant);
  };
  const pickApp = (id: string) => {
    setDirty(true);
    userPicked.current = true;
    selectApp(id);
  };
  const pickPreset = (id: string) => {
    setDirty(true);
    userPicked.current = true;
    selectPreset(id);
  };
  /** A name the user typed is kept when the app or preset changes. */
  const typed = (k: "name" | "appName", v: string) => {
    setTouched((t) => ({ ...t, [k]: true }));
    set(k, v);
  };
  const setVar = (name: string, value: string) => {
    setDirty(true);
    setForm((f) => ({ ...f, vars: { ...f.vars, [name]: value } }));
  };
  const toggleScope = (s: string, on: boolean) => {
    setDirty(true);
    setForm((f) => ({ ...f, scopes: on ? [...f.scopes.filter((x) => x !== s), s] : f.scopes.filter((x) => x !== s) }));
  };

  /** Registers the app when it is new, then starts the sign-in; false when the form is invalid. */
  const submit = (): boolean => {
    setShowErrors(true);
    setErrorTick((n) => n + 1);
    if (Object.keys(validate(form, form.providerApp === "" ? preset : null)).length > 0 || fieldError) return false;
    setSubmitError(null);
    const draft = registrationDraft(form, app, scopes);
    run("open-browser", async () => {
      // What cannot sign in yet is refused at its field (computed now, not from the last keystroke).
      const now = draft ? (await settingsApi.registrationValues(draft)).problem : null;
      if (now) {
        setFieldError({ field: now.field, message: now.message });
        setErrorTick((n) => n + 1);
        return;
      }
      let appId = form.providerApp;
      // An existing app gets the redirect settings chosen here (a relay page, a fixed port).
      const edit = app ? redirectEdit(form, app) : null;
      if (app && edit) {
        const edited = await net(settingsApi.editProviderApp(form.tenant, app.id, edit), false);
        setApps((l) => (l ?? []).map((a) => (a.id === app.id ? edited.app : a)));
      }
      if (appId === "") {
        const files = keyFilesOf(form);
        const spec = buildSpec(form, scopes);
        const created = await net(files ? api.addProviderApp(form.tenant, spec, files) : api.addProviderApp(form.tenant, spec));
        appId = created.id;
        setApps((l) => [...(l ?? []), created]);
        setForm((f) => ({ ...f, providerApp: created.id, keyFile: "", certFile: "" }));
        onAppAdded(created);
        // Its public key or certificate is registered at the provider before any sign-in.
        if (hasPublicMaterial(created.client_auth)) return;
      }
      begin(await net(api.startConnect(form.tenant, buildConnectForm(form, appId, scopes))));
    }).catch((e) => {
      const message = withHint(errorMessage(e), isOffline(e));
      const field = fieldOfError(message);
      if (field) setFieldError({ field, message });
      else setSubmitError(message);
      setErrorTick((n) => n + 1);
    });
    return true;
  };

  return {
    form,
    set,
    apps,
    app,
    preset,
    options,
    scopes,
    errors,
    registration,
    dirty,
    errorTick,
    busy,
    submitError,
    dismissSubmitError: () => setSubmitError(null),
    chooseTenant,
    pickApp,
    pickPreset,
    typed,
    setVar,
    toggleScope,
    submit,
  };
}

export type WizardFormModel = ReturnType<typeof useWizardForm>;

type Props = { model: WizardFormModel; onCancel: () => void };

export function WizardForm({ model, onCancel }: Props) {
  const { tenants, catalog } = useShell();
  const formRef = useRef<HTMLFormElement>(null);
  const { form, set, apps, app, preset, options, scopes, errors, busy, submitError, dismissSubmitError, registration, errorTick } = model;
  const { chooseTenant, pickApp, pickPreset, typed, setVar, toggleScope, submit } = model;
  const field = (name: string) => ({
    "aria-invalid": errors[name] ? ("true" as const) : undefined,
    "aria-describedby": errors[name] ? `err-${name}` : undefined,
  });
  const err = (name: string) =>
    errors[name] ? (
      <span class="field-error" id={`err-${name}`} data-field-error={name}>
        {errors[name]}
      </span>
    ) : null;

  // A new error is brought into view: the first marked field gets the focus, else the alert
  // beside the button shows.
  useLayoutEffect(() => {
    if (errorTick === 0) return;
    const root = formRef.current;
    const invalid = root?.querySelector<HTMLElement>("[aria-invalid='true']");
    const target = invalid ?? root?.querySelector<HTMLElement>("[data-submit-error]");
    if (!target) return;
    target.scrollIntoView?.({ block: "center" });
    invalid?.focus({ preventScroll: true });
  }, [errorTick, submitError]);

  return (
    <>
      <form
        class="wizard-form"
        data-wizard-state="form"
        noValidate
        ref={formRef}
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        {tenants.length === 0 ? (
          <Alert message="There is no tenant yet: create one with New tenant in the sidebar, then connect an account." />
        ) : (
          <>
            <div class="grid2">
              <label class="field">
                <span>Tenant</span>
                <select name="tenant" data-autofocus value={form.tenant} onChange={(e) => {
                    chooseTenant(e.currentTarget.value);
                  }} {...field("tenant")}>
                  {tenants.map((t) => (
                    <option key={t.tenant.id} value={t.tenant.id}>
                      {t.tenant.name}
                    </option>
                  ))}
                </select>
                {err("tenant")}
              </label>
              <label class="field">
                <span>Provider app</span>
                <select name="provider_app" value={form.providerApp} disabled={apps === null} onChange={(e) => {
                    pickApp(e.currentTarget.value);
                  }}>
                  {(apps ?? []).map((a) => (
                    <option key={a.id} value={a.id}>
                      {a.name}
                      {a.preset ? ` (${catalog.find((p) => p.id === a.preset)?.name ?? a.preset})` : ""}
                    </option>
                  ))}
                  <option value="">New provider app…</option>
                </select>
              </label>
            </div>

            {app && (
              <p class="muted small app-summary">
                Client id <code>{app.client_id}</code>
                {app.has_client_secret ? " · client secret stored" : " · public client"}
              </p>
            )}

            {form.providerApp === "" && (
              <fieldset class="new-app">
                <legend>New provider app</legend>
                <div class="tabs" role="tablist" aria-label="Where the endpoints come from">
                  {(Object.keys(sourceLabels) as Source[]).map((s) => (
                    <button
                      type="button"
                      key={s}
                      role="tab"
                      class={form.source === s ? "tab active" : "tab"}
                      data-source={s}
                      aria-selected={form.source === s ? "true" : "false"}
                      onClick={() => set("source", s)}
                    >
                      {sourceLabels[s]}
                    </button>
                  ))}
                </div>
                <div role="tabpanel" class="tabpanel">
                  <label class="field">
                    <span>{form.source === "preset" ? "Provider" : "Keep the quirks of a catalog provider (optional)"}</span>
                    <select name="preset" value={form.preset} onChange={(e) => {
                        pickPreset(e.currentTarget.value);
                      }} {...field("preset")}>
                      <option value="">{form.source === "preset" ? "Choose a provider…" : "None (standard OAuth / OpenID Connect)"}</option>
                      {catalog.map((p) => (
                        <option key={p.id} value={p.id}>
                          {p.name}
                        </option>
                      ))}
                    </select>
                    {err("preset")}
                    {catalog.length === 0 && <span class="muted small">Loading the catalog…</span>}
                  </label>
                  {form.source === "preset" &&
                    preset?.variables.map((v) => (
                      <label class="field" key={v.name}>
                        <span>{v.name}</span>
                        <input
                          type="text"
                          data-var={v.name}
                          placeholder={v.default ?? ""}
                          value={form.vars[v.name] ?? ""}
                          {...onText((val) => setVar(v.name, val))}
                          {...field(`var:${v.name}`)}
                        />
                        <span class="hint">{v.description}</span>
                        {err(`var:${v.name}`)}
                      </label>
                    ))}
                  {form.source === "issuer" && (
                    <label class="field">
                      <span>Issuer URL</span>
                      <input
                        type="url"
                        name="issuer"
                        placeholder="https://id.example.com"
                        value={form.issuer}
                        {...onText((v) => set("issuer", v))}
                        {...field("issuer")}
                      />
                      <span class="hint">Endpoints are discovered from /.well-known (needs the network).</span>
                      {err("issuer")}
                    </label>
                  )}
                  {form.source === "explicit" && (
                    <>
                      <label class="field">
                        <span>Authorization endpoint</span>
                        <input type="url" name="authorization" value={form.authorization} {...onText((v) => set("authorization", v))} {...field("authorization")} />
                        {err("authorization")}
                      </label>
                      <label class="field">
                        <span>Token endpoint</span>
                        <input type="url" name="token" value={form.token} {...onText((v) => set("token", v))} {...field("token")} />
                        {err("token")}
                      </label>
                      <label class="field">
                        <span>Revocation endpoint (optional)</span>
                        <input type="url" name="revocation" value={form.revocation} {...onText((v) => set("revocation", v))} {...field("revocation")} />
                        {err("revocation")}
                      </label>
                    </>
                  )}
                </div>
                <div class="grid2">
                  <label class="field">
                    <span>App name</span>
                    <input
                      type="text"
                      name="app_name"
                      value={form.appName}
                      {...onText((v) => {
                        typed("appName", v);
                      })}
                      {...field("app_name")}
                    />
                    {err("app_name")}
                  </label>
                  <label class="field">
                    <span>Client id</span>
                    <input type="text" name="client_id" autoComplete="off" value={form.clientId} {...onText((v) => set("clientId", v))} {...field("client_id")} />
                    {err("client_id")}
                  </label>
                </div>
                <label class="field">
                  <span>Client secret (for confidential clients; leave empty for a public client)</span>
                  <input type="password" name="client_secret" autoComplete="off" value={form.clientSecret} {...onText((v) => set("clientSecret", v))} />
                  <span class="hint">Stored encrypted under the tenant's key; it never comes back to this window.</span>
                </label>
                <label class="field">
                  <span>Client authentication</span>
                  <select name="client_auth" value={form.clientAuth} onChange={(e) => set("clientAuth", e.currentTarget.value as Form["clientAuth"])}>
                    <option value="">The provider's default</option>
                    {authMethods(preset).map((m) => (
                      <option key={m} value={m}>
                        {AUTH_LABELS[m] ?? m}
                      </option>
                    ))}
                  </select>
                  {form.clientAuth === "private_key_jwt" && (
                    <span class="hint">Leave the key file empty and Grantkeeper makes a key pair. After saving, register the public key shown here at the provider, then sign in.</span>
                  )}
                  {form.clientAuth === "self_signed_tls_client_auth" && (
                    <span class="hint">Grantkeeper makes a key and a self-signed certificate. After saving, register the certificate shown here at the provider, then sign in.</span>
                  )}
                </label>
                {form.clientAuth === "tls_client_auth" && (
                  <label class="field">
                    <span>Client certificate file (PEM path)</span>
                    <div class="file-row">
                      <input type="text" name="cert_file" autoComplete="off" placeholder="/home/you/client.pem" value={form.certFile} {...onText((v) => set("certFile", v))} {...field("cert_file")} />
                      <ChooseFile title="Client certificate file" onChosen={(p) => set("certFile", p)} name="cert_file" />
                    </div>
                    {err("cert_file")}
                  </label>
                )}
                {(form.clientAuth === "private_key_jwt" || form.clientAuth === "tls_client_auth") && (
                  <label class="field">
                    <span>{form.clientAuth === "private_key_jwt" ? "Your own private key file (optional, PEM path: P-256 or RSA)" : "Its private key file (PEM path; empty when in the certificate file)"}</span>
                    <div class="file-row">
                      <input type="text" name="key_file" autoComplete="off" placeholder="/home/you/client-key.pem" value={form.keyFile} {...onText((v) => set("keyFile", v))} {...field("key_file")} />
                      <ChooseFile title="Private key file" onChosen={(p) => set("keyFile", p)} name="key_file" />
                    </div>
                    {err("key_file")}
                    <span class="hint">The key moves into the keychain; delete the file afterwards.</span>
                  </label>
                )}
                {preset?.redirect.note && <p class="muted small">{preset.redirect.note}</p>}
              </fieldset>
            )}

            <fieldset class="scopes-field">
              <legend>Scopes</legend>
              {options.length > 0 ? (
                <ul class="scope-options">
                  {options.map((o) => (
                    <li key={o.name} class={o.risk === "high" ? "high" : ""}>
                      <label>
                        <input
                          type="checkbox"
                          data-scope-option={o.name}
                          checked={form.scopes.includes(o.name)}
                          onChange={(e) => toggleScope(o.name, e.currentTarget.checked)}
                        />
                        <code>{o.name}</code>
                        <RiskBadge risk={o.risk} />
                        <span class="meaning">{o.meaning ?? ""}</span>
                      </label>
                    </li>
                  ))}
                </ul>
              ) : (
                <p class="muted small">No scope catalog for this provider: type the scopes below.</p>
              )}
              <label class="field">
                <span>More scopes (space separated)</span>
                <input type="text" name="extra_scopes" placeholder="e.g. api:read" value={form.extraScopes} {...onText((v) => set("extraScopes", v))} />
              </label>
              <p class="muted small">
                {scopes.length > 0 ? `Asking for: ${scopes.join(" ")}` : "No scope chosen: the app's defaults are used."}
              </p>
            </fieldset>

            <div class="grid2">
              <label class="field">
                <span>Redirect</span>
                <select name="redirect" value={form.redirect} onChange={(e) => set("redirect", e.currentTarget.value as RedirectMode)} {...field("redirect")}>
                  {(Object.keys(redirectLabels) as RedirectMode[]).map((m) => (
                    <option key={m} value={m} disabled={m === "loopback" && preset?.redirect.loopback === false}>
                      {redirectLabels[m]}
                    </option>
                  ))}
                </select>
                <span class="hint">{redirectHints[form.redirect]}</span>
                {err("redirect")}
              </label>
              <label class="field">
                <span>Connection name</span>
                <input
                  type="text"
                  name="name"
                  placeholder="e.g. salesforce-prod"
                  value={form.name}
                  {...onText((v) => {
                    typed("name", v);
                  })}
                  {...field("name")}
                />
                {err("name")}
              </label>
            </div>
            {form.redirect !== "loopback" && (
              <label class="field">
                <span>Relay page (its HTTPS address is the redirect URI registered at the provider)</span>
                <input type="url" name="relay_url" placeholder="https://you.example.com/grantkeeper-relay/" value={form.relayUrl} {...onText((v) => set("relayUrl", v))} {...field("relay_url")} />
                <span class="hint">
                  For providers that accept only HTTPS redirects (Slack, Intuit): host the static page in the <code>relay/</code> folder
                  of Grantkeeper's repository on any HTTPS host (see “Signing in: redirects” in the README). It passes the sign-in
                  answer on to Grantkeeper on this computer and keeps nothing.
                </span>
                {err("relay_url")}
              </label>
            )}
            {form.redirect !== "relay" && (
              <label class="field">
                <span>{preset?.redirect.fixed_port ? "Loopback port registered at the provider" : "Fixed loopback port (optional)"}</span>
                <input
                  type="number"
                  name="port"
                  min={1}
                  max={65535}
                  placeholder={registration?.port ? String(registration.port) : "any free port"}
                  value={form.port}
                  {...onText((v) => set("port", v))}
                  {...field("port")}
                />
                {err("port")}
              </label>
            )}

            <RegisterValues reg={registration} />
            {app && hasPublicMaterial(app.client_auth) && <PublicMaterial tenant={form.tenant} app={app.id} auth={app.client_auth} />}

            {submitError && (
              <div data-submit-error>
                <Alert message={submitError} onDismiss={dismissSubmitError} />
              </div>
            )}

            <div class="dialog-actions">
              <button type="button" class="btn" onClick={onCancel}>
                Cancel
              </button>
              <BusyButton busy={busy === "open-browser"} action="open-browser" class="primary" type="submit" onClick={() => {}}>
                {form.providerApp === "" ? "Register app and open browser" : "Open browser to sign in"}
              </BusyButton>
            </div>
          </>
        )}
      </form>
      {busy === "open-browser" && (
        <p class="visually-hidden" aria-live="polite">
          Opening the browser…
        </p>
      )}
    </>
  );
}

/** "Choose…": the native open dialog fills the path field beside it. */
function ChooseFile({ title, name, onChosen }: { title: string; name: string; onChosen: (path: string) => void }) {
  return (
    <button
      type="button"
      class="btn small"
      data-choose-file={name}
      onClick={() => {
        settingsApi.chooseKeyFile(title).then(
          (path) => path !== null && onChosen(path),
          (e) => console.warn(errorMessage(e)),
        );
      }}
    >
      Choose…
    </button>
  );
}
