import { describe, expect, it } from "vitest";
import { ConnectionTable } from "./connectionTable";
import { badge } from "./format";
import { type ExtraWords, ListKeys, ariaSort, filterRows, nextSort, sortRows } from "./sort";
import { NOW, conn, rowOf } from "./testdata";

const beta = conn({ id: "1", name: "Beta", account: { username: "zed@x.io", subject: null, org_id: null }, last_used_at: NOW - 5000, access_expires_at: NOW + 50_000 });
const table = ConnectionTable.of([
  // Expiring within 5 minutes, as the core's steps say.
  rowOf(beta, [{ from: NOW - 250_000, state: "expiring", attention: false }]),
  rowOf(conn({ id: "2", name: "alpha", status: "needs_reconsent", last_used_at: null, access_expires_at: null, refresh_expires_at: NOW + 10 })),
  rowOf(conn({ id: "3", name: "gamma", account: { username: "amy@x.io", subject: null, org_id: "org-7" }, last_used_at: NOW - 1000, access_expires_at: NOW + 9_000_000, has_refresh_token: false })),
]);
const extra: ExtraWords = (_t, i) => [["acme"], ["globex"], ["acme", "Salesforce", null]][i];
const keys = new ListKeys(table, extra);
const rows = keys.order();
const ids = (order: number[]) => order.map((i) => table.id(i));

describe("ListKeys", () => {
  it("gives each row's keys", () => {
    expect(rows).toEqual([0, 1, 2]);
    expect(keys.name(0)).toBe("beta");
    expect(table.account(0)).toBe("zed@x.io");
    expect(keys.accountKey(0)).toBe("zed@x.io");
    expect(keys.accountKey(1)).toBe("");
    expect(keys.haystack(2)).toContain("salesforce");
    expect(keys.haystack(2)).toContain("org-7");
    expect(keys.haystack(2)).not.toContain("globex");
    expect(keys.refreshAt(1)).toBe(NOW + 10);
    expect(keys.refreshAt(2)).toBeNull();
    expect(keys.badge(0, NOW)).toBe("expiring");
    // The same as the steps' badge, at every moment.
    const t = ConnectionTable.of([rowOf(beta, [{ from: 0, state: "active", attention: false }, { from: NOW, state: "expired", attention: false }]), rowOf(beta, [])]);
    for (const at of [NOW - 1, NOW, NOW + 1]) expect(t.stateAt(0, at)).toBe(badge({ status_steps: t.steps(0) }, at));
    expect(t.stateAt(0, NOW - 1)).toBe("active");
    expect(t.stateAt(0, NOW)).toBe("expired");
    expect(t.stateAt(1, NOW)).toBe(badge({ status_steps: [] }, NOW));
  });
  it("asks for the extra words only once a filter needs them", () => {
    let asked = 0;
    const counted = new ListKeys(table, (t, i) => {
      asked += 1;
      return extra(t, i);
    });
    sortRows(counted, counted.order(), { key: "name", dir: "asc" }, NOW);
    expect(asked).toBe(0);
    filterRows(counted, counted.order(), "acme", "", NOW);
    expect(asked).toBe(3);
    filterRows(counted, counted.order(), "globex", "", NOW);
    expect(asked).toBe(3);
  });
});

describe("sortRows", () => {
  it("keeps the order without a sort", () => {
    expect(sortRows(keys, rows, null, NOW)).toBe(rows);
  });
  it("sorts by name case-insensitively, both ways", () => {
    expect(ids(sortRows(keys, rows, { key: "name", dir: "asc" }, NOW))).toEqual(["2", "1", "3"]);
    expect(ids(sortRows(keys, rows, { key: "name", dir: "desc" }, NOW))).toEqual(["3", "1", "2"]);
  });
  it("puts missing values last in both directions", () => {
    expect(ids(sortRows(keys, rows, { key: "account", dir: "asc" }, NOW))).toEqual(["3", "1", "2"]);
    expect(ids(sortRows(keys, rows, { key: "account", dir: "desc" }, NOW))).toEqual(["1", "3", "2"]);
    expect(ids(sortRows(keys, rows, { key: "last_used", dir: "desc" }, NOW))).toEqual(["3", "1", "2"]);
    expect(ids(sortRows(keys, rows, { key: "access", dir: "asc" }, NOW))).toEqual(["1", "3", "2"]);
  });
  it("sorts by status severity", () => {
    expect(ids(sortRows(keys, rows, { key: "status", dir: "asc" }, NOW))[0]).toBe("2");
    // "expiring" (1 expires within 5 min) ranks before "active"
    expect(ids(sortRows(keys, rows, { key: "status", dir: "asc" }, NOW))).toEqual(["2", "1", "3"]);
  });
  it("sorts refresh expiry: known, unknown, none", () => {
    expect(ids(sortRows(keys, rows, { key: "refresh", dir: "asc" }, NOW))).toEqual(["2", "1", "3"]);
  });
  it("does not mutate its input and is stable", () => {
    const before = ids(rows);
    const same = new ListKeys(ConnectionTable.of([0, 1, 2, 3].map((i) => rowOf(conn({ id: `s${i}`, name: "same" })))));
    expect(sortRows(same, same.order(), { key: "name", dir: "desc" }, NOW)).toEqual([0, 1, 2, 3]);
    expect(ids(rows)).toEqual(before);
  });
  it("sorts 10,000 rows quickly", () => {
    const many = new ListKeys(
      ConnectionTable.of(
        Array.from({ length: 10_000 }, (_, i) => rowOf(conn({ id: `id${i}`, name: `conn-${(i * 7919) % 10_000}`, last_used_at: i % 3 ? NOW - i : null }))),
      ),
    );
    const t0 = performance.now();
    const out = sortRows(many, many.order(), { key: "name", dir: "asc" }, NOW);
    sortRows(many, many.order(), { key: "last_used", dir: "desc" }, NOW);
    sortRows(many, many.order(), { key: "status", dir: "asc" }, NOW);
    const found = filterRows(many, out, "conn 99", "", NOW);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(many.table.name(out[0])).toBe("conn-0");
    const names = found.map((i) => many.table.name(i));
    expect(names).toContain("conn-99");
    expect(names.every((n) => n.includes("99"))).toBe(true);
    expect(names.length).toBe(Array.from({ length: 10_000 }, (_, n) => `${n}`).filter((n) => n.includes("99")).length);
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
    expect(ids(filterRows(keys, rows, "acme", "", NOW))).toEqual(["1", "3"]);
    expect(ids(filterRows(keys, rows, "ACME amy", "", NOW))).toEqual(["3"]);
    expect(ids(filterRows(keys, rows, "  ", "", NOW))).toEqual(["1", "2", "3"]);
    expect(filterRows(keys, rows, "", "", NOW)).toBe(rows);
    expect(ids(filterRows(keys, rows, "nothing-like-it", "", NOW))).toEqual([]);
  });
  it("filters by status badge", () => {
    expect(ids(filterRows(keys, rows, "", "needs_reconsent", NOW))).toEqual(["2"]);
    expect(ids(filterRows(keys, rows, "", "expiring", NOW))).toEqual(["1"]);
    expect(ids(filterRows(keys, rows, "acme", "active", NOW))).toEqual(["3"]);
  });
});
