// The connections list as the window holds it: the column form the shell sends (one array per
// field), read by index. A full `ConnectionRow` object is made only for a row that is shown or
// opened, so 10,000 connections stay a few dozen arrays instead of 50,000 small objects.
import type { ConnectionColumns } from "./bindings/ConnectionColumns";
import type { ConnectionRow } from "./bindings/ConnectionRow";
import type { GrantState } from "./bindings/GrantState";
import type { StatusStep } from "./bindings/StatusStep";

/** How many made rows a table keeps (the rendered window and a little more). */
const ROW_CACHE = 512;

export class ConnectionTable {
  /** Rows made so far, by index (the same object each time, so rendered rows compare equal). */
  private made = new Map<number, ConnectionRow>();

  constructor(readonly cols: ConnectionColumns) {}

  /** A table of `rows` (tests, lists built in the window). */
  static of(rows: ConnectionRow[]): ConnectionTable {
    const tenants: string[] = [];
    const apps: string[] = [];
    const at = (list: string[], v: string) => {
      const i = list.indexOf(v);
      return i >= 0 ? i : list.push(v) - 1;
    };
    const cols: ConnectionColumns = {
      tenants,
      apps,
      id: [],
      tenant: [],
      app: [],
      name: [],
      subject: [],
      username: [],
      org_id: [],
      status: [],
      status_detail: [],
      step_start: [],
      step_from: [],
      step_state: [],
      step_attention: [],
      access_expires_at: [],
      has_refresh_token: [],
      refresh_expires_at: [],
      refresh_hard_expires_at: [],
      last_used_at: [],
    };
    for (const r of rows) {
      cols.id.push(r.id);
      cols.tenant.push(at(tenants, r.tenant_id));
      cols.app.push(at(apps, r.provider_app_id));
      cols.name.push(r.name);
      cols.subject.push(r.account.subject);
      cols.username.push(r.account.username);
      cols.org_id.push(r.account.org_id);
      cols.status.push(r.status);
      cols.status_detail.push(r.status_detail);
      cols.step_start.push(cols.step_from.length);
      for (const s of r.status_steps) {
        cols.step_from.push(s.from);
        cols.step_state.push(s.state);
        cols.step_attention.push(s.attention);
      }
      cols.access_expires_at.push(r.access_expires_at);
      cols.has_refresh_token.push(r.has_refresh_token);
      cols.refresh_expires_at.push(r.refresh_expires_at);
      cols.refresh_hard_expires_at.push(r.refresh_hard_expires_at);
      cols.last_used_at.push(r.last_used_at);
    }
    cols.step_start.push(cols.step_from.length);
    return new ConnectionTable(cols);
  }

  get length(): number {
    return this.cols.id.length;
  }

  id(i: number): string {
    return this.cols.id[i];
  }

  name(i: number): string {
    return this.cols.name[i];
  }

  tenantId(i: number): string {
    return this.cols.tenants[this.cols.tenant[i]];
  }

  appId(i: number): string {
    return this.cols.apps[this.cols.app[i]];
  }

  /** The account as shown: user name, else subject, else a dash (as `accountText`). */
  account(i: number): string {
    return this.cols.username[i] ?? this.cols.subject[i] ?? "—";
  }

  /** Row `i`'s status at `now`: the state of its last step begun by then (as `stepAt`). */
  stateAt(i: number, now: number): GrantState {
    const c = this.cols;
    const end = c.step_start[i + 1];
    let s = c.step_start[i];
    if (s >= end) return "active";
    let found = c.step_state[s];
    for (; s < end; s++) if (c.step_from[s] <= now) found = c.step_state[s];
    return found;
  }

  /** Row `i`'s status steps (a new array each call). */
  steps(i: number): StatusStep[] {
    const c = this.cols;
    const out: StatusStep[] = [];
    for (let s = c.step_start[i]; s < c.step_start[i + 1]; s++) out.push({ from: c.step_from[s], state: c.step_state[s], attention: c.step_attention[s] });
    return out;
  }

  /** Row `i` as a full object, made on first ask and kept while few rows are asked for. */
  row(i: number): ConnectionRow {
    const hit = this.made.get(i);
    if (hit) return hit;
    const c = this.cols;
    const r: ConnectionRow = {
      id: c.id[i],
      tenant_id: this.tenantId(i),
      provider_app_id: this.appId(i),
      name: c.name[i],
      account: { subject: c.subject[i], username: c.username[i], org_id: c.org_id[i] },
      status: c.status[i],
      status_detail: c.status_detail[i],
      status_steps: this.steps(i),
      access_expires_at: c.access_expires_at[i],
      has_refresh_token: c.has_refresh_token[i],
      refresh_expires_at: c.refresh_expires_at[i],
      refresh_hard_expires_at: c.refresh_hard_expires_at[i],
      last_used_at: c.last_used_at[i],
    };
    if (this.made.size >= ROW_CACHE) this.made.clear();
    this.made.set(i, r);
    return r;
  }

  /** Every row as a full object (small lists: a tenant's settings, tests). */
  rows(): ConnectionRow[] {
    return Array.from({ length: this.length }, (_, i) => this.row(i));
  }

  /** The index of the connection with id `id`, or -1. */
  indexOf(id: string): number {
    return this.cols.id.indexOf(id);
  }
}
