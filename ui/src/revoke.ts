// What the window says after a revocation. A grant is always forgotten here; the provider may or
// may not have confirmed that it ended the grant, and only a confirmation counts as revoked.
import type { BulkRevokeResult } from "./bindings/BulkRevokeResult";
import type { RevokeOutcome } from "./bindings/RevokeOutcome";
import type { NoteTone } from "./ctx";
import { plural } from "./format";
import { withHint } from "./online";

export type Said = { text: string; tone: NoteTone };

/** What to do when the provider did not confirm a revocation. */
export const REVOKE_AT_PROVIDER =
  "Revoke it at the provider yourself (its admin console, or the account's connected-apps settings): until then the grant stays active there.";

/** A single revoke's note. */
export function revokeNote(label: string, outcome: RevokeOutcome): Said {
  if (outcome.revoked_at_provider) return { text: `Revoked ${label} at the provider.`, tone: "info" };
  return {
    text: `${label} was forgotten here, but the provider did not confirm the revocation. ${REVOKE_AT_PROVIDER}`,
    tone: "warn",
  };
}

/** A delete's note; `outcome` is null when no revocation was asked for (or needed). */
export function deleteNote(label: string, outcome: RevokeOutcome | null): Said {
  if (!outcome) return { text: `Deleted ${label}.`, tone: "info" };
  if (outcome.revoked_at_provider) return { text: `Deleted ${label}; the provider confirmed the revocation.`, tone: "info" };
  return { text: `Deleted ${label} here, ${sentence(outcome.detail)} ${REVOKE_AT_PROVIDER}`, tone: "warn" };
}

/** `text` ending in a full stop. */
function sentence(text: string): string {
  const t = text.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

export type BulkState = "ok" | "unconfirmed" | "failed";

/** How one grant of a bulk revoke ended. */
export function bulkState(r: BulkRevokeResult): BulkState {
  if (r.error || !r.outcome) return "failed";
  return r.outcome.revoked_at_provider ? "ok" : "unconfirmed";
}

/** The line of one grant of a bulk revoke (after its name). */
export function bulkLine(r: BulkRevokeResult): string {
  if (r.error) return withHint(r.error.message, r.error.offline);
  if (!r.outcome) return "no answer";
  if (r.outcome.revoked_at_provider) return `revoked at the provider. ${r.outcome.caveat}`;
  return `forgotten here only — ${sentence(r.outcome.detail)}`;
}

/** Names, at most three, then how many more. */
function names(keys: string[]): string {
  const shown = keys.slice(0, 3).join(", ");
  return keys.length > 3 ? `${shown} and ${keys.length - 3} more` : shown;
}

/** The summary of a bulk revoke: it counts what the providers confirmed, not what was forgotten. */
export function bulkSummary(results: { key: string; result: BulkRevokeResult }[]): Said {
  const unconfirmed = results.filter((r) => bulkState(r.result) === "unconfirmed").map((r) => r.key);
  const failed = results.filter((r) => bulkState(r.result) === "failed").map((r) => r.key);
  const done = results.length - failed.length;
  const confirmed = done - unconfirmed.length;
  const parts: string[] = [];
  if (done > 0 && unconfirmed.length === 0) {
    parts.push(`Revoked ${plural(done, "grant")} at the provider.`);
  } else if (done > 0) {
    const these = unconfirmed.length === 1 ? "this one" : `these ${unconfirmed.length}`;
    parts.push(
      `${plural(done, "grant")} revoked here; the provider confirmed ${confirmed} of ${done} — revoke ${these} at the provider yourself: ${names(unconfirmed)}.`,
    );
  }
  if (failed.length > 0) {
    parts.push(
      failed.length === results.length && results.length > 1
        ? `None of the ${plural(results.length, "grant")} could be revoked: ${names(failed)} (see the list).`
        : `${plural(failed.length, "grant")} could not be revoked: ${names(failed)} (see the list).`,
    );
  }
  return { text: parts.join(" "), tone: unconfirmed.length > 0 || failed.length > 0 ? "warn" : "info" };
}
