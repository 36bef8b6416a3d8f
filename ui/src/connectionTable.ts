// The connections list as the window holds it: the column form the shell sends (one array per
// field, each text field packed into one string), read by index. A full `ConnectionRow` object is
// made only for a row that is shown or opened, so 10,000 connections stay a few dozen arrays and
// strings instead of 100,000 small objects and strings.
import type { ConnectionColumns } from "./bindings/ConnectionColumns";
import type { ConnectionRow } from "./bindings/ConnectionRow";
import type { GrantState } from "./bindings/GrantState";
import type { PackedStrings } from "./bindings/PackedStrings";
import type { StatusStep } from "./bindings/StatusStep";

/** How many made rows a table keeps (the rendered window and a little more). */
const ROW_CACHE = 512;

/** A packed text column read by row: each value is one `slice` of the column's text. */
export class TextColumn {
  private readonly text: string;
  private readonly starts: Int32Array;
  /** Per row: where its value ends, -1 when absent. */
  private readonly ends: Int32Array;

  constructor(packed: PackedStrings) {
    const n = packed.ends.length;
    this.text = packed.text;
    this.starts = new Int32Array(n);
    this.ends = new Int32Array(n);
    let at = 0;
    for (let i = 0; i < n; i++) {
      const end = packed.ends[i];
      this.starts[i] = at;
      this.ends[i] = end ?? -1;
      if (end !== null) at = end;
    }
  }

  /** Packs `values` (as the shell does). */
  static pack(values: (string | null)[]): PackedStrings {
    const ends: (number | null)[] = [];
    let at = 0;
    for (const v of values) ends.push(v === null ? null : (at += v.length));
    return { text: values.join(""), ends };
  }

  get length(): number {
    return this.ends.length;
  }

  /** Row `i`'s value; null when absent. */
  get(i: number): string | null {
    const end = this.ends[i];
    return end < 0 ? null : this.text.slice(this.starts[i], end);
  }

  /** The first row whose value is `value`, or -1 (compares in place, making no strings). */
  indexOf(value: string): number {
    for (let i = 0; i < this.ends.length; i++) {
      const start = this.starts[i];
      if (this.ends[i] - start === value.length && this.text.startsWith(value, start)) return i;
    }
    return -1;
  }
}

export class ConnectionTable {
  /** Rows made so far, by index (the same object each time, so rendered rows compare equal). */
  private made = new Map<number, ConnectionRow>();
  private readonly ids: TextColumn;
  private readonly names: TextColumn;
  private readonly subjects: TextColumn;
  private readonly usernames: TextColumn;
  private readonly orgIds: TextColumn;
  private readonly details: TextColumn;

  constructor(readonly cols: ConnectionColumns) {
    this.ids = new TextColumn(cols.id);
    this.names = new TextColumn(cols.name);
    this.subjects = new TextColumn(cols.subject);
    this.usernames = new TextColumn(cols.username);
    this.orgIds = new TextColumn(cols.org_id);
    this.details = new TextColumn(cols.status_detail);
  }

  /** A table of `rows` (tests, lists built in the window). */
  static of(rows: ConnectionRow[]): ConnectionTable {
    const tenants: string[] = [];
    const apps: string[] = [];
    const at = (list: string[], v: string) => {
      const i = list.indexOf(v);
      return i >= 0 ? i : list.push(v) - 1;
    };
    const text = (f: (r: ConnectionRow) => string | null) => TextColumn.pack(rows.map(f));
    const cols: ConnectionColumns = {
      tenants,
      apps,
      id: text((r) => r.id),
      tenant: [],
      app: [],
      name: text((r) => r.name),
      subject: text((r) => r.account.subject),
      username: text((r) => r.account.username),
      org_id: text((r) => r.account.org_id),
      status: [],
      status_detail: text((r) => r.status_detail),
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
      cols.tenant.push(at(tenants, r.tenant_id));
      cols.app.push(at(apps, r.provider_app_id));
      cols.status.push(r.status);
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
    return this.ids.length;
  }

  id(i: number): string {
    return this.ids.get(i) ?? "";
  }

  name(i: number): string {
    return this.names.get(i) ?? "";
  }

  subject(i: number): string | null {
    return this.subjects.get(i);
  }

  username(i: number): string | null {
    return this.usernames.get(i);
  }

  orgId(i: number): string | null {
    return this.orgIds.get(i);
  }

  tenantId(i: number): string {
    return this.cols.tenants[this.cols.tenant[i]];
  }

  appId(i: number): string {
    return this.cols.apps[this.cols.app[i]];
  }

  /** The account as shown: user name, else subject, else a dash (as `accountText`). */
  account(i: number): string {
    return this.username(i) ?? this.subject(i) ?? "—";
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
      id: this.id(i),
      tenant_id: this.tenantId(i),
      provider_app_id: this.appId(i),
      name: this.name(i),
      account: { subject: this.subject(i), username: this.username(i), org_id: this.orgId(i) },
      status: c.status[i],
      status_detail: this.details.get(i),
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
    return this.ids.indexOf(id);
  }
}
