// Pure presentation helpers, unit-tested with vitest.
import type { ActorKind } from "./bindings/ActorKind";
import type { Connection } from "./bindings/Connection";
import type { EventKind } from "./bindings/EventKind";
import type { ExpirySource } from "./bindings/ExpirySource";
import type { GrantState } from "./bindings/GrantState";
import type { StatusStep } from "./bindings/StatusStep";
import type { UsageEvent } from "./bindings/UsageEvent";

const DAY = 86_400_000;
const HOUR = 3_600_000;
const MINUTE = 60_000;

/** "in 5 min", "3 h ago", "in 2 d"; `null` → "—". */
export function relativeTime(at: number | null, now: number): string {
  if (at === null) return "—";
  const diff = at - now;
  const abs = Math.abs(diff);
  const units: [number, string][] = [
    [DAY, "d"],
    [HOUR, "h"],
    [MINUTE, "min"],
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

/** Seconds as a clock: "4:05", "0:09", "1:02:03" (never negative). */
export function clock(totalSecs: number): string {
  const s = Math.max(0, Math.floor(totalSecs));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** A live expiry countdown: "m:ss" under an hour, then "in 3 h" / "in 2 d"; "expired" when past. */
export function countdown(at: number | null, now: number): string {
  if (at === null) return "—";
  const diff = at - now;
  if (diff <= 0) return "expired";
  if (diff < HOUR) return clock(Math.min(3599, Math.ceil(diff / 1000)));
  if (diff < DAY) return `in ${Math.floor(diff / HOUR)} h`;
  return `in ${Math.floor(diff / DAY)} d`;
}

/**
 * The exact local time of a timestamp with its offset from UTC, for titles:
 * "2026-11-30 22:41:24 UTC+01:00". Written out rather than through `Intl`, so that the window's
 * tooltips need no ICU formatter (and its data pages) in the web process.
 */
export function exactTime(at: number | null): string {
  if (at === null) return "";
  const d = new Date(at);
  const two = (n: number) => String(n).padStart(2, "0");
  const offset = -d.getTimezoneOffset();
  const sign = offset < 0 ? "−" : "+";
  const zone = `UTC${sign}${two(Math.floor(Math.abs(offset) / 60))}:${two(Math.abs(offset) % 60)}`;
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${zone}`;
}

export type Badge = GrantState;

/**
 * The step of a grant's status in force at `now`. The core computes the steps from the facts
 * (`grantkeeper_core::status`, the same function the CLI uses); this only picks the current one.
 */
export function stepAt(steps: StatusStep[], now: number): StatusStep {
  let found = steps[0] ?? { from: 0, state: "active", attention: false };
  for (const s of steps) if (s.from <= now) found = s;
  return found;
}

/** The status badge of a connection at `now`, from its computed status steps. */
export function badge(c: { status_steps: StatusStep[] }, now: number): Badge {
  return stepAt(c.status_steps, now).state;
}

/** Why a badge shows what it shows, for its tooltip. */
export function badgeWhy(c: { status_steps: StatusStep[]; has_refresh_token: boolean }, now: number): string {
  const s = stepAt(c.status_steps, now);
  if (s.state === "expired") {
    return s.attention
      ? "The access token expired and no refresh token can renew it: connect again."
      : "The access token expired; the next use gets a new one with the refresh token.";
  }
  if (s.state === "expiring") return "The access token (or the grant itself) ends soon.";
  return s.attention ? "Needs attention." : "";
}

export const badgeLabel: Record<Badge, string> = {
  active: "Active",
  expiring: "Expiring soon",
  expired: "Expired",
  needs_reconsent: "Needs re-consent",
  revoked: "Revoked",
  error: "Error",
};

/** Badges in the order of the status filter. */
export const badgeOrder: Badge[] = ["active", "expiring", "expired", "needs_reconsent", "revoked", "error"];

/** The account as shown: username, else subject, else "—". */
export function accountText(c: Pick<Connection, "account">): string {
  return c.account.username ?? c.account.subject ?? "—";
}

/** When the refresh token dies: the earlier of the sliding and the hard expiry. */
export function refreshExpiryAt(
  c: Pick<Connection, "refresh_expires_at" | "refresh_hard_expires_at" | "has_refresh_token">,
): number | null {
  if (!c.has_refresh_token) return null;
  const a = c.refresh_expires_at;
  const b = c.refresh_hard_expires_at;
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}

/** The refresh-token expiry in words: relative, "no expiry known", or "none". */
export function refreshExpiryText(
  c: Pick<Connection, "refresh_expires_at" | "refresh_hard_expires_at" | "has_refresh_token">,
  now: number,
): string {
  if (!c.has_refresh_token) return "none";
  const at = refreshExpiryAt(c);
  if (at === null) return "no expiry known";
  if (at <= now) return "expired";
  return relativeTime(at, now);
}

export const eventKindLabel: Record<EventKind, string> = {
  consented: "consented",
  refreshed: "refreshed",
  refresh_failed: "refresh failed",
  handed_out: "handed out",
  revealed: "revealed",
  revoked: "revoked",
  deleted: "deleted",
  exported: "exported",
  config_changed: "configuration changed",
  tenant_created: "tenant created",
  tenant_deleted: "tenant deleted",
  proxied: "proxied",
  locked: "agent locked",
  policy_changed: "hand-out policy changed",
  hand_out_refused: "hand-out refused",
};

export const eventKinds = Object.keys(eventKindLabel) as EventKind[];

export const actorLabel: Record<ActorKind, string> = {
  app: "the app",
  cli: "the CLI",
  agent: "the agent",
  background: "background maintenance",
  proxy: "the proxy",
};

export const expirySourceLabel: Record<ExpirySource, string> = {
  response: "from the token response",
  jwt_exp: "from the token's exp claim",
  introspection: "from introspection at the provider",
  catalog_default: "assumed from the provider's usual lifetime",
};

/** A short note from an event's structured detail (why a refresh failed, copy vs reveal, …). */
export function eventNote(e: Pick<UsageEvent, "kind" | "detail">): string | null {
  const d = e.detail;
  if (d === null || typeof d !== "object") return null;
  const o = d as Record<string, unknown>;
  switch (e.kind) {
    case "refresh_failed":
      return typeof o.error === "string" ? o.error : null;
    case "revealed":
      return o.how === "copy" ? "copied to the clipboard" : o.how === "reveal" ? "shown in the window" : null;
    case "revoked":
      return typeof o.detail === "string" ? o.detail : null;
    case "consented":
      return o.reconsent === true ? "re-consent" : null;
    default:
      return null;
  }
}

/** A provider's mark: its initial and one of 8 tones, stable for a name. */
export function providerMark(name: string): { initial: string; tone: number } {
  const trimmed = name.trim();
  const initial = (trimmed.match(/[\p{L}\p{N}]/u)?.[0] ?? "?").toUpperCase();
  let h = 0;
  for (const ch of trimmed.toLowerCase()) h = (h * 31 + (ch.codePointAt(0) ?? 0)) >>> 0;
  return { initial, tone: h % 8 };
}

const TIME_CLAIMS = new Set(["exp", "iat", "nbf", "auth_time", "updated_at"]);

/** A JWT claim's value as text; Unix-second claims get their date too. */
export function claimText(key: string, value: unknown, now: number): string {
  if (TIME_CLAIMS.has(key) && typeof value === "number" && Number.isFinite(value)) {
    const ms = value * 1000;
    return `${value} (${exactTime(ms)}, ${relativeTime(ms, now)})`;
  }
  if (typeof value === "string") return value;
  return JSON.stringify(value) ?? String(value);
}

/** Whether a metadata value is an https link to offer. */
export function isHttpsUrl(v: string): boolean {
  if (!/^https:\/\//i.test(v)) return false;
  try {
    return new URL(v).protocol === "https:";
  } catch {
    return false;
  }
}

/** "1 grant", "3 grants". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
