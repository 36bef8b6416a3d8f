// @vitest-environment jsdom
// The first run's welcome and the About box against a mocked backend: when the welcome shows,
// what it says about the keychain, and the core commands each step calls.
import { render } from "preact";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { TenantSummary } from "./bindings/TenantSummary";
import type { VaultStatus } from "./bindings/VaultStatus";

const state = vi.hoisted(() => ({ tenants: [] as TenantSummary[] }));

vi.mock("./api", async (importOriginal) => {
  const real = await importOriginal<typeof import("./api")>();
  return { ...real, api: { listTenants: vi.fn(async () => state.tenants), tenantSharing: vi.fn(async () => []) } };
});
vi.mock("./welcomeApi", () => ({
  welcomeApi: {
    appInfo: vi.fn(async () => ({ name: "Grantkeeper", version: "9.8.7" })),
    createTenant: vi.fn(async (name: string) => ({ id: "t-1", slug: "acme-corp", name, notes: "", created_at: 0 })),
    addDemoProvider: vi.fn(async () => ({ id: "app-demo", name: "demo" })),
  },
}));

const { api } = await import("./api");
const { welcomeApi } = await import("./welcomeApi");
const { WelcomeAndAbout } = await import("./WelcomeAndAbout");

const status = (over: Partial<VaultStatus> = {}): VaultStatus => ({
  home: "/home/u/.local/share/grantkeeper",
  keychain: "the Secret Service (D-Bus)",
  error: null,
  problem: null,
  demo: false,
  ...over,
});

let root: HTMLElement;
const $ = <T extends Element = HTMLElement>(sel: string) => document.querySelector(sel) as T | null;
async function waitFor<T>(f: () => T | null | undefined | false, ms = 2000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${f.toString()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
const el = <T extends Element = HTMLElement>(sel: string) => waitFor(() => $<T>(sel));
const click = (e: Element) => e.dispatchEvent(new MouseEvent("click", { bubbles: true }));
const tick = () => new Promise((r) => setTimeout(r, 20));

function show(s: VaultStatus | null, onChanged = vi.fn()) {
  render(<WelcomeAndAbout status={s} onChanged={onChanged} />, root);
  return onChanged;
}

beforeEach(() => {
  state.tenants = [];
  vi.clearAllMocks();
  root = document.createElement("div");
  document.body.appendChild(root);
});

afterEach(() => {
  render(null, root);
  root.remove();
});

describe("welcome", () => {
  it("shows on a real vault without tenants: where secrets live and the vault folder", async () => {
    show(status());
    const where = await el("[data-welcome-keychain]");
    expect(where.textContent).toMatch(/will live in the Secret Service \(D-Bus\)/);
    expect(where.textContent).toMatch(/\/home\/u\/\.local\/share\/grantkeeper/);
    expect($("[data-welcome]")!.getAttribute("aria-label")).toBe("Welcome to Grantkeeper");
    expect($<HTMLButtonElement>("[data-welcome-create]")!.disabled).toBe(true);
  });

  it("does not show with tenants, in demo mode, before the status or when the vault failed", async () => {
    state.tenants = [{ tenant: { id: "t", slug: "t", name: "T", notes: "", created_at: 0 }, connections: 0, needs_attention: 0, attention_label: "", recount_at: null }];
    show(status());
    await waitFor(() => vi.mocked(api.listTenants).mock.calls.length > 0);
    await tick();
    expect($("[data-welcome]")).toBeNull();

    state.tenants = [];
    for (const s of [null, status({ demo: true }), status({ error: "No Secret Service: start gnome-keyring" })]) {
      vi.mocked(api.listTenants).mockClear();
      render(null, root);
      show(s);
      await tick();
      expect($("[data-welcome]")).toBeNull();
      expect(api.listTenants).not.toHaveBeenCalled();
    }
  });

  it("creates the first tenant, then adds the demo provider to it", async () => {
    const onChanged = show(status());
    const input = await el<HTMLInputElement>("[data-welcome-tenant]");
    input.value = "Acme Corp";
    input.dispatchEvent(new Event("input", { bubbles: true }));
    await tick();
    click($("[data-welcome-create]")!);
    expect((await el("[data-welcome-created]")).textContent).toMatch(/Acme Corp is ready \(acme-corp on the command line\)/);
    expect(welcomeApi.createTenant).toHaveBeenCalledWith("Acme Corp");
    expect(onChanged).toHaveBeenCalledTimes(1);

    click($("[data-welcome-demo]")!);
    expect((await el("[data-welcome-demo-ready]")).textContent).toMatch(/choose the provider app demo/);
    expect(welcomeApi.addDemoProvider).toHaveBeenCalledWith("t-1");
    expect(onChanged).toHaveBeenCalledTimes(2);
    expect($("[data-welcome-demo]")).toBeNull();

    click($("[data-welcome-done]")!);
    await tick();
    expect($("[data-welcome]")).toBeNull();
  });

  it("shows the core's message when a step fails, and stays", async () => {
    vi.mocked(welcomeApi.createTenant).mockRejectedValueOnce({ message: "a tenant named 'Acme Corp' exists already", offline: false, cancelled: false });
    show(status());
    const input = await el<HTMLInputElement>("[data-welcome-tenant]");
    input.value = "Acme Corp";
    input.dispatchEvent(new Event("input", { bubbles: true }));
    await tick();
    click($("[data-welcome-create]")!);
    expect((await el('[data-welcome] [role="alert"]')).textContent).toMatch(/exists already/);
    expect($("[data-welcome-created]")).toBeNull();
  });

  it("Later closes it without creating anything", async () => {
    show(status());
    click(await el("[data-welcome-skip]"));
    await tick();
    expect($("[data-welcome]")).toBeNull();
    expect(welcomeApi.createTenant).not.toHaveBeenCalled();
  });
});

describe("about", () => {
  it("shows the version from the core", async () => {
    show(null);
    click(await el("[data-about-open]"));
    expect((await el("[data-about-version]")).textContent).toBe("Version 9.8.7");
    expect($("[data-about] .dialog-title")!.textContent).toBe("Grantkeeper");
    expect(welcomeApi.appInfo).toHaveBeenCalledTimes(1);
  });
});
