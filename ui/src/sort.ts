// Sorting and text/status filtering of the connection list (UI only), on precomputed keys so
// 10,000 rows sort and filter in a few milliseconds.
import type { ConnectionRow } from "./bindings/ConnectionRow";
import { type Badge, accountText, badge, refreshExpiryAt } from "./format";
import { matchesTokens, tokenize } from "./search";

export type SortKey = "name" | "account" | "status" | "access" | "refresh" | "last_used";
export type SortDir = "asc" | "desc";
export type SortState = { key: SortKey; dir: SortDir } | null;

/**
 * More searchable words of a row than its own (tenant slug and name, provider app): one
 * function for a whole list, asked only once the text filter needs a row's haystack.
 */
export type ExtraWords = (c: ConnectionRow) => (string | null)[];

const noWords: ExtraWords = () => [];

/** A connection with everything sorting and filtering need, computed once per load. */
export type RowModel = {
  c: ConnectionRow;
  /** Lowercased name. */
  name: string;
  /** The account as shown. */
  account: string;
  /** Lowercased account. */
  accountKey: string;
  /** Earlier of the refresh-token expiries (null when unknown or none). */
  refreshAt: number | null;
  /** The list's extra words (shared by every row of a load). */
  extra: ExtraWords;
  /** The text filter's haystack, built on first use (see `haystack`). */
  hay: string | null;
};

/** Builds the row model; `extra` gives more searchable words (tenant slug, provider app name). */
export function toRowModel(c: ConnectionRow, extra: ExtraWords = noWords): RowModel {
  const account = accountText(c);
  const name = c.name.toLowerCase();
  const accountKey = account === "—" ? "" : account.toLowerCase();
  return { c, name, account, accountKey, refreshAt: refreshExpiryAt(c), extra, hay: null };
}

/**
 * Lowercased haystack for the text filter: name, account, org, provider app id and the extra
 * words. Built the first time a filter asks, not for every row of every load: at 10,000 rows
 * these strings are megabytes the window would otherwise hold without a filter typed.
 */
export function haystack(r: RowModel): string {
  r.hay ??= [r.name, r.accountKey, r.c.account.org_id ?? "", r.c.provider_app_id, ...r.extra(r.c).map((w) => w ?? "")]
    .join("\u0000")
    .toLowerCase();
  return r.hay;
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

/** Sorts rows (stable; null values last in both directions); `null` keeps the given order. */
export function sortRows(rows: RowModel[], sort: SortState, now: number): RowModel[] {
  if (sort === null) return rows;
  const sign = sort.dir === "asc" ? 1 : -1;
  // Decorate once, so the comparator does no work per comparison.
  const dec = rows.map((r, i) => ({ r, i, k: sortValue(r, sort.key, now) }));
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
    const n = cmpStr(x.r.name, y.r.name);
    return n !== 0 ? n : x.i - y.i;
  });
  return dec.map((d) => d.r);
}

function sortValue(r: RowModel, key: SortKey, now: number): string | number | null {
  switch (key) {
    case "name":
      return r.name;
    case "account":
      return r.accountKey === "" ? null : r.accountKey;
    case "status":
      return badgeRank[badge(r.c, now)];
    case "access":
      return r.c.access_expires_at;
    case "refresh":
      // No refresh token sorts after an unknown expiry, which sorts after known ones.
      return r.refreshAt ?? (r.c.has_refresh_token ? Number.MAX_SAFE_INTEGER : null);
    case "last_used":
      return r.c.last_used_at;
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

/** Keeps rows matching every word of `text` and the status badge (`""` = any). Order is kept. */
export function filterRows(rows: RowModel[], text: string, status: Badge | "", now: number): RowModel[] {
  const tokens = tokenize(text);
  if (tokens.length === 0 && status === "") return rows;
  return rows.filter(
    (r) => (status === "" || badge(r.c, now) === status) && (tokens.length === 0 || matchesTokens(haystack(r), tokens)),
  );
}
