// Typed calls into the Tauri shell. Every type comes from the Rust side (src/bindings, ts-rs).
import { invoke } from "@tauri-apps/api/core";
import type { Connection } from "./bindings/Connection";
import type { ConnectionDetail } from "./bindings/ConnectionDetail";
import type { ConnectionId } from "./bindings/ConnectionId";
import type { TenantId } from "./bindings/TenantId";
import type { TenantSummary } from "./bindings/TenantSummary";
import type { VaultStatus } from "./bindings/VaultStatus";

export const api = {
  vaultStatus: () => invoke<VaultStatus>("vault_status"),
  listTenants: () => invoke<TenantSummary[]>("list_tenants"),
  listConnections: (tenant: TenantId | null) => invoke<Connection[]>("list_connections", { tenant }),
  connectionDetail: (tenant: TenantId, connection: ConnectionId) =>
    invoke<ConnectionDetail>("connection_detail", { tenant, connection }),
};

/** The message of an error thrown by `invoke` (the shell sends plain strings). */
export function errorMessage(e: unknown): string {
  if (typeof e === "string") return e;
  if (e instanceof Error) return e.message;
  return String(e);
}
