import { describe, expect, it } from "vitest";
import { ariaSort, filterRows, haystack, nextSort, sortRows, toRowModel } from "./sort";
import { NOW, conn, rowOf } from "./testdata";

const beta = conn({ id: "1", name: "Beta", account: { username: "zed@x.io", subject: null, org_id: null }, last_used_at: NOW - 5000, access_expires_at: NOW + 50_000 });
const rows = [
  // Expiring within 5 minutes, as the core's steps say.
  toRowModel(rowOf(beta, [{ from: NOW - 250_000, state: "expiring", attention: false }]), () => ["acme"]),
  toRowModel(rowOf(conn({ id: "2", name: "alpha", status: "needs_reconsent", last_used_at: null, access_expires_at: null, refresh_expires_at: NOW + 10 })), () => ["globex"]),
  toRowModel(rowOf(conn({ id: "3", name: "gamma", account: { username: "amy@x.io", subject: null, org_id: "org-7" }, last_used_at: NOW - 1000, access_expires_at: NOW + 9_000_000, has_refresh_token: false })), () => ["acme", "Salesforce", null]),
];
const ids = (r: { c: { id: string } }[]) => r.map((x) => x.c.id);

describe("toRowModel", () => {
  it("precomputes keys", () => {
    expect(rows[0].name).toBe("beta");
    expect(rows[0].account).toBe("zed@x.io");
    expect(rows[1].accountKey).toBe("");
    expect(rows[2].hay).toBeNull();
    expect(haystack(rows[2])).toContain("salesforce");
    expect(haystack(rows[2])).toContain("org-7");
    expect(rows[2].hay).toBe(haystack(rows[2]));
    expect(rows[1].refreshAt).toBe(NOW + 10);
  });
});

describe("sortRows", () => {
  it("keeps the order without a sort", () => {
    expect(sortRows(rows, null, NOW)).toBe(rows);
  });
  it("sorts by name case-insensitively, both ways", () => {
    expect(ids(sortRows(rows, { key: "name", dir: "asc" }, NOW))).toEqual(["2", "1", "3"]);
    expect(ids(sortRows(rows, { key: "name", dir: "desc" }, NOW))).toEqual(["3", "1", "2"]);
  });
  it("puts missing values last in both directions", () => {
    expect(ids(sortRows(rows, { key: "account", dir: "asc" }, NOW))).toEqual(["3", "1", "2"]);
    expect(ids(sortRows(rows, { key: "account", dir: "desc" }, NOW))).toEqual(["1", "3", "2"]);
    expect(ids(sortRows(rows, { key: "last_used", dir: "desc" }, NOW))).toEqual(["3", "1", "2"]);
    expect(ids(sortRows(rows, { key: "access", dir: "asc" }, NOW))).toEqual(["1", "3", "2"]);
  });
  it("sorts by status severity", () => {
    expect(ids(sortRows(rows, { key: "status", dir: "asc" }, NOW))[0]).toBe("2");
    // "expiring" (1 expires within 5 min) ranks before "active"
    expect(ids(sortRows(rows, { key: "status", dir: "asc" }, NOW))).toEqual(["2", "1", "3"]);
  });
  it("sorts refresh expiry: known, unknown, none", () => {
    expect(ids(sortRows(rows, { key: "refresh", dir: "asc" }, NOW))).toEqual(["2", "1", "3"]);
  });
  it("does not mutate its input and is stable", () => {
    const before = ids(rows);
    const same = [0, 1, 2, 3].map((i) => toRowModel(rowOf(conn({ id: `s${i}`, name: "same" }))));
    expect(ids(sortRows(same, { key: "name", dir: "desc" }, NOW))).toEqual(["s0", "s1", "s2", "s3"]);
    expect(ids(rows)).toEqual(before);
  });
  it("sorts 10,000 rows quickly", () => {
    const many = Array.from({ length: 10_000 }, (_, i) =>
      toRowModel(rowOf(conn({ id: `id${i}`, name: `conn-${(i * 7919) % 10_000}`, last_used_at: i % 3 ? NOW - i : null }))),
    );
    const t0 = performance.now();
    const out = sortRows(many, { key: "name", dir: "asc" }, NOW);
    sortRows(many, { key: "last_used", dir: "desc" }, NOW);
    filterRows(out, "conn 99", "", NOW);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(out[0].name).toBe("conn-0");
  });
});

describe("headers", () => {
  it("toggles direction on the same column", () => {
    expect(nextSort(null, "name")).toEqual({ key: "name", dir: "asc" });
    expect(nextSort({ key: "name", dir: "asc" }, "name")).toEqual({ key: "name", dir: "desc" });
    expect(nextSort({ key: "name", dir: "desc" }, "name")).toEqual({ key: "name", dir: "asc" });
    expect(nextSort({ key: "name", dir: "desc" }, "account")).toEqual({ key: "account", dir: "asc" });
    expect(nextSort(null, "last_used")).toEqual({ key: "last_used", dir: "desc" });
  });
  it("reports aria-sort", () => {
    expect(ariaSort(null, "name")).toBe("none");
    expect(ariaSort({ key: "name", dir: "asc" }, "name")).toBe("ascending");
    expect(ariaSort({ key: "name", dir: "desc" }, "name")).toBe("descending");
    expect(ariaSort({ key: "name", dir: "desc" }, "status")).toBe("none");
  });
});

describe("filterRows", () => {
  it("matches every word anywhere in the row", () => {
    expect(ids(filterRows(rows, "acme", "", NOW))).toEqual(["1", "3"]);
    expect(ids(filterRows(rows, "ACME amy", "", NOW))).toEqual(["3"]);
    expect(ids(filterRows(rows, "  ", "", NOW))).toEqual(["1", "2", "3"]);
    expect(filterRows(rows, "", "", NOW)).toBe(rows);
    expect(ids(filterRows(rows, "nothing-like-it", "", NOW))).toEqual([]);
  });
  it("filters by status badge", () => {
    expect(ids(filterRows(rows, "", "needs_reconsent", NOW))).toEqual(["2"]);
    expect(ids(filterRows(rows, "", "expiring", NOW))).toEqual(["1"]);
    expect(ids(filterRows(rows, "acme", "active", NOW))).toEqual(["3"]);
  });
});
