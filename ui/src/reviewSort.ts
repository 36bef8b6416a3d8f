// The grant review's text search and column sort (pure, unit-tested).
import type { GrantReportRow } from "./bindings/GrantReportRow";
import { badge, refreshExpiryAt } from "./format";

export type ReviewKey = "grant" | "account" | "status" | "risk" | "consented" | "last_used" | "refresh";
export type ReviewSort = { key: ReviewKey; dir: "asc" | "desc" } | null;

const riskRank = { low: 1, medium: 2, high: 3 } as const;
/** Needing attention first when ascending. */
const stateRank = { error: 0, needs_reconsent: 1, expired: 2, revoked: 3, expiring: 4, active: 5 } as const;

/** Keeps the rows whose text holds every word of `query` (any case, any order). */
export function searchReview(rows: GrantReportRow[], query: string): GrantReportRow[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return rows;
  return rows.filter((r) => {
    const text = [
      r.tenant,
      r.tenant_name,
      r.connection,
      r.provider_app,
      r.preset ?? "",
      r.account ?? "",
      r.account_org ?? "",
      ...r.scopes.filter((s) => s.granted).map((s) => s.scope),
    ]
      .join("\u0000")
      .toLowerCase();
    return words.every((w) => text.includes(w));
  });
}

function value(r: GrantReportRow, key: ReviewKey, now: number): string | number | null {
  switch (key) {
    case "grant":
      return `${r.tenant_name}\u0000${r.connection}`.toLowerCase();
    case "account":
      return r.account?.toLowerCase() ?? null;
    case "status":
      return stateRank[badge(r, now)];
    case "risk":
      return r.highest_risk === null ? null : riskRank[r.highest_risk];
    case "consented":
      return r.consented_at;
    case "last_used":
      return r.last_used_at;
    case "refresh":
      return refreshExpiryAt(r);
  }
}

/** Sorts by `sort` (stable; unknown values last either way); `null` keeps the order given. */
export function sortReview(rows: GrantReportRow[], sort: ReviewSort, now: number): GrantReportRow[] {
  if (sort === null) return rows;
  const sign = sort.dir === "asc" ? 1 : -1;
  return rows
    .map((r, i) => ({ r, i, v: value(r, sort.key, now) }))
    .sort((a, b) => {
      if (a.v === null || b.v === null) return a.v === b.v ? a.i - b.i : a.v === null ? 1 : -1;
      const c = a.v < b.v ? -1 : a.v > b.v ? 1 : 0;
      return c !== 0 ? c * sign : a.i - b.i;
    })
    .map((d) => d.r);
}

/** The sort after clicking `key`'s header: ascending, then descending, then off. */
export function nextReviewSort(sort: ReviewSort, key: ReviewKey): ReviewSort {
  if (sort?.key !== key) return { key, dir: "asc" };
  return sort.dir === "asc" ? { key, dir: "desc" } : null;
}
