// Sorting and text/status filtering of the connection list (UI only), on precomputed keys so
// 10,000 rows sort and filter in a few milliseconds.
import type { ConnectionTable } from "./connectionTable";
import { type Badge, refreshExpiryAt } from "./format";
import { matchesTokens, tokenize } from "./search";

export type SortKey = "name" | "account" | "status" | "access" | "refresh" | "last_used";
export type SortDir = "asc" | "desc";
export type SortState = { key: SortKey; dir: SortDir } | null;

/**
 * More searchable words of a row than its own (tenant slug and name, provider app): one
 * function for a whole list, asked only once the text filter needs a row's haystack.
 */
export type ExtraWords = (table: ConnectionTable, i: number) => (string | null)[];

const noWords: ExtraWords = () => [];

/**
 * What sorting and filtering a list need, by row index: lowercased names, accounts, the text
 * filter's haystacks. Each is built for the whole list the first time a sort or filter asks for
 * it, not for every load: at 10,000 rows these strings are megabytes the window would otherwise
 * hold without a sort or a filter chosen.
 */
export class ListKeys {
  private names: string[] | null = null;
  private accounts: string[] | null = null;
  private hays: string[] | null = null;

  constructor(
    readonly table: ConnectionTable,
    private readonly extra: ExtraWords = noWords,
  ) {}

  /** Every row's index, in the list's order. */
  order(): number[] {
    return Array.from({ length: this.table.length }, (_, i) => i);
  }

  /** Lowercased name. */
  name(i: number): string {
    this.names ??= Array.from({ length: this.table.length }, (_, j) => this.table.name(j).toLowerCase());
    return this.names[i];
  }

  /** Lowercased account ("" when none is known). */
  accountKey(i: number): string {
    this.accounts ??= Array.from({ length: this.table.length }, (_, j) => {
      const a = this.table.account(j);
      return a === "—" ? "" : a.toLowerCase();
    });
    return this.accounts[i];
  }

  /** Earlier of the refresh-token expiries (null when unknown or none). */
  refreshAt(i: number): number | null {
    const c = this.table.cols;
    return refreshExpiryAt({
      has_refresh_token: c.has_refresh_token[i],
      refresh_expires_at: c.refresh_expires_at[i],
      refresh_hard_expires_at: c.refresh_hard_expires_at[i],
    });
  }

  /** The status badge at `now`. */
  badge(i: number, now: number): Badge {
    return this.table.stateAt(i, now);
  }

  /** Lowercased haystack for the text filter: name, account, org, provider app id, extra words. */
  haystack(i: number): string {
    this.hays ??= Array.from({ length: this.table.length }, (_, j) =>
      [this.name(j), this.accountKey(j), this.table.orgId(j) ?? "", this.table.appId(j), ...this.extra(this.table, j).map((w) => w ?? "")]
        .join("\u0000")
        .toLowerCase(),
    );
    return this.hays[i];
  }
}

/** Severity order for sorting by status: the ones needing attention first when ascending. */
const badgeRank: Record<Badge, number> = {
  error: 0,
  needs_reconsent: 1,
  revoked: 2,
  expired: 3,
  expiring: 4,
  active: 5,
};

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sorts row indexes (stable; null values last in both directions); `null` keeps the order. */
export function sortRows(keys: ListKeys, order: number[], sort: SortState, now: number): number[] {
  if (sort === null) return order;
  const sign = sort.dir === "asc" ? 1 : -1;
  // Decorate once, so the comparator does no work per comparison.
  const dec = order.map((r, i) => ({ r, i, k: sortValue(keys, r, sort.key, now) }));
  dec.sort((x, y) => {
    const a = x.k;
    const b = y.k;
    if (a === null || b === null) {
      if (a === null && b === null) return x.i - y.i;
      return a === null ? 1 : -1;
    }
    const c = typeof a === "number" ? a - (b as number) : cmpStr(a, b as string);
    if (c !== 0) return sign * c;
    // Ties: by name, then by the original order.
    const n = cmpStr(keys.name(x.r), keys.name(y.r));
    return n !== 0 ? n : x.i - y.i;
  });
  return dec.map((d) => d.r);
}

function sortValue(keys: ListKeys, i: number, key: SortKey, now: number): string | number | null {
  const c = keys.table.cols;
  switch (key) {
    case "name":
      return keys.name(i);
    case "account": {
      const a = keys.accountKey(i);
      return a === "" ? null : a;
    }
    case "status":
      return badgeRank[keys.badge(i, now)];
    case "access":
      return c.access_expires_at[i];
    case "refresh":
      // No refresh token sorts after an unknown expiry, which sorts after known ones.
      return keys.refreshAt(i) ?? (c.has_refresh_token[i] ? Number.MAX_SAFE_INTEGER : null);
    case "last_used":
      return c.last_used_at[i];
  }
}

/** The next sort after clicking a header: new column ascending (last use: newest first), same column flips. */
export function nextSort(current: SortState, key: SortKey): SortState {
  if (current?.key === key) return { key, dir: current.dir === "asc" ? "desc" : "asc" };
  return { key, dir: key === "last_used" ? "desc" : "asc" };
}

/** The `aria-sort` value of a header. */
export function ariaSort(current: SortState, key: SortKey): "ascending" | "descending" | "none" {
  if (current?.key !== key) return "none";
  return current.dir === "asc" ? "ascending" : "descending";
}

/** Keeps the rows of `order` matching every word of `text` and the status badge (`""` = any). */
export function filterRows(keys: ListKeys, order: number[], text: string, status: Badge | "", now: number): number[] {
  const tokens = tokenize(text);
  if (tokens.length === 0 && status === "") return order;
  return order.filter(
    (i) => (status === "" || keys.badge(i, now) === status) && (tokens.length === 0 || matchesTokens(keys.haystack(i), tokens)),
  );
}
