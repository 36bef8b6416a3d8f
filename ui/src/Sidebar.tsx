import type { TenantId } from "./bindings/TenantId";
import type { TenantSharing } from "./bindings/TenantSharing";
import type { VaultStatus } from "./bindings/VaultStatus";
import { useShell } from "./ctx";
import { plural } from "./format";
import { SharedBadge } from "./Sharing";

export type View = "connections" | "review";

type Props = {
  status: VaultStatus | null;
  view: View;
  tenant: TenantId | null;
  onTenant: (t: TenantId | null) => void;
  onView: (v: View) => void;
  onConnect: () => void;
  onSearch: () => void;
  /** Opens the new-tenant dialog. */
  onNewTenant?: () => void;
  /** Shared tenants by id (see Sharing.tsx). */
  sharing?: Map<string, TenantSharing>;
};

export function Sidebar({ status, view, tenant, onTenant, onView, onConnect, onSearch, onNewTenant, sharing }: Props) {
  const { tenants } = useShell();
  const ok = status !== null && status.error === null;
  const total = tenants.reduce((n, t) => n + t.connections, 0);
  const attention = tenants.reduce((n, t) => n + t.needs_attention, 0);
  return (
    <aside class="sidebar" aria-label="Navigation">
      <div class="brand">
        <img src="/icon.png" alt="" width="26" height="26" />
        <span>Grantkeeper</span>
      </div>
      {ok && (
        <>
          <button type="button" class="search-btn" data-action="search" onClick={onSearch} aria-keyshortcuts="Control+K">
            <svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true">
              <circle cx="7" cy="7" r="4.5" fill="none" stroke="currentColor" stroke-width="1.6" />
              <line x1="10.4" y1="10.4" x2="14" y2="14" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" />
            </svg>
            <span>Search</span>
            <kbd>Ctrl K</kbd>
          </button>
          <button type="button" class="btn primary connect-btn" data-action="connect" onClick={onConnect}>
            <span aria-hidden="true">+</span> Connect account
          </button>
          <nav aria-label="Views" class="views">
            <button
              type="button"
              class={view === "connections" ? "nav-item active" : "nav-item"}
              data-nav="connections"
              aria-current={view === "connections" ? "page" : undefined}
              onClick={() => onView("connections")}
            >
              Connections
            </button>
            <button
              type="button"
              class={view === "review" ? "nav-item active" : "nav-item"}
              data-nav="review"
              aria-current={view === "review" ? "page" : undefined}
              onClick={() => onView("review")}
            >
              Grant review
            </button>
          </nav>
          <h2 class="side-heading" id="tenants-heading">
            Tenants
          </h2>
          <nav class="tenants" aria-labelledby="tenants-heading">
            <button
              type="button"
              class={view === "connections" && tenant === null ? "tenant active" : "tenant"}
              data-tenant-all
              aria-current={view === "connections" && tenant === null ? "true" : undefined}
              onClick={() => onTenant(null)}
            >
              <span class="tenant-name">All tenants</span>
              <span class="count">
                {attention > 0 && (
                  <span class="attention" data-attention={attention} title={`${plural(attention, "connection")} need attention`} aria-label={`${attention} need attention`}>
                    {attention}
                  </span>
                )}
                {total}
              </span>
            </button>
            {tenants.map((t) => {
              const active = view === "connections" && tenant === t.tenant.id;
              return (
                <button
                  type="button"
                  key={t.tenant.id}
                  class={active ? "tenant active" : "tenant"}
                  data-tenant={t.tenant.slug}
                  aria-current={active ? "true" : undefined}
                  title={t.tenant.notes || t.tenant.slug}
                  onClick={() => onTenant(t.tenant.id)}
                >
                  <span class="tenant-name">{t.tenant.name}</span>
                  <span class="count">
                    {sharing?.has(t.tenant.id) && <SharedBadge sharing={sharing.get(t.tenant.id)!} />}
                    {t.needs_attention > 0 && (
                      <span
                        class="attention"
                        data-attention={t.needs_attention}
                        title={`Needs attention: ${t.attention_label}`}
                        aria-label={`${t.needs_attention} need attention: ${t.attention_label}`}
                      >
                        {t.needs_attention}
                      </span>
                    )}
                    <span aria-label={plural(t.connections, "connection")}>{t.connections}</span>
                  </span>
                </button>
              );
            })}
            {tenants.length === 0 && <p class="side-empty">No tenants yet: create one for each client workspace.</p>}
          </nav>
          {onNewTenant && (
            <button type="button" class="btn small new-tenant-btn" data-action="new-tenant" onClick={onNewTenant}>
              <span aria-hidden="true">+</span> New tenant
            </button>
          )}
        </>
      )}
      <div class="side-spacer" />
      {status?.demo && (
        <div class="demo-banner" data-demo>
          <strong>Demo mode</strong>
          <p>
            A demo provider runs on 127.0.0.1, no network needed. Try <em>Connect account</em> with the preset
            “Grantkeeper demo provider” (the Demo Client tenant has its app “demo”).
          </p>
        </div>
      )}
      {ok && (
        <footer class="where" title={status.home}>
          <svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true">
            <rect x="3" y="7" width="10" height="7" rx="1.5" fill="currentColor" />
            <path d="M5 7V5a3 3 0 0 1 6 0v2" fill="none" stroke="currentColor" stroke-width="1.6" />
          </svg>
          <span>Secrets in {status.keychain}</span>
        </footer>
      )}
    </aside>
  );
}
