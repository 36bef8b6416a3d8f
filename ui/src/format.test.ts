import { describe, expect, it } from "vitest";
import type { Connection } from "./bindings/Connection";
import { badge, relativeTime } from "./format";

const now = 1_800_000_000_000;

function conn(over: Partial<Connection>): Connection {
  return {
    id: "c1",
    tenant_id: "t1",
    provider_app_id: "p1",
    name: "crm",
    account: { subject: null, username: null, org_id: null },
    scopes_requested: [],
    scopes_granted: [],
    scopes_granted_reported: false,
    consented_at: now,
    consented_by: null,
    status: "active",
    status_detail: null,
    access_expires_at: null,
    access_expiry_source: null,
    refresh_expires_at: null,
    refresh_hard_expires_at: null,
    last_refresh_at: null,
    last_used_at: null,
    has_refresh_token: true,
    metadata: {},
    created_at: now,
    ...over,
  };
}

describe("relativeTime", () => {
  it("formats future and past", () => {
    expect(relativeTime(now + 5 * 60_000, now)).toBe("in 5 min");
    expect(relativeTime(now - 3 * 3_600_000, now)).toBe("3 h ago");
    expect(relativeTime(now + 2 * 86_400_000 + 5, now)).toBe("in 2 d");
    expect(relativeTime(now + 400, now)).toBe("now");
    expect(relativeTime(null, now)).toBe("—");
  });
});

describe("badge", () => {
  it("flags tokens about to expire", () => {
    expect(badge(conn({ access_expires_at: now + 60_000 }), now)).toBe("expiring");
    expect(badge(conn({ access_expires_at: now + 3_600_000 }), now)).toBe("active");
  });
  it("treats an expired token without refresh token as expired", () => {
    expect(badge(conn({ access_expires_at: now - 1, has_refresh_token: false }), now)).toBe("expired");
    expect(badge(conn({ access_expires_at: now - 1 }), now)).toBe("active");
  });
  it("passes other states through", () => {
    expect(badge(conn({ status: "needs_reconsent" }), now)).toBe("needs_reconsent");
    expect(badge(conn({ status: "revoked" }), now)).toBe("revoked");
  });
});
