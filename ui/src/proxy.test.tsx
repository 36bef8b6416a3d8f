// @vitest-environment jsdom
// A connection's proxy panel against a mocked backend: start, the listen address, the bearer
// revealed on request, the calls listed from `proxied` events and again after a vault change,
// stop.
import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { UsageEvent } from "./bindings/UsageEvent";
import { ShellContext, type Shell } from "./ctx";

const backend = vi.hoisted(() => ({ events: [] as unknown[] }));

vi.mock("./api", async (importOriginal) => {
  const real = await importOriginal<typeof import("./api")>();
  const view = { listen: "http://127.0.0.1:41234", api_base: "http://127.0.0.1:9/resource/", bearer_required: true, started_at: 1000 };
  const api = {
    proxyStatus: vi.fn(async () => null),
    startProxy: vi.fn(async () => view),
    stopProxy: vi.fn(async () => {}),
    revealProxyBearer: vi.fn(async () => "gkp_bearer-XYZ"),
    connectionHistory: vi.fn(async () => backend.events),
  };
  return { ...real, api };
});

const { api } = await import("./api");
const { ProxyPanel, proxiedCalls, bytesText } = await import("./ProxyPanel");

function proxied(seq: number, path: string, status: number): UsageEvent {
  return {
    seq,
    ts: 2000 + seq,
    kind: "proxied",
    tenant_id: "t-acme",
    connection_id: "c-crm",
    actor: "proxy",
    app_hint: null,
    caller: "pid 7 /usr/bin/curl",
    detail: { method: "GET", host: "127.0.0.1:9", path, status, bytes_in: 0, bytes_out: 1500, duration_ms: 2.345, retried: false },
    fingerprint: null,
    redacted: false,
  };
}

const base: Shell = { net: (p) => p, offline: false, note: () => {}, tenants: [], catalog: [], presetNames: new Map(), apps: new Map(), changeTick: 0 };
let root: HTMLElement = document.createElement("div");
function show(changeTick: number) {
  render(
    <ShellContext.Provider value={{ ...base, changeTick }}>
      <ProxyPanel target={{ tenant: "t-acme", connection: "c-crm" }} disabled={false} />
    </ShellContext.Provider>,
    root,
  );
}
const settle = () => act(async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
});
const $ = (css: string) => root.querySelector<HTMLElement>(css);

describe("proxy panel", () => {
  afterEach(() => render(null, root));

  it("reads calls from proxied events, newest first", () => {
    const calls = proxiedCalls([proxied(1, "/a", 200), { ...proxied(2, "/x", 0), kind: "handed_out" }, proxied(3, "/b", 401)]);
    expect(calls.map((c) => [c.seq, c.path, c.status, c.bytes])).toEqual([[3, "/b", 401, 1500], [1, "/a", 200, 1500]]);
    expect(bytesText(999)).toBe("999 B");
    expect(bytesText(1500)).toBe("1.5 kB");
    expect(bytesText(104_857_600)).toBe("104.9 MB");
  });

  it("starts, reveals the bearer, lists the calls live and stops", async () => {
    root = document.createElement("div");
    document.body.append(root);
    backend.events = [];
    await act(() => show(0));
    await settle();
    expect($("[data-proxy]")!.dataset.proxy).toBe("stopped");
    await act(() => $('[data-action="proxy-start"]')!.click());
    await settle();
    expect(api.startProxy).toHaveBeenCalledWith({ tenant: "t-acme", connection: "c-crm" }, true, null);
    expect($("[data-proxy-listen]")!.textContent).toBe("http://127.0.0.1:41234");
    expect($("[data-proxy-calls] caption")!.textContent).toBe("No calls yet");
    expect($('[data-secret="proxy-bearer"]')).toBeNull();

    await act(() => $('[data-action="proxy-bearer"]')!.click());
    await settle();
    expect($('[data-secret="proxy-bearer"]')!.textContent).toBe("gkp_bearer-XYZ");

    // A vault change (calls written) lists them.
    backend.events = [proxied(7, "/resource/echo", 200)];
    await act(() => show(1));
    await settle();
    expect(api.connectionHistory).toHaveBeenLastCalledWith({ tenant: "t-acme", connection: "c-crm" }, "proxied", 1000, 50);
    const cells = [...root.querySelectorAll("[data-proxy-calls] tbody tr td")].map((td) => td.textContent);
    expect(cells).toEqual(["GET", "127.0.0.1:9", "/resource/echo", "200", "1.5 kB", "2.3 ms"]);

    await act(() => $('[data-action="proxy-stop"]')!.click());
    await settle();
    expect(api.stopProxy).toHaveBeenCalledWith("c-crm");
    expect($("[data-proxy]")!.dataset.proxy).toBe("stopped");
    expect(root.innerHTML).not.toContain("gkp_bearer-XYZ");
  });
});
