// The shell: sidebar, banners, the current view, the detail panel, dialogs, and everything that
// keeps them live (vault-changed events, online state, perf marks).
import { useCallback, useEffect, useLayoutEffect, useMemo, useReducer, useRef, useState } from "preact/hooks";
import { api, errorMessage, events, isOffline } from "./api";
import type { Connection } from "./bindings/Connection";
import type { ConnectionDetail } from "./bindings/ConnectionDetail";
import type { ConnectFinished } from "./bindings/ConnectFinished";
import type { ConnectStarted } from "./bindings/ConnectStarted";
import type { Preset } from "./bindings/Preset";
import type { ProviderApp } from "./bindings/ProviderApp";
import type { TenantId } from "./bindings/TenantId";
import type { TenantSummary } from "./bindings/TenantSummary";
import type { VaultStatus } from "./bindings/VaultStatus";
import { ConnectionsView } from "./ConnectionsView";
import { type NoteTone, type Shell, ShellContext, providerLabel } from "./ctx";
import { Detail, type Target } from "./Detail";
import { accountText } from "./format";
import { isSearchShortcut } from "./keys";
import { OFFLINE_BANNER, isOfflineState, netReducer } from "./online";
import { afterPaint, markAfterPaint, perfMark } from "./perf";
import { Review } from "./Review";
import { deleteNote } from "./revoke";
import { Search } from "./Search";
import { type SearchItem, makeItem } from "./search";
import { Sidebar, type View } from "./Sidebar";
import { Alert } from "./ui";
import { type FinishFeed, type Reconsent, Wizard } from "./Wizard";
import { WelcomeAndAbout } from "./WelcomeAndAbout";

type Open = { target: Target; summary: Connection | null };
type Note = { id: number; text: string; tone: NoteTone };
type ErrorBanner = { id: number; message: string };

/** How long vault-changed events are gathered before reloading. */
const LIVE_DEBOUNCE_MS = 150;
/** How long a status note stays (a warning stays until dismissed). */
const NOTE_MS = 12_000;

export function App() {
  const [status, setStatus] = useState<VaultStatus | null>(null);
  const [fatal, setFatal] = useState<string | null>(null);
  const [tenants, setTenants] = useState<TenantSummary[]>([]);
  const [view, setView] = useState<View>("connections");
  const [tenant, setTenant] = useState<TenantId | null>(null);
  const [connections, setConnections] = useState<Connection[] | null>(null);
  const [open, setOpen] = useState<Open | null>(null);
  const [detail, setDetail] = useState<ConnectionDetail | null>(null);
  const [detailError, setDetailError] = useState<string | null>(null);
  const [errors, setErrors] = useState<ErrorBanner[]>([]);
  const [note, setNote] = useState<Note | null>(null);
  const [netState, dispatchNet] = useReducer(netReducer, {
    browserOnline: typeof navigator === "undefined" || navigator.onLine !== false,
    failed: false,
  });
  const [searchOpen, setSearchOpen] = useState(false);
  const [searchConns, setSearchConns] = useState<Connection[] | null>(null);
  const [wizard, setWizard] = useState<{ reconsent: Reconsent | null } | null>(null);
  const [catalog, setCatalog] = useState<Preset[]>([]);
  const [apps, setApps] = useState<Map<string, ProviderApp>>(() => new Map());
  const [changeTick, setChangeTick] = useState(0);
  const [reveal, setReveal] = useState<{ id: string; seq: number } | null>(null);

  const ids = useRef({ conn: 0, detail: 0, note: 0, error: 0, reveal: 0 });
  const appsLoading = useRef(new Set<TenantId>());
  const catalogLoaded = useRef(false);

  const addError = useCallback((message: string) => {
    const id = ++ids.current.error;
    setErrors((l) => [...l.filter((e) => e.message !== message), { id, message }].slice(-3));
  }, []);
  const showNote = useCallback((text: string, tone: NoteTone = "info") => setNote({ id: ++ids.current.note, text, tone }), []);
  useEffect(() => {
    if (!note || note.tone === "warn") return;
    const t = setTimeout(() => setNote((n) => (n?.id === note.id ? null : n)), NOTE_MS);
    return () => clearTimeout(t);
  }, [note]);

  const net = useCallback(
    <T,>(p: Promise<T>, network = true): Promise<T> =>
      p.then(
        (v) => {
          if (network) dispatchNet({ type: "success" });
          return v;
        },
        (e) => {
          dispatchNet({ type: "failure", offline: isOffline(e) });
          throw e;
        },
      ),
    [],
  );

  const ensureCatalog = useCallback(() => {
    if (catalogLoaded.current) return;
    catalogLoaded.current = true;
    api.catalog().then(setCatalog, () => (catalogLoaded.current = false));
  }, []);

  /** Loads the provider apps of tenants whose apps the list refers to but are not known yet. */
  const appsRef = useRef(apps);
  appsRef.current = apps;
  const ensureApps = useCallback((list: Connection[]) => {
    const missing = new Set<TenantId>();
    for (const c of list) if (!appsRef.current.has(c.provider_app_id) && !appsLoading.current.has(c.tenant_id)) missing.add(c.tenant_id);
    for (const t of missing) {
      appsLoading.current.add(t);
      api.providerApps(t).then(
        (found) => {
          appsLoading.current.delete(t);
          setApps((m) => {
            const next = new Map(m);
            for (const a of found) next.set(a.id, a);
            return next;
          });
        },
        () => appsLoading.current.delete(t),
      );
    }
  }, []);

  // Everything the async handlers need, current.
  const latest = useRef({ tenant, open, wizard, searchOpen, status });
  latest.current = { tenant, open, wizard, searchOpen, status };

  const closeDetail = useCallback(() => {
    const was = latest.current.open;
    ids.current.detail++;
    setOpen(null);
    setDetail(null);
    setDetailError(null);
    if (was) {
      // Give the focus back to the connection's row.
      requestAnimationFrame(() => {
        const rows = document.querySelectorAll<HTMLElement>("tr[data-id]");
        for (const row of rows) if (row.dataset.id === was.target.connection) row.focus({ preventScroll: true });
      });
    }
  }, []);

  // When the user asked for a list, the time from then until a list is painted: a newer load
  // (a live update arriving meanwhile) may be the one that completes it.
  const markFrom = useRef<number | null>(null);
  const loadConnections = useCallback(
    async (t: TenantId | null, mark: boolean) => {
      const seq = ++ids.current.conn;
      if (mark && markFrom.current === null) markFrom.current = performance.now();
      try {
        const list = await api.listConnections(t);
        if (seq !== ids.current.conn) return;
        setConnections(list);
        if (markFrom.current !== null) {
          markAfterPaint("connections", markFrom.current);
          markFrom.current = null;
        }
        afterPaint(() => {
          ensureApps(list);
          ensureCatalog();
        });
        // The open connection is gone (deleted elsewhere): close its detail.
        const o = latest.current.open;
        if (o && (t === null || t === o.target.tenant) && !list.some((c) => c.id === o.target.connection)) {
          closeDetail();
          showNote("The connection shown was deleted.");
        }
      } catch (e) {
        if (seq === ids.current.conn) addError(errorMessage(e));
      }
    },
    [ensureApps, ensureCatalog, closeDetail, showNote, addError],
  );

  const detailMarkFrom = useRef<number | null>(null);
  const loadDetail = useCallback(async (target: Target, mark: boolean) => {
    const seq = ++ids.current.detail;
    if (mark) detailMarkFrom.current = performance.now();
    try {
      const d = await api.connectionDetail(target);
      if (seq !== ids.current.detail) return;
      setDetail(d);
      setDetailError(null);
      if (detailMarkFrom.current !== null) {
        markAfterPaint("history", detailMarkFrom.current);
        detailMarkFrom.current = null;
      }
    } catch (e) {
      if (seq === ids.current.detail) setDetailError(errorMessage(e));
    }
  }, []);

  const loadTenants = useCallback(() => {
    api.listTenants().then(setTenants, (e) => addError(errorMessage(e)));
  }, [addError]);

  // The shell's first render is in the DOM: mark when it is painted.
  useLayoutEffect(() => afterPaint(() => perfMark("first-paint", performance.now())), []);

  // Start: vault status, then tenants and connections.
  useEffect(() => {
    (async () => {
      let s: VaultStatus;
      try {
        s = await api.vaultStatus();
      } catch (e) {
        setFatal(errorMessage(e));
        return;
      }
      setStatus(s);
      if (s.error !== null) return;
      void loadConnections(null, true);
      loadTenants();
    })();
  }, []);

  // Live: any vault change (this window, the CLI, the agent, background refresh) reloads what is
  // shown, in place.
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let unlisten: (() => void) | null = null;
    let live = true;
    const reload = () => {
      const cur = latest.current;
      if (cur.status === null || cur.status.error !== null) return;
      loadTenants();
      void loadConnections(cur.tenant, false);
      if (cur.open) void loadDetail(cur.open.target, false);
      setSearchConns(null);
      setChangeTick((n) => n + 1);
    };
    events
      .onVaultChanged(() => {
        clearTimeout(timer);
        timer = setTimeout(reload, LIVE_DEBOUNCE_MS);
      })
      .then((u) => (live ? (unlisten = u) : u()))
      .catch(() => {});
    return () => {
      live = false;
      clearTimeout(timer);
      unlisten?.();
    };
  }, []);

  // Sign-ins end with `connect-finished`: listen from the start, hand events to the wizard, and
  // keep the ones it does not (yet) know for a while.
  const finishHandler = useRef<((e: ConnectFinished) => boolean) | null>(null);
  const finishedEarly = useRef(new Map<string, ConnectFinished>());
  const finish: FinishFeed = useMemo(
    () => ({
      attach: (h) => {
        finishHandler.current = h;
        return () => {
          if (finishHandler.current === h) finishHandler.current = null;
        };
      },
      take: (flow) => {
        const e = finishedEarly.current.get(flow);
        finishedEarly.current.delete(flow);
        return e;
      },
    }),
    [],
  );
  useEffect(() => {
    let unlisten: (() => void) | null = null;
    let live = true;
    events
      .onConnectFinished((e) => {
        if (finishHandler.current?.(e)) return;
        finishedEarly.current.set(e.flow, e);
        setTimeout(() => finishedEarly.current.delete(e.flow), 10 * 60_000);
      })
      .then((u) => (live ? (unlisten = u) : u()))
      .catch(() => {});
    return () => {
      live = false;
      unlisten?.();
    };
  }, []);

  // A refresh the user cancelled that the provider answered after all: say so, wherever the
  // user is now (what the window said at the cancel no longer holds).
  useEffect(() => {
    let unlisten: (() => void) | null = null;
    let live = true;
    events
      .onRefreshedLate((e) => showNote(e.message, "warn"))
      .then((u) => (live ? (unlisten = u) : u()))
      .catch(() => {});
    return () => {
      live = false;
      unlisten?.();
    };
  }, [showNote]);

  // Online state from the browser.
  useEffect(() => {
    const on = () => dispatchNet({ type: "browser", online: true });
    const off = () => dispatchNet({ type: "browser", online: false });
    window.addEventListener("online", on);
    window.addEventListener("offline", off);
    return () => {
      window.removeEventListener("online", on);
      window.removeEventListener("offline", off);
    };
  }, []);

  const selectTenant = useCallback(
    (t: TenantId | null) => {
      setView("connections");
      if (t !== latest.current.tenant || latest.current.status === null) {
        setTenant(t);
        setConnections(null);
      }
      void loadConnections(t, true);
    },
    [loadConnections],
  );

  const openConnection = useCallback(
    (c: { tenant_id: TenantId; id: string }, summary: Connection | null) => {
      const target = { tenant: c.tenant_id, connection: c.id };
      const cur = latest.current.open;
      const same = cur?.target.connection === c.id && cur.target.tenant === c.tenant_id;
      setOpen({ target, summary: summary ?? cur?.summary ?? null });
      if (!same) {
        setDetail(null);
        setDetailError(null);
      }
      void loadDetail(target, true);
    },
    [loadDetail],
  );

  const revealRow = (id: string) => setReveal({ id, seq: ++ids.current.reveal });

  const openWizard = useCallback(() => {
    ensureCatalog();
    setSearchOpen(false);
    setWizard({ reconsent: null });
  }, [ensureCatalog]);

  const onConnected = (c: Connection) => {
    setWizard(null);
    const slug = tenants.find((t) => t.tenant.id === c.tenant_id)?.tenant.slug ?? "";
    showNote(`Connected ${slug ? `${slug}/` : ""}${c.name}.`);
    selectTenant(c.tenant_id);
    openConnection(c, c);
    revealRow(c.id);
    loadTenants();
  };

  const onReconsent = (started: ConnectStarted, label: string) => {
    const o = latest.current.open;
    if (!o) return;
    setWizard({ reconsent: { started, target: o.target, label } });
  };

  // Global keys: Ctrl+K opens the search; Esc closes the detail (dialogs handle their own Esc).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const cur = latest.current;
      const ok = cur.status !== null && cur.status.error === null;
      if (isSearchShortcut(e)) {
        e.preventDefault();
        if (ok && !cur.wizard && !document.querySelector('[role="dialog"]')) setSearchOpen(true);
        return;
      }
      if (e.key === "Escape" && !e.defaultPrevented && cur.open && !document.querySelector('[role="dialog"]')) {
        e.preventDefault();
        closeDetail();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [closeDetail]);

  // The search covers every tenant's connections.
  useEffect(() => {
    if (!searchOpen || searchConns) return;
    if (tenant === null && connections) {
      setSearchConns(connections);
      return;
    }
    let live = true;
    api.listConnections(null).then(
      (l) => live && setSearchConns(l),
      (e) => live && addError(errorMessage(e)),
    );
    return () => {
      live = false;
    };
  }, [searchOpen, searchConns, tenant, connections]);

  const presetNames = useMemo(() => new Map(catalog.map((p) => [p.id, p.name])), [catalog]);

  const search = useMemo(() => {
    if (!searchOpen) return { items: [] as SearchItem[], conns: new Map<string, Connection>() };
    const items: SearchItem[] = [
      makeItem("action:review", "action", "Grant review", "Review grants across tenants", ["admin", "audit", "export"]),
      makeItem("action:connect", "action", "Connect account", "Sign in to a provider and store the grant", ["new", "add", "oauth"]),
      makeItem("action:all", "action", "All connections", "Every tenant's connections", ["all tenants", "list"]),
    ];
    const slugs = new Map<string, string>();
    const names = new Map<string, string>();
    for (const t of tenants) {
      slugs.set(t.tenant.id, t.tenant.slug);
      names.set(t.tenant.id, t.tenant.name);
      items.push(makeItem(`tenant:${t.tenant.slug}`, "tenant", t.tenant.name, `${t.tenant.slug} · ${t.connections} connections`, [t.tenant.notes]));
    }
    const conns = new Map<string, Connection>();
    for (const c of searchConns ?? []) {
      const slug = slugs.get(c.tenant_id) ?? "";
      const id = `connection:${slug}/${c.name}`;
      const p = providerLabel(c.provider_app_id, apps, presetNames);
      const account = accountText(c);
      conns.set(id, c);
      items.push(
        makeItem(id, "connection", c.name, [slug, account === "—" ? "" : account, p.app].filter((x) => x !== "").join(" · "), [
          c.provider_app_id,
          names.get(c.tenant_id) ?? null,
          p.provider,
          c.account.subject,
          c.account.username,
          c.account.org_id,
        ]),
      );
    }
    return { items, conns };
  }, [searchOpen, tenants, searchConns, apps, presetNames]);

  const pick = (item: SearchItem) => {
    setSearchOpen(false);
    if (item.id === "action:review") setView("review");
    else if (item.id === "action:connect") openWizard();
    else if (item.id === "action:all") selectTenant(null);
    else if (item.kind === "tenant") {
      const t = tenants.find((x) => `tenant:${x.tenant.slug}` === item.id);
      if (t) selectTenant(t.tenant.id);
    } else {
      const c = search.conns.get(item.id);
      if (!c) return;
      if (view !== "connections" || (tenant !== null && tenant !== c.tenant_id)) selectTenant(tenant === null ? null : c.tenant_id);
      openConnection(c, c);
      revealRow(c.id);
    }
  };

  const offline = isOfflineState(netState);
  const shell: Shell = useMemo(
    () => ({ net, offline, note: showNote, tenants, catalog, presetNames, apps, changeTick }),
    [net, offline, showNote, tenants, catalog, presetNames, apps, changeTick],
  );

  const ok = status !== null && status.error === null;
  const vaultError = fatal ?? status?.error ?? null;
  const title = tenant === null ? "All connections" : (tenants.find((t) => t.tenant.id === tenant)?.tenant.name ?? "");

  return (
    <ShellContext.Provider value={shell}>
      <div class="shell">
        <Sidebar
          status={status}
          view={view}
          tenant={tenant}
          onTenant={selectTenant}
          onView={(v) => {
            setView(v);
            if (v === "connections" && connections === null) void loadConnections(tenant, true);
          }}
          onConnect={openWizard}
          onSearch={() => setSearchOpen(true)}
        />
        <main>
          {!ok && (
            <header class="view-head">
              <h1>{vaultError === null ? "All connections" : "Vault unavailable"}</h1>
            </header>
          )}
          <div class="banners">
            {vaultError !== null && (
              <div class="alert vault-error" role="alert">
                <div class="alert-body">
                  <strong>Grantkeeper cannot open the vault.</strong>
                  <p>{vaultError}</p>
                  {status && <p class="muted small">Vault folder: {status.home}</p>}
                </div>
              </div>
            )}
            {ok && offline && (
              <div class="offline-banner" data-offline>
                <span class="dot" aria-hidden="true" />
                {OFFLINE_BANNER}
              </div>
            )}
            {errors.map((e) => (
              <Alert key={e.id} message={e.message} onDismiss={() => setErrors((l) => l.filter((x) => x.id !== e.id))} />
            ))}
          </div>

          {ok && view === "connections" && (
            <div class={open ? "workspace has-detail" : "workspace"}>
              <div class="list-pane">
                <header class="view-head">
                  <h1>{title}</h1>
                </header>
                <ConnectionsView
                  connections={connections}
                  tenant={tenant}
                  openId={open?.target.connection ?? null}
                  onOpen={(c) => openConnection(c, c)}
                  reveal={reveal}
                  onConnect={openWizard}
                />
              </div>
              {open && (
                <Detail
                  key={open.target.connection}
                  target={open.target}
                  summary={open.summary}
                  detail={detail?.connection.id === open.target.connection ? detail : null}
                  loadError={detailError}
                  onClose={closeDetail}
                  onReload={() => void loadDetail(open.target, false)}
                  onDeleted={(label, outcome) => {
                    closeDetail();
                    const n = deleteNote(label, outcome);
                    showNote(n.text, n.tone);
                    void loadConnections(latest.current.tenant, false);
                    loadTenants();
                  }}
                  onReconsent={onReconsent}
                />
              )}
            </div>
          )}

          {ok && view === "review" && (
            <Review
              onOpen={(t, id) => {
                selectTenant(t);
                openConnection({ tenant_id: t, id }, null);
                revealRow(id);
              }}
            />
          )}

          <div
            class={note ? `status-note visible ${note.tone}` : "status-note"}
            role="status"
            aria-live="polite"
            data-tone={note?.tone}
          >
            {note && (
              <>
                <span>{note.text}</span>
                <button type="button" class="icon-btn x" data-action="dismiss" aria-label="Dismiss" onClick={() => setNote(null)} />
              </>
            )}
          </div>
        </main>
      </div>

      <WelcomeAndAbout status={status} onChanged={loadTenants} />
      {searchOpen && <Search items={search.items} loading={searchConns === null} onPick={pick} onClose={() => setSearchOpen(false)} />}
      {wizard && (
        <Wizard
          initialTenant={wizard.reconsent?.target.tenant ?? tenant}
          reconsent={wizard.reconsent}
          demo={status?.demo ?? false}
          onClose={() => setWizard(null)}
          onConnected={onConnected}
          onAppAdded={(a) => setApps((m) => new Map(m).set(a.id, a))}
          finish={finish}
        />
      )}
    </ShellContext.Provider>
  );
}
