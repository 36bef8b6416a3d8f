// Typed calls that change the vault's set-up: what a provider app registers at its provider,
// editing and deleting provider apps, creating, renaming and deleting tenants (types from the
// Rust side, ts-rs). Every decision is the core's.
import { invoke } from "@tauri-apps/api/core";
import type { ClientPublicMaterial } from "./bindings/ClientPublicMaterial";
import type { DeletedConnection } from "./bindings/DeletedConnection";
import type { ProviderAppEdit } from "./bindings/ProviderAppEdit";
import type { ProviderAppEdited } from "./bindings/ProviderAppEdited";
import type { PublicMaterialKind } from "./bindings/PublicMaterialKind";
import type { Registration } from "./bindings/Registration";
import type { RegistrationDraft } from "./bindings/RegistrationDraft";
import type { TenantId } from "./bindings/TenantId";

export const settingsApi = {
  /** What to register at the provider for these settings (computed by the core, no I/O). */
  registrationValues: (draft: RegistrationDraft) => invoke<Registration>("registration_values", { draft }),
  editProviderApp: (tenant: TenantId, providerApp: string, edit: ProviderAppEdit) =>
    invoke<ProviderAppEdited>("edit_provider_app", { tenant, providerApp, edit }),
  /** With `withConnections`, the connections using it are revoked at the provider and deleted first. */
  deleteProviderApp: (tenant: TenantId, providerApp: string, withConnections: boolean) =>
    invoke<DeletedConnection[]>("delete_provider_app", { tenant, providerApp, withConnections }),
  renameTenant: (tenant: TenantId, name: string) => invoke<void>("rename_tenant", { tenant, name }),
  /** Revokes the tenant's grants at their providers, then deletes its keys and data. */
  deleteTenant: (tenant: TenantId) => invoke<DeletedConnection[]>("delete_tenant", { tenant }),
  /** A provider app's public JWK set and client certificate (public material only). */
  clientPublicMaterial: (tenant: TenantId, providerApp: string) =>
    invoke<ClientPublicMaterial>("client_public_material", { tenant, providerApp }),
  /** Saves one of them where the native save dialog says; `null` when cancelled. */
  exportClientPublicMaterial: (tenant: TenantId, providerApp: string, kind: PublicMaterialKind) =>
    invoke<string | null>("export_client_public_material", { tenant, providerApp, kind }),
  /** A key or certificate file's path from the native open dialog; `null` when cancelled. */
  chooseKeyFile: (title: string) => invoke<string | null>("choose_key_file", { title }),
};

/** An edit that changes nothing (each field set as needed). */
export function noEdit(): ProviderAppEdit {
  return { client_id: null, client_secret: null, remove_client_secret: false, scopes: null, redirect: null, dpop: null };
}

/** A summary of connections deleted with their revocation outcomes: one line, and a warning
 * tone when any provider did not confirm. */
export function deletedSummary(what: string, deleted: DeletedConnection[]): { text: string; warn: boolean } {
  const unconfirmed = deleted.filter((d) => d.revocation !== null && !d.revocation.revoked_at_provider);
  const revoked = deleted.filter((d) => d.revocation?.revoked_at_provider).length;
  let text = `Deleted ${what}.`;
  if (deleted.length > 0) text += ` ${revoked} of ${deleted.length} connection${deleted.length === 1 ? "" : "s"} revoked at the provider.`;
  for (const d of unconfirmed)
    text += ` ${d.name}: forgotten here only (${d.revocation?.detail}); revoke it in the provider's console.`;
  return { text, warn: unconfirmed.length > 0 };
}
