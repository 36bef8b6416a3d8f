// Typed calls into the Tauri shell. Every type comes from the Rust side (src/bindings, ts-rs).
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { KeyFiles } from "./bindings/KeyFiles";
import type { BulkRevokeResult } from "./bindings/BulkRevokeResult";
import type { CommandError } from "./bindings/CommandError";
import type { Connection } from "./bindings/Connection";
import type { ConnectionDetail } from "./bindings/ConnectionDetail";
import type { ConnectionColumns } from "./bindings/ConnectionColumns";
import type { ConnectionId } from "./bindings/ConnectionId";
import type { ConnectFinished } from "./bindings/ConnectFinished";
import type { ConnectForm } from "./bindings/ConnectForm";
import type { ConnectStarted } from "./bindings/ConnectStarted";
import type { Copied } from "./bindings/Copied";
import type { EventKind } from "./bindings/EventKind";
import type { ExportResult } from "./bindings/ExportResult";
import type { GrantRef } from "./bindings/GrantRef";
import type { HandOutAsked } from "./bindings/HandOutAsked";
import type { GrantReportRow } from "./bindings/GrantReportRow";
import type { Preset } from "./bindings/Preset";
import type { ProviderApp } from "./bindings/ProviderApp";
import type { ProviderAppSpec } from "./bindings/ProviderAppSpec";
import type { ProxyView } from "./bindings/ProxyView";
import type { RefreshedLate } from "./bindings/RefreshedLate";
import type { SecondInstance } from "./bindings/SecondInstance";
import type { ReportFormat } from "./bindings/ReportFormat";
import type { RevealedToken } from "./bindings/RevealedToken";
import type { ReviewFilter } from "./bindings/ReviewFilter";
import type { RevokeOutcome } from "./bindings/RevokeOutcome";
import type { TenantId } from "./bindings/TenantId";
import type { TenantSharing } from "./bindings/TenantSharing";
import type { TenantSummary } from "./bindings/TenantSummary";
import type { UsageEvent } from "./bindings/UsageEvent";
import type { VaultStatus } from "./bindings/VaultStatus";
import { ConnectionTable } from "./connectionTable";

type Target = { tenant: TenantId; connection: ConnectionId };

export const api = {
  // Offline: reads only, no secret.
  vaultStatus: () => invoke<VaultStatus>("vault_status"),
  listTenants: () => invoke<TenantSummary[]>("list_tenants"),
  /** The connections list: compact rows in column form; `connectionDetail` has the rest. */
  listConnections: (tenant: TenantId | null) =>
    invoke<ConnectionColumns>("list_connections", { tenant }).then((cols) => new ConnectionTable(cols)),
  connectionDetail: (t: Target) => invoke<ConnectionDetail>("connection_detail", t),
  connectionHistory: (t: Target, kind: EventKind | null, since: number | null, limit: number) =>
    invoke<UsageEvent[]>("connection_history", { ...t, kind, since, limit }),
  catalog: () => invoke<Preset[]>("catalog"),
  providerApps: (tenant: TenantId) => invoke<ProviderApp[]>("provider_apps", { tenant }),
  grantReview: (filter: ReviewFilter) => invoke<GrantReportRow[]>("grant_review", { filter }),
  exportReview: (filter: ReviewFilter, format: ReportFormat) =>
    invoke<ExportResult | null>("export_review", { filter, format }),
  // Copy and reveal are recorded in the usage history; copy never sends the token to the window.
  // They refresh first when the token is about to expire: `operation` names them for Cancel.
  copyAccessToken: (t: Target, operation: string) => invoke<Copied>("copy_access_token", { ...t, operation }),
  revealAccessToken: (t: Target, operation: string) => invoke<RevealedToken>("reveal_access_token", { ...t, operation }),
  deleteConnection: (t: Target, revoke: boolean) =>
    invoke<RevokeOutcome | null>("delete_connection", { ...t, revoke }),
  // Network actions.
  refreshConnection: (t: Target, operation: string) => invoke<Connection>("refresh_connection", { ...t, operation }),
  /** Ends the wait for the refresh of `operation` (a refresh, or a copy or reveal that refreshes). */
  cancelRefresh: (operation: string) => invoke<void>("cancel_refresh", { operation }),
  revokeConnection: (t: Target) => invoke<RevokeOutcome>("revoke_connection", t),
  revokeMany: (grants: GrantRef[]) => invoke<BulkRevokeResult[]>("revoke_many", { grants }),
  introspect: (t: Target) => invoke<Record<string, unknown>>("introspect_connection", t),
  /** With `files`, the user's own key or certificate files (their keys move to the keychain). */
  addProviderApp: (tenant: TenantId, spec: ProviderAppSpec, files?: KeyFiles) =>
    invoke<ProviderApp>("add_provider_app", { tenant, spec, files: files ?? null }),
  openProviderLink: (t: Target, url: string) => invoke<void>("open_provider_link", { ...t, url }),
  startConnect: (tenant: TenantId, form: ConnectForm) =>
    invoke<ConnectStarted>("start_connect", { tenant, form }),
  startReconsent: (t: Target) => invoke<ConnectStarted>("start_reconsent", t),
  cancelConnect: (flow: string) => invoke<void>("cancel_connect", { flow }),
  pasteRedirect: (flow: string, url: string) => invoke<void>("paste_redirect", { flow, url }),
  /** Shared tenants: team, members, whether the team vault answers (the core asks it). */
  tenantSharing: () => invoke<TenantSharing[]>("tenant_sharing"),
  /** Lets the window and the agent open the vault from the keychain again. */
  unlockVault: () => invoke<void>("unlock_vault"),
  /** Allow once, or deny, the hand-out the window was asked about. */
  answerHandOut: (id: number, allow: boolean) => invoke<void>("answer_hand_out", { id, allow }),
  // The connection's authenticating proxy, run by the app; revealing its bearer is recorded.
  startProxy: (t: Target, requireBearer: boolean, apiBase: string | null) =>
    invoke<ProxyView>("start_proxy", { ...t, requireBearer, apiBase }),
  stopProxy: (connection: ConnectionId) => invoke<void>("stop_proxy", { connection }),
  proxyStatus: (connection: ConnectionId) => invoke<ProxyView | null>("proxy_status", { connection }),
  revealProxyBearer: (connection: ConnectionId) => invoke<string>("reveal_proxy_bearer", { connection }),
};

/** Backend events: `vault-changed` after any change (window, CLI, agent, background refresh);
 * `connect-finished` when a sign-in ends; `refresh-late` when a refresh the user cancelled was
 * answered after all (its new tokens were stored); `second-instance` when Grantkeeper was started
 * again. */
export const events = {
  onVaultChanged: (f: (seq: number) => void): Promise<UnlistenFn> =>
    listen<number>("vault-changed", (e) => f(e.payload)),
  onConnectFinished: (f: (e: ConnectFinished) => void): Promise<UnlistenFn> =>
    listen<ConnectFinished>("connect-finished", (e) => f(e.payload)),
  onRefreshedLate: (f: (e: RefreshedLate) => void): Promise<UnlistenFn> =>
    listen<RefreshedLate>("refresh-late", (e) => f(e.payload)),
  /** Grantkeeper was started again: this window was brought to the front instead. */
  onSecondInstance: (f: (e: SecondInstance) => void): Promise<UnlistenFn> =>
    listen<SecondInstance>("second-instance", (e) => f(e.payload)),
  /** "Lock now" (tray or window): the vault was closed until the user unlocks it. */
  onVaultLocked: (f: () => void): Promise<UnlistenFn> => listen<null>("vault-locked", () => f()),
  /** The shared tenants' status, checked by the backend every so often (a team vault may stop
   * or come back with nothing changing here). */
  onSharingChecked: (f: (list: TenantSharing[]) => void): Promise<UnlistenFn> =>
    listen<TenantSharing[]>("sharing-checked", (e) => f(e.payload)),
  /** The hand-out policy asks whether a program may take a token (`ask` mode). */
  onHandOutQuestion: (f: (e: HandOutAsked) => void): Promise<UnlistenFn> =>
    listen<HandOutAsked>("hand-out-question", (e) => f(e.payload)),
  /** A question timed out (it counts as Deny): its dialog closes. */
  onHandOutQuestionClosed: (f: (id: number) => void): Promise<UnlistenFn> =>
    listen<number>("hand-out-question-closed", (e) => f(e.payload)),
};

/** A fresh id for an operation the user may cancel (128 random bits, hex). */
export function operationId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function isCommandError(e: unknown): e is CommandError {
  return typeof e === "object" && e !== null && "message" in e && "offline" in e;
}

/** The message of an error thrown by `invoke` (commands reject with a CommandError). */
export function errorMessage(e: unknown): string {
  if (isCommandError(e)) return e.message;
  if (typeof e === "string") return e;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Whether the user cancelled the call (nothing was stored). */
export function isCancelled(e: unknown): boolean {
  return isCommandError(e) && e.cancelled === true;
}

/** Whether a failure means the network or provider could not be reached. */
export function isOffline(e: unknown): boolean {
  return isCommandError(e) && e.offline;
}
