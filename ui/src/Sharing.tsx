// Shared tenants: which team and members a tenant is shared with, and whether the team vault
// answers, as the core computed it (`tenant_sharing`). A badge in the sidebar, a section in the
// tenant's settings.
import { useEffect, useState } from "preact/hooks";
import { api, events } from "./api";
import type { TenantSharing } from "./bindings/TenantSharing";
import { useBackendEvent } from "./useLive";

/** A shared tenant as shown: while the team vault is unreachable, the members last seen. */
export type SharingView = TenantSharing & {
  /** The members are the ones last seen while the team vault answered. */
  membersLastSeen?: boolean;
};

/** The new status by tenant id, keeping the members last seen for a tenant whose team vault no
 * longer answers; `prev` itself when nothing changed (so nothing redraws). */
export function mergeSharing(prev: Map<string, SharingView>, list: TenantSharing[]): Map<string, SharingView> {
  const next = new Map<string, SharingView>();
  for (const s of list) {
    const before = prev.get(s.tenant_id);
    const keep = !s.reachable && s.members.length === 0 && before !== undefined && before.members.length > 0;
    next.set(s.tenant_id, keep ? { ...s, members: before.members, membersLastSeen: true } : s);
  }
  const same =
    next.size === prev.size && [...next].every(([id, v]) => JSON.stringify(v) === JSON.stringify(prev.get(id)));
  return same ? prev : next;
}

/** Shared tenants by tenant id; empty until loaded (or when nothing is shared). Reloads when
 * `tick` changes, and takes each check the backend makes on its own. */
export function useSharing(tick: unknown): Map<string, SharingView> {
  const [sharing, setSharing] = useState<Map<string, SharingView>>(() => new Map());
  useEffect(() => {
    let live = true;
    api.tenantSharing().then(
      (list) => live && setSharing((prev) => mergeSharing(prev, list)),
      () => {},
    );
    return () => {
      live = false;
    };
  }, [tick]);
  useBackendEvent(() => events.onSharingChecked((list) => setSharing((prev) => mergeSharing(prev, list))));
  return sharing;
}

/** "Shared with team firm (alice, bob); the team vault answers.", or the core's problem line. */
export function sharingLabel(s: TenantSharing): string {
  const members = s.members.length > 0 ? ` (${s.members.join(", ")})` : "";
  const vault = s.reachable ? "the team vault answers" : (s.problem ?? "the team vault does not answer");
  return `Shared with team ${s.team}${members}; ${vault}.`;
}

/** The sidebar's mark on a shared tenant. */
export function SharedBadge({ sharing }: { sharing: TenantSharing }) {
  return (
    <span
      class={sharing.reachable ? "shared-badge" : "shared-badge unreachable"}
      data-shared={sharing.team}
      data-reachable={String(sharing.reachable)}
      title={sharingLabel(sharing)}
      aria-label={sharingLabel(sharing)}
    >
      <svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true">
        <circle cx="5" cy="6" r="2.2" fill="currentColor" />
        <circle cx="11" cy="6" r="2.2" fill="currentColor" />
        <path d="M1.5 13c0-2.2 1.6-3.6 3.5-3.6S8.5 10.8 8.5 13M7.5 13c0-2.2 1.6-3.6 3.5-3.6s3.5 1.4 3.5 3.6" fill="none" stroke="currentColor" stroke-width="1.3" />
      </svg>
    </span>
  );
}

/** The tenant settings' section: team, members, this member, and the team vault's state. */
export function SharingSection({ sharing }: { sharing: SharingView }) {
  return (
    <section class="settings-section" data-section="sharing" aria-labelledby="sharing-heading">
      <h3 id="sharing-heading">Shared with a team</h3>
      <dl class="sharing-facts">
        <dt>Team</dt>
        <dd data-fact="team">{sharing.team}</dd>
        <dt>You</dt>
        <dd data-fact="member">{sharing.member}</dd>
        <dt>Members</dt>
        <dd data-fact="members">
          {sharing.members.length === 0
            ? "unknown while the team vault is unreachable"
            : sharing.membersLastSeen
              ? `${sharing.members.join(", ")} (as last seen; the team vault does not answer)`
              : sharing.members.join(", ")}
        </dd>
        <dt>Team vault</dt>
        <dd data-fact="reachable" class={sharing.reachable ? undefined : "warn"}>
          {sharing.reachable ? "reachable" : (sharing.problem ?? "does not answer")}
        </dd>
      </dl>
    </section>
  );
}
