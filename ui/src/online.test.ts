import { describe, expect, it } from "vitest";
import { type NetState, OFFLINE_HINT, isOfflineState, netReducer, withHint } from "./online";

const online: NetState = { browserOnline: true, failed: false };

describe("netReducer", () => {
  it("goes offline on an offline failure and back on the next success", () => {
    const s1 = netReducer(online, { type: "failure", offline: true });
    expect(isOfflineState(s1)).toBe(true);
    const s2 = netReducer(s1, { type: "failure", offline: false });
    expect(isOfflineState(s2)).toBe(true);
    const s3 = netReducer(s2, { type: "success" });
    expect(isOfflineState(s3)).toBe(false);
  });
  it("ignores failures that are not about the network", () => {
    expect(netReducer(online, { type: "failure", offline: false })).toBe(online);
    expect(netReducer(online, { type: "success" })).toBe(online);
  });
  it("follows the browser", () => {
    const off = netReducer(online, { type: "browser", online: false });
    expect(isOfflineState(off)).toBe(true);
    expect(isOfflineState(netReducer(off, { type: "success" }))).toBe(true);
    const failed = netReducer(off, { type: "failure", offline: true });
    expect(isOfflineState(netReducer(failed, { type: "browser", online: true }))).toBe(false);
  });
});

describe("withHint", () => {
  it("adds what to do when offline", () => {
    expect(withHint("the provider cannot be reached", true)).toBe(`the provider cannot be reached. ${OFFLINE_HINT}`);
    expect(withHint("No network.", true)).toBe(`No network. ${OFFLINE_HINT}`);
    expect(withHint("invalid_grant", false)).toBe("invalid_grant");
  });
});
