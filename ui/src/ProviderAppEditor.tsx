// Editing a provider app in the window: client id, client secret (keep, replace or remove),
// scopes, redirect, fixed port and relay page, with the values to register at the provider as
// the core computes them. Saving is one core edit, recorded in the usage history.
import { useLayoutEffect, useRef, useState } from "preact/hooks";
import { errorMessage } from "./api";
import type { ProviderApp } from "./bindings/ProviderApp";
import type { ProviderAppEdited } from "./bindings/ProviderAppEdited";
import type { RedirectMode } from "./bindings/RedirectMode";
import type { TenantId } from "./bindings/TenantId";
import { PublicMaterial } from "./PublicMaterial";
import { RegisterValues, useRegistration } from "./RegisterValues";
import { noEdit, settingsApi } from "./settingsApi";
import { Alert, BusyButton, onText } from "./ui";
import { fieldOfError, parseScopes, portOf } from "./wizard";

type SecretChoice = "keep" | "replace" | "remove";

type Props = {
  tenant: TenantId;
  app: ProviderApp;
  onSaved: (edited: ProviderAppEdited) => void;
  onCancel: () => void;
};

export function ProviderAppEditor({ tenant, app, onSaved, onCancel }: Props) {
  const [clientId, setClientId] = useState(app.client_id);
  const [secretChoice, setSecretChoice] = useState<SecretChoice>("keep");
  const [secret, setSecret] = useState("");
  const [scopes, setScopes] = useState(app.default_scopes.join(" "));
  const [redirect, setRedirect] = useState<RedirectMode>(app.redirect_mode);
  const [port, setPort] = useState(app.redirect_port?.toString() ?? "");
  const [relay, setRelay] = useState(app.relay_url ?? "");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ field: string | null; message: string } | null>(null);
  const root = useRef<HTMLFormElement>(null);

  const hasSecret = secretChoice === "replace" || (secretChoice === "keep" && app.has_client_secret);
  const draft = {
    preset: app.preset,
    redirect,
    port: portOf(port),
    relay_url: relay.trim() === "" ? null : relay.trim(),
    scopes: parseScopes(scopes),
    has_client_secret: hasSecret,
    client_auth: app.client_auth,
  };
  const registration = useRegistration(draft);

  // An error is brought into view beside its field (or the Save button).
  useLayoutEffect(() => {
    if (!error) return;
    const el = root.current?.querySelector<HTMLElement>("[aria-invalid='true']") ?? root.current?.querySelector<HTMLElement>("[data-edit-error]");
    el?.scrollIntoView?.({ block: "center" });
    el?.focus({ preventScroll: true });
  }, [error]);

  const local = (): { field: string; message: string } | null => {
    if (clientId.trim() === "") return { field: "client_id", message: "Enter the client id from the provider's app registration." };
    if (secretChoice === "replace" && secret === "") return { field: "client_secret", message: "Enter the new client secret, or keep the stored one." };
    if (port.trim() !== "" && portOf(port) === null) return { field: "port", message: "The port is a number from 1 to 65535." };
    return null;
  };

  const save = async () => {
    const bad = local();
    if (bad) {
      setError(bad);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      // What cannot sign in yet is refused at its field (computed now, not from the last keystroke).
      const problem = (await settingsApi.registrationValues(draft)).problem;
      if (problem) {
        setError({ field: problem.field, message: problem.message });
        return;
      }
      const relayUrl = relay.trim() === "" ? null : relay.trim();
      const edit = {
        ...noEdit(),
        client_id: clientId.trim(),
        client_secret: secretChoice === "replace" ? secret : null,
        remove_client_secret: secretChoice === "remove",
        scopes: parseScopes(scopes),
        redirect,
        port: portOf(port),
        relay_url: relayUrl,
      };
      onSaved(await settingsApi.editProviderApp(tenant, app.id, edit));
    } catch (e) {
      const message = errorMessage(e);
      setError({ field: fieldOfError(message), message });
    } finally {
      setBusy(false);
    }
  };

  const mark = (name: string) => ({
    "aria-invalid": error?.field === name ? ("true" as const) : undefined,
    "aria-describedby": error?.field === name ? `edit-err-${name}` : undefined,
  });
  const err = (name: string) =>
    error?.field === name ? (
      <span class="field-error" id={`edit-err-${name}`} data-field-error={name}>
        {error.message}
      </span>
    ) : null;

  return (
    <form
      class="app-editor"
      data-app-editor={app.name}
      ref={root}
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <h3>Edit {app.name}</h3>
      <label class="field">
        <span>Client id</span>
        <input type="text" name="client_id" autoComplete="off" value={clientId} {...onText(setClientId)} {...mark("client_id")} />
        {err("client_id")}
        {clientId.trim() !== app.client_id && <span class="hint">Connections granted to the old client id will need a new consent.</span>}
      </label>
      <fieldset class="field secret-choice">
        <legend>Client secret {app.has_client_secret ? "(one is stored)" : "(none stored: a public client)"}</legend>
        <label class="field inline">
          <input type="radio" name="secret_choice" value="keep" checked={secretChoice === "keep"} onChange={() => setSecretChoice("keep")} />
          <span>{app.has_client_secret ? "Keep the stored secret" : "Keep it public"}</span>
        </label>
        <label class="field inline">
          <input type="radio" name="secret_choice" value="replace" checked={secretChoice === "replace"} onChange={() => setSecretChoice("replace")} />
          <span>{app.has_client_secret ? "Replace it" : "Set a secret"}</span>
        </label>
        {app.has_client_secret && (
          <label class="field inline">
            <input type="radio" name="secret_choice" value="remove" checked={secretChoice === "remove"} onChange={() => setSecretChoice("remove")} />
            <span>Remove it (a public client from now on)</span>
          </label>
        )}
        {secretChoice === "replace" && (
          <input type="password" name="client_secret" autoComplete="off" aria-label="New client secret" value={secret} {...onText(setSecret)} {...mark("client_secret")} />
        )}
        {err("client_secret")}
      </fieldset>
      <label class="field">
        <span>Scopes (space separated)</span>
        <input type="text" name="scopes" value={scopes} {...onText(setScopes)} />
      </label>
      <div class="grid2">
        <label class="field">
          <span>Redirect</span>
          <select name="redirect" value={redirect} onChange={(e) => setRedirect(e.currentTarget.value as RedirectMode)} {...mark("redirect")}>
            <option value="loopback">Loopback (127.0.0.1)</option>
            <option value="relay">Relay page (https)</option>
            <option value="paste">Paste the address</option>
          </select>
          {err("redirect")}
        </label>
        <label class="field">
          <span>Fixed loopback port</span>
          <input type="number" name="port" min={1} max={65535} placeholder="any free port" value={port} {...onText(setPort)} {...mark("port")} />
          {err("port")}
        </label>
      </div>
      <label class="field">
        <span>Relay page (HTTPS address of the hosted relay/ folder)</span>
        <input type="url" name="relay_url" placeholder="https://you.example.com/grantkeeper-relay/" value={relay} {...onText(setRelay)} {...mark("relay_url")} />
        {err("relay_url")}
      </label>
      <RegisterValues reg={registration} />
      <PublicMaterial tenant={tenant} app={app.id} auth={app.client_auth} />
      {error && error.field === null && (
        <div data-edit-error>
          <Alert message={error.message} onDismiss={() => setError(null)} />
        </div>
      )}
      <div class="dialog-actions">
        <button type="button" class="btn" onClick={onCancel}>
          Cancel
        </button>
        <BusyButton busy={busy} action="save-app" class="primary" type="submit" onClick={() => {}}>
          Save changes
        </BusyButton>
      </div>
    </form>
  );
}
