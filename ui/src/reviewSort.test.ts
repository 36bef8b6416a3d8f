import { describe, expect, it } from "vitest";
import type { GrantReportRow } from "./bindings/GrantReportRow";
import { nextReviewSort, searchReview, sortReview } from "./reviewSort";
import { NOW, conn, steps } from "./testdata";

function row(connection: string, over: Partial<GrantReportRow> = {}): GrantReportRow {
  return {
    tenant: "acme-corp",
    tenant_name: "Acme Corp",
    connection,
    connection_id: connection,
    provider_app: "idp",
    preset: null,
    account: `${connection}@acme.io`,
    account_org: null,
    status: "active",
    status_detail: null,
    status_steps: steps(conn()),
    scopes: [{ scope: "openid", requested: true, granted: true, risk: "low", meaning: null }],
    highest_risk: "low",
    scopes_granted_reported: true,
    consented_at: NOW,
    consented_by: null,
    access_expires_at: null,
    has_refresh_token: true,
    refresh_expires_at: null,
    refresh_hard_expires_at: null,
    last_refresh_at: null,
    last_used_at: null,
    ...over,
  };
}

const rows = [
  row("crm", { last_used_at: NOW - 5_000, highest_risk: "medium" }),
  row("ledger", { tenant: "globex", tenant_name: "Globex", highest_risk: "high", scopes: [{ scope: "invoices.write", requested: true, granted: true, risk: "high", meaning: null }] }),
  row("books", { last_used_at: NOW - 1_000, status: "revoked", status_steps: steps(conn({ status: "revoked" })) }),
];
const names = (l: GrantReportRow[]) => l.map((r) => r.connection);

describe("review search", () => {
  it("keeps rows holding every word, in tenant, account or granted scopes", () => {
    expect(names(searchReview(rows, "globex"))).toEqual(["ledger"]);
    expect(names(searchReview(rows, "INVOICES ledger"))).toEqual(["ledger"]);
    expect(names(searchReview(rows, "acme.io"))).toEqual(["crm", "ledger", "books"]);
    expect(names(searchReview(rows, "nothing"))).toEqual([]);
    expect(searchReview(rows, "  ")).toBe(rows);
  });
});

describe("review sort", () => {
  it("sorts by each column both ways, unknown values last", () => {
    expect(names(sortReview(rows, { key: "grant", dir: "asc" }, NOW))).toEqual(["books", "crm", "ledger"]);
    expect(names(sortReview(rows, { key: "risk", dir: "desc" }, NOW))).toEqual(["ledger", "crm", "books"]);
    expect(names(sortReview(rows, { key: "last_used", dir: "asc" }, NOW))).toEqual(["crm", "books", "ledger"]);
    expect(names(sortReview(rows, { key: "last_used", dir: "desc" }, NOW))).toEqual(["books", "crm", "ledger"]);
    expect(names(sortReview(rows, { key: "status", dir: "asc" }, NOW))).toEqual(["books", "crm", "ledger"]);
    expect(sortReview(rows, null, NOW)).toBe(rows);
  });
  it("cycles ascending, descending, off", () => {
    const a = nextReviewSort(null, "risk");
    expect(a).toEqual({ key: "risk", dir: "asc" });
    const d = nextReviewSort(a, "risk");
    expect(d).toEqual({ key: "risk", dir: "desc" });
    expect(nextReviewSort(d, "risk")).toBeNull();
    expect(nextReviewSort(d, "grant")).toEqual({ key: "grant", dir: "asc" });
  });
});
