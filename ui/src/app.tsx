// The shell: sidebar, banners, the current view, the detail panel, dialogs. Its state lives in
// hooks: what is loaded from the vault (useVaultData), the open detail (useDetail), the search
// (useSearch), live reload (useLive), notes and banners (useNotes), online state (useNet).
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { HandOutQuestions } from "./HandOutQuestion";
import { api, errorMessage, events } from "./api";
import type { Connection } from "./bindings/Connection";
import type { ConnectStarted } from "./bindings/ConnectStarted";
import type { ConnectionTable } from "./connectionTable";
import type { TenantId } from "./bindings/TenantId";
import type { VaultStatus } from "./bindings/VaultStatus";
import { ConnectionsView } from "./ConnectionsView";
import { type Shell, ShellContext } from "./ctx";
import { Detail } from "./Detail";
import { isSearchShortcut } from "./keys";
import { OFFLINE_BANNER } from "./online";
import { afterPaint, perfMark } from "./perf";
import { Review } from "./Review";
import { deleteNote } from "./revoke";
import { Search } from "./Search";
import type { SearchItem } from "./search";
import { Sidebar, type View } from "./Sidebar";
import { NewTenantDialog, TenantSettings } from "./TenantSettings";
import { Splitter } from "./Splitter";
import { Alert } from "./ui";
import { type Reconsent, useFinishFeed } from "./useConnectFlow";
import { useDetail } from "./useDetail";
import { useBackendEvent, useLiveReload } from "./useLive";
import { useNet } from "./useNet";
import { useNotes } from "./useNotes";
import { useSearch } from "./useSearch";
import { VaultScreen } from "./VaultScreen";
import { useSharing } from "./Sharing";
import { useCatalog, useConnections, useProviderApps, useTenants } from "./useVaultData";
import { WelcomeAndAbout } from "./WelcomeAndAbout";
import { Wizard } from "./Wizard";

export function App() {
  const [status, setStatus] = useState<VaultStatus | null>(null);
  const [fatal, setFatal] = useState<string | null>(null);
  const [view, setView] = useState<View>("connections");
  const [wizard, setWizard] = useState<{ reconsent: Reconsent | null } | null>(null);
  const [changeTick, setChangeTick] = useState(0);
  const [tenantDialog, setTenantDialog] = useState<"settings" | "new" | null>(null);
  const [reveal, setReveal] = useState<{ id: string; seq: number } | null>(null);
  const revealSeq = useRef(0);

  const { errors, addError, dismissError, note, showNote, dismissNote } = useNotes();
  const { net, offline } = useNet();
  const { tenants, loadTenants } = useTenants(addError);
  const sharing = useSharing(tenants);
  const { catalog, presetNames, ensureCatalog } = useCatalog();
  const { apps, ensureApps, addApp } = useProviderApps();
  const { open, detail, detailError, loadDetail, openConnection, closeDetail, current: currentOpen } = useDetail();
  const finish = useFinishFeed();

  const onLoaded = useCallback(
    (list: ConnectionTable, t: TenantId | null) => {
      afterPaint(() => {
        ensureApps(list);
        ensureCatalog();
      });
      // The open connection is gone (deleted elsewhere): close its detail.
      const o = currentOpen();
      if (o && (t === null || t === o.target.tenant) && list.indexOf(o.target.connection) < 0) {
        closeDetail();
        showNote("The connection shown was deleted.");
      }
    },
    [ensureApps, ensureCatalog, currentOpen, closeDetail, showNote],
  );
  const { tenant, connections, load: loadConnections, select } = useConnections({ onError: addError, onLoaded });
  const search = useSearch({ tenant, connections, tenants, apps, presetNames, onError: addError });
  // The shell's closures test this, not the list: a closure kept from an older render would keep
  // that render's list alive (see ConnectionsView's hooks).
  const listMissing = connections === null;

  // Everything the async handlers need, current.
  const latest = useRef({ tenant, wizard, status });
  latest.current = { tenant, wizard, status };

  // The shell's first render is in the DOM: mark when it is painted.
  useLayoutEffect(() => afterPaint(() => perfMark("first-paint", performance.now())), []);

  // Start (and Try again): vault status, then tenants and connections.
  const [checking, setChecking] = useState(true);
  const checkVault = useCallback(async () => {
    setChecking(true);
    setFatal(null);
    let s: VaultStatus;
    try {
      s = await api.vaultStatus();
    } catch (e) {
      setFatal(errorMessage(e));
      setChecking(false);
      return;
    }
    setStatus(s);
    setChecking(false);
    if (s.error !== null) return;
    void loadConnections(latest.current.tenant, true);
    loadTenants();
  }, [loadConnections, loadTenants]);
  useEffect(() => void checkVault(), []);
  // Locked ("Lock now"): the vault screen says so; its button unlocks, then opens the vault.
  useBackendEvent(() => events.onVaultLocked(() => void checkVault()), [checkVault]);
  const retryVault = useCallback(async () => {
    if (latest.current.status?.problem?.cause === "locked") {
      try {
        await api.unlockVault();
      } catch (e) {
        addError(errorMessage(e));
      }
    }
    await checkVault();
  }, [checkVault, addError]);

  // Live: any vault change reloads what is shown, in place.
  useLiveReload(() => {
    const cur = latest.current;
    if (cur.status === null || cur.status.error !== null) return;
    loadTenants();
    void loadConnections(cur.tenant, false);
    const o = currentOpen();
    if (o) void loadDetail(o.target, false);
    search.invalidate();
    setChangeTick((n) => n + 1);
  });

  // A refresh the user cancelled that the provider answered after all: say so, wherever the
  // user is now (what the window said at the cancel no longer holds).
  useBackendEvent(() => events.onRefreshedLate((e) => showNote(e.message, "warn")), [showNote]);

  // Started again: this window was brought to the front; say so, and say when the second start
  // asked for the other mode (one window per session: quit this one first).
  useBackendEvent(
    () =>
      events.onSecondInstance((e) => {
        const demo = latest.current.status?.demo ?? false;
        if (e.demo === demo) showNote("Grantkeeper is already open: this is its window.");
        else showNote(`Grantkeeper is already open${demo ? " in demo mode" : " with your vault"}: quit it first to open ${e.demo ? "the demo" : "your vault"}.`, "warn");
      }),
    [showNote],
  );

  const selectTenant = useCallback(
    (t: TenantId | null) => {
      setView("connections");
      select(t, latest.current.status === null);
    },
    [select],
  );

  const revealRow = (id: string) => setReveal({ id, seq: ++revealSeq.current });

  const openWizard = useCallback(() => {
    ensureCatalog();
    search.setOpen(false);
    setWizard({ reconsent: null });
  }, [ensureCatalog]);

  const onConnected = (c: Connection) => {
    setWizard(null);
    const slug = tenants.find((t) => t.tenant.id === c.tenant_id)?.tenant.slug ?? "";
    showNote(`Connected ${slug ? `${slug}/` : ""}${c.name}.`);
    selectTenant(c.tenant_id);
    openConnection(c, null);
    revealRow(c.id);
    loadTenants();
  };

  const onReconsent = (started: ConnectStarted, label: string) => {
    const o = currentOpen();
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
        if (ok && !cur.wizard && !document.querySelector('[role="dialog"]')) search.setOpen(true);
        return;
      }
      if (e.key === "Escape" && !e.defaultPrevented && currentOpen() && !document.querySelector('[role="dialog"]')) {
        e.preventDefault();
        closeDetail();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [closeDetail]);

  const pick = (item: SearchItem) => {
    search.setOpen(false);
    if (item.id === "action:review") setView("review");
    else if (item.id === "action:connect") openWizard();
    else if (item.id === "action:all") selectTenant(null);
    else if (item.kind === "tenant") {
      const t = tenants.find((x) => `tenant:${x.tenant.slug}` === item.id);
      if (t) selectTenant(t.tenant.id);
    } else {
      const c = search.index.connection(item.id);
      if (!c) return;
      if (view !== "connections" || (tenant !== null && tenant !== c.tenant_id)) selectTenant(tenant === null ? null : c.tenant_id);
      openConnection(c, c);
      revealRow(c.id);
    }
  };

  const shell: Shell = useMemo(
    () => ({ net, offline, note: showNote, tenants, catalog, presetNames, apps, changeTick }),
    [net, offline, showNote, tenants, catalog, presetNames, apps, changeTick],
  );

  const ok = status !== null && status.error === null;
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
            if (v === "connections" && listMissing) void loadConnections(tenant, true);
          }}
          onConnect={openWizard}
          onSearch={() => search.setOpen(true)}
          onNewTenant={() => setTenantDialog("new")}
          sharing={sharing}
        />
        <main>
          {!ok && <VaultScreen status={status} fatal={fatal} checking={checking} onRetry={() => void retryVault()} />}
          <div class="banners">
            {ok && offline && (
              <div class="offline-banner" data-offline>
                <span class="dot" aria-hidden="true" />
                {OFFLINE_BANNER}
              </div>
            )}
            {errors.map((e) => (
              <Alert key={e.id} message={e.message} onDismiss={() => dismissError(e.id)} />
            ))}
          </div>

          {ok && view === "connections" && (
            <div class={open ? "workspace has-detail" : "workspace"}>
              <div class="list-pane">
                <header class="view-head">
                  <h1>{title}</h1>
                  {tenant !== null && (
                    <button type="button" class="btn small head-actions" data-action="tenant-settings" onClick={() => setTenantDialog("settings")}>
                      Tenant settings
                    </button>
                  )}
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
              {open && <Splitter />}
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
                  sharedTeam={sharing.get(open.target.tenant)?.team}
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
                <button type="button" class="icon-btn x" data-action="dismiss" aria-label="Dismiss" onClick={dismissNote} />
              </>
            )}
          </div>
        </main>
      </div>

      <WelcomeAndAbout status={status} onChanged={loadTenants} />
      {tenantDialog === "new" && (
        <NewTenantDialog
          onClose={() => setTenantDialog(null)}
          onCreated={(t) => {
            setTenantDialog(null);
            showNote(`Created tenant ${t.name} (${t.slug} on the command line).`);
            loadTenants();
            selectTenant(t.id);
          }}
        />
      )}
      {tenantDialog === "settings" && tenant !== null && tenants.some((t) => t.tenant.id === tenant) && (
        <TenantSettings
          summary={tenants.find((t) => t.tenant.id === tenant)!}
          sharing={sharing.get(tenant)}
          onClose={() => setTenantDialog(null)}
          onChanged={() => {
            loadTenants();
            void loadConnections(latest.current.tenant, false);
          }}
          onConnectionsDeleted={closeDetail}
          onDeleted={() => {
            setTenantDialog(null);
            closeDetail(); // its connections are gone with it (the deletion's note says so)
            selectTenant(null);
            loadTenants();
          }}
        />
      )}
      {search.open && <Search items={search.index.items} loading={search.loading} onPick={pick} onClose={() => search.setOpen(false)} />}
      {wizard && (
        <Wizard
          initialTenant={wizard.reconsent?.target.tenant ?? tenant}
          reconsent={wizard.reconsent}
          demo={status?.demo ?? false}
          onClose={() => setWizard(null)}
          onConnected={onConnected}
          onAppAdded={addApp}
          finish={finish}
        />
      )}
      <HandOutQuestions onError={addError} />
    </ShellContext.Provider>
  );
}
