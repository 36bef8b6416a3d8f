import { useEffect, useState } from "preact/hooks";
import { api, errorMessage } from "./api";
import type { Connection } from "./bindings/Connection";
import type { ConnectionDetail } from "./bindings/ConnectionDetail";
import type { TenantId } from "./bindings/TenantId";
import type { TenantSummary } from "./bindings/TenantSummary";
import type { VaultStatus } from "./bindings/VaultStatus";
import { badge, badgeLabel, relativeTime } from "./format";

export function App() {
  const [status, setStatus] = useState<VaultStatus | null>(null);
  const [tenants, setTenants] = useState<TenantSummary[]>([]);
  const [selected, setSelected] = useState<TenantId | null>(null);
  const [connections, setConnections] = useState<Connection[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [detail, setDetail] = useState<ConnectionDetail | null>(null);
  const open = (c: Connection) =>
    api.connectionDetail({ tenant: c.tenant_id, connection: c.id }).then(setDetail, (e) => setError(errorMessage(e)));
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);

  useEffect(() => {
    (async () => {
      try {
        const s = await api.vaultStatus();
        setStatus(s);
        if (s.error === null) setTenants(await api.listTenants());
      } catch (e) {
        setError(errorMessage(e));
      }
    })();
  }, []);

  useEffect(() => {
    if (status?.error !== null) return;
    api.listConnections(selected).then(setConnections, (e) => setError(errorMessage(e)));
  }, [selected, status]);

  return (
    <div class="shell">
      <aside class="sidebar" aria-label="Tenants">
        <div class="brand">
          <img src="/icon.png" alt="" width="28" height="28" />
          <span>Grantkeeper</span>
        </div>
        <nav hidden={status?.error != null}>
          <button class={selected === null ? "tenant active" : "tenant"} onClick={() => setSelected(null)}>
            <span>All tenants</span>
            <span class="count">{tenants.reduce((n, t) => n + t.connections, 0)}</span>
          </button>
          {tenants.map((t) => (
            <button
              key={t.tenant.id}
              class={selected === t.tenant.id ? "tenant active" : "tenant"}
              data-tenant={t.tenant.slug}
              onClick={() => setSelected(t.tenant.id)}
            >
              <span>{t.tenant.name}</span>
              <span class="count">
                {t.needs_attention > 0 && <span class="attention" title="Needs attention">!</span>}
                {t.connections}
              </span>
            </button>
          ))}
        </nav>
        {status && status.error === null && (
          <footer class="where" title={status.home}>
            Secrets in {status.keychain}
          </footer>
        )}
      </aside>
      <main>
        <header>
          <h1>{selected === null ? "All connections" : tenants.find((t) => t.tenant.id === selected)?.tenant.name}</h1>
        </header>
        {(error ?? status?.error) && (
          <div class="error" role="alert">
            <strong>Grantkeeper cannot open the vault.</strong>
            <p>{error ?? status?.error}</p>
          </div>
        )}
        {status?.error === null && connections.length === 0 && (
          <p class="empty">No connections yet. Connect an account with <code>grantkeeper connect</code>.</p>
        )}
        {connections.length > 0 && (
          <table class="connections">
            <thead>
              <tr>
                <th>Connection</th>
                <th>Account</th>
                <th>Status</th>
                <th>Access token</th>
                <th>Last use</th>
              </tr>
            </thead>
            <tbody>
              {connections.map((c) => {
                const b = badge(c, now);
                return (
                  <tr
                    key={c.id}
                    data-connection={c.name}
                    class={detail?.connection.id === c.id ? "selected" : ""}
                    tabIndex={0}
                    onClick={() => open(c)}
                    onKeyDown={(e) => e.key === "Enter" && open(c)}
                  >
                    <td>{c.name}</td>
                    <td>{c.account.username ?? c.account.subject ?? "—"}</td>
                    <td>
                      <span class={`badge ${b}`}>{badgeLabel[b]}</span>
                    </td>
                    <td>{relativeTime(c.access_expires_at, now)}</td>
                    <td>{relativeTime(c.last_used_at, now)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        {detail && <Detail detail={detail} now={now} onClose={() => setDetail(null)} />}
      </main>
    </div>
  );
}

function Detail({ detail, now, onClose }: { detail: ConnectionDetail; now: number; onClose: () => void }) {
  const c = detail.connection;
  return (
    <section class="detail" aria-label="Connection detail">
      <header>
        <h2>
          {detail.tenant}/{c.name}
        </h2>
        <button class="close" onClick={onClose} aria-label="Close">
          ×
        </button>
      </header>
      <dl>
        <dt>Provider</dt>
        <dd>{detail.provider_name ?? detail.provider_app}</dd>
        <dt>Account</dt>
        <dd>{c.account.username ?? c.account.subject ?? "—"}</dd>
        <dt>Access token</dt>
        <dd>expires {relativeTime(c.access_expires_at, now)}</dd>
        <dt>Refresh token</dt>
        <dd>{c.has_refresh_token ? "in the OS keychain" : "none"}</dd>
      </dl>
      <h3>Scopes</h3>
      <ul class="scopes">
        {detail.scopes.map((s) => (
          <li key={s.scope} data-scope={s.scope} class={s.granted ? "" : "not-granted"}>
            <span class={`risk ${s.risk ?? "unknown"}`}>{s.risk ?? "?"}</span>
            <code>{s.scope}</code>
            <span class="meaning">{s.granted ? (s.meaning ?? "") : "requested, not granted"}</span>
          </li>
        ))}
      </ul>
      <h3>Usage history</h3>
      <ol class="history">
        {detail.history.map((e) => (
          <li key={e.seq} data-kind={e.kind}>
            <span class="when">{relativeTime(e.ts, now)}</span> <strong>{e.kind.replace(/_/g, " ")}</strong>
            {e.actor && <span class="by"> by {e.actor}</span>}
            {e.app_hint && <span class="hint"> ({e.app_hint})</span>}
          </li>
        ))}
      </ol>
    </section>
  );
}
