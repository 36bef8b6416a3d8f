// Shared tenants: which team and members a tenant is shared with, and whether the team vault
// answers, as the core computed it (`tenant_sharing`). A badge in the sidebar, a section in the
// tenant's settings.
import { useEffect, useState } from "preact/hooks";
import { api } from "./api";
import type { TenantSharing } from "./bindings/TenantSharing";

/** Shared tenants by tenant id; empty until loaded (or when nothing is shared). Reloads when `tick` changes. */
export function useSharing(tick: unknown): Map<string, TenantSharing> {
  const [sharing, setSharing] = useState<Map<string, TenantSharing>>(() => new Map());
  useEffect(() => {
    let live = true;
    api.tenantSharing().then(
      (list) => live && setSharing(new Map(list.map((s) => [s.tenant_id, s]))),
      () => {},
    );
    return () => {
      live = false;
    };
  }, [tick]);
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
export function SharingSection({ sharing }: { sharing: TenantSharing }) {
  return (
    <section class="settings-section" data-section="sharing" aria-labelledby="sharing-heading">
      <h3 id="sharing-heading">Shared with a team</h3>
      <dl class="sharing-facts">
        <dt>Team</dt>
        <dd data-fact="team">{sharing.team}</dd>
        <dt>You</dt>
        <dd data-fact="member">{sharing.member}</dd>
        <dt>Members</dt>
        <dd data-fact="members">{sharing.members.length > 0 ? sharing.members.join(", ") : "unknown while the team vault is unreachable"}</dd>
        <dt>Team vault</dt>
        <dd data-fact="reachable" class={sharing.reachable ? undefined : "warn"}>
          {sharing.reachable ? "reachable" : (sharing.problem ?? "does not answer")}
        </dd>
      </dl>
    </section>
  );
}
