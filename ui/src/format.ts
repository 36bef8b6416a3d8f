// Pure presentation helpers, unit-tested with vitest.
import type { Connection } from "./bindings/Connection";

/** "in 5 min", "3 h ago", "in 2 d"; `null` → "—". */
export function relativeTime(at: number | null, now: number): string {
  if (at === null) return "—";
  const diff = at - now;
  const abs = Math.abs(diff);
  const units: [number, string][] = [
    [86_400_000, "d"],
    [3_600_000, "h"],
    [60_000, "min"],
    [1_000, "s"],
  ];
  let text = "now";
  for (const [ms, unit] of units) {
    if (abs >= ms) {
      text = `${Math.floor(abs / ms)} ${unit}`;
      break;
    }
  }
  if (text === "now") return text;
  return diff > 0 ? `in ${text}` : `${text} ago`;
}

export type Badge = "active" | "expiring" | "expired" | "needs_reconsent" | "revoked" | "error";

/** The status badge of a connection, with "expiring" when its access token ends within 5 minutes. */
export function badge(c: Connection, now: number): Badge {
  if (c.status !== "active") return c.status;
  if (c.access_expires_at !== null) {
    if (c.access_expires_at <= now) return c.has_refresh_token ? "active" : "expired";
    if (c.access_expires_at - now < 5 * 60_000) return "expiring";
  }
  return "active";
}

export const badgeLabel: Record<Badge, string> = {
  active: "Active",
  expiring: "Expiring soon",
  expired: "Expired",
  needs_reconsent: "Needs re-consent",
  revoked: "Revoked",
  error: "Error",
};
