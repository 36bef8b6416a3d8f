// The connect wizard: tenant, provider app (existing or new from a preset, an issuer or explicit
// endpoints), scopes, redirect mode and name; then the waiting state until `connect-finished`.
// Re-consent uses the same waiting state.
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, errorMessage, isOffline } from "./api";
import type { ConnectFinished } from "./bindings/ConnectFinished";
import type { Connection } from "./bindings/Connection";
import type { ConnectStarted } from "./bindings/ConnectStarted";
import type { ProviderApp } from "./bindings/ProviderApp";
import type { RedirectMode } from "./bindings/RedirectMode";
import type { TenantId } from "./bindings/TenantId";
import { useShell } from "./ctx";
import { clock } from "./format";
import { useBusy, useNow } from "./hooks";
import { withHint } from "./online";
import { Alert, BusyButton, Dialog, RiskBadge, Spinner, focusables, onText } from "./ui";
import {
  type Source,
  type WizardForm,
  buildConnectForm,
  buildSpec,
  chosenScopes,
  defaultRedirect,
  defaultScopes,
  defaultVars,
  demoPreset,
  emptyForm,
  scopeOptions,
  suggestName,
  validate,
} from "./wizard";

export type Reconsent = { started: ConnectStarted; target: { tenant: TenantId; connection: string }; label: string };

/** How the wizard hears `connect-finished`: a handler returning whether the event was its own,
 * and events that arrived before their flow was known. */
export type FinishFeed = {
  attach: (handler: (e: ConnectFinished) => boolean) => () => void;
  take: (flow: string) => ConnectFinished | undefined;
};

type Props = {
  initialTenant: TenantId | null;
  reconsent: Reconsent | null;
  demo: boolean;
  onClose: () => void;
  onConnected: (c: Connection) => void;
  /** A provider app was registered (the list's provider names need it). */
  onAppAdded: (app: ProviderApp) => void;
  finish: FinishFeed;
};

type Phase = "form" | "waiting" | "error";

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

export function Wizard({ initialTenant, reconsent, demo, onClose, onConnected, onAppAdded, finish }: Props) {
  const { net, note, tenants, catalog } = useShell();
  const [busy, run] = useBusy();
  const [phase, setPhase] = useState<Phase>(reconsent ? "waiting" : "form");
  const [form, setForm] = useState<WizardForm>(() => emptyForm(initialTenant ?? tenants[0]?.tenant.id ?? ""));
  const [touched, setTouched] = useState<{ name: boolean; appName: boolean }>({ name: false, appName: false });
  const [apps, setApps] = useState<ProviderApp[] | null>(null);
  const [showErrors, setShowErrors] = useState(false);
  const [submitError, setSubmitError] = useState<string | null>(null);
  const [started, setStarted] = useState<{ s: ConnectStarted; at: number } | null>(
    reconsent ? { s: reconsent.started, at: Date.now() } : null,
  );
  const [finishError, setFinishError] = useState<string | null>(null);
  const [pasted, setPasted] = useState("");
  const [pasteError, setPasteError] = useState<string | null>(null);
  const flowRef = useRef<string | null>(reconsent?.started.flow ?? null);
  const body = useRef<HTMLDivElement>(null);
  const handlers = useRef({ onConnected, onClose });
  handlers.current = { onConnected, onClose };

  /** Handles the end of our sign-in; false for another flow's event. */
  const finished = (e: ConnectFinished): boolean => {
    if (e.flow !== flowRef.current) return false;
    flowRef.current = null;
    if (e.connection) {
      handlers.current.onConnected(e.connection);
    } else if (e.cancelled) {
      setStarted(null);
      note("Sign-in cancelled.");
      if (reconsent) handlers.current.onClose();
      else setPhase("form");
    } else {
      setFinishError(withHint(e.error?.message ?? "The sign-in did not finish.", e.error?.offline ?? false));
      setPhase("error");
    }
    return true;
  };
  const finishedRef = useRef(finished);
  finishedRef.current = finished;

  // Sign-ins end with a `connect-finished` event (the shell listens from the start and keeps
  // events that arrive before their flow is known here).
  useLayoutEffect(() => finish.attach((e) => finishedRef.current(e)), [finish]);
  useLayoutEffect(() => {
    const flow = flowRef.current;
    const e = flow ? finish.take(flow) : undefined;
    if (e) finished(e);
  }, []);

  // Closed while a sign-in was starting: end that sign-in too.
  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
    },
    [],
  );

  const begin = (s: ConnectStarted) => {
    if (!mounted.current) {
      api.cancelConnect(s.flow).catch(() => {});
      return;
    }
    flowRef.current = s.flow;
    setStarted({ s, at: Date.now() });
    setPasted("");
    setPasteError(null);
    setPhase("waiting");
    const e = finish.take(s.flow);
    if (e) finished(e);
  };

  // Tenants that arrive after the wizard opened: start with the first.
  useEffect(() => {
    if (form.tenant === "" && tenants.length > 0) set("tenant", tenants[0].tenant.id);
  }, [tenants]);

  // The tenant's provider apps; the first one is preselected, else a new one from the catalog.
  const userPicked = useRef(false);
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
  const errors = showErrors ? validate(form, form.providerApp === "" ? preset : null) : {};

  const set = <K extends keyof WizardForm>(k: K, v: WizardForm[K]) => setForm((f) => ({ ...f, [k]: v }));

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

  const toggleScope = (s: string, on: boolean) =>
    setForm((f) => ({ ...f, scopes: on ? [...f.scopes.filter((x) => x !== s), s] : f.scopes.filter((x) => x !== s) }));

  const submit = async () => {
    setShowErrors(true);
    const errs = validate(form, form.providerApp === "" ? preset : null);
    if (Object.keys(errs).length > 0) {
      requestAnimationFrame(() => body.current?.querySelector<HTMLElement>("[aria-invalid='true']")?.focus());
      return;
    }
    setSubmitError(null);
    try {
      await run("open-browser", async () => {
        let appId = form.providerApp;
        if (appId === "") {
          const created = await net(api.addProviderApp(form.tenant, buildSpec(form, scopes)));
          appId = created.id;
          setApps((l) => [...(l ?? []), created]);
          setForm((f) => ({ ...f, providerApp: created.id }));
          onAppAdded(created);
        }
        begin(await net(api.startConnect(form.tenant, buildConnectForm(form, appId, scopes))));
      });
    } catch (e) {
      setSubmitError(withHint(errorMessage(e), isOffline(e)));
    }
  };

  const cancel = () => {
    const flow = flowRef.current;
    flowRef.current = null;
    if (flow) api.cancelConnect(flow).catch(() => {});
    setStarted(null);
    if (reconsent) onClose();
    else setPhase("form");
  };

  const close = () => {
    if (flowRef.current) api.cancelConnect(flowRef.current).catch(() => {});
    flowRef.current = null;
    onClose();
  };

  const paste = async () => {
    const flow = flowRef.current;
    if (!flow || pasted.trim() === "") {
      setPasteError("Paste the whole address from the browser's address bar.");
      return;
    }
    setPasteError(null);
    try {
      await run("paste", () => net(api.pasteRedirect(flow, pasted.trim())));
    } catch (e) {
      setPasteError(withHint(errorMessage(e), isOffline(e)));
    }
  };

  const retry = async () => {
    setFinishError(null);
    if (!reconsent) {
      setPhase("form");
      return;
    }
    try {
      await run("retry", async () => begin(await net(api.startReconsent(reconsent.target))));
    } catch (e) {
      setFinishError(withHint(errorMessage(e), isOffline(e)));
    }
  };

  // Each phase starts with the focus on its first control.
  const firstPhase = useRef(true);
  useEffect(() => {
    if (firstPhase.current) {
      firstPhase.current = false; // the dialog focuses its first control itself
      return;
    }
    const el = body.current;
    if (el) (el.querySelector<HTMLElement>("[data-autofocus]") ?? focusables(el)[0])?.focus();
  }, [phase]);

  const title = reconsent ? `Re-consent ${reconsent.label}` : "Connect account";
  const field = (name: string) => ({
    "aria-invalid": errors[name] ? ("true" as const) : undefined,
    "aria-describedby": errors[name] ? `err-${name}` : undefined,
  });
  const err = (name: string) =>
    errors[name] ? (
      <span class="field-error" id={`err-${name}`}>
        {errors[name]}
      </span>
    ) : null;

  return (
    <Dialog label={title} onClose={close} class="wizard" attrs={{ "data-wizard": "" }} closeOnBackdrop={false}>
      <header class="dialog-head">
        <h2 class="dialog-title">{title}</h2>
        <button type="button" class="icon-btn x" data-action="close" aria-label="Close" onClick={close} />
      </header>
      <div ref={body} class="wizard-body">
        {phase === "form" && !reconsent && (
          <form
            class="wizard-form"
            data-wizard-state="form"
            noValidate
            onSubmit={(e) => {
              e.preventDefault();
              void submit();
            }}
          >
            {tenants.length === 0 ? (
              <Alert message="There is no tenant yet. Create one on the command line: grantkeeper tenant add <name>." />
            ) : (
              <>
                <div class="grid2">
                  <label class="field">
                    <span>Tenant</span>
                    <select name="tenant" data-autofocus value={form.tenant} onChange={(e) => {
                        const tenant = e.currentTarget.value;
                        if (tenant === form.tenant) return; // the same tenant: its apps stay
                        // Forget the other tenant's apps at once, so no stale choice can be made.
                        userPicked.current = false;
                        setApps(null);
                        set("tenant", tenant);
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
                        userPicked.current = true;
                        selectApp(e.currentTarget.value);
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
                            userPicked.current = true;
                            selectPreset(e.currentTarget.value);
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
                              {...onText((val) => setForm((f) => ({ ...f, vars: { ...f.vars, [v.name]: val } })))}
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
                            setTouched((t) => ({ ...t, appName: true }));
                            set("appName", v);
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
                      <span>Client secret (optional, for confidential clients)</span>
                      <input type="password" name="client_secret" autoComplete="off" value={form.clientSecret} {...onText((v) => set("clientSecret", v))} />
                      <span class="hint">Stored in the keychain; it never comes back to this window.</span>
                    </label>
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
                    <select name="redirect" value={form.redirect} onChange={(e) => set("redirect", e.currentTarget.value as RedirectMode)}>
                      {(Object.keys(redirectLabels) as RedirectMode[]).map((m) => (
                        <option key={m} value={m} disabled={m === "loopback" && preset?.redirect.loopback === false}>
                          {redirectLabels[m]}
                        </option>
                      ))}
                    </select>
                    <span class="hint">{redirectHints[form.redirect]}</span>
                  </label>
                  <label class="field">
                    <span>Connection name</span>
                    <input
                      type="text"
                      name="name"
                      placeholder="e.g. salesforce-prod"
                      value={form.name}
                      {...onText((v) => {
                        setTouched((t) => ({ ...t, name: true }));
                        set("name", v);
                      })}
                      {...field("name")}
                    />
                    {err("name")}
                  </label>
                </div>
                {form.providerApp === "" && form.redirect === "relay" && (
                  <label class="field">
                    <span>Relay page (https, registered as redirect URI)</span>
                    <input type="url" name="relay_url" value={form.relayUrl} {...onText((v) => set("relayUrl", v))} {...field("relay_url")} />
                    {err("relay_url")}
                  </label>
                )}
                {form.providerApp === "" && form.redirect === "loopback" && preset?.redirect.fixed_port && (
                  <label class="field">
                    <span>Loopback port registered at the provider</span>
                    <input type="number" name="port" min={1} max={65535} value={form.port} {...onText((v) => set("port", v))} {...field("port")} />
                    {err("port")}
                  </label>
                )}

                {submitError && <Alert message={submitError} onDismiss={() => setSubmitError(null)} />}

                <div class="dialog-actions">
                  <button type="button" class="btn" onClick={close}>
                    Cancel
                  </button>
                  <BusyButton busy={busy === "open-browser"} action="open-browser" class="primary" type="submit" onClick={() => {}}>
                    {form.providerApp === "" ? "Register app and open browser" : "Open browser to sign in"}
                  </BusyButton>
                </div>
              </>
            )}
          </form>
        )}

        {phase === "waiting" && started && (
          <div class="waiting" data-wizard-state="waiting">
            <div class="waiting-head" aria-live="polite">
              <Spinner />
              <p>Waiting for you to finish signing in in your browser…</p>
            </div>
            <Remaining started={started} />
            {started.s.browser_error && (
              <Alert message={`The browser did not open (${started.s.browser_error}). Open the sign-in address below yourself.`} />
            )}
            <AuthUrl url={started.s.url} />
            <div class="paste">
              <p>
                {started.s.redirect === "paste"
                  ? "After you approve, the browser shows an address (it may say the page cannot be reached). Paste it here:"
                  : "Browser could not reach Grantkeeper? Paste the address it shows"}
              </p>
              <div class="paste-row">
                <input
                  type="url"
                  name="pasted_url"
                  aria-label="Address shown by the browser after sign-in"
                  placeholder={started.s.redirect_uri + "?code=…"}
                  value={pasted}
                  {...onText(setPasted)}
                  onKeyDown={(e) => e.key === "Enter" && void paste()}
                  data-autofocus={started.s.redirect === "paste" ? "" : undefined}
                />
                <BusyButton busy={busy === "paste"} action="paste" onClick={() => void paste()}>
                  Finish sign-in
                </BusyButton>
              </div>
              {pasteError && <Alert message={pasteError} onDismiss={() => setPasteError(null)} />}
            </div>
            <div class="dialog-actions">
              <button type="button" class="btn" data-action="cancel" data-autofocus={started.s.redirect === "paste" ? undefined : ""} onClick={cancel}>
                Cancel sign-in
              </button>
            </div>
          </div>
        )}

        {phase === "error" && (
          <div class="wizard-error" data-wizard-state="error">
            <Alert title="The sign-in did not finish." message={finishError ?? "The sign-in failed."} />
            <div class="dialog-actions">
              <button type="button" class="btn" onClick={close}>
                Close
              </button>
              <BusyButton busy={busy === "retry"} action="retry" class="primary" onClick={() => void retry()} attrs={{ "data-autofocus": "" }}>
                Try again
              </BusyButton>
            </div>
          </div>
        )}
      </div>
      {busy === "open-browser" && <p class="visually-hidden" aria-live="polite">Opening the browser…</p>}
    </Dialog>
  );
}

function Remaining({ started }: { started: { s: ConnectStarted; at: number } }) {
  const now = useNow();
  const left = started.s.timeout_secs - (now - started.at) / 1000;
  return (
    <p class="remaining">
      Time left: <span class="countdown">{clock(left)}</span>
    </p>
  );
}

function AuthUrl({ url }: { url: string }) {
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<string | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(url);
      setCopied("Link copied.");
    } catch {
      input.current?.select();
      const ok = document.execCommand?.("copy") ?? false;
      setCopied(ok ? "Link copied." : "Selected: press Ctrl+C to copy.");
    }
  };
  return (
    <div class="auth-url">
      <label class="field">
        <span>Sign-in address</span>
        <input ref={input} type="text" name="auth_url" readOnly value={url} class="small mono" onFocus={(e) => e.currentTarget.select()} />
      </label>
      <button type="button" class="btn small" data-action="copy-link" onClick={() => void copy()}>
        Copy link
      </button>
      {copied && (
        <span class="muted small" aria-live="polite">
          {copied}
        </span>
      )}
    </div>
  );
}
