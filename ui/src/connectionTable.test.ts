import { describe, expect, it } from "vitest";
import { ConnectionTable, TextColumn } from "./connectionTable";
import { conn, rowOf } from "./testdata";

describe("TextColumn", () => {
  // The column the core's packed-strings test sends (report/packed.rs): positions in UTF-16
  // code units, absent values null, an empty value kept apart from an absent one.
  const wire = { text: "acme-crmZoë 🦀 opsx", ends: [8, null, 8, 18, null, 19] };
  const values = ["acme-crm", null, "", "Zoë 🦀 ops", null, "x"];

  it("reads the shell's packed column back value by value", () => {
    const column = new TextColumn(wire);
    expect(column.length).toBe(6);
    expect(values.map((_, i) => column.get(i))).toEqual(values);
  });

  it("packs as the shell does", () => {
    expect(TextColumn.pack(values)).toEqual(wire);
    expect(TextColumn.pack([])).toEqual({ text: "", ends: [] });
  });

  it("finds a value's row without matching across values", () => {
    const column = new TextColumn(TextColumn.pack(["ab", "c", null, "abc", "", "c"]));
    expect(column.indexOf("abc")).toBe(3);
    expect(column.indexOf("c")).toBe(1);
    expect(column.indexOf("")).toBe(4);
    expect(column.indexOf("bc")).toBe(-1);
    expect(column.indexOf("abcabc")).toBe(-1);
  });
});

describe("ConnectionTable", () => {
  it("gives back every row as it was put in", () => {
    const rows = [
      rowOf(conn({ id: "c-1", name: "Zoë 🦀 ops", account: { subject: "sub-1", username: null, org_id: "" }, status_detail: "token endpoint said invalid_grant" })),
      rowOf(conn({ id: "c-2", name: "crm", account: { subject: null, username: null, org_id: null } })),
      rowOf(conn({ id: "c-3", name: "", tenant_id: "t-2", account: { subject: null, username: "amy@x.io", org_id: "org-7" } })),
    ];
    const table = ConnectionTable.of(rows);
    expect(table.length).toBe(3);
    expect(table.rows()).toEqual(rows);
    expect(table.account(0)).toBe("sub-1");
    expect(table.account(1)).toBe("—");
    expect(table.account(2)).toBe("amy@x.io");
    expect(table.orgId(0)).toBe("");
    expect(table.orgId(1)).toBeNull();
    expect(table.indexOf("c-3")).toBe(2);
    expect(table.indexOf("c-")).toBe(-1);
  });
});
