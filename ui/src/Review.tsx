// Grant review across tenants: the backend filters (high risk, needs re-consent, unused, refresh
// expiring, anomaly flag); the window selects, bulk-revokes and exports.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, errorMessage, isOffline } from "./api";
import type { BulkRevokeResult } from "./bindings/BulkRevokeResult";
import type { GrantRef } from "./bindings/GrantRef";
import type { GrantReportRow } from "./bindings/GrantReportRow";
import type { ReportFormat } from "./bindings/ReportFormat";
import type { ReviewFilter } from "./bindings/ReviewFilter";
import type { TenantId } from "./bindings/TenantId";
import { useShell } from "./ctx";
import { flagChoices, flagFilterOf, flagLabel } from "./Flags";
import { badge, exactTime, plural, refreshExpiryText, relativeTime } from "./format";
import { useBusy, useDebounced, useNow } from "./hooks";
import { withHint } from "./online";
import { bulkLine, bulkState, bulkSummary } from "./revoke";
import { type ReviewKey, type ReviewSort, nextReviewSort, searchReview, sortReview } from "./reviewSort";
import { slowTicker } from "./ticker";
import { Alert, BusyButton, ConfirmDialog, RiskBadge, Spinner, StatusBadge, onText } from "./ui";

/** Rows rendered at first (more on request). */
const PAGE = 300;

function grantKey(r: Pick<GrantReportRow, "tenant" | "connection">): string {
  return `${r.tenant}/${r.connection}`;
}

/** A number-of-days input: empty = off. */
function days(text: string): number | null {
  if (text.trim() === "") return null;
  const n = Math.floor(Number(text));
  return Number.isFinite(n) && n >= 0 ? n : null;
}

type Props = {
  onOpen: (tenant: TenantId, connection: string) => void;
};

type BulkResult = { key: string; result: BulkRevokeResult };

export function Review({ onOpen }: Props) {
  const { net, note, tenants, changeTick } = useShell();
  const [tenant, setTenant] = useState<TenantId | "">("");
  const [highRisk, setHighRisk] = useState(false);
  const [reconsent, setReconsent] = useState(false);
  const [flag, setFlag] = useState("");
  const [unused, setUnused] = useState("");
  const [expiring, setExpiring] = useState("");
  const [rows, setRows] = useState<GrantReportRow[] | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<Set<string>>(() => new Set());
  const [limit, setLimit] = useState(PAGE);
  const [confirm, setConfirm] = useState(false);
  const [results, setResults] = useState<BulkResult[] | null>(null);
  const [busy, run] = useBusy();
  const [query, setQuery] = useState("");
  const [sort, setSort] = useState<ReviewSort>(null);
  useNow(slowTicker);
  const now = Date.now();

  const unusedDays = useDebounced(days(unused), 300);
  const expiringDays = useDebounced(days(expiring), 300);
  const filter: ReviewFilter = useMemo(
    () => ({
      tenant: tenant === "" ? null : tenant,
      high_risk: highRisk,
      needs_reconsent: reconsent,
      unused_days: unusedDays,
      refresh_expiring_days: expiringDays,
      flag: flagFilterOf(flag),
    }),
    [tenant, highRisk, reconsent, unusedDays, expiringDays, flag],
  );

  const seq = useRef(0);
  useEffect(() => {
    const mine = ++seq.current;
    setLoading(true);
    api.grantReview(filter).then(
      (list) => {
        if (mine !== seq.current) return;
        setRows(list);
        setError(null);
        setLoading(false);
        // Keep only selections still listed.
        setSelected((s) => {
          if (s.size === 0) return s;
          const keys = new Set(list.map(grantKey));
          const next = new Set([...s].filter((k) => keys.has(k)));
          return next.size === s.size ? s : next;
        });
      },
      (e) => {
        if (mine !== seq.current) return;
        setError(errorMessage(e));
        setLoading(false);
      },
    );
  }, [filter, changeTick]);

  useEffect(() => setLimit(PAGE), [filter]);

  const list = useMemo(() => sortReview(searchReview(rows ?? [], query), sort, Date.now()), [rows, query, sort]);
  const allSelected = list.length > 0 && list.every((r) => selected.has(grantKey(r)));
  const someSelected = selected.size > 0 && !allSelected;
  const selectAll = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (selectAll.current) selectAll.current.indeterminate = someSelected;
  }, [someSelected]);

  const toggle = (key: string, on: boolean) =>
    setSelected((s) => {
      const next = new Set(s);
      if (on) next.add(key);
      else next.delete(key);
      return next;
    });

  const chosen = list.filter((r) => selected.has(grantKey(r)));
  // Grants of the last bulk revoke that the provider did not confirm: their rows say so.
  const unconfirmed = useMemo(
    () => new Set((results ?? []).filter((m) => bulkState(m.result) === "unconfirmed").map((m) => m.key)),
    [results],
  );
  const tenantId = (slug: string) => tenants.find((t) => t.tenant.slug === slug)?.tenant.id ?? slug;

  const bulkRevoke = async () => {
    setError(null);
    try {
      await run("bulk-revoke", async () => {
        const refs: GrantRef[] = chosen.map((r) => ({ tenant: tenantId(r.tenant), connection: r.connection_id }));
        const keyById = new Map(chosen.map((r) => [r.connection_id, grantKey(r)]));
        const out = await net(api.revokeMany(refs));
        const mapped = out.map((result) => ({ key: keyById.get(result.connection) ?? result.connection, result }));
        setResults(mapped);
        const said = bulkSummary(mapped);
        note(said.text, said.tone);
        setSelected((s) => {
          const next = new Set(s);
          for (const m of mapped) if (m.result.error === null) next.delete(m.key);
          return next;
        });
      });
    } catch (e) {
      setError(withHint(errorMessage(e), isOffline(e)));
    } finally {
      setConfirm(false);
    }
  };

  const exportAs = async (format: ReportFormat) => {
    setError(null);
    try {
      await run(`export-${format}`, async () => {
        // The native save dialog asks where; null: the user cancelled it.
        const r = await api.exportReview(filter, format);
        if (r !== null) note(`Saved ${plural(r.rows, "grant")} to ${r.path}`);
      });
    } catch (e) {
      setError(errorMessage(e));
    }
  };

  const header = (key: ReviewKey, label: string, cls: string) => {
    const s = sort?.key !== key ? "none" : sort.dir === "asc" ? "ascending" : "descending";
    return (
      <th scope="col" class={cls} data-sort={key} aria-sort={s}>
        <button type="button" class="sort" onClick={() => setSort(nextReviewSort(sort, key))}>
          <span>{label}</span>
          <span class={`sort-ind ${s}`} aria-hidden="true">
            {s === "ascending" ? "▲" : s === "descending" ? "▼" : "↕"}
          </span>
        </button>
      </th>
    );
  };

  return (
    <section class="review" data-view="review" aria-labelledby="review-title">
      <header class="view-head">
        <h1 id="review-title">Grant review</h1>
        <div class="head-actions">
          <BusyButton busy={busy === "export-csv"} action="export-csv" onClick={() => void exportAs("csv")} disabled={busy !== null}>
            Export CSV
          </BusyButton>
          <BusyButton busy={busy === "export-json"} action="export-json" onClick={() => void exportAs("json")} disabled={busy !== null}>
            Export JSON
          </BusyButton>
        </div>
      </header>
      <div class="toolbar review-filters" role="group" aria-label="Filters">
        <label class="field inline">
          <span>Tenant</span>
          <select data-review-filter="tenant" value={tenant} onChange={(e) => setTenant(e.currentTarget.value)}>
            <option value="">All tenants</option>
            {tenants.map((t) => (
              <option key={t.tenant.id} value={t.tenant.id}>
                {t.tenant.name}
              </option>
            ))}
          </select>
        </label>
        <label class="check">
          <input type="checkbox" data-review-filter="high_risk" checked={highRisk} onChange={(e) => setHighRisk(e.currentTarget.checked)} />
          High-risk scopes
        </label>
        <label class="check">
          <input type="checkbox" data-review-filter="needs_reconsent" checked={reconsent} onChange={(e) => setReconsent(e.currentTarget.checked)} />
          Needs re-consent
        </label>
        <label class="field inline">
          <span>Flag</span>
          <select data-review-filter="flag" value={flag} onChange={(e) => setFlag(e.currentTarget.value)}>
            {flagChoices.map((c) => (
              <option key={c} value={c}>
                {c === "" ? "Any or none" : c === "any" ? "Any flag" : flagLabel[c]}
              </option>
            ))}
          </select>
        </label>
        <label class="field inline days">
          <span>Unused for</span>
          <input type="number" min={0} data-review-filter="unused_days" placeholder="—" value={unused} {...onText(setUnused)} />
          <span>days</span>
        </label>
        <label class="field inline days">
          <span>Refresh expires within</span>
          <input type="number" min={0} data-review-filter="refresh_expiring_days" placeholder="—" value={expiring} {...onText(setExpiring)} />
          <span>days</span>
        </label>
        {loading && <Spinner label="Loading" />}
      </div>

      <div class="toolbar bulk-bar">
        <input
          type="search"
          class="review-search"
          data-review-search
          placeholder="Search grants, accounts, scopes"
          aria-label="Search the grants"
          value={query}
          {...onText(setQuery)}
        />
        <span class="muted" aria-live="polite">
          {rows === null ? "Loading grants…" : `${plural(list.length, "grant")}${selected.size > 0 ? ` · ${selected.size} selected` : ""}`}
        </span>
        <BusyButton
          busy={busy === "bulk-revoke"}
          action="bulk-revoke"
          class="danger-outline"
          disabled={chosen.length === 0}
          onClick={() => setConfirm(true)}
        >
          Revoke selected{chosen.length > 0 ? ` (${chosen.length})` : ""}
        </BusyButton>
      </div>

      {error && <Alert message={error} onDismiss={() => setError(null)} />}

      {results && <BulkResults results={results} onDismiss={() => setResults(null)} />}

      <div class="table-wrap">
        <table class="review-table">
          <thead>
            <tr>
              <th class="sel" scope="col">
                <input
                  ref={selectAll}
                  type="checkbox"
                  data-select-all
                  aria-label={`Select all ${list.length} grants`}
                  checked={allSelected}
                  disabled={list.length === 0}
                  onChange={(e) => setSelected(e.currentTarget.checked ? new Set(list.map(grantKey)) : new Set())}
                />
              </th>
              {header("grant", "Grant", "col-grant")}
              {header("account", "Account", "col-account")}
              {header("status", "Status", "col-status")}
              {header("risk", "Risk", "col-risk")}
              <th scope="col" class="col-scopes">
                Scopes
              </th>
              {header("consented", "Consented", "col-consented")}
              {header("last_used", "Last used", "col-last")}
              {header("refresh", "Refresh", "col-refresh")}
            </tr>
          </thead>
          <tbody>
            {list.slice(0, limit).map((r) => {
              const key = grantKey(r);
              const granted = r.scopes.filter((s) => s.granted);
              return (
                <tr key={key} data-grant={key} class={selected.has(key) ? "selected" : ""}>
                  <td class="sel">
                    <input type="checkbox" data-select aria-label={`Select ${key}`} checked={selected.has(key)} onChange={(e) => toggle(key, e.currentTarget.checked)} />
                  </td>
                  <td class="col-grant">
                    <button type="button" class="link" title="Open the connection" onClick={() => onOpen(tenantId(r.tenant), r.connection_id)}>
                      {r.connection}
                    </button>
                    <span class="sub">
                      {r.tenant_name} · {r.provider_app}
                    </span>
                  </td>
                  <td class="col-account">
                    {r.account ?? "—"}
                    {r.account_org && <span class="sub">org {r.account_org}</span>}
                  </td>
                  <td class="col-status" title={r.status_detail ?? undefined}>
                    <StatusBadge b={badge(r, now)} />
                    {unconfirmed.has(key) && (
                      <span class="flag warn row-note" data-unconfirmed>
                        provider did not confirm
                      </span>
                    )}
                  </td>
                  <td class="col-risk">
                    <RiskBadge risk={r.highest_risk} />
                  </td>
                  <td class="scope-cell col-scopes">
                    {granted.map((s) => (
                      <span key={s.scope} class={`chip ${s.risk ?? "unknown"}`} title={`${s.meaning ?? "not in the catalog"} (risk: ${s.risk ?? "unknown"})`}>
                        {s.scope}
                        <span class="chip-risk"> {s.risk ?? "?"}</span>
                      </span>
                    ))}
                    {!r.scopes_granted_reported && <span class="sub">assumed as requested</span>}
                  </td>
                  <td class="col-consented" title={exactTime(r.consented_at)}>
                    {relativeTime(r.consented_at, now)}
                    {r.consented_by && <span class="sub">by {r.consented_by}</span>}
                  </td>
                  <td class="col-last" title={exactTime(r.last_used_at)}>{r.last_used_at === null ? "never" : relativeTime(r.last_used_at, now)}</td>
                  <td class="col-refresh">{refreshExpiryText(r, now)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
        {rows !== null && list.length === 0 && <p class="empty">No grant matches these filters.</p>}
        {list.length > limit && (
          <button type="button" class="btn more" onClick={() => setLimit((l) => l + PAGE)}>
            Show {Math.min(PAGE, list.length - limit)} more of {list.length - limit}
          </button>
        )}
      </div>

      {confirm && (
        <ConfirmDialog
          title={`Revoke ${plural(chosen.length, "grant")} at the provider?`}
          confirmLabel={`Revoke ${plural(chosen.length, "grant")}`}
          danger
          busy={busy === "bulk-revoke"}
          onConfirm={() => void bulkRevoke()}
          onCancel={() => setConfirm(false)}
          attrs={{ "data-bulk-confirm": "" }}
        >
          <p>Each provider is asked to end the grant and Grantkeeper forgets its tokens. Tools using them stop working.</p>
          <ul class="confirm-list">
            {chosen.slice(0, 12).map((r) => (
              <li key={grantKey(r)}>
                <code>{grantKey(r)}</code> <span class="muted">{r.account ?? ""}</span>
              </li>
            ))}
            {chosen.length > 12 && <li class="muted">and {chosen.length - 12} more</li>}
          </ul>
        </ConfirmDialog>
      )}
    </section>
  );
}

/** What a bulk revoke did, grant by grant: confirmed by the provider, only forgotten here, or failed. */
function BulkResults({ results, onDismiss }: { results: BulkResult[]; onDismiss: () => void }) {
  const summary = bulkSummary(results);
  return (
    <section class={`bulk-results ${summary.tone}`} data-bulk-results data-tone={summary.tone} aria-label="Bulk revoke results">
      <header>
        <strong>Bulk revoke</strong>
        <button type="button" class="icon-btn x" data-action="dismiss" aria-label="Dismiss" onClick={onDismiss} />
      </header>
      <p class="bulk-summary">{summary.text}</p>
      <ul>
        {results.map(({ key, result }) => {
          const state = bulkState(result);
          return (
            <li key={key} data-result={key} data-state={state} class={state}>
              <strong>{key}</strong>
              {state === "unconfirmed" && <span class="flag warn">not confirmed</span>}
              {state === "failed" && <span class="flag bad">failed</span>}: {bulkLine(result)}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
