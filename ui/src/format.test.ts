import { describe, expect, it } from "vitest";
import {
  accountText,
  badge,
  badgeWhy,
  stepAt,
  claimText,
  clock,
  countdown,
  eventKindLabel,
  eventKinds,
  eventNote,
  exactTime,
  isHttpsUrl,
  plural,
  providerMark,
  refreshExpiryAt,
  refreshExpiryText,
  relativeTime,
} from "./format";
import { NOW as now, conn, steps } from "./testdata";

describe("relativeTime", () => {
  it("formats future and past", () => {
    expect(relativeTime(now + 5 * 60_000, now)).toBe("in 5 min");
    expect(relativeTime(now - 3 * 3_600_000, now)).toBe("3 h ago");
    expect(relativeTime(now + 2 * 86_400_000 + 5, now)).toBe("in 2 d");
    expect(relativeTime(now + 400, now)).toBe("now");
    expect(relativeTime(now - 42_000, now)).toBe("42 s ago");
    expect(relativeTime(null, now)).toBe("—");
  });
});

describe("clock", () => {
  it("pads seconds and adds hours when needed", () => {
    expect(clock(0)).toBe("0:00");
    expect(clock(9)).toBe("0:09");
    expect(clock(245)).toBe("4:05");
    expect(clock(3723)).toBe("1:02:03");
    expect(clock(-5)).toBe("0:00");
    expect(clock(59.9)).toBe("0:59");
  });
});

describe("countdown", () => {
  it("shows m:ss under an hour", () => {
    expect(countdown(now + 59 * 60_000 + 12_000, now)).toBe("59:12");
    expect(countdown(now + 5_000, now)).toBe("0:05");
    expect(countdown(now + 1, now)).toBe("0:01");
    // Never "60:00": just under an hour is still m:ss.
    expect(countdown(now + 3_599_999, now)).toBe("59:59");
  });
  it("shows hours and days beyond", () => {
    expect(countdown(now + 3_600_000, now)).toBe("in 1 h");
    expect(countdown(now + 3 * 3_600_000 + 59 * 60_000, now)).toBe("in 3 h");
    expect(countdown(now + 2 * 86_400_000 + 1000, now)).toBe("in 2 d");
  });
  it("says expired when past and — when unknown", () => {
    expect(countdown(now, now)).toBe("expired");
    expect(countdown(now - 10_000, now)).toBe("expired");
    expect(countdown(null, now)).toBe("—");
  });
  it("ticks down each second", () => {
    const at = now + 90_000;
    expect([0, 1, 2].map((s) => countdown(at, now + s * 1000))).toEqual(["1:30", "1:29", "1:28"]);
  });
});

describe("badge", () => {
  // The core's steps for a token that expires in an hour, with no refresh token.
  const row = { status_steps: steps(conn(), [now + 3_300_000, "expiring"], [now + 3_600_000, "expired", true]) };
  it("picks the step in force, never an earlier one once a later one starts", () => {
    expect(badge(row, now)).toBe("active");
    expect(badge(row, now + 3_300_000)).toBe("expiring");
    expect(badge(row, now + 3_600_000)).toBe("expired");
    expect(badge(row, now + 99_000_000)).toBe("expired");
    expect(stepAt(row.status_steps, now + 3_600_000).attention).toBe(true);
  });
  it("explains an expired badge by whether the next use renews it", () => {
    expect(badgeWhy({ ...row, has_refresh_token: false }, now + 3_600_000)).toMatch(/connect again/);
    const renewable = { status_steps: steps(conn(), [now, "expired", false]), has_refresh_token: true };
    expect(badgeWhy(renewable, now)).toMatch(/next use/);
  });
  it("passes stored states through", () => {
    expect(badge({ status_steps: steps(conn({ status: "revoked" })) }, now)).toBe("revoked");
    expect(badge({ status_steps: steps(conn({ status: "error" })) }, now)).toBe("error");
  });
});

describe("accounts and refresh expiry", () => {
  it("shows username, else subject", () => {
    expect(accountText(conn({ account: { username: "ann@x.io", subject: "123", org_id: null } }))).toBe("ann@x.io");
    expect(accountText(conn({ account: { username: null, subject: "123", org_id: null } }))).toBe("123");
    expect(accountText(conn())).toBe("—");
  });
  it("takes the earlier of sliding and hard expiry", () => {
    expect(refreshExpiryAt(conn({ refresh_expires_at: now + 10, refresh_hard_expires_at: now + 5 }))).toBe(now + 5);
    expect(refreshExpiryAt(conn({ refresh_expires_at: now + 10 }))).toBe(now + 10);
    expect(refreshExpiryAt(conn({ refresh_hard_expires_at: now + 7 }))).toBe(now + 7);
    expect(refreshExpiryAt(conn({ refresh_expires_at: now + 10, has_refresh_token: false }))).toBeNull();
  });
  it("words the refresh expiry", () => {
    expect(refreshExpiryText(conn({ has_refresh_token: false }), now)).toBe("none");
    expect(refreshExpiryText(conn(), now)).toBe("no expiry known");
    expect(refreshExpiryText(conn({ refresh_expires_at: now + 60 * 86_400_000 }), now)).toBe("in 60 d");
    expect(refreshExpiryText(conn({ refresh_hard_expires_at: now - 1 }), now)).toBe("expired");
  });
});

describe("events", () => {
  it("has words for every kind", () => {
    expect(eventKindLabel.handed_out).toBe("handed out");
    expect(eventKindLabel.revealed).toBe("revealed");
    expect(eventKindLabel.refreshed).toBe("refreshed");
    expect(eventKinds).toContain("consented");
    for (const k of eventKinds) expect(eventKindLabel[k]).not.toContain("_");
  });
  it("notes what the structured detail says", () => {
    expect(eventNote({ kind: "refresh_failed", detail: { class: "transient", error: "timed out" } })).toBe("timed out");
    expect(eventNote({ kind: "revealed", detail: { secret: "access_token", how: "copy" } })).toBe("copied to the clipboard");
    expect(eventNote({ kind: "consented", detail: { reconsent: true } })).toBe("re-consent");
    expect(eventNote({ kind: "handed_out", detail: null })).toBeNull();
    expect(eventNote({ kind: "revoked", detail: "odd" })).toBeNull();
  });
});

describe("providerMark", () => {
  it("is the initial and a stable tone", () => {
    const a = providerMark("Salesforce (production)");
    expect(a.initial).toBe("S");
    expect(providerMark("Salesforce (production)")).toEqual(a);
    expect(a.tone).toBeGreaterThanOrEqual(0);
    expect(a.tone).toBeLessThan(8);
    expect(providerMark("  (x)").initial).toBe("X");
    expect(providerMark("").initial).toBe("?");
  });
  it("spreads names over tones", () => {
    const tones = new Set(["google", "slack", "github", "xero", "hubspot", "zoom", "box", "okta", "dropbox"].map((n) => providerMark(n).tone));
    expect(tones.size).toBeGreaterThan(3);
  });
});

describe("claims and links", () => {
  it("adds dates to time claims", () => {
    const t = claimText("exp", now / 1000 + 60, now);
    expect(t.startsWith(`${now / 1000 + 60} (`)).toBe(true);
    expect(t).toContain("in 1 min");
    expect(claimText("sub", "abc", now)).toBe("abc");
    expect(claimText("aud", ["a", "b"], now)).toBe('["a","b"]');
    expect(claimText("exp", "soon", now)).toBe("soon");
  });
  it("accepts only https links", () => {
    expect(isHttpsUrl("https://acme.my.salesforce.com")).toBe(true);
    expect(isHttpsUrl("http://acme.example")).toBe(false);
    expect(isHttpsUrl("javascript:alert(1)")).toBe(false);
    expect(isHttpsUrl("https://")).toBe(false);
    expect(isHttpsUrl("12345")).toBe(false);
  });
  it("formats exact times and plurals", () => {
    expect(exactTime(null)).toBe("");
    expect(exactTime(now)).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC[+−]\d\d:\d\d$/);
    const local = new Date(2026, 10, 30, 22, 41, 4);
    expect(exactTime(local.getTime()).startsWith("2026-11-30 22:41:04 UTC")).toBe(true);
    expect(plural(1, "grant")).toBe("1 grant");
    expect(plural(3, "grant")).toBe("3 grants");
    expect(plural(2, "entry", "entries")).toBe("2 entries");
  });
});
