// The connection detail panel: status, expiries, scopes, metadata, decoded claims, actions and
// the usage history with its chart. It never holds a token except a revealed one, for 30 s.
import { Fragment } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, errorMessage, events, isCancelled, isOffline, operationId } from "./api";
import type { ConnectionDetail } from "./bindings/ConnectionDetail";
import type { ConnectionRow } from "./bindings/ConnectionRow";
import type { ConnectStarted } from "./bindings/ConnectStarted";
import type { EventKind } from "./bindings/EventKind";
import type { JwtView } from "./bindings/JwtView";
import type { RevokeOutcome } from "./bindings/RevokeOutcome";
import type { UsageEvent } from "./bindings/UsageEvent";
import { useShell } from "./ctx";
import { DailyChart } from "./DailyChart";
import { Flags } from "./Flags";
import { ProxyPanel } from "./ProxyPanel";
import {
  accountText,
  actorLabel,
  badge,
  claimText,
  eventKindLabel,
  eventKinds,
  eventNote,
  exactTime,
  expirySourceLabel,
  isHttpsUrl,
  relativeTime,
} from "./format";
import { useBusy, useNow } from "./hooks";
import { useBackendEvent } from "./useLive";
import { withHint } from "./online";
import { REVOKE_AT_PROVIDER, revokeNote } from "./revoke";
import { slowTicker } from "./ticker";
import { Alert, BusyButton, ConfirmDialog, LiveCountdown, ProviderMark, RiskBadge, Spinner, StatusBadge } from "./ui";

export type Target = { tenant: string; connection: string };

/** How long a revealed token stays on screen. */
const REVEAL_SECS = 30;
/** Why token actions are off on a revoked grant. */
const REVOKED = "Revoked: its tokens are forgotten here. Re-consent to use it again";

/** After this long without an answer, a refresh shows its progress and can be cancelled. */
export const SLOW_MS = 1000;

/** Actions that may refresh, and so may be cancelled while they wait for the provider. */
type Refreshing = "refresh" | "copy" | "reveal";

/** What a slow operation says while it waits. */
const WAITING: Record<Refreshing, string> = {
  refresh: "Refreshing — the provider has not answered yet.",
  copy: "Getting a fresh access token to copy — the provider has not answered yet.",
  reveal: "Getting a fresh access token to show — the provider has not answered yet.",
};

/** What the window says once the user cancelled. */
function cancelledText(action: Refreshing, label: string): string {
  switch (action) {
    case "refresh":
      return `Refresh cancelled. Nothing was stored: ${label} keeps its current tokens.`;
    case "copy":
      return `Copy cancelled while the token was being refreshed. Nothing was copied and nothing was stored.`;
    case "reveal":
      return `Reveal cancelled while the token was being refreshed. Nothing was shown and nothing was stored.`;
  }
}

type Props = {
  target: Target;
  /** The connection's row in the list, shown while the detail loads. */
  summary: ConnectionRow | null;
  detail: ConnectionDetail | null;
  loadError: string | null;
  onClose: () => void;
  /** Reloads the detail (after an action; vault-changed also does). */
  onReload: () => void;
  /** `outcome`: what the revocation before the delete achieved (null: none was asked). */
  onDeleted: (label: string, outcome: RevokeOutcome | null) => void;
  onReconsent: (started: ConnectStarted, label: string) => void;
  /** The team the connection's tenant is shared with (its refresh token is in the team vault). */
  sharedTeam?: string;
};

type Revealed = { token: string; expires_at: number | null; until: number };

export function Detail({ target, summary, detail, loadError, onClose, onReload, onDeleted, onReconsent, sharedTeam }: Props) {
  const { net, note, tenants } = useShell();
  const [busy, run] = useBusy();
  const [error, setError] = useState<string | null>(null);
  const [revealed, setRevealed] = useState<Revealed | null>(null);
  const [confirm, setConfirm] = useState<"revoke" | "delete" | null>(null);
  const [alsoRevoke, setAlsoRevoke] = useState(true);
  const [outcome, setOutcome] = useState<RevokeOutcome | null>(null);
  const [introspection, setIntrospection] = useState<Record<string, unknown> | null>(null);
  const [slow, setSlow] = useState<{ action: Refreshing; operation: string; cancelling: boolean } | null>(null);
  const [cancelled, setCancelled] = useState<{ text: string; operation: string } | null>(null);
  useNow(slowTicker); // re-render relative times every 30 s
  const now = Date.now();

  // A cancelled refresh the provider answered after all did store something: its "nothing was
  // stored" goes (the shell shows what happened instead).
  useBackendEvent(() => events.onRefreshedLate((e) => setCancelled((c) => (c?.operation === e.operation ? null : c))));

  // A revealed token disappears after 30 s (and with the panel: unmounting drops the state).
  useEffect(() => {
    if (!revealed) return;
    const t = setTimeout(() => setRevealed(null), Math.max(0, revealed.until - Date.now()));
    return () => clearTimeout(t);
  }, [revealed]);

  /** What the header shows: the list's row until the detail arrives. */
  const shown = detail?.connection ?? summary;
  const steps = detail?.status_steps ?? summary?.status_steps ?? null;
  const c = detail?.connection;
  const revoked = shown?.status === "revoked";
  const tenantSlug = detail?.tenant ?? tenants.find((t) => t.tenant.id === target.tenant)?.tenant.slug ?? "";
  const label = `${tenantSlug}/${shown?.name ?? ""}`;

  const fail = (e: unknown) => setError(withHint(errorMessage(e), isOffline(e)));
  const act = async (name: string, f: () => Promise<void>) => {
    setError(null);
    try {
      await run(name, f);
    } catch (e) {
      fail(e);
    }
  };

  /**
   * Runs an action that may wait for a refresh: after SLOW_MS without an answer it shows its
   * progress with Cancel; a cancelled one says so (nothing was stored) instead of failing.
   */
  const cancellable = <T,>(action: Refreshing, call: (operation: string) => Promise<T>, done: (r: T) => void) =>
    act(action, async () => {
      setCancelled(null);
      const operation = operationId();
      const timer = setTimeout(() => setSlow({ action, operation, cancelling: false }), SLOW_MS);
      try {
        done(await call(operation));
      } catch (e) {
        if (!isCancelled(e)) throw e;
        setCancelled({ text: cancelledText(action, label), operation });
      } finally {
        clearTimeout(timer);
        setSlow((s) => (s?.operation === operation ? null : s));
      }
    });
  const cancelSlow = () => {
    if (!slow || slow.cancelling) return;
    setSlow({ ...slow, cancelling: true });
    api.cancelRefresh(slow.operation).catch(fail);
  };

  const refresh = () =>
    cancellable("refresh", (op) => net(api.refreshConnection(target, op)), () => {
      note(`Refreshed ${label}.`);
      onReload();
    });
  const copy = () =>
    cancellable("copy", (op) => net(api.copyAccessToken(target, op), false), (r) =>
      note(`Copied — the clipboard clears in ${r.clear_after_secs} s.`),
    );
  const reveal = () =>
    cancellable("reveal", (op) => net(api.revealAccessToken(target, op), false), (r) =>
      setRevealed({ token: r.token, expires_at: r.expires_at, until: Date.now() + REVEAL_SECS * 1000 }),
    );
  const revoke = () =>
    act("revoke", async () => {
      const r = await net(api.revokeConnection(target));
      setConfirm(null);
      setRevealed(null);
      setOutcome(r);
      const said = revokeNote(label, r);
      note(said.text, said.tone);
      onReload();
    }).finally(() => setConfirm(null));
  const remove = () =>
    act("delete", async () => {
      const outcome = await net(api.deleteConnection(target, alsoRevoke), alsoRevoke);
      setConfirm(null);
      onDeleted(label, outcome);
    }).finally(() => setConfirm(null));
  const reconsent = () =>
    act("reconsent", async () => {
      const started = await net(api.startReconsent(target));
      onReconsent(started, label);
    });
  const introspect = () =>
    act("introspect", async () => {
      setIntrospection(await net(api.introspect(target)));
    });
  const openLink = (url: string) => {
    setError(null);
    api.openProviderLink(target, url).catch(fail);
  };

  return (
    <section class="detail" aria-labelledby="detail-title" data-detail={shown?.name ?? ""}>
      <header class="detail-head">
        <div class="detail-title-wrap">
          <h2 id="detail-title" title={label}>
            <span class="muted">{tenantSlug}/</span>
            {shown?.name ?? "…"}
          </h2>
          {steps && <StatusBadge b={badge({ status_steps: steps }, Date.now())} />}
        </div>
        <button type="button" class="icon-btn x close" data-action="close" aria-label="Close detail (Esc)" title="Close (Esc)" onClick={onClose} />
      </header>

      {loadError && <Alert message={loadError} />}
      {!detail && !loadError && (
        <p class="loading">
          <Spinner /> Loading…
        </p>
      )}

      {detail && c && (
        <div class="detail-body">
          <div class="actions" role="toolbar" aria-label="Actions">
            <BusyButton busy={busy === "refresh"} action="refresh" onClick={refresh} disabled={revoked} title={revoked ? REVOKED : c.has_refresh_token ? "Get a new access token now" : "There is no refresh token: re-consent instead"}>
              Refresh
            </BusyButton>
            <BusyButton busy={busy === "copy"} action="copy" onClick={copy} disabled={revoked} title={revoked ? REVOKED : "Put the access token on the clipboard for 30 s"}>
              Copy token
            </BusyButton>
            <BusyButton busy={busy === "reveal"} action="reveal" onClick={reveal} disabled={revoked} title={revoked ? REVOKED : "Show the access token for 30 s"}>
              Reveal
            </BusyButton>
            <BusyButton busy={busy === "reconsent"} action="reconsent" onClick={reconsent} title="Sign in again to renew the grant">
              Re-consent
            </BusyButton>
            <BusyButton busy={busy === "revoke"} action="revoke" class="danger-outline" onClick={() => setConfirm("revoke")} disabled={revoked} title={revoked ? "Already revoked: its tokens are forgotten here" : "Revoke the grant at the provider"}>
              Revoke
            </BusyButton>
            <BusyButton busy={busy === "delete"} action="delete" class="danger-outline" onClick={() => { setAlsoRevoke(true); setConfirm("delete"); }}>
              Delete
            </BusyButton>
          </div>

          {slow && (
            <div class="progress" aria-live="polite" data-progress={slow.action}>
              <Spinner />
              <span class="progress-text">{slow.cancelling ? "Cancelling…" : WAITING[slow.action]}</span>
              <button type="button" class="btn small" data-action="cancel-refresh" disabled={slow.cancelling} onClick={cancelSlow}>
                Cancel
              </button>
            </div>
          )}

          {cancelled && (
            <div class="notice" aria-live="polite" data-cancelled>
              <p>{cancelled.text}</p>
              <button type="button" class="icon-btn x" data-action="dismiss" aria-label="Dismiss" onClick={() => setCancelled(null)} />
            </div>
          )}

          {error && <Alert message={error} onDismiss={() => setError(null)} />}

          {revealed && <RevealedBox revealed={revealed} onHide={() => setRevealed(null)} />}

          {outcome &&
            (outcome.revoked_at_provider ? (
              <div class="outcome" data-outcome="confirmed">
                <strong>Revoked at the provider.</strong>
                <p>{outcome.detail}</p>
                <p class="muted">{outcome.caveat}</p>
                <button type="button" class="icon-btn x" data-action="dismiss" aria-label="Dismiss" onClick={() => setOutcome(null)} />
              </div>
            ) : (
              <div class="outcome warn" role="alert" data-outcome="unconfirmed">
                <strong>Not revoked at the provider — only forgotten here.</strong>
                <p>{outcome.detail}</p>
                <p>{REVOKE_AT_PROVIDER}</p>
                <p class="muted">{outcome.caveat}</p>
                <button type="button" class="icon-btn x" data-action="dismiss" aria-label="Dismiss" onClick={() => setOutcome(null)} />
              </div>
            ))}

          <Flags anomalies={detail.anomalies} />

          <ProxyPanel target={target} disabled={revoked} />

          <dl class="facts">
            <dt>Provider</dt>
            <dd>
              <ProviderMark name={detail.provider_name ?? detail.provider_app} />
              <span>{detail.provider_name ?? detail.provider_app}</span>
              {detail.provider_name && <span class="muted"> · app {detail.provider_app}</span>}
            </dd>
            <dt>Account</dt>
            <dd>
              {accountText(c)}
              {c.account.org_id && <span class="muted"> · org {c.account.org_id}</span>}
            </dd>
            <dt>Status</dt>
            <dd>
              <StatusBadge b={badge(detail, Date.now())} />
              {c.status_detail && <span class="status-detail"> {c.status_detail}</span>}
            </dd>
            <dt>Access token</dt>
            <dd>
              {c.access_expires_at === null ? (
                "expiry unknown"
              ) : (
                <>
                  <LiveCountdown at={c.access_expires_at} />{" "}
                  <span class="muted">
                    ({exactTime(c.access_expires_at)}
                    {c.access_expiry_source ? `, ${expirySourceLabel[c.access_expiry_source]}` : ""})
                  </span>
                </>
              )}
            </dd>
            {detail?.binding === "dpop" && (
              <>
                <dt>Bound to</dt>
                <dd data-binding="dpop">this device's DPoP key; useless without it</dd>
              </>
            )}
            {detail?.binding === "certificate" && (
              <>
                <dt>Bound to</dt>
                <dd data-binding="certificate">
                  the provider app's client certificate, its key in this device's keychain; useless without it
                </dd>
              </>
            )}
            <dt>Refresh token</dt>
            <dd>
              {!c.has_refresh_token ? (
                "none"
              ) : c.refresh_expires_at === null && c.refresh_hard_expires_at === null ? (
                sharedTeam ? `held in the team vault of ${sharedTeam}; no expiry known` : "held in the keychain; no expiry known"
              ) : (
                <ul class="plain">
                  {c.refresh_expires_at !== null && (
                    <li title={exactTime(c.refresh_expires_at)}>
                      {c.refresh_expires_at > now
                        ? `expires ${relativeTime(c.refresh_expires_at, now)} unless used (a refresh renews it)`
                        : `expired ${relativeTime(c.refresh_expires_at, now)} (unused too long)`}
                    </li>
                  )}
                  {c.refresh_hard_expires_at !== null && (
                    <li title={exactTime(c.refresh_hard_expires_at)}>
                      {c.refresh_hard_expires_at > now
                        ? `hard limit ${relativeTime(c.refresh_hard_expires_at, now)} (then only re-consent helps)`
                        : `reached its hard limit ${relativeTime(c.refresh_hard_expires_at, now)}: re-consent`}
                    </li>
                  )}
                </ul>
              )}
            </dd>
            <dt>Last refresh</dt>
            <dd title={exactTime(c.last_refresh_at)}>{c.last_refresh_at === null ? "never" : relativeTime(c.last_refresh_at, now)}</dd>
            <dt>Last use</dt>
            <dd title={exactTime(c.last_used_at)}>{c.last_used_at === null ? "never" : relativeTime(c.last_used_at, now)}</dd>
            <dt>Consented</dt>
            <dd title={exactTime(c.consented_at)}>
              {relativeTime(c.consented_at, now)}
              {c.consented_by && ` by ${c.consented_by}`}
            </dd>
          </dl>

          <h3>Scopes</h3>
          {!c.scopes_granted_reported && (
            <p class="muted small">The provider did not say which scopes it granted; the requested ones are assumed.</p>
          )}
          <ul class="scopes">
            {detail.scopes.map((s) => (
              <li key={s.scope} data-scope={s.scope} class={s.granted ? "" : "not-granted"}>
                <RiskBadge risk={s.risk} />
                <div class="scope-text">
                  <code>{s.scope}</code>
                  <span class="meaning">{s.meaning ?? "not in the provider's catalog"}</span>
                  {!s.granted && <span class="flag warn">requested, not granted</span>}
                  {s.granted && !s.requested && <span class="flag">granted without asking</span>}
                </div>
              </li>
            ))}
            {detail.scopes.length === 0 && <li class="muted">No scopes.</li>}
          </ul>

          {Object.keys(c.metadata).length > 0 && (
            <>
              <h3>Provider metadata</h3>
              <dl class="facts metadata">
                {Object.entries(c.metadata).map(([k, v]) => (
                  <Fragment key={k}>
                    <dt>{k}</dt>
                    <dd data-meta={k}>
                      {isHttpsUrl(v) ? (
                        <a
                          href={v}
                          class="ext-link"
                          onClick={(e) => {
                            e.preventDefault();
                            openLink(v);
                          }}
                          onAuxClick={(e) => e.preventDefault()}
                        >
                          {v}
                        </a>
                      ) : (
                        <code>{v}</code>
                      )}
                    </dd>
                  </Fragment>
                ))}
              </dl>
            </>
          )}

          <h3>Token claims</h3>
          <div class="claims">
            {detail.inspection.access_token_is_jwt ? (
              detail.inspection.access_token ? (
                <Claims title="Access token" view={detail.inspection.access_token} now={now} kind="access_token" />
              ) : (
                <p class="muted">No access token is cached.</p>
              )
            ) : (
              <p class="muted" data-claims="access_token">
                Access token: opaque token, cannot be decoded offline.
              </p>
            )}
            {detail.inspection.id_token && <Claims title="ID token" view={detail.inspection.id_token} now={now} kind="id_token" />}
            <div class="introspect">
              <BusyButton busy={busy === "introspect"} action="introspect" onClick={introspect} disabled={revoked} title={revoked ? REVOKED : "Ask the provider about the access token (network)"}>
                Introspect
              </BusyButton>
              {introspection && (
                <table class="kv" data-introspection>
                  <caption>Introspection answer</caption>
                  <tbody>
                    {Object.entries(introspection).map(([k, v]) => (
                      <tr key={k}>
                        <th scope="row">{k}</th>
                        <td>{claimText(k, v, now)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </div>
          </div>

          <h3>Usage</h3>
          <DailyChart daily={detail.daily} now={now} />
          <History target={target} history={detail.history} now={now} />
        </div>
      )}

      {confirm === "revoke" && (
        <ConfirmDialog
          title={`Revoke ${label} at the provider?`}
          confirmLabel="Revoke"
          danger
          busy={busy === "revoke"}
          onConfirm={revoke}
          onCancel={() => setConfirm(null)}
        >
          <p>
            The provider is asked to end this grant and Grantkeeper forgets its tokens. Tools using it stop working until
            someone consents again.
          </p>
        </ConfirmDialog>
      )}
      {confirm === "delete" && (
        <ConfirmDialog
          title={`Delete ${label}?`}
          confirmLabel="Delete"
          danger
          busy={busy === "delete"}
          onConfirm={remove}
          onCancel={() => setConfirm(null)}
        >
          <p>The connection and its tokens are removed from this vault. Its usage history stays in the log.</p>
          <label class="check">
            <input type="checkbox" name="also_revoke" checked={alsoRevoke} onChange={(e) => setAlsoRevoke(e.currentTarget.checked)} />
            Also revoke at the provider (needs the network)
          </label>
        </ConfirmDialog>
      )}
    </section>
  );
}

function RevealedBox({ revealed, onHide }: { revealed: Revealed; onHide: () => void }) {
  const now = useNow();
  const left = Math.max(0, Math.ceil((revealed.until - now) / 1000));
  return (
    <div class="revealed">
      <div class="revealed-head">
        <strong>Access token</strong>
        <span class="muted">
          hides in {left} s{revealed.expires_at !== null && ` · expires ${relativeTime(revealed.expires_at, now)}`}
        </span>
        <button type="button" class="btn small" data-action="hide" onClick={onHide}>
          Hide
        </button>
      </div>
      <code class="secret" data-secret="access-token">
        {revealed.token}
      </code>
    </div>
  );
}

function Claims({ title, view, now, kind }: { title: string; view: JwtView; now: number; kind: string }) {
  const entries = Object.entries(view.claims);
  return (
    <table class="kv" data-claims={kind}>
      <caption>
        {title} <span class="muted">({typeof view.header.alg === "string" ? view.header.alg : "JWT"})</span>
      </caption>
      <tbody>
        {entries.map(([k, v]) => (
          <tr key={k}>
            <th scope="row">{k}</th>
            <td>{claimText(k, v, now)}</td>
          </tr>
        ))}
        {entries.length === 0 && (
          <tr>
            <td colSpan={2} class="muted">
              No claims.
            </td>
          </tr>
        )}
      </tbody>
    </table>
  );
}

/**
 * How many events History shows at first and adds per "Show more": a detail opened is a page of
 * the newest events, not all 200 loaded (each shown event is DOM the window keeps until its
 * collector runs).
 */
const HISTORY_STEP = 50;

function History({ target, history, now }: { target: Target; history: UsageEvent[]; now: number }) {
  const { net } = useShell();
  const [kind, setKind] = useState<EventKind | "">("");
  const [filtered, setFiltered] = useState<UsageEvent[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  // How many are shown, for one connection and kind: another starts from the first page again.
  const pageKey = `${target.tenant}/${target.connection}/${kind}`;
  const [more, setMore] = useState({ key: pageKey, shown: HISTORY_STEP });
  const shown = more.key === pageKey ? more.shown : HISTORY_STEP;

  // One kind: ask the log (the detail holds the newest 200 events of every kind). Reloads when
  // the detail does (history is a new array after every vault change).
  useEffect(() => {
    if (kind === "") {
      setFiltered(null);
      return;
    }
    let live = true;
    net(api.connectionHistory(target, kind, null, 200), false).then(
      (events) => live && (setFiltered(events), setError(null)),
      (e) => live && setError(errorMessage(e)),
    );
    return () => {
      live = false;
    };
  }, [kind, history, target.tenant, target.connection]);

  const events = kind === "" ? history : (filtered ?? []);
  return (
    <div class="history-wrap">
      <div class="history-head">
        <h4>History</h4>
        <label>
          <span class="visually-hidden">Show events of kind</span>
          <select data-filter="history-kind" value={kind} onChange={(e) => setKind(e.currentTarget.value as EventKind | "")}>
            <option value="">All events</option>
            {eventKinds.map((k) => (
              <option key={k} value={k}>
                {eventKindLabel[k]}
              </option>
            ))}
          </select>
        </label>
      </div>
      {error && <Alert message={error} onDismiss={() => setError(null)} />}
      {kind !== "" && filtered === null && !error && (
        <p class="loading">
          <Spinner /> Loading…
        </p>
      )}
      <ol class="history">
        {events.slice(0, shown).map((e) => {
          const extra = eventNote(e);
          return (
            <li key={e.seq} data-kind={e.kind}>
              <span class={`ev-dot k-${e.kind}`} aria-hidden="true" />
              <div class="ev">
                <div class="ev-line">
                  <strong class="ev-kind">{eventKindLabel[e.kind] ?? e.kind}</strong>
                  {extra && <span class="ev-note"> — {extra}</span>}
                  {e.redacted && <span class="ev-note"> (erased with its tenant)</span>}
                </div>
                <div class="ev-meta">
                  <time dateTime={new Date(e.ts).toISOString()} title={exactTime(e.ts)}>
                    {relativeTime(e.ts, now)}
                  </time>
                  {e.actor && <span> · by {actorLabel[e.actor] ?? e.actor}</span>}
                  {e.app_hint && <span class="ev-hint"> · {e.app_hint}</span>}
                  {e.caller && <span class="ev-caller"> · {e.caller}</span>}
                </div>
              </div>
            </li>
          );
        })}
      </ol>
      {events.length > shown && (
        <button type="button" class="link more" data-action="more-history" onClick={() => setMore({ key: pageKey, shown: shown + HISTORY_STEP })}>
          Show {Math.min(HISTORY_STEP, events.length - shown)} more of {events.length}
        </button>
      )}
      {events.length === 0 && (kind === "" || filtered !== null) && <p class="muted">No events{kind === "" ? "" : " of this kind"}.</p>}
    </div>
  );
}
