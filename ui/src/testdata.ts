// Fixtures shared by the unit tests.
import type { Connection } from "./bindings/Connection";

export const NOW = 1_800_000_000_000;

export function conn(over: Partial<Connection> = {}): Connection {
  return {
    id: "c1",
    tenant_id: "t1",
    provider_app_id: "p1",
    name: "crm",
    account: { subject: null, username: null, org_id: null },
    scopes_requested: [],
    scopes_granted: [],
    scopes_granted_reported: false,
    consented_at: NOW,
    consented_by: null,
    status: "active",
    status_detail: null,
    access_expires_at: null,
    access_expiry_source: null,
    refresh_expires_at: null,
    refresh_hard_expires_at: null,
    last_refresh_at: null,
    last_used_at: null,
    has_refresh_token: true,
    metadata: {},
    created_at: NOW,
    ...over,
  };
}
