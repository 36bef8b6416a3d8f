// Fixtures shared by the unit tests.
import type { Connection } from "./bindings/Connection";
import type { ConnectionRow } from "./bindings/ConnectionRow";
import type { GrantState } from "./bindings/GrantState";
import type { StatusStep } from "./bindings/StatusStep";

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

/**
 * Status steps for a fixture: by default the stored state from always on (the core computes the
 * real ones from the expiry times; tests that need expiring or expired give them explicitly).
 */
export function steps(c: Pick<Connection, "status">, ...later: [number, GrantState, boolean?][]): StatusStep[] {
  const first: StatusStep = { from: 0, state: c.status, attention: c.status === "needs_reconsent" || c.status === "error" };
  return [first, ...later.map(([from, state, attention]) => ({ from, state, attention: attention ?? false }))];
}

/** A connection's row in the connections list, as the core's `ConnectionRow::from` makes it. */
export function rowOf(c: Connection, status_steps: StatusStep[] = steps(c)): ConnectionRow {
  return {
    status_steps,
    id: c.id,
    tenant_id: c.tenant_id,
    provider_app_id: c.provider_app_id,
    name: c.name,
    account: c.account,
    status: c.status,
    status_detail: c.status_detail,
    access_expires_at: c.access_expires_at,
    has_refresh_token: c.has_refresh_token,
    refresh_expires_at: c.refresh_expires_at,
    refresh_hard_expires_at: c.refresh_hard_expires_at,
    last_used_at: c.last_used_at,
  };
}
