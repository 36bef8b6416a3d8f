// What the shell loads from the vault: tenants, the connections list (one tenant's or all, the
// newest load wins), provider apps (by tenant, as the list needs them) and the catalog.
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, errorMessage } from "./api";
import type { Preset } from "./bindings/Preset";
import type { ProviderApp } from "./bindings/ProviderApp";
import type { TenantId } from "./bindings/TenantId";
import type { TenantSummary } from "./bindings/TenantSummary";
import type { ConnectionTable } from "./connectionTable";
import { markAfterPaint } from "./perf";

/**
 * The least time between two recounts that time alone asks for: with many grants some count
 * changes every second or two, and each recount reads every grant.
 */
export const RECOUNT_MIN_MS = 30_000;

/** How long until `tenants` should be listed again because a count changes with time; null: never. */
function recountDelay(tenants: TenantSummary[], now: number): number | null {
  const next = Math.min(...tenants.map((t) => t.recount_at ?? Infinity));
  if (!Number.isFinite(next)) return null;
  return Math.min(Math.max(next - now + 250, RECOUNT_MIN_MS), 2 ** 31 - 1);
}

/** The tenants with their counts, listed again when a count changes with time alone. */
export function useTenants(onError: (message: string) => void) {
  const [tenants, setTenants] = useState<TenantSummary[]>([]);
  const loadTenants = useCallback(() => {
    api.listTenants().then(setTenants, (e) => onError(errorMessage(e)));
  }, [onError]);
  // A tenant's attention count changes with time alone (a grant expires): list them again then.
  useEffect(() => {
    const delay = recountDelay(tenants, Date.now());
    if (delay === null) return;
    const timer = setTimeout(loadTenants, delay);
    return () => clearTimeout(timer);
  }, [tenants, loadTenants]);
  return { tenants, loadTenants };
}

type ListOptions = {
  onError: (message: string) => void;
  /** A list arrived and is set (`tenant`: whose list it is, null for all). */
  onLoaded: (list: ConnectionTable, tenant: TenantId | null) => void;
};

/**
 * The connections list of the chosen tenant (null: all tenants). `load(t, mark)` asks for a list;
 * only the newest load's answer is kept. With `mark`, the time from the ask until a list is
 * painted is recorded as the `connections` perf mark (a newer load may be the one that paints).
 */
export function useConnections({ onError, onLoaded }: ListOptions) {
  const [tenant, setTenant] = useState<TenantId | null>(null);
  const [connections, setConnections] = useState<ConnectionTable | null>(null);
  const seq = useRef(0);
  const markFrom = useRef<number | null>(null);
  const tenantRef = useRef(tenant);
  tenantRef.current = tenant;
  const handlers = useRef({ onError, onLoaded });
  handlers.current = { onError, onLoaded };

  const load = useCallback(async (t: TenantId | null, mark: boolean) => {
    const mine = ++seq.current;
    if (mark && markFrom.current === null) markFrom.current = performance.now();
    try {
      const list = await api.listConnections(t);
      if (mine !== seq.current) return;
      setConnections(list);
      if (markFrom.current !== null) {
        markAfterPaint("connections", markFrom.current);
        markFrom.current = null;
      }
      handlers.current.onLoaded(list, t);
    } catch (e) {
      if (mine === seq.current) handlers.current.onError(errorMessage(e));
    }
  }, []);

  /** Shows tenant `t` (null: all): a different one starts from an empty list; `reset` forces that. */
  const select = useCallback(
    (t: TenantId | null, reset = false) => {
      if (t !== tenantRef.current || reset) {
        setTenant(t);
        setConnections(null);
      }
      void load(t, true);
    },
    [load],
  );

  return { tenant, connections, load, select };
}

/**
 * Provider apps by id, loaded per tenant the first time a list refers to an unknown one. The
 * tenants a list needs are loaded together and shown at once: every change of the map makes
 * the list rebuild its 10,000 row models, so one change instead of one per tenant.
 */
export function useProviderApps() {
  const [apps, setApps] = useState<Map<string, ProviderApp>>(() => new Map());
  const appsRef = useRef(apps);
  appsRef.current = apps;
  const loading = useRef(new Set<TenantId>());

  const ensureApps = useCallback((list: ConnectionTable) => {
    const missing = new Set<TenantId>();
    for (let i = 0; i < list.length; i++) {
      const t = list.tenantId(i);
      if (!appsRef.current.has(list.appId(i)) && !loading.current.has(t)) missing.add(t);
    }
    if (missing.size === 0) return;
    for (const t of missing) loading.current.add(t);
    void Promise.allSettled([...missing].map((t) => api.providerApps(t))).then((results) => {
      for (const t of missing) loading.current.delete(t);
      const found = results.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
      if (found.length === 0) return;
      setApps((m) => {
        const next = new Map(m);
        for (const a of found) next.set(a.id, a);
        return next;
      });
    });
  }, []);

  const addApp = useCallback((a: ProviderApp) => setApps((m) => new Map(m).set(a.id, a)), []);

  return { apps, ensureApps, addApp };
}

/** The catalog's presets, loaded once on first need (again after a failure). */
export function useCatalog() {
  const [catalog, setCatalog] = useState<Preset[]>([]);
  const loaded = useRef(false);
  const ensureCatalog = useCallback(() => {
    if (loaded.current) return;
    loaded.current = true;
    api.catalog().then(setCatalog, () => (loaded.current = false));
  }, []);
  const presetNames = useMemo(() => new Map(catalog.map((p) => [p.id, p.name])), [catalog]);
  return { catalog, presetNames, ensureCatalog };
}
