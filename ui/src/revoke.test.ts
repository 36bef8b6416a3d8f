import { describe, expect, it } from "vitest";
import type { BulkRevokeResult } from "./bindings/BulkRevokeResult";
import { bulkLine, bulkState, bulkSummary, deleteNote, revokeNote } from "./revoke";

const confirmed = { revoked_at_provider: true, detail: "the provider revoked the refresh token", caveat: "may live on" };
const refused = { revoked_at_provider: false, detail: "not revoked at the provider: the revocation endpoint refused (http_503)", caveat: "may live on" };
const ok = (connection: string): BulkRevokeResult => ({ connection, outcome: confirmed, error: null });
const unconfirmed = (connection: string): BulkRevokeResult => ({ connection, outcome: refused, error: null });
const failed = (connection: string): BulkRevokeResult => ({
  connection,
  outcome: null,
  error: { message: "the provider cannot be reached", offline: true, cancelled: false },
});
const keyed = (rs: BulkRevokeResult[]) => rs.map((result) => ({ key: `acme/${result.connection}`, result }));

describe("revocation notes", () => {
  it("calls only a confirmed revocation revoked", () => {
    expect(revokeNote("acme/crm", confirmed)).toEqual({ text: "Revoked acme/crm at the provider.", tone: "info" });
    const w = revokeNote("acme/crm", refused);
    expect(w.tone).toBe("warn");
    expect(w.text).toMatch(/^acme\/crm was forgotten here, but the provider did not confirm the revocation\. Revoke it at the provider yourself/);
  });

  it("says what a delete's revocation did", () => {
    expect(deleteNote("acme/crm", null)).toEqual({ text: "Deleted acme/crm.", tone: "info" });
    expect(deleteNote("acme/crm", confirmed).tone).toBe("info");
    const w = deleteNote("acme/crm", refused);
    expect(w.tone).toBe("warn");
    expect(w.text).toMatch(/^Deleted acme\/crm here, not revoked at the provider: the revocation endpoint refused \(http_503\)\. Revoke it/);
  });

  it("sorts bulk results into confirmed, unconfirmed and failed", () => {
    expect(bulkState(ok("a"))).toBe("ok");
    expect(bulkState(unconfirmed("a"))).toBe("unconfirmed");
    expect(bulkState(failed("a"))).toBe("failed");
    expect(bulkLine(ok("a"))).toBe("revoked at the provider. may live on");
    expect(bulkLine(unconfirmed("a"))).toBe("forgotten here only — not revoked at the provider: the revocation endpoint refused (http_503).");
    expect(bulkLine(failed("a"))).toMatch(/^the provider cannot be reached\. Check the network/);
  });

  it("counts what the providers confirmed", () => {
    expect(bulkSummary(keyed([ok("a"), ok("b")]))).toEqual({ text: "Revoked 2 grants at the provider.", tone: "info" });
    expect(bulkSummary(keyed([unconfirmed("a"), unconfirmed("b")]))).toEqual({
      text: "2 grants revoked here; the provider confirmed 0 of 2 — revoke these 2 at the provider yourself: acme/a, acme/b.",
      tone: "warn",
    });
    expect(bulkSummary(keyed([ok("a"), unconfirmed("b")])).text).toBe(
      "2 grants revoked here; the provider confirmed 1 of 2 — revoke this one at the provider yourself: acme/b.",
    );
    expect(bulkSummary(keyed([ok("a"), failed("b")]))).toEqual({
      text: "Revoked 1 grant at the provider. 1 grant could not be revoked: acme/b (see the list).",
      tone: "warn",
    });
    expect(bulkSummary(keyed([failed("a"), failed("b")])).text).toBe("None of the 2 grants could be revoked: acme/a, acme/b (see the list).");
    expect(bulkSummary(keyed(["a", "b", "c", "d", "e"].map(unconfirmed))).text).toMatch(/: acme\/a, acme\/b, acme\/c and 2 more\.$/);
  });
});
