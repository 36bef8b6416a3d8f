// @vitest-environment jsdom
// The shell's and the wizard's hooks on their own, against a mocked backend: notes, online
// state, live reload, the connections list (newest load wins), the search index and the
// sign-in flow.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ConnectFinished } from "./bindings/ConnectFinished";
import type { ConnectStarted } from "./bindings/ConnectStarted";
import type { ConnectionRow } from "./bindings/ConnectionRow";
import type { TenantSummary } from "./bindings/TenantSummary";
import { ConnectionTable } from "./connectionTable";
import { ShellContext, type Shell } from "./ctx";
import { conn, rowOf } from "./testdata";

const backend = vi.hoisted(() => ({
  vaultChanged: [] as ((seq: number) => void)[],
  connectFinished: [] as ((e: ConnectFinished) => void)[],
  lists: [] as { tenant: string | null; resolve: (l: unknown) => void; reject: (e: unknown) => void }[],
  tenants: [] as TenantSummary[],
}));

vi.mock("./api", async (importOriginal) => {
  const real = await importOriginal<typeof import("./api")>();
  const api = {
    listTenants: vi.fn(async () => [...backend.tenants]),
    listConnections: vi.fn(
      (tenant: string | null) => new Promise((resolve, reject) => backend.lists.push({ tenant, resolve, reject })),
    ),
    cancelConnect: vi.fn(async () => {}),
    pasteRedirect: vi.fn(async () => {}),
    startReconsent: vi.fn(async () => started("flow-again")),
    providerApps: vi.fn(async (tenant: string) => {
      if (tenant === "t-bad") throw new Error("unreadable");
      return [{ id: `app-${tenant}`, tenant_id: tenant, name: `app of ${tenant}` }];
    }),
  };
  const events = {
    onVaultChanged: vi.fn(async (f: (seq: number) => void) => {
      backend.vaultChanged.push(f);
      return () => backend.vaultChanged.splice(backend.vaultChanged.indexOf(f), 1);
    }),
    onConnectFinished: vi.fn(async (f: (e: ConnectFinished) => void) => {
      backend.connectFinished.push(f);
      return () => backend.connectFinished.splice(backend.connectFinished.indexOf(f), 1);
    }),
    onRefreshedLate: vi.fn(async () => () => {}),
    onSecondInstance: vi.fn(async () => () => {}),
  };
  return { ...real, api, events };
});

const { api } = await import("./api");
const { useNotes, NOTE_MS } = await import("./useNotes");
const { useNet } = await import("./useNet");
const { useLiveReload, LIVE_DEBOUNCE_MS } = await import("./useLive");
const { useConnections, useProviderApps, useTenants, RECOUNT_MIN_MS } = await import("./useVaultData");
const { searchIndex } = await import("./useSearch");
const { useConnectFlow, useFinishFeed } = await import("./useConnectFlow");
const { initPerf } = await import("./perf");

function started(flow: string): ConnectStarted {
  return { flow, url: "https://idp.example/authorize", redirect_uri: "http://127.0.0.1:5555/callback", redirect: "loopback", timeout_secs: 300, browser_error: null };
}

const roots: HTMLElement[] = [];
/** Renders `hook` in a component; `result.current` is its latest return value. */
function renderHook<T>(hook: () => T, shell?: Partial<Shell>) {
  const result = { current: undefined as unknown as T };
  function Probe() {
    result.current = hook();
    return null;
  }
  const root = document.createElement("div");
  roots.push(root);
  const base: Shell = { net: (p) => p, offline: false, note: () => {}, tenants: [], catalog: [], presetNames: new Map(), apps: new Map(), changeTick: 0 };
  act(() => {
    render(
      <ShellContext.Provider value={{ ...base, ...shell }}>
        <Probe />
      </ShellContext.Provider>,
      root,
    );
  });
  return { result, unmount: () => act(() => render(null, root)) };
}
/** Lets promises settle and Preact render. */
const settle = () => act(async () => {
  await new Promise((r) => setTimeout(r, 0));
});

beforeEach(() => {
  backend.vaultChanged = [];
  backend.connectFinished = [];
  backend.lists = [];
  vi.clearAllMocks();
  initPerf();
  window.__gkPerf.marks = [];
});

afterEach(() => {
  for (const r of roots.splice(0)) render(null, r);
  vi.useRealTimers();
});

describe("useNotes", () => {
  it("keeps the last three errors, one per message", () => {
    const { result } = renderHook(() => useNotes());
    act(() => {
      for (const m of ["a", "b", "a", "c", "d"]) result.current.addError(m);
    });
    expect(result.current.errors.map((e) => e.message)).toEqual(["a", "c", "d"]);
    act(() => result.current.dismissError(result.current.errors[1].id));
    expect(result.current.errors.map((e) => e.message)).toEqual(["a", "d"]);
  });

  it("lets an info note go after a while, a warning stay", () => {
    vi.useFakeTimers();
    const { result } = renderHook(() => useNotes());
    act(() => result.current.showNote("Copied."));
    expect(result.current.note?.text).toBe("Copied.");
    act(() => {
      vi.advanceTimersByTime(NOTE_MS - 1);
    });
    expect(result.current.note?.text).toBe("Copied.");
    act(() => {
      vi.advanceTimersByTime(1);
    });
    expect(result.current.note).toBeNull();
    act(() => result.current.showNote("Not revoked.", "warn"));
    act(() => {
      vi.advanceTimersByTime(NOTE_MS * 3);
    });
    expect(result.current.note?.tone).toBe("warn");
    act(() => result.current.dismissNote());
    expect(result.current.note).toBeNull();
  });
});

describe("useNet", () => {
  it("goes offline on a failure flagged offline and back on a network success", async () => {
    const { result } = renderHook(() => useNet());
    expect(result.current.offline).toBe(false);
    await act(async () => {
      await result.current.net(Promise.reject({ message: "x", offline: false, cancelled: false })).catch(() => {});
    });
    expect(result.current.offline).toBe(false);
    await act(async () => {
      await result.current.net(Promise.reject({ message: "down", offline: true, cancelled: false })).catch(() => {});
    });
    expect(result.current.offline).toBe(true);
    // A local action's success says nothing about the network.
    await act(async () => {
      await result.current.net(Promise.resolve(1), false);
    });
    expect(result.current.offline).toBe(true);
    await act(async () => {
      expect(await result.current.net(Promise.resolve(2))).toBe(2);
    });
    expect(result.current.offline).toBe(false);
  });
});

describe("useLiveReload", () => {
  it("reloads once after a burst of vault changes, with the latest callback", async () => {
    vi.useFakeTimers();
    const first = vi.fn();
    const second = vi.fn();
    let reload = first;
    const { result, unmount } = renderHook(() => useLiveReload(() => reload()));
    await act(async () => {
      await Promise.resolve();
    });
    expect(result).toBeDefined();
    expect(backend.vaultChanged).toHaveLength(1);
    for (let i = 0; i < 5; i++) {
      backend.vaultChanged[0](i);
      vi.advanceTimersByTime(LIVE_DEBOUNCE_MS - 1);
    }
    expect(first).not.toHaveBeenCalled();
    reload = second;
    vi.advanceTimersByTime(1);
    expect(first).not.toHaveBeenCalled();
    expect(second).toHaveBeenCalledTimes(1);
    // Unmounted: no more reloads, and the listener is gone.
    backend.vaultChanged[0](9);
    unmount();
    vi.advanceTimersByTime(LIVE_DEBOUNCE_MS * 2);
    expect(second).toHaveBeenCalledTimes(1);
    expect(backend.vaultChanged).toHaveLength(0);
  });
});

describe("useTenants", () => {
  const tenant = (recount_at: number | null): TenantSummary => ({
    tenant: { id: "t1", slug: "acme", name: "Acme", notes: "", created_at: 0 },
    connections: 10_000,
    needs_attention: 3,
    attention_label: "3 expiring",
    recount_at,
  });

  const advance = (ms: number) =>
    act(async () => {
      await vi.advanceTimersByTimeAsync(ms);
    });

  it("counts again when time changes a count, at most every 30 s however soon that is", async () => {
    vi.useFakeTimers();
    const t0 = Date.now();
    // With many grants the next count change is always a second or two away.
    backend.tenants = [tenant(t0 + 1_000)];
    const { result } = renderHook(() => useTenants(() => {}));
    await act(async () => {
      result.current.loadTenants();
      await vi.advanceTimersByTimeAsync(0);
    });
    expect(api.listTenants).toHaveBeenCalledTimes(1);
    // The next answer: a change five minutes away, waited for; then none, never recounted.
    backend.tenants = [tenant(t0 + 5 * 60_000)];
    await advance(RECOUNT_MIN_MS - 100);
    expect(api.listTenants).toHaveBeenCalledTimes(1);
    await advance(200);
    expect(api.listTenants).toHaveBeenCalledTimes(2);
    backend.tenants = [tenant(null)];
    await advance(5 * 60_000 - RECOUNT_MIN_MS - 1_000);
    expect(api.listTenants).toHaveBeenCalledTimes(2);
    await advance(2_000);
    expect(api.listTenants).toHaveBeenCalledTimes(3);
    await advance(10 * 60_000);
    expect(api.listTenants).toHaveBeenCalledTimes(3);
  });
});

describe("useConnections", () => {
  const a = rowOf(conn({ id: "a", tenant_id: "t1", name: "a" }));
  const b = rowOf(conn({ id: "b", tenant_id: "t2", name: "b" }));
  const onlyA = ConnectionTable.of([a]);
  const onlyB = ConnectionTable.of([b]);
  const both = ConnectionTable.of([a, b]);

  it("keeps only the newest load's answer, and marks the first list painted", async () => {
    const loaded = vi.fn();
    const onError = vi.fn();
    const { result } = renderHook(() => useConnections({ onError, onLoaded: loaded }));
    act(() => result.current.select("t1"));
    expect(result.current.tenant).toBe("t1");
    expect(result.current.connections).toBeNull();
    act(() => result.current.select("t2"));
    expect(backend.lists.map((l) => l.tenant)).toEqual(["t1", "t2"]);
    // The newer answer first, then the older one: the older is dropped.
    backend.lists[1].resolve(onlyB);
    await settle();
    backend.lists[0].resolve(onlyA);
    await settle();
    expect(result.current.connections).toBe(onlyB);
    expect(loaded).toHaveBeenCalledTimes(1);
    expect(loaded).toHaveBeenCalledWith(onlyB, "t2");
    await act(() => new Promise((r) => setTimeout(r, 50)));
    expect(window.__gkPerf.marks.filter((m) => m.name === "connections")).toHaveLength(1);
    // An older load's failure says nothing; the newest one's does.
    act(() => void result.current.load("t2", false));
    act(() => void result.current.load("t2", false));
    backend.lists[2].reject("old failure");
    backend.lists[3].reject("new failure");
    await settle();
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError).toHaveBeenCalledWith("new failure");
    expect(result.current.connections).toBe(onlyB);
  });

  it("keeps the list while the same tenant loads again", async () => {
    const { result } = renderHook(() => useConnections({ onError: () => {}, onLoaded: () => {} }));
    act(() => result.current.select(null));
    backend.lists[0].resolve(both);
    await settle();
    act(() => result.current.select(null));
    expect(result.current.connections).toBe(both);
    act(() => result.current.select(null, true));
    expect(result.current.connections).toBeNull();
  });
});

describe("useProviderApps", () => {
  it("loads the apps of every tenant a list needs, and shows them in one change", async () => {
    const maps = new Set<unknown>();
    const { result } = renderHook(() => {
      const r = useProviderApps();
      maps.add(r.apps);
      return r;
    });
    const rows = ConnectionTable.of(["t1", "t2", "t2", "t-bad", "t3"].map((t, i) => rowOf(conn({ id: `c${i}`, tenant_id: t, provider_app_id: `app-${t}` }))));
    act(() => result.current.ensureApps(rows));
    // Asked again while loading: nothing more is asked.
    act(() => result.current.ensureApps(rows));
    await settle();
    expect((api.providerApps as ReturnType<typeof vi.fn>).mock.calls.map((c) => c[0])).toEqual(["t1", "t2", "t-bad", "t3"]);
    expect([...result.current.apps.keys()]).toEqual(["app-t1", "app-t2", "app-t3"]);
    expect(maps.size).toBe(2); // the empty map, then all apps at once
    // Known apps are not asked for again; the failed tenant is.
    act(() => result.current.ensureApps(rows));
    await settle();
    expect((api.providerApps as ReturnType<typeof vi.fn>).mock.calls.map((c) => c[0]).slice(4)).toEqual(["t-bad"]);
  });
});

describe("searchIndex", () => {
  it("indexes actions, tenants and connections by their words", () => {
    const tenants: TenantSummary[] = [
      { tenant: { id: "t1", slug: "acme", name: "Acme Corp", notes: "key client", created_at: 0 }, connections: 1, needs_attention: 0, attention_label: "", recount_at: null },
    ];
    const rows: ConnectionRow[] = [
      rowOf(conn({ id: "c1", tenant_id: "t1", provider_app_id: "p1", name: "crm", account: { username: "ann@acme.io", subject: "sub-77", org_id: "org-9" } })),
    ];
    const table = ConnectionTable.of(rows);
    const apps = new Map([["p1", { id: "p1", name: "sf-app", preset: "salesforce" } as never]]);
    const { items, connection } = searchIndex(tenants, table, apps, new Map([["salesforce", "Salesforce"]]));
    expect(items.map((i) => i.id)).toEqual(["action:review", "action:connect", "action:all", "tenant:acme", "connection:acme/crm"]);
    const c = items.find((i) => i.kind === "connection")!;
    expect(c.sub).toBe("acme · ann@acme.io · sf-app");
    for (const word of ["sub-77", "org-9", "salesforce", "acme corp", "p1"]) expect(c.key).toContain(word);
    expect(items.find((i) => i.kind === "tenant")!.key).toContain("key client");
    expect(connection("connection:acme/crm")).toEqual(rows[0]);
    expect(connection("connection:acme/none")).toBeUndefined();
  });
});

describe("useConnectFlow", () => {
  const made = conn({ id: "c-new", name: "new" });

  function flow(reconsent = false) {
    const onConnected = vi.fn();
    const onClose = vi.fn();
    const note = vi.fn();
    const { result } = renderHook(() => {
      const finish = useFinishFeed();
      return {
        finish,
        flow: useConnectFlow({
          reconsent: reconsent ? { started: started("flow-r"), target: { tenant: "t1", connection: "c1" }, label: "acme/crm" } : null,
          finish,
          onConnected,
          onClose,
        }),
      };
    }, { note });
    return { result, onConnected, onClose, note };
  }
  const emit = (e: Partial<ConnectFinished> & { flow: string }) =>
    act(() => {
      for (const f of backend.connectFinished) f({ tenant: "t1", connection: null, error: null, cancelled: false, ...e });
    });

  it("waits after begin, and a connection ends it", async () => {
    const { result, onConnected } = flow();
    await settle();
    expect(result.current.flow.phase).toBe("form");
    act(() => result.current.flow.begin(started("flow-1")));
    expect(result.current.flow.phase).toBe("waiting");
    expect(result.current.flow.started?.s.flow).toBe("flow-1");
    emit({ flow: "other", connection: made });
    expect(onConnected).not.toHaveBeenCalled();
    emit({ flow: "flow-1", connection: made });
    expect(onConnected).toHaveBeenCalledWith(made);
  });

  it("takes a finish that arrived before its flow was known", async () => {
    const { result, onConnected } = flow();
    await settle();
    // No wizard claims it yet (the flow is not known): kept.
    emit({ flow: "flow-early", connection: made });
    expect(onConnected).not.toHaveBeenCalled();
    act(() => result.current.flow.begin(started("flow-early")));
    expect(onConnected).toHaveBeenCalledWith(made);
    expect(result.current.finish.take("flow-early")).toBeUndefined();
  });

  it("goes back to the form on a cancel, to the error step on a failure", async () => {
    const { result, note } = flow();
    await settle();
    act(() => result.current.flow.begin(started("flow-1")));
    emit({ flow: "flow-1", cancelled: true });
    expect(result.current.flow.phase).toBe("form");
    expect(note).toHaveBeenCalledWith("Sign-in cancelled.");
    act(() => result.current.flow.begin(started("flow-2")));
    emit({ flow: "flow-2", error: { message: "The provider is unreachable", offline: true, cancelled: false } });
    expect(result.current.flow.phase).toBe("error");
    expect(result.current.flow.finishError).toMatch(/^The provider is unreachable\. Check the network/);
    await act(() => result.current.flow.retry());
    expect(result.current.flow.phase).toBe("form");
    expect(result.current.flow.finishError).toBeNull();
  });

  it("cancels the sign-in at the backend, and checks a pasted address", async () => {
    const { result } = flow();
    await settle();
    act(() => result.current.flow.begin(started("flow-1")));
    await act(() => result.current.flow.paste("   "));
    expect(result.current.flow.pasteError).toMatch(/Paste the whole address/);
    expect(api.pasteRedirect).not.toHaveBeenCalled();
    await act(() => result.current.flow.paste(" http://127.0.0.1:5555/callback?code=x "));
    expect(api.pasteRedirect).toHaveBeenCalledWith("flow-1", "http://127.0.0.1:5555/callback?code=x");
    expect(result.current.flow.pasteError).toBeNull();
    act(() => result.current.flow.cancel());
    expect(api.cancelConnect).toHaveBeenCalledWith("flow-1");
    expect(result.current.flow.phase).toBe("form");
    // Its late finish is no longer ours.
    emit({ flow: "flow-1", connection: made });
    expect(result.current.finish.take("flow-1")?.connection).toEqual(made);
  });

  it("a re-consent starts waiting, closes on cancel and starts again on Try again", async () => {
    const { result, onClose } = flow(true);
    await settle();
    expect(result.current.flow.phase).toBe("waiting");
    emit({ flow: "flow-r", error: { message: "denied", offline: false, cancelled: false } });
    expect(result.current.flow.phase).toBe("error");
    await act(() => result.current.flow.retry());
    expect(api.startReconsent).toHaveBeenCalledWith({ tenant: "t1", connection: "c1" });
    expect(result.current.flow.phase).toBe("waiting");
    expect(result.current.flow.started?.s.flow).toBe("flow-again");
    act(() => result.current.flow.cancel());
    expect(api.cancelConnect).toHaveBeenCalledWith("flow-again");
    expect(onClose).toHaveBeenCalledTimes(1);
  });
});
