import { describe, expect, it } from "vitest";
import { makeItem, matchesTokens, searchItems, tokenize } from "./search";

const items = [
  makeItem("action:review", "action", "Grant review", "Review grants", ["audit"]),
  makeItem("action:connect", "action", "Connect account", "Sign in", []),
  makeItem("tenant:acme", "tenant", "Acme Corp", "acme · 3 connections"),
  makeItem("tenant:globex", "tenant", "Globex", "globex"),
  makeItem("connection:acme/crm", "connection", "crm", "acme · ann@acme.io · idp", ["p-123", "Salesforce"]),
  makeItem("connection:globex/acme-sync", "connection", "acme-sync", "globex · bot", []),
  makeItem("connection:acme/reporting", "connection", "reporting", "acme", []),
];
const ids = (l: { id: string }[]) => l.map((i) => i.id);

describe("tokenize", () => {
  it("lowercases and splits", () => {
    expect(tokenize("  Acme  CRM ")).toEqual(["acme", "crm"]);
    expect(tokenize("")).toEqual([]);
    expect(matchesTokens("acme\u0000crm", ["crm", "acme"])).toBe(true);
    expect(matchesTokens("acme", ["crm"])).toBe(false);
  });
});

describe("searchItems", () => {
  it("lists actions and tenants for an empty query", () => {
    expect(ids(searchItems(items, ""))).toEqual(["action:review", "action:connect", "tenant:acme", "tenant:globex"]);
  });
  it("ranks label prefixes, then word starts, then other matches", () => {
    expect(ids(searchItems(items, "acme"))).toEqual([
      "tenant:acme", // label starts with it (tenant before connection)
      "connection:globex/acme-sync", // label starts with it
      "connection:acme/crm", // only the tenant part matches
      "connection:acme/reporting",
    ]);
  });
  it("finds connections by account and provider app id", () => {
    expect(ids(searchItems(items, "ann@"))).toEqual(["connection:acme/crm"]);
    expect(ids(searchItems(items, "p-123"))).toEqual(["connection:acme/crm"]);
    expect(ids(searchItems(items, "salesforce"))).toEqual(["connection:acme/crm"]);
  });
  it("needs every word and finds actions", () => {
    expect(ids(searchItems(items, "acme crm"))).toEqual(["connection:acme/crm"]);
    expect(ids(searchItems(items, "review"))[0]).toBe("action:review");
    expect(ids(searchItems(items, "account"))[0]).toBe("action:connect");
    expect(searchItems(items, "zzz")).toEqual([]);
  });
  it("limits the results", () => {
    const many = Array.from({ length: 500 }, (_, i) => makeItem(`connection:t/c${i}`, "connection", `c${i}`, "t"));
    expect(searchItems(many, "c", 50)).toHaveLength(50);
    expect(searchItems(many, "c1")[0].id).toBe("connection:t/c1");
  });
});
