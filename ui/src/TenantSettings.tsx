// A tenant's settings: its name, its provider apps (edited and deleted here, each deletion
// saying what happens to the connections that use the app), and deleting the tenant itself.
// A new tenant is created from the sidebar (NewTenantDialog).
import { useEffect, useState } from "preact/hooks";
import { api, errorMessage } from "./api";
import type { ConnectionRow } from "./bindings/ConnectionRow";
import type { ProviderApp } from "./bindings/ProviderApp";
import type { Tenant } from "./bindings/Tenant";
import type { TenantSharing } from "./bindings/TenantSharing";
import type { TenantSummary } from "./bindings/TenantSummary";
import { useShell } from "./ctx";
import { plural } from "./format";
import { ProviderAppEditor } from "./ProviderAppEditor";
import { SharingSection } from "./Sharing";
import { deletedSummary, settingsApi } from "./settingsApi";
import { Alert, BusyButton, ConfirmDialog, Dialog, onText } from "./ui";
import { welcomeApi } from "./welcomeApi";
import "./settings.css";

type Props = {
  summary: TenantSummary;
  onClose: () => void;
  /** Something changed: the window reloads its lists. */
  onChanged: () => void;
  /** The tenant is gone. */
  onDeleted: () => void;
  /** Connections were deleted (with their provider app): a detail showing one closes. */
  onConnectionsDeleted: () => void;
  /** How the tenant is shared, when it is. */
  sharing?: TenantSharing;
};

export function TenantSettings({ summary, onClose, onChanged, onDeleted, onConnectionsDeleted, sharing }: Props) {
  const { note, presetNames } = useShell();
  const tenant = summary.tenant;
  const [name, setName] = useState(tenant.name);
  const [apps, setApps] = useState<ProviderApp[] | null>(null);
  const [connections, setConnections] = useState<ConnectionRow[]>([]);
  const [editing, setEditing] = useState<string | null>(null);
  const [deletingApp, setDeletingApp] = useState<ProviderApp | null>(null);
  const [deletingTenant, setDeletingTenant] = useState(false);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<{ where: string; message: string } | null>(null);

  const load = () => {
    api.providerApps(tenant.id).then(setApps, (e) => setError({ where: "apps", message: errorMessage(e) }));
    api.listConnections(tenant.id).then((t) => setConnections(t.rows()), () => {});
  };
  useEffect(load, [tenant.id]);

  const run = async (what: string, f: () => Promise<void>) => {
    setBusy(what);
    setError(null);
    try {
      await f();
    } catch (e) {
      setError({ where: what, message: errorMessage(e) });
    } finally {
      setBusy(null);
    }
  };
  const errorAt = (where: string) =>
    error?.where === where ? (
      <div class="inline-error" data-error-at={where}>
        <Alert message={error.message} onDismiss={() => setError(null)} />
      </div>
    ) : null;

  const rename = () =>
    run("rename", async () => {
      await settingsApi.renameTenant(tenant.id, name);
      note(`Renamed the tenant to ${name.trim()}.`);
      onChanged();
    });
  const using = (app: ProviderApp) => connections.filter((c) => c.provider_app_id === app.id);
  const deleteApp = (app: ProviderApp) =>
    run("delete-app", async () => {
      const deleted = await settingsApi.deleteProviderApp(tenant.id, app.id, using(app).length > 0);
      setDeletingApp(null);
      if (deleted.length > 0) onConnectionsDeleted();
      const s = deletedSummary(`provider app ${app.name}`, deleted);
      note(s.text, s.warn ? "warn" : "info");
      load();
      onChanged();
    });
  const deleteTenant = () =>
    run("delete-tenant", async () => {
      const deleted = await settingsApi.deleteTenant(tenant.id);
      const s = deletedSummary(`tenant ${tenant.name}; its keys are gone, so no copy of its data can be decrypted`, deleted);
      note(s.text, s.warn ? "warn" : "info");
      onDeleted();
    });

  const confirmOpen = deletingApp !== null || deletingTenant;
  return (
    <>
      <Dialog label={`Settings of ${tenant.name}`} onClose={() => !confirmOpen && onClose()} class="settings" attrs={{ "data-tenant-settings": tenant.slug }}>
        <header class="dialog-head">
          <h2 class="dialog-title">Settings of {tenant.name}</h2>
          <button type="button" class="icon-btn x" data-action="close" aria-label="Close" onClick={onClose} />
        </header>
        <div class="dialog-body settings-body">
          <form
            class="settings-section rename"
            onSubmit={(e) => {
              e.preventDefault();
              void rename();
            }}
          >
            <label class="field">
              <span>Tenant name (its short name {tenant.slug} stays)</span>
              <div class="row">
                <input name="tenant_name" value={name} {...onText(setName)} aria-invalid={error?.where === "rename" ? "true" : undefined} />
                <BusyButton busy={busy === "rename"} action="rename-tenant" type="submit" disabled={name.trim() === "" || name.trim() === tenant.name} onClick={() => {}}>
                  Rename
                </BusyButton>
              </div>
            </label>
            {errorAt("rename")}
          </form>

          {sharing && <SharingSection sharing={sharing} />}

          <section class="settings-section" aria-labelledby="apps-heading">
            <h3 id="apps-heading">Provider apps</h3>
            {apps === null && <p class="muted small">Loading…</p>}
            {apps?.length === 0 && <p class="muted small">No provider app yet: Connect account registers one.</p>}
            <ul class="app-list">
              {(apps ?? []).map((a) => (
                <li key={a.id} data-provider-app={a.name}>
                  {editing === a.id ? (
                    <ProviderAppEditor
                      tenant={tenant.id}
                      app={a}
                      onCancel={() => setEditing(null)}
                      onSaved={(edited) => {
                        setEditing(null);
                        const changed = edited.changed.length > 0 ? edited.changed.join(", ") : "nothing changed";
                        const n = edited.reconsent.length;
                        const again = n > 0 ? ` ${edited.reconsent.join(", ")} ${n === 1 ? "needs" : "need"} a new consent (Re-consent).` : "";
                        note(`Updated provider app ${a.name}: ${changed}.${again}`, again ? "warn" : "info");
                        load();
                        onChanged();
                      }}
                    />
                  ) : (
                    <div class="app-row">
                      <div class="app-info">
                        <strong>{a.name}</strong>
                        <span class="muted small">
                          {a.preset ? (presetNames.get(a.preset) ?? a.preset) : "custom"} · client id <code>{a.client_id}</code> ·{" "}
                          {a.has_client_secret ? "client secret stored" : "public client"} · {a.redirect_mode}
                          {a.redirect_port ? ` port ${a.redirect_port}` : ""} · {plural(using(a).length, "connection")}
                        </span>
                      </div>
                      <button type="button" class="btn small" data-action="edit-app" onClick={() => setEditing(a.id)}>
                        Edit
                      </button>
                      <button type="button" class="btn small danger-outline" data-action="delete-app" onClick={() => setDeletingApp(a)}>
                        Delete
                      </button>
                    </div>
                  )}
                </li>
              ))}
            </ul>
            {errorAt("apps")}
          </section>

          <section class="settings-section danger-zone">
            <h3>Delete this tenant</h3>
            <p class="muted small">
              Revokes its {plural(summary.connections, "grant")} at the providers, then deletes its keys from the keychain: its
              data is crypto-shredded, so no copy of the vault (a backup, a stolen disk) can decrypt it again.
            </p>
            <button type="button" class="btn danger-outline" data-action="delete-tenant" onClick={() => setDeletingTenant(true)}>
              Delete tenant…
            </button>
            {errorAt("delete-tenant")}
          </section>
        </div>
      </Dialog>

      {deletingApp && (
        <ConfirmDialog
          title={`Delete provider app ${deletingApp.name}?`}
          confirmLabel={using(deletingApp).length > 0 ? "Revoke and delete" : "Delete"}
          danger
          busy={busy === "delete-app"}
          onConfirm={() => void deleteApp(deletingApp)}
          onCancel={() => setDeletingApp(null)}
          attrs={{ "data-confirm-delete-app": "" }}
        >
          {using(deletingApp).length > 0 ? (
            <p data-app-fate>
              {plural(using(deletingApp).length, "connection")} {using(deletingApp).length === 1 ? "uses" : "use"} it (
              {using(deletingApp).map((c) => c.name).join(", ")}): each is
              revoked at the provider, then deleted with it. A provider that does not confirm is named afterwards.
            </p>
          ) : (
            <p data-app-fate>No connection uses it. Its settings and client secret are deleted.</p>
          )}
          <p>This cannot be undone.</p>
          {errorAt("delete-app")}
        </ConfirmDialog>
      )}
      {deletingTenant && (
        <ConfirmDialog
          title={`Delete tenant ${tenant.name}?`}
          confirmLabel="Revoke and delete"
          danger
          busy={busy === "delete-tenant"}
          onConfirm={() => void deleteTenant()}
          onCancel={() => setDeletingTenant(false)}
          attrs={{ "data-confirm-delete-tenant": "" }}
        >
          <p data-tenant-fate>
            Its {plural(summary.connections, "grant")} {summary.connections === 1 ? "is" : "are"} revoked at the providers, then its
            keys leave the keychain and its data the vault: it is crypto-shredded, and no backup can decrypt it again.
          </p>
          <p>This cannot be undone.</p>
          {errorAt("delete-tenant")}
        </ConfirmDialog>
      )}
    </>
  );
}

/** Creates a tenant (from the sidebar; the first one can come from the welcome too). */
export function NewTenantDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (t: Tenant) => void }) {
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const create = async () => {
    if (name.trim() === "") {
      setError("Give the tenant a name, e.g. the client's company.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onCreated(await welcomeApi.createTenant(name));
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog label="New tenant" onClose={onClose} attrs={{ "data-new-tenant": "" }}>
      <h2 class="dialog-title">New tenant</h2>
      <form
        class="dialog-body"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void create();
        }}
      >
        <label class="field">
          <span>Name: a client workspace, for its accounts and tokens</span>
          <input name="new_tenant" data-autofocus placeholder="Acme Corp" value={name} {...onText(setName)} aria-invalid={error ? "true" : undefined} aria-describedby={error ? "new-tenant-error" : undefined} />
          {error && (
            <span class="field-error" id="new-tenant-error" data-field-error="new_tenant">
              {error}
            </span>
          )}
        </label>
        <div class="dialog-actions">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <BusyButton busy={busy} action="create-tenant" class="primary" type="submit" onClick={() => {}}>
            Create tenant
          </BusyButton>
        </div>
      </form>
    </Dialog>
  );
}
