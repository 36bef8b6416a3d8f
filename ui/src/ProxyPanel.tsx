// A connection's authenticating proxy, run by the app: start and stop it, where it listens, its
// bearer on request (recorded, hidden again after 30 s), and a live list of its calls from the
// `proxied` events of the usage history.
import { useEffect, useState } from "preact/hooks";
import { api, errorMessage } from "./api";
import type { ProxyView } from "./bindings/ProxyView";
import type { UsageEvent } from "./bindings/UsageEvent";
import { useShell } from "./ctx";
import { exactTime } from "./format";
import { useBusy } from "./hooks";
import { Alert, BusyButton } from "./ui";

type Target = { tenant: string; connection: string };

/** Calls listed at most (newest first). */
const CALLS = 50;
const BEARER_SECS = 30;

/** One call, as the `proxied` event's detail holds it. */
export type ProxiedCall = {
  seq: number;
  at: number;
  method: string;
  host: string;
  path: string;
  status: number;
  bytes: number;
  duration_ms: number;
};

/** The calls of `proxied` events, newest first (events without a call detail are skipped). */
export function proxiedCalls(events: UsageEvent[]): ProxiedCall[] {
  return events
    .filter((e) => e.kind === "proxied" && typeof e.detail === "object" && e.detail !== null)
    .map((e) => {
      const d = e.detail as Record<string, unknown>;
      const num = (v: unknown) => (typeof v === "number" ? v : 0);
      return {
        seq: e.seq,
        at: e.ts,
        method: String(d.method ?? ""),
        host: String(d.host ?? ""),
        path: String(d.path ?? ""),
        status: num(d.status),
        bytes: num(d.bytes_in) + num(d.bytes_out),
        duration_ms: num(d.duration_ms),
      };
    })
    .sort((a, b) => b.seq - a.seq);
}

/** A byte count in B, kB or MB. */
export function bytesText(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1_000_000) return `${(n / 1000).toFixed(1)} kB`;
  return `${(n / 1_000_000).toFixed(1)} MB`;
}

export function ProxyPanel({ target, disabled }: { target: Target; disabled: boolean }) {
  const { changeTick } = useShell();
  const [view, setView] = useState<ProxyView | null>(null);
  const [calls, setCalls] = useState<ProxiedCall[]>([]);
  const [bearer, setBearer] = useState<string | null>(null);
  const [requireBearer, setRequireBearer] = useState(true);
  const [apiBase, setApiBase] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, run] = useBusy();

  useEffect(() => {
    setView(null);
    setBearer(null);
    api.proxyStatus(target.connection).then(setView, (e) => setError(errorMessage(e)));
  }, [target.tenant, target.connection]);

  // The calls since this proxy started, again whenever the vault changes (each batch of calls
  // written is a change).
  useEffect(() => {
    if (!view) return setCalls([]);
    let live = true;
    api.connectionHistory(target, "proxied", view.started_at, CALLS).then(
      (events) => live && setCalls(proxiedCalls(events)),
      (e) => live && setError(errorMessage(e)),
    );
    return () => {
      live = false;
    };
  }, [view, changeTick, target.tenant, target.connection]);

  useEffect(() => {
    if (bearer === null) return;
    const t = setTimeout(() => setBearer(null), BEARER_SECS * 1000);
    return () => clearTimeout(t);
  }, [bearer]);

  const act = (name: string, f: () => Promise<void>) =>
    run(name, async () => {
      setError(null);
      try {
        await f();
      } catch (e) {
        setError(errorMessage(e));
      }
    });

  const start = () =>
    act("proxy-start", async () => setView(await api.startProxy(target, requireBearer, apiBase.trim() === "" ? null : apiBase.trim())));
  const stop = () =>
    act("proxy-stop", async () => {
      await api.stopProxy(target.connection);
      setView(null);
      setBearer(null);
    });
  const reveal = () => act("proxy-bearer", async () => setBearer(await api.revealProxyBearer(target.connection)));

  return (
    <section class="proxy" data-proxy={view ? "running" : "stopped"} aria-label="Authenticating proxy">
      <h2>Proxy</h2>
      {error && <Alert message={error} onDismiss={() => setError(null)} />}
      {view === null ? (
        <div class="proxy-start">
          <p class="muted">Local programs send plain HTTP to a loopback port; the proxy adds the token. They never hold it.</p>
          <label class="check">
            <input type="checkbox" data-proxy-option="require_bearer" checked={requireBearer} onChange={(e) => setRequireBearer(e.currentTarget.checked)} />
            Require the proxy's own bearer
          </label>
          <label class="field inline">
            <span>API base</span>
            <input
              type="url"
              data-proxy-option="api_base"
              placeholder="from the catalog"
              value={apiBase}
              onInput={(e) => setApiBase(e.currentTarget.value)}
            />
          </label>
          <BusyButton busy={busy === "proxy-start"} action="proxy-start" onClick={() => void start()} disabled={disabled || busy !== null}>
            Start proxy
          </BusyButton>
        </div>
      ) : (
        <div class="proxy-running">
          <dl class="facts">
            <dt>Listening on</dt>
            <dd>
              <code data-proxy-listen>{view.listen}</code>
            </dd>
            <dt>Forwards to</dt>
            <dd>
              <code>{view.api_base}</code>
            </dd>
            <dt>Bearer</dt>
            <dd>
              {!view.bearer_required ? (
                "none required"
              ) : bearer === null ? (
                <BusyButton busy={busy === "proxy-bearer"} action="proxy-bearer" onClick={() => void reveal()} title="Show the proxy's bearer for 30 s (recorded)">
                  Reveal
                </BusyButton>
              ) : (
                <code class="secret" data-secret="proxy-bearer">
                  {bearer}
                </code>
              )}
            </dd>
          </dl>
          <BusyButton busy={busy === "proxy-stop"} action="proxy-stop" class="danger-outline" onClick={() => void stop()} disabled={busy !== null}>
            Stop proxy
          </BusyButton>
          <table class="proxy-calls" data-proxy-calls>
            <caption>{calls.length === 0 ? "No calls yet" : `Last ${calls.length} call${calls.length === 1 ? "" : "s"}`}</caption>
            <thead>
              <tr>
                <th scope="col">Method</th>
                <th scope="col">Host</th>
                <th scope="col">Path</th>
                <th scope="col">Status</th>
                <th scope="col">Bytes</th>
                <th scope="col">Time</th>
              </tr>
            </thead>
            <tbody>
              {calls.map((c) => (
                <tr key={c.seq} data-call={c.seq} title={exactTime(c.at)}>
                  <td>{c.method}</td>
                  <td>{c.host}</td>
                  <td class="path">{c.path}</td>
                  <td data-status={c.status}>{c.status}</td>
                  <td>{bytesText(c.bytes)}</td>
                  <td>{c.duration_ms.toFixed(1)} ms</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
