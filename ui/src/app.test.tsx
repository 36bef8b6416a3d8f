// @vitest-environment jsdom
// The whole window against a mocked backend: the selectors WebDriver tests rely on, the flows
// (detail, reveal, search, wizard, review, live reload, offline) and the perf marks.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { render } from "preact";
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from "vitest";
import type { HandOutAsked } from "./bindings/HandOutAsked";
import type { Connection } from "./bindings/Connection";
import type { ConnectionDetail } from "./bindings/ConnectionDetail";
import type { ConnectFinished } from "./bindings/ConnectFinished";
import type { GrantReportRow } from "./bindings/GrantReportRow";
import type { Preset } from "./bindings/Preset";
import type { RefreshedLate } from "./bindings/RefreshedLate";
import type { ProviderApp } from "./bindings/ProviderApp";
import type { TenantSummary } from "./bindings/TenantSummary";
import type { VaultStatus } from "./bindings/VaultStatus";
import { ConnectionTable } from "./connectionTable";
import { conn, rowOf, steps } from "./testdata";

const now = Date.now();
const tenants: TenantSummary[] = [
  { tenant: { id: "t-acme", slug: "acme-corp", name: "Acme Corp", notes: "", created_at: 0 }, connections: 2, needs_attention: 1, attention_label: "1 need re-consent", recount_at: null },
  { tenant: { id: "t-globex", slug: "globex", name: "Globex", notes: "", created_at: 0 }, connections: 0, needs_attention: 0, attention_label: "", recount_at: null },
];
const crm = conn({
  id: "c-crm",
  tenant_id: "t-acme",
  provider_app_id: "app-idp",
  name: "crm",
  account: { username: "ann@acme.io", subject: "sub-1", org_id: null },
  access_expires_at: now + 50 * 60_000,
  access_expiry_source: "response",
  metadata: { instance_url: "https://acme.my.example.com", realm: "42" },
});
const old = conn({ id: "c-old", tenant_id: "t-acme", provider_app_id: "app-idp", name: "old", status: "needs_reconsent", status_detail: "The provider refused the refresh token." });

function detailOf(c: Connection): ConnectionDetail {
  return {
    connection: c,
    status_steps: steps(c),
    tenant: "acme-corp",
    provider_app: "idp",
    preset: "generic-oidc",
    provider_name: "OpenID Connect (generic)",
    scopes: [
      { scope: "openid", requested: true, granted: true, risk: "low", meaning: "Sign in" },
      { scope: "offline_access", requested: true, granted: true, risk: "medium", meaning: "Refresh token" },
      { scope: "api:write", requested: true, granted: false, risk: null, meaning: null },
      { scope: "extra", requested: false, granted: true, risk: "high", meaning: "More" },
    ],
    history: [
      { seq: 3, ts: now - 60_000, kind: "handed_out", tenant_id: "t-acme", connection_id: c.id, actor: "cli", app_hint: "nightly-sync", caller: "pid 123 /usr/bin/python3", detail: null, fingerprint: null, redacted: false },
      { seq: 2, ts: now - 120_000, kind: "refreshed", tenant_id: "t-acme", connection_id: c.id, actor: "agent", app_hint: null, caller: null, detail: null, fingerprint: null, redacted: false },
      { seq: 1, ts: now - 3_600_000, kind: "consented", tenant_id: "t-acme", connection_id: c.id, actor: "cli", app_hint: null, caller: null, detail: {}, fingerprint: null, redacted: false },
    ],
    daily: [
      { day: Math.floor(now / 86_400_000), kind: "handed_out", count: 3 },
      { day: Math.floor(now / 86_400_000), kind: "refreshed", count: 1 },
    ],
    inspection: { access_token: null, access_token_is_jwt: false, id_token: { header: { alg: "RS256" }, claims: { sub: "sub-1", exp: Math.floor(now / 1000) + 600 } } },
    anomalies: [],
    // As the core derives it from the connection's metadata.
    binding: c.metadata.token_binding === "dpop" || c.metadata.token_binding === "certificate" ? c.metadata.token_binding : null,
  };
}

const presets = [
  {
    id: "generic-oidc",
    name: "OpenID Connect (generic)",
    variables: [{ name: "issuer_host", description: "the issuer's host", default: null }],
    default_scopes: ["openid", "offline_access"],
    auth_methods: ["client_secret_basic", "none"],
    redirect: { loopback: true, fixed_port: false, https_only: false, note: null },
    scopes: [
      { name: "openid", meaning: "Sign in", risk: "low" },
      { name: "offline_access", meaning: "Refresh token", risk: "medium" },
      { name: "admin", meaning: "Everything", risk: "high" },
    ],
  },
] as unknown as Preset[];

const idpApp: ProviderApp = {
  id: "app-idp",
  tenant_id: "t-acme",
  name: "idp",
  preset: "generic-oidc",
  endpoints: { issuer: null, authorization: null, token: null, revocation: null, introspection: null, device_authorization: null, jwks: null, userinfo: null },
  client_id: "grantkeeper-test",
  has_client_secret: false,
  redirect_mode: "loopback",
  redirect_port: null,
  relay_url: null,
  default_scopes: ["openid"],
  created_at: 0,
};

function reviewRow(c: Connection, over: Partial<GrantReportRow> = {}): GrantReportRow {
  return {
    tenant: "acme-corp",
    tenant_name: "Acme Corp",
    connection: c.name,
    connection_id: c.id,
    status_steps: steps(c),
    provider_app: "idp",
    preset: "generic-oidc",
    account: c.account.username,
    account_org: null,
    status: c.status,
    status_detail: null,
    scopes: [{ scope: "openid", requested: true, granted: true, risk: "low", meaning: "Sign in" }],
    highest_risk: "low",
    scopes_granted_reported: true,
    consented_at: now - 86_400_000,
    consented_by: "ann",
    access_expires_at: null,
    has_refresh_token: true,
    refresh_expires_at: null,
    refresh_hard_expires_at: null,
    last_refresh_at: null,
    last_used_at: null,
    ...over,
  };
}

// ---- the mocked backend ----
const state = vi.hoisted(() => ({
  status: null as unknown as VaultStatus,
  connections: [] as Connection[],
  vaultChanged: [] as ((seq: number) => void)[],
  connectFinished: [] as ((e: ConnectFinished) => void)[],
  refreshedLate: [] as ((e: RefreshedLate) => void)[],
  vaultLocked: [] as (() => void)[],
  unlocked: null as VaultStatus | null,
  asked: [] as ((e: HandOutAsked) => void)[],
  questionClosed: [] as ((id: number) => void)[],
}));

// The core computes what to register; here every form can sign in.
vi.mock("./settingsApi", async (importOriginal) => {
  const real = await importOriginal<typeof import("./settingsApi")>();
  const registrationValues = vi.fn(async () => ({
    redirect: "loopback",
    port: null,
    redirect_uri: "http://127.0.0.1/callback",
    redirect_detail: "",
    scopes: [],
    client: "public",
    client_detail: "",
    problem: null,
  }));
  const chooseKeyFile = vi.fn(async () => "/home/u/client-key.pem");
  return { ...real, settingsApi: { ...real.settingsApi, registrationValues, chooseKeyFile } };
});

vi.mock("./api", async (importOriginal) => {
  const real = await importOriginal<typeof import("./api")>();
  const api = {
    vaultStatus: vi.fn(async () => state.status),
    listTenants: vi.fn(async () => tenants),
    tenantSharing: vi.fn(async () => []),
    listConnections: vi.fn(async (t: string | null) =>
      ConnectionTable.of(state.connections.filter((c) => t === null || c.tenant_id === t).map((c) => rowOf(c))),
    ),
    connectionDetail: vi.fn(async (t: { tenant: string; connection: string }) => detailOf(state.connections.find((c) => c.id === t.connection)!)),
    connectionHistory: vi.fn(async () => []),
    catalog: vi.fn(async () => presets),
    providerApps: vi.fn(async (t: string) => (t === "t-acme" ? [idpApp] : [])),
    grantReview: vi.fn(async () => [reviewRow(crm), reviewRow(old, { highest_risk: "high" })]),
    exportReview: vi.fn(async (_f: unknown, format: string) => ({ path: `/home/u/Downloads/review.${format}`, rows: 2 })),
    copyAccessToken: vi.fn(async () => ({ clear_after_secs: 30 })),
    revealAccessToken: vi.fn(async () => ({ token: "tok-SECRET-123", expires_at: now + 600_000 })),
    deleteConnection: vi.fn(async () => null),
    refreshConnection: vi.fn(async () => crm),
    cancelRefresh: vi.fn(async () => {}),
    revokeConnection: vi.fn(async () => ({ revoked_at_provider: true, detail: "revoked", caveat: "tokens may live on" })),
    revokeMany: vi.fn(async (grants: { connection: string }[]) =>
      grants.map((g) => ({ connection: g.connection, outcome: { revoked_at_provider: true, detail: "ok", caveat: "may live on" }, error: null })),
    ),
    introspect: vi.fn(async () => ({ active: true })),
    addProviderApp: vi.fn(async (_t: string, spec: { name: string }) => ({ ...idpApp, id: "app-new", name: spec.name })),
    openProviderLink: vi.fn(async () => {}),
    startConnect: vi.fn(async () => ({ flow: "flow-1", url: "https://idp.example/authorize?x=1", redirect_uri: "http://127.0.0.1:5555/callback", redirect: "loopback", timeout_secs: 300, browser_error: null })),
    startReconsent: vi.fn(async () => ({ flow: "flow-2", url: "https://idp.example/authorize?x=2", redirect_uri: "http://127.0.0.1:5555/callback", redirect: "loopback", timeout_secs: 300, browser_error: null })),
    cancelConnect: vi.fn(async () => {}),
    pasteRedirect: vi.fn(async () => {}),
    unlockVault: vi.fn(async () => {
      state.status = state.unlocked ?? state.status;
    }),
    answerHandOut: vi.fn(async () => {}),
    proxyStatus: vi.fn(async () => null),
  };
  const events = {
    onVaultChanged: vi.fn(async (f: (seq: number) => void) => {
      state.vaultChanged.push(f);
      return () => {};
    }),
    onConnectFinished: vi.fn(async (f: (e: ConnectFinished) => void) => {
      state.connectFinished.push(f);
      return () => {};
    }),
    onRefreshedLate: vi.fn(async (f: (e: RefreshedLate) => void) => {
      state.refreshedLate.push(f);
      return () => {};
    }),
    onSecondInstance: vi.fn(async () => () => {}),
    onVaultLocked: vi.fn(async (f: () => void) => {
      state.vaultLocked.push(f);
      return () => {};
    }),
    onSharingChecked: vi.fn(async () => () => {}),
    onHandOutQuestion: vi.fn(async (f: (e: HandOutAsked) => void) => {
      state.asked.push(f);
      return () => {};
    }),
    onHandOutQuestionClosed: vi.fn(async (f: (id: number) => void) => {
      state.questionClosed.push(f);
      return () => {};
    }),
  };
  return { ...real, api, events };
});

const { api } = await import("./api");
const { App } = await import("./app");
const { initPerf } = await import("./perf");

// ---- helpers ----
let root: HTMLElement;
const $ = <T extends Element = HTMLElement>(sel: string) => document.querySelector<T & Element>(sel) as T | null;
const $$ = (sel: string) => Array.from(document.querySelectorAll<HTMLElement>(sel));
const text = (sel: string) => $(sel)?.textContent ?? "";

async function waitFor<T>(f: () => T | null | undefined | false, ms = 2000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${f.toString()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
const el = (sel: string) => waitFor(() => $(sel));
function click(e: Element) {
  e.dispatchEvent(new MouseEvent("click", { bubbles: true }));
}
function type(e: HTMLInputElement, value: string) {
  e.value = value;
  e.dispatchEvent(new Event("input", { bubbles: true }));
}
function choose(e: HTMLSelectElement | HTMLInputElement, value?: string) {
  if (value !== undefined) e.value = value;
  e.dispatchEvent(new Event("change", { bubbles: true }));
}
/** Lets Preact render what the last event changed. */
const tick = () => new Promise((r) => setTimeout(r, 0));
function key(target: EventTarget, k: string, mods: KeyboardEventInit = {}) {
  target.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true, ...mods }));
}

beforeEach(() => {
  state.status = { home: "/home/u/.grantkeeper", keychain: "the Secret Service (D-Bus)", error: null, problem: null, demo: false };
  state.connections = [crm, old];
  state.vaultChanged = [];
  state.connectFinished = [];
  state.refreshedLate = [];
  state.vaultLocked = [];
  state.unlocked = null;
  state.asked = [];
  state.questionClosed = [];
  vi.clearAllMocks();
  initPerf();
  window.__gkPerf.marks = [];
  root = document.createElement("div");
  document.body.appendChild(root);
  render(<App />, root);
});

afterEach(() => {
  render(null, root);
  root.remove();
  vi.useRealTimers();
});

describe("shell", () => {
  it("lists tenants, the title, where secrets live, and rows", async () => {
    expect((await el('[data-tenant="acme-corp"]')).textContent).toMatch(/Acme Corp/);
    expect(text('[data-tenant="acme-corp"] .attention')).toBe("1");
    expect(text('[data-tenant="globex"]')).toMatch(/Globex/);
    expect(text("main h1")).toBe("All connections");
    expect(text(".where")).toMatch(/Secrets in the Secret Service \(D-Bus\)/);
    const row = await el('[data-connection="crm"]');
    expect(row.getAttribute("role")).toBe("row");
    expect(row.textContent).toMatch(/Active/);
    expect(row.querySelector(".countdown")!.textContent).toMatch(/^\d+:\d\d$/);
    expect(text('[data-connection="old"]')).toMatch(/Needs re-consent/);
    expect($("[data-demo]")).toBeNull();
  });

  it("selects a tenant", async () => {
    click(await el('[data-tenant="globex"]'));
    await waitFor(() => text("main h1") === "Globex");
    await waitFor(() => text(".empty-state").includes("No connections yet"));
    expect(api.listConnections).toHaveBeenLastCalledWith("t-globex");
  });

  it("records perf marks for the first paint, the list and the detail", async () => {
    await el('[data-connection="crm"]');
    await waitFor(() => window.__gkPerf.marks.some((m) => m.name === "connections"));
    await waitFor(() => window.__gkPerf.marks.some((m) => m.name === "first-paint"));
    expect(window.__gkPerf.marks.filter((m) => m.name === "first-paint")).toHaveLength(1);
    click((await el('[data-connection="crm"] td')) as HTMLElement);
    await waitFor(() => window.__gkPerf.marks.some((m) => m.name === "history"));
    for (const m of window.__gkPerf.marks) expect(m.ms).toBeGreaterThanOrEqual(0);
  });

  it("explains a vault it cannot open, and opens it on Try again once the cause is fixed", async () => {
    render(null, root);
    const ok = state.status;
    state.status = {
      ...ok,
      error: "No Secret Service is running. Start a keyring daemon",
      problem: { cause: "no_secret_service", title: "No Secret Service is running", fix: "Start a keyring daemon: gnome-keyring, then try again.", detail: "ServiceUnknown" },
    };
    render(<App />, root);
    const alert = await el('[role="alert"]');
    expect(alert.getAttribute("data-vault-screen")).toBe("no_secret_service");
    expect(alert.textContent).toMatch(/No Secret Service is running/);
    expect(alert.textContent).toMatch(/gnome-keyring/);
    expect($("[data-tenant]")).toBeNull();
    expect(text("main h1")).not.toMatch(/All connections/);
    state.status = ok;
    click((await el('[data-action="retry"]')) as HTMLElement);
    await el('[data-tenant="acme-corp"]');
    expect($("[data-vault-screen]")).toBeNull();
  });

  it("shows the locked screen after Lock now, and unlocks (agent and window) on Unlock", async () => {
    const { api } = await import("./api");
    const ok = state.status;
    render(null, root);
    render(<App />, root);
    await el('[data-tenant="acme-corp"]');
    // The tray's "Lock now": the backend closed the vault and says so.
    state.unlocked = ok;
    state.status = {
      ...ok,
      error: "Grantkeeper is locked",
      problem: { cause: "locked", title: "Grantkeeper is locked", fix: "Select Unlock to open the vault from the keychain again.", detail: "" },
    };
    for (const f of state.vaultLocked) f();
    const alert = await el('[data-vault-screen="locked"]');
    expect(alert.textContent).toMatch(/Vault locked/);
    expect(alert.textContent).toMatch(/Grantkeeper is locked/);
    expect($("[data-tenant]")).toBeNull();
    const button = (await el('[data-action="retry"]')) as HTMLElement;
    expect(button.textContent).toMatch(/Unlock/);
    click(button);
    await el('[data-tenant="acme-corp"]');
    expect(api.unlockVault).toHaveBeenCalledTimes(1);
    expect($("[data-vault-screen]")).toBeNull();
  });

  it("shows the demo banner in demo mode", async () => {
    render(null, root);
    state.status = { ...state.status, demo: true };
    render(<App />, root);
    expect((await el("[data-demo]")).textContent).toMatch(/127\.0\.0\.1/);
    expect(text("[data-demo]")).toMatch(/Grantkeeper demo provider/);
  });
});

describe("connections table", () => {
  it("renders only the visible rows of 10,000", async () => {
    state.connections = Array.from({ length: 10_000 }, (_, i) =>
      conn({ id: `id-${i}`, tenant_id: "t-acme", name: `conn-${String(i).padStart(5, "0")}`, access_expires_at: now + i * 1000 }),
    );
    render(null, root);
    render(<App />, root);
    await el('[data-connection="conn-00000"]');
    const rendered = $$("tr.row").length;
    expect(rendered).toBeGreaterThan(10);
    expect(rendered).toBeLessThan(60);
    expect($("table.connections")!.getAttribute("aria-rowcount")).toBe("10001");
    // The bottom spacer stands in for the rest.
    const spacers = $$("tr.spacer td");
    expect(spacers.length).toBe(1);
    expect(parseInt(spacers[0].style.height, 10)).toBe((10_000 - rendered) * 40);
  });

  it("sorts by a header and sets aria-sort", async () => {
    await el('[data-connection="crm"]');
    const th = $('th[data-sort="name"]')!;
    expect(th.getAttribute("aria-sort")).toBe("none");
    click(th.querySelector("button")!);
    await waitFor(() => th.getAttribute("aria-sort") === "ascending");
    expect($$("tr.row").map((r) => r.dataset.connection)).toEqual(["crm", "old"]);
    click(th.querySelector("button")!);
    await waitFor(() => th.getAttribute("aria-sort") === "descending");
    expect($$("tr.row").map((r) => r.dataset.connection)).toEqual(["old", "crm"]);
    for (const k of ["account", "status", "access", "refresh", "last_used"]) expect($(`th[data-sort="${k}"]`)).not.toBeNull();
  });

  it("filters by text and status", async () => {
    await el('[data-connection="crm"]');
    type($<HTMLInputElement>('input[data-filter="connections"]')!, "ann@");
    await waitFor(() => $$("tr.row").length === 1);
    expect($('[data-connection="crm"]')).not.toBeNull();
    type($<HTMLInputElement>('input[data-filter="connections"]')!, "");
    choose($<HTMLSelectElement>('select[data-filter="status"]')!, "needs_reconsent");
    await waitFor(() => $$("tr.row").length === 1 && $('[data-connection="old"]'));
  });

  it("moves with arrows and opens with Enter", async () => {
    const first = (await el('[data-connection="crm"]')) as HTMLElement;
    first.focus();
    key(first, "ArrowDown");
    await waitFor(() => document.activeElement?.getAttribute("data-connection") === "old");
    key(document.activeElement!, "Enter");
    await el('section.detail [data-scope="openid"]');
    expect(text("section.detail h2")).toBe("acme-corp/old");
  });
});

describe("detail", () => {
  async function openCrm() {
    click((await el('[data-connection="crm"] td')) as HTMLElement);
    await el('[data-scope="openid"]');
  }

  it("shows the newest 50 events, 50 more per click", async () => {
    const base = detailOf(state.connections.find((c) => c.id === "c-crm")!);
    const many = Array.from({ length: 120 }, (_, i) => ({ ...base.history[0], seq: 1000 - i, ts: now - i * 60_000 }));
    vi.mocked(api.connectionDetail).mockImplementationOnce(async () => ({ ...base, history: many }));
    await openCrm();
    await waitFor(() => $$("ol.history li").length === 50);
    const more = () => $<HTMLButtonElement>('[data-action="more-history"]');
    expect(more()!.textContent).toBe("Show 50 more of 120");
    click(more()!);
    await waitFor(() => $$("ol.history li").length === 100);
    expect(more()!.textContent).toBe("Show 20 more of 120");
    click(more()!);
    await waitFor(() => $$("ol.history li").length === 120);
    expect(more()).toBeNull();
    expect($("ol.history li:last-child")!.textContent).toMatch(/handed out/);
  });

  it("shows scopes, metadata, claims, chart and history", async () => {
    await openCrm();
    expect(text('[data-scope="openid"]')).toMatch(/low/);
    expect(text('[data-scope="offline_access"]')).toMatch(/medium/);
    expect(text('[data-scope="api:write"]')).toMatch(/\?/);
    expect(text('[data-scope="api:write"]')).toMatch(/requested, not granted/);
    expect(text('[data-scope="extra"]')).toMatch(/granted without asking/);
    const history = text(".history");
    expect(history).toMatch(/handed out/);
    expect(history).toMatch(/nightly-sync/);
    expect(history).toMatch(/consented/);
    expect(history).toMatch(/pid 123 \/usr\/bin\/python3/);
    expect($$("ol.history li[data-kind]").map((l) => l.dataset.kind)).toEqual(["handed_out", "refreshed", "consented"]);
    const chart = $("svg.daily-chart")!;
    expect(chart.getAttribute("aria-label")).toMatch(/3 hand-outs, 1 refresh/);
    expect(chart.querySelectorAll("rect.bar").length).toBe(2);
    expect(text("section.detail")).toMatch(/opaque token, cannot be decoded offline/);
    expect(text('[data-claims="id_token"]')).toMatch(/sub-1/);
    const link = $<HTMLAnchorElement>('[data-meta="instance_url"] a')!;
    click(link);
    expect(api.openProviderLink).toHaveBeenCalledWith({ tenant: "t-acme", connection: "c-crm" }, "https://acme.my.example.com");
    expect($('[data-meta="realm"] a')).toBeNull();
  });

  it("says when the grant's tokens are bound to this device's DPoP key", async () => {
    await openCrm();
    expect($("[data-binding]")).toBeNull();
    state.connections = [{ ...crm, metadata: { ...crm.metadata, token_binding: "dpop" } }, old];
    state.vaultChanged.forEach((f) => f(98));
    await waitFor(() => $("[data-binding]") !== null);
    expect(text('[data-binding="dpop"]')).toMatch(/this device's DPoP key; useless without it/);
  });

  it("says when the grant's tokens are bound to the app's client certificate", async () => {
    state.connections = [{ ...crm, metadata: { ...crm.metadata, token_binding: "certificate" } }, old];
    state.vaultChanged.forEach((f) => f(97));
    await openCrm();
    await waitFor(() => $("[data-binding]") !== null);
    expect(text('[data-binding="certificate"]')).toMatch(/client certificate, its key in this device's keychain/);
    expect($('[data-binding="dpop"]')).toBeNull();
  });

  it("turns the token actions off on a revoked grant", async () => {
    state.connections = [{ ...crm, status: "revoked" }, old];
    state.vaultChanged.forEach((f) => f(99));
    await waitFor(() => text('[data-connection="crm"]').includes("Revoked"));
    await openCrm();
    const button = (a: string) => $<HTMLButtonElement>(`section.detail [data-action="${a}"]`)!;
    for (const a of ["refresh", "copy", "reveal", "revoke", "introspect"]) {
      expect(button(a).disabled, a).toBe(true);
      expect(button(a).title, a).toMatch(/revoked/i);
    }
    for (const a of ["reconsent", "delete"]) expect(button(a).disabled, a).toBe(false);
  });

  it("filters the history by kind", async () => {
    await openCrm();
    choose($<HTMLSelectElement>('select[data-filter="history-kind"]')!, "refreshed");
    await waitFor(() => (api.connectionHistory as ReturnType<typeof vi.fn>).mock.calls.length > 0);
    expect(api.connectionHistory).toHaveBeenCalledWith({ tenant: "t-acme", connection: "c-crm" }, "refreshed", null, 200);
    await waitFor(() => $$("ol.history li").length === 0);
  });

  it("reveals the token for 30 s only", async () => {
    await openCrm();
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    click($('[data-action="reveal"]')!);
    await vi.waitFor(() => expect($('[data-secret="access-token"]')?.textContent).toBe("tok-SECRET-123"));
    vi.advanceTimersByTime(29_000);
    await Promise.resolve();
    expect($('[data-secret="access-token"]')).not.toBeNull();
    vi.advanceTimersByTime(1_500);
    await vi.waitFor(() => expect($('[data-secret="access-token"]')).toBeNull());
    vi.useRealTimers();
  });

  it("drops a revealed token when the detail closes", async () => {
    await openCrm();
    click($('[data-action="reveal"]')!);
    await el('[data-secret="access-token"]');
    key(window, "Escape");
    await waitFor(() => !$("section.detail"));
    await openCrm();
    expect($('[data-secret="access-token"]')).toBeNull();
  });

  it("copies through the backend and says when the clipboard clears", async () => {
    await openCrm();
    click($('[data-action="copy"]')!);
    await waitFor(() => text('[role="status"]').includes("Copied — the clipboard clears in 30 s"));
    expect(document.body.innerHTML).not.toContain("tok-SECRET");
  });

  it("confirms before revoking and deleting", async () => {
    await openCrm();
    click($('[data-action="revoke"]')!);
    const dialog = await el('[role="dialog"]');
    expect(dialog.querySelector("[data-cancel]")).not.toBeNull();
    expect(api.revokeConnection).not.toHaveBeenCalled();
    click(dialog.querySelector("[data-confirm]")!);
    await waitFor(() => (api.revokeConnection as ReturnType<typeof vi.fn>).mock.calls.length === 1);
    await waitFor(() => !$('[role="dialog"]'));
    await el("[data-outcome]");

    click($('[data-action="delete"]')!);
    const del = await el('[role="dialog"]');
    const box = del.querySelector<HTMLInputElement>('input[type="checkbox"]')!;
    expect(box.checked).toBe(true);
    click(box);
    await tick();
    expect(box.checked).toBe(false);
    click(del.querySelector("[data-confirm]")!);
    await waitFor(() => (api.deleteConnection as ReturnType<typeof vi.fn>).mock.calls.length === 1);
    expect(api.deleteConnection).toHaveBeenCalledWith({ tenant: "t-acme", connection: "c-crm" }, false);
    await waitFor(() => !$("section.detail"));
  });

  it("Esc closes a confirm dialog first, then the detail", async () => {
    await openCrm();
    click($('[data-action="revoke"]')!);
    const dialog = await el('[role="dialog"]');
    key(dialog.querySelector("[data-cancel]")!, "Escape");
    await waitFor(() => !$('[role="dialog"]'));
    expect($("section.detail")).not.toBeNull();
    key(window, "Escape");
    await waitFor(() => !$("section.detail"));
  });

  it("offers Cancel for a refresh without an answer after a second, and says nothing was stored", async () => {
    await openCrm();
    let fail!: (e: unknown) => void;
    (api.refreshConnection as ReturnType<typeof vi.fn>).mockImplementationOnce(() => new Promise((_, rej) => (fail = rej)));
    const started = Date.now();
    click($('[data-action="refresh"]')!);
    await waitFor(() => (api.refreshConnection as ReturnType<typeof vi.fn>).mock.calls.length === 1);
    expect($("[data-progress]")).toBeNull();
    const progress = await waitFor(() => $("[data-progress]"), 3000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(progress.getAttribute("data-progress")).toBe("refresh");
    expect(progress.textContent).toMatch(/the provider has not answered yet/);
    const operation = (api.refreshConnection as ReturnType<typeof vi.fn>).mock.calls[0][1] as string;
    expect(operation).toMatch(/^[0-9a-f]{32}$/);
    click($('[data-action="cancel-refresh"]')!);
    await waitFor(() => (api.cancelRefresh as ReturnType<typeof vi.fn>).mock.calls.length === 1);
    expect(api.cancelRefresh).toHaveBeenCalledWith(operation);
    await waitFor(() => text("[data-progress]").includes("Cancelling…"));
    fail({ message: "cancelled; nothing was stored", offline: false, cancelled: true });
    await el("[data-cancelled]");
    expect(text("[data-cancelled]")).toBe("Refresh cancelled. Nothing was stored: acme-corp/crm keeps its current tokens.");
    expect($("[data-progress]")).toBeNull();
    expect($('section.detail [role="alert"]')).toBeNull();
    expect($("[data-offline]")).toBeNull();
    // A fast refresh shows no progress at all.
    click($('[data-action="refresh"]')!);
    await waitFor(() => text('[role="status"]').includes("Refreshed acme-corp/crm."));
    expect($("[data-cancelled]")).toBeNull();
    await new Promise((r) => setTimeout(r, 1100));
    expect($("[data-progress]")).toBeNull();
  });

  it("shows a refresh that timed out with the core's message", async () => {
    await openCrm();
    (api.refreshConnection as ReturnType<typeof vi.fn>).mockRejectedValueOnce({
      message: "no answer within the 30 s allowed; nothing was stored. Try again later",
      offline: false,
      cancelled: false,
    });
    click($('[data-action="refresh"]')!);
    await waitFor(() => text('section.detail [role="alert"]').includes("no answer within the 30 s allowed; nothing was stored"));
    expect($("[data-cancelled]")).toBeNull();
  });

  it("lets a copy that must refresh first be cancelled", async () => {
    await openCrm();
    let fail!: (e: unknown) => void;
    (api.copyAccessToken as ReturnType<typeof vi.fn>).mockImplementationOnce(() => new Promise((_, rej) => (fail = rej)));
    click($('[data-action="copy"]')!);
    expect((await waitFor(() => $("[data-progress]"), 3000)).getAttribute("data-progress")).toBe("copy");
    click($('[data-action="cancel-refresh"]')!);
    await waitFor(() => (api.cancelRefresh as ReturnType<typeof vi.fn>).mock.calls.length === 1);
    expect(api.cancelRefresh).toHaveBeenCalledWith((api.copyAccessToken as ReturnType<typeof vi.fn>).mock.calls[0][1]);
    fail({ message: "cancelled; nothing was stored", offline: false, cancelled: true });
    await waitFor(() => text("[data-cancelled]").includes("Nothing was copied and nothing was stored."));
  });

  it("asks about a hand-out: Allow once, Deny by Escape, closed when it timed out", async () => {
    await el('[data-connection="crm"]');
    const ask = (id: number, program: string | null) => {
      for (const f of state.asked) f({ id, question: { tenant: "acme-corp", connection: "crm", program, pid: program ? 4242 : null, wait_ms: 60000 } });
    };
    ask(1, "/usr/bin/python3");
    ask(2, null);
    const dialog = await el('[data-hand-out-question="1"]');
    expect(dialog.getAttribute("role")).toBe("dialog");
    expect(text("[data-question-program]")).toBe("/usr/bin/python3");
    expect(dialog.textContent).toContain("(pid 4242)");
    expect(text("[data-question-target]")).toBe("acme-corp/crm");
    // Deny has the focus: Enter on a stray keypress never allows.
    expect(document.activeElement?.getAttribute("data-answer")).toBe("deny");
    click($('[data-answer="allow"]')!);
    await waitFor(() => (api.answerHandOut as ReturnType<typeof vi.fn>).mock.calls.length === 1);
    expect(api.answerHandOut).toHaveBeenCalledWith(1, true);
    // The next question waits its turn; Escape denies it.
    const second = await el('[data-hand-out-question="2"]');
    expect(text("[data-question-program]")).toBe("An unknown program");
    key(second, "Escape");
    await waitFor(() => (api.answerHandOut as ReturnType<typeof vi.fn>).mock.calls.length === 2);
    expect(api.answerHandOut).toHaveBeenLastCalledWith(2, false);
    await waitFor(() => !$("[data-hand-out-question]"));
    // A question that timed out in the core closes by itself, unanswered.
    ask(3, "/usr/bin/node");
    await el('[data-hand-out-question="3"]');
    for (const f of state.questionClosed) f(3);
    await waitFor(() => !$("[data-hand-out-question]"));
    expect(api.answerHandOut).toHaveBeenCalledTimes(2);
  });

  it("says so when a cancelled refresh was answered after all", async () => {
    await openCrm();
    let fail!: (e: unknown) => void;
    (api.refreshConnection as ReturnType<typeof vi.fn>).mockImplementationOnce(() => new Promise((_, rej) => (fail = rej)));
    click($('[data-action="refresh"]')!);
    click(await waitFor(() => $('[data-action="cancel-refresh"]'), 3000));
    fail({ message: "cancelled; nothing was stored", offline: false, cancelled: true });
    await el("[data-cancelled]");
    const operation = (api.refreshConnection as ReturnType<typeof vi.fn>).mock.calls[0][1] as string;
    const message = "The provider answered the refresh of acme-corp/crm after you cancelled it: its new tokens were stored.";
    // Another operation's late answer leaves this notice alone.
    for (const f of state.refreshedLate) f({ operation: "other", tenant: "t-acme", connection: "c-crm", message });
    await waitFor(() => text('[role="status"]').includes("after you cancelled it"));
    expect($('[role="status"]')!.getAttribute("data-tone")).toBe("warn");
    expect($("[data-cancelled]")).not.toBeNull();
    for (const f of state.refreshedLate) f({ operation, tenant: "t-acme", connection: "c-crm", message });
    await waitFor(() => !$("[data-cancelled]"));
    expect(text('[role="status"]')).toBe(message);
  });

  it("warns when the provider did not confirm a revocation", async () => {
    await openCrm();
    (api.revokeConnection as ReturnType<typeof vi.fn>).mockResolvedValueOnce({
      revoked_at_provider: false,
      detail: "not revoked at the provider: the revocation endpoint refused (http_503)",
      caveat: "Access tokens already issued may keep working until they expire.",
    });
    click($('[data-action="revoke"]')!);
    click((await el('[role="dialog"]')).querySelector("[data-confirm]")!);
    const box = await el('[data-outcome="unconfirmed"]');
    expect(box.classList.contains("warn")).toBe(true);
    expect(box.textContent).toMatch(/Not revoked at the provider — only forgotten here\./);
    expect(box.textContent).toMatch(/http_503/);
    expect(box.textContent).toMatch(/Revoke it at the provider yourself/);
    expect(text('[role="status"]')).toMatch(/acme-corp\/crm was forgotten here, but the provider did not confirm the revocation/);
    expect($('[role="status"]')!.dataset.tone).toBe("warn");
    expect(text('[role="status"]')).not.toMatch(/^Revoked/);
  });

  it("warns when a delete's revocation was not confirmed", async () => {
    await openCrm();
    (api.deleteConnection as ReturnType<typeof vi.fn>).mockResolvedValueOnce({
      revoked_at_provider: false,
      detail: "not revoked at the provider: the revocation endpoint refused (http_503)",
      caveat: "tokens may live on",
    });
    click($('[data-action="delete"]')!);
    click((await el('[role="dialog"]')).querySelector("[data-confirm]")!);
    await waitFor(() => !$("section.detail"));
    await waitFor(() => text('[role="status"]').includes("Deleted acme-corp/crm here, not revoked at the provider: the revocation endpoint refused (http_503)."));
    expect($('[role="status"]')!.dataset.tone).toBe("warn");
  });

  it("shows progress, then the offline banner and a hint when the network fails", async () => {
    await openCrm();
    let fail!: (e: unknown) => void;
    (api.refreshConnection as ReturnType<typeof vi.fn>).mockImplementationOnce(() => new Promise((_, rej) => (fail = rej)));
    const btn = $<HTMLButtonElement>('[data-action="refresh"]')!;
    click(btn);
    await waitFor(() => btn.getAttribute("aria-busy") === "true" && btn.disabled);
    expect(btn.querySelector(".spinner")).not.toBeNull();
    fail({ message: "the provider cannot be reached", offline: true });
    await el("[data-offline]");
    expect(text("[data-offline]")).toMatch(/Offline — connect, refresh, revoke and introspect need the network; everything else works\./);
    expect(text('section.detail [role="alert"]')).toMatch(/Check the network; everything else works offline\./);
    expect(btn.disabled).toBe(false);
    // The next success clears it.
    click($('[data-action="introspect"]')!);
    await waitFor(() => !$("[data-offline]"));
    await el("[data-introspection]");
  });

  it("starts a re-consent in the wizard's waiting state", async () => {
    await openCrm();
    click($('[data-action="reconsent"]')!);
    await el('[data-wizard] [data-wizard-state="waiting"]');
    expect(api.startReconsent).toHaveBeenCalledWith({ tenant: "t-acme", connection: "c-crm" });
    for (const f of state.connectFinished) f({ flow: "flow-2", tenant: "t-acme", connection: crm, error: null, cancelled: false });
    await waitFor(() => !$("[data-wizard]"));
  });
});

describe("memory", () => {
  /** A full collection (V8 with --expose-gc), run until weak references to garbage clear. */
  async function collect() {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    for (let i = 0; i < 4; i++) {
      // A weak reference's target stays alive until the job that made or read it ends.
      await new Promise((r) => setTimeout(r, 0));
      gc();
    }
  }

  // A closure the window keeps (an effect, a memo, a callback) holds the scope of the render
  // that made it, with everything that render's closures captured: a list captured there lives
  // as long as the closure. Both V8 and the window's JavaScriptCore share one scope per call.
  it("keeps only the list it shows, after reloads, tenant switches, a detail and the search", async () => {
    // Rows are found without selectors: jsdom's selector engine keeps its last answer to each
    // query, and an old row kept there would keep the list its handlers were made with.
    const shownRow = (name: string) => [...document.getElementsByTagName("tr")].find((r) => r.dataset.connection === name);
    render(null, root);
    const lists: WeakRef<ConnectionTable>[] = [];
    const listConnections = api.listConnections as ReturnType<typeof vi.fn>;
    const usual = listConnections.getMockImplementation()!;
    onTestFinished(() => void listConnections.mockImplementation(usual));
    listConnections.mockImplementation(async (t: string | null) => {
      const table = ConnectionTable.of(state.connections.filter((c) => t === null || c.tenant_id === t).map((c) => rowOf(c)));
      lists.push(new WeakRef(table));
      return table;
    });
    /** The `n`th list asked for, and then shown. */
    const shown = async (n: number) => {
      await waitFor(() => lists.length === n);
      await new Promise((r) => setTimeout(r, 20));
      return waitFor(() => shownRow("crm"));
    };
    render(<App />, root);
    await shown(1);
    click(await el('[data-tenant="acme-corp"]'));
    await shown(2);
    click(await el("[data-tenant-all]"));
    click((await shown(3)).cells[0]);
    await el('[data-scope="openid"]');
    state.connections = [crm, old, conn({ id: "c-new", tenant_id: "t-acme", name: "fresh" })];
    for (const f of state.vaultChanged) f(20);
    await waitFor(() => shownRow("fresh"));
    key(document, "k", { ctrlKey: true });
    await el("[data-search-result]");
    key(document.activeElement ?? document, "Escape");
    await waitFor(() => !$("[data-search-result]"));
    expect(lists).toHaveLength(4);

    // The mock's own record of what it returned would keep every list.
    listConnections.mockClear();
    const garbage = new WeakRef({ rows: 1 });
    await collect();
    expect(garbage.deref()).toBeUndefined();
    expect(lists.map((l) => l.deref() !== undefined)).toEqual([false, false, false, true]);
  });
});

describe("live updates", () => {
  it("reloads list and detail on vault-changed without dropping them", async () => {
    click((await el('[data-connection="crm"] td')) as HTMLElement);
    await el('[data-scope="openid"]');
    const calls = (api.listConnections as ReturnType<typeof vi.fn>).mock.calls.length;
    await waitFor(() => window.__gkPerf.marks.some((m) => m.name === "connections"));
    await new Promise((r) => setTimeout(r, 50));
    const marks = window.__gkPerf.marks.filter((m) => m.name === "connections").length;
    state.connections = [{ ...crm, last_used_at: now }, old, conn({ id: "c-new", tenant_id: "t-acme", name: "fresh" })];
    for (const f of state.vaultChanged) {
      f(10);
      f(11);
    }
    await el('[data-connection="fresh"]');
    expect((api.listConnections as ReturnType<typeof vi.fn>).mock.calls.length).toBe(calls + 1);
    expect($("section.detail")).not.toBeNull();
    expect($('[data-connection="crm"]')!.classList.contains("selected")).toBe(true);
    // A live reload is not a user's list load: no new mark.
    await new Promise((r) => setTimeout(r, 50));
    expect(window.__gkPerf.marks.filter((m) => m.name === "connections")).toHaveLength(marks);
  });

  it("closes the detail of a connection deleted elsewhere", async () => {
    click((await el('[data-connection="crm"] td')) as HTMLElement);
    await el('[data-scope="openid"]');
    state.connections = [old];
    for (const f of state.vaultChanged) f(12);
    await waitFor(() => !$("section.detail"));
    expect($('[data-connection="crm"]')).toBeNull();
  });
});

describe("search", () => {
  it("opens with Ctrl+K and finds connections, tenants and actions", async () => {
    await el('[data-connection="crm"]');
    key(window, "k", { ctrlKey: true });
    const dialog = await el("[data-search]");
    const input = dialog.querySelector<HTMLInputElement>("input")!;
    expect(document.activeElement).toBe(input);
    expect($$("[data-search-result]").map((r) => r.dataset.searchResult)).toContain("action:review");
    type(input, "ann@acme");
    await waitFor(() => $$("[data-search-result]").length === 1);
    expect($("[data-search-result]")!.dataset.searchResult).toBe("connection:acme-corp/crm");
    key(input, "Enter");
    await el('[data-scope="openid"]');
    expect($("[data-search]")).toBeNull();
  });

  it("moves with arrows and closes with Esc", async () => {
    await el('[data-connection="crm"]');
    click($('[data-action="search"]')!);
    const input = (await el("[data-search] input")) as HTMLInputElement;
    type(input, "glob");
    await waitFor(() => $("[data-search-result]")?.dataset.searchResult === "tenant:globex");
    key(input, "ArrowDown");
    key(input, "Escape");
    await waitFor(() => !$("[data-search]"));
    key(window, "k", { ctrlKey: true });
    const again = (await el("[data-search] input")) as HTMLInputElement;
    type(again, "grant review");
    await waitFor(() => $("[data-search-result]")?.dataset.searchResult === "action:review");
    key(again, "Enter");
    await el('[data-view="review"]');
  });
});

describe("connect wizard", () => {
  it("registers a new app and waits for the browser", async () => {
    await el('[data-connection="crm"]');
    click($('[data-action="connect"]')!);
    const wizard = await el("[data-wizard]");
    const tenant = wizard.querySelector<HTMLSelectElement>('select[name="tenant"]')!;
    expect(tenant.value).toBe("t-acme");
    // Existing app preselected, scopes from its preset with its defaults checked.
    await waitFor(() => wizard.querySelector<HTMLSelectElement>('select[name="provider_app"]')!.value === "app-idp");
    await waitFor(() => wizard.querySelector<HTMLInputElement>('[data-scope-option="openid"]')?.checked);
    expect(wizard.querySelector<HTMLInputElement>('[data-scope-option="admin"]')!.checked).toBe(false);
    // A new app from the catalog.
    choose(wizard.querySelector<HTMLSelectElement>('select[name="provider_app"]')!, "");
    await el('[data-source="preset"]');
    expect($('[data-source="issuer"]')).not.toBeNull();
    expect($('[data-source="explicit"]')).not.toBeNull();
    choose($<HTMLSelectElement>('select[name="preset"]')!, "generic-oidc");
    const host = await el('input[data-var="issuer_host"]');
    type(host as HTMLInputElement, "id.example.com");
    type($<HTMLInputElement>('input[name="client_id"]')!, "my-client");
    expect($<HTMLInputElement>('input[name="client_secret"]')!.type).toBe("password");
    // Only the methods the catalog says the provider accepts; the default sends none.
    const methods = [...$<HTMLSelectElement>('select[name="client_auth"]')!.options].map((o) => o.value);
    expect(methods).toEqual(["", "client_secret_basic", "none"]);
    await waitFor(() => $<HTMLInputElement>('[data-scope-option="offline_access"]')?.checked);
    click($('[data-scope-option="admin"]')!);
    type($<HTMLInputElement>('input[name="extra_scopes"]')!, "api:read");
    expect($<HTMLSelectElement>('select[name="redirect"]')!.value).toBe("loopback");
    type($<HTMLInputElement>('input[name="name"]')!, "crm2");
    await tick();
    expect(text("[data-wizard]")).toMatch(/Asking for: openid offline_access admin api:read/);
    click($('[data-action="open-browser"]')!);
    await el('[data-wizard-state="waiting"]');
    expect(api.addProviderApp).toHaveBeenCalledWith("t-acme", {
      name: "generic-oidc",
      preset: "generic-oidc",
      endpoints: { kind: "preset", vars: { issuer_host: "id.example.com" } },
      client_id: "my-client",
      client_secret: null,
      scopes: ["openid", "offline_access", "admin", "api:read"],
      redirect: "loopback",
      port: null,
      relay_url: null,
    });
    expect(api.startConnect).toHaveBeenCalledWith("t-acme", {
      name: "crm2",
      provider_app: "app-new",
      scopes: ["openid", "offline_access", "admin", "api:read"],
      redirect: "loopback",
      timeout_secs: null,
    });
    expect(text('[data-wizard-state="waiting"]')).toMatch(/Waiting for you to finish signing in in your browser…/);
    expect(text('[data-wizard-state="waiting"]')).toMatch(/Browser could not reach Grantkeeper\? Paste the address it shows/);
    expect(text('[data-wizard-state="waiting"] .countdown')).toMatch(/^[45]:\d\d$/);

    // Paste fallback.
    type($<HTMLInputElement>('input[name="pasted_url"]')!, "http://127.0.0.1:5555/callback?code=x&state=y");
    await tick();
    click($('[data-action="paste"]')!);
    await waitFor(() => (api.pasteRedirect as ReturnType<typeof vi.fn>).mock.calls.length === 1);
    expect(api.pasteRedirect).toHaveBeenCalledWith("flow-1", "http://127.0.0.1:5555/callback?code=x&state=y");

    // A failure shows the error state; Try again returns to the form.
    for (const f of state.connectFinished) f({ flow: "flow-1", tenant: "t-acme", connection: null, error: { message: "The sign-in timed out after 300 s.", offline: false, cancelled: false }, cancelled: false });
    await el('[data-wizard-state="error"]');
    expect(text('[data-wizard-state="error"]')).toMatch(/timed out/);
    click($('[data-action="retry"]')!);
    await el('[data-wizard] form');
    // The app now exists: it is selected, so a retry does not register it again.
    expect($<HTMLSelectElement>('select[name="provider_app"]')!.value).toBe("app-new");
  });

  it("offers every method for an unknown provider, and Choose… fills the key file's path", async () => {
    await el('[data-connection="crm"]');
    click($('[data-action="connect"]')!);
    const wizard = await el("[data-wizard]");
    await waitFor(() => wizard.querySelector<HTMLSelectElement>('select[name="provider_app"]')!.value === "app-idp");
    choose(wizard.querySelector<HTMLSelectElement>('select[name="provider_app"]')!, "");
    click(await el('[data-source="issuer"]'));
    type((await el('input[name="issuer"]')) as HTMLInputElement, "https://id.example.com");
    // A provider the catalog does not know: every method, each saying what it is.
    const auth = $<HTMLSelectElement>('select[name="client_auth"]')!;
    expect([...auth.options].map((o) => o.value)).toContain("self_signed_tls_client_auth");
    expect([...auth.options].find((o) => o.value === "tls_client_auth")!.textContent).toMatch(/Client certificate/);
    choose(auth, "private_key_jwt");
    click(await el('[data-choose-file="key_file"]'));
    await waitFor(() => $<HTMLInputElement>('input[name="key_file"]')!.value === "/home/u/client-key.pem");
    // What the saved app shows before the sign-in is tested in the real window (setup-window e2e).
  });

  it("validates before opening the browser", async () => {
    await el('[data-connection="crm"]');
    click($('[data-action="connect"]')!);
    await waitFor(() => $<HTMLSelectElement>('select[name="provider_app"]')?.value === "app-idp");
    choose($<HTMLSelectElement>('select[name="provider_app"]')!, "");
    await el('[data-source="issuer"]');
    click($('[data-source="issuer"]')!);
    const issuer = (await el('input[name="issuer"]')) as HTMLInputElement;
    type(issuer, "not a url");
    type($<HTMLInputElement>('input[name="name"]')!, "bad name");
    await tick();
    click($('[data-action="open-browser"]')!);
    await waitFor(() => issuer.getAttribute("aria-invalid") === "true");
    expect(api.addProviderApp).not.toHaveBeenCalled();
    expect($('input[name="name"]')!.getAttribute("aria-invalid")).toBe("true");
  });

  it("finishes on connect-finished: closes and opens the new connection", async () => {
    await el('[data-connection="crm"]');
    click($('[data-action="connect"]')!);
    await waitFor(() => $<HTMLSelectElement>('select[name="provider_app"]')?.value === "app-idp");
    type($<HTMLInputElement>('input[name="name"]')!, "newone");
    await tick();
    click($('[data-action="open-browser"]')!);
    await el('[data-wizard-state="waiting"]');
    expect(api.addProviderApp).not.toHaveBeenCalled();
    const made = conn({ id: "c-newone", tenant_id: "t-acme", name: "newone", provider_app_id: "app-idp" });
    state.connections = [crm, old, made];
    for (const f of state.connectFinished) f({ flow: "flow-1", tenant: "t-acme", connection: made, error: null, cancelled: false });
    await waitFor(() => !$("[data-wizard]"));
    await waitFor(() => text("section.detail h2") === "acme-corp/newone");
    expect(text("main h1")).toBe("Acme Corp");
    await el('[data-connection="newone"].selected');
  });

  it("cancels back to the form", async () => {
    await el('[data-connection="crm"]');
    click($('[data-action="connect"]')!);
    await waitFor(() => $<HTMLSelectElement>('select[name="provider_app"]')?.value === "app-idp");
    type($<HTMLInputElement>('input[name="name"]')!, "x1");
    await tick();
    click($('[data-action="open-browser"]')!);
    await el('[data-action="cancel"]');
    click($('[data-action="cancel"]')!);
    expect(api.cancelConnect).toHaveBeenCalledWith("flow-1");
    await el("[data-wizard] form");
    expect($<HTMLInputElement>('input[name="name"]')!.value).toBe("x1");
  });
});

describe("grant review", () => {
  it("filters, selects, bulk-revokes and exports", async () => {
    click(await el('[data-nav="review"]'));
    await el('tr[data-grant="acme-corp/crm"]');
    expect(text("main h1")).toBe("Grant review");
    expect(text('tr[data-grant="acme-corp/old"]')).toMatch(/high/);
    const bulk = $<HTMLButtonElement>('[data-action="bulk-revoke"]')!;
    expect(bulk.disabled).toBe(true);

    click($('input[type="checkbox"][data-review-filter="high_risk"]')!);
    await waitFor(() => (api.grantReview as ReturnType<typeof vi.fn>).mock.calls.some((c) => c[0].high_risk === true));
    type($<HTMLInputElement>('input[type="number"][data-review-filter="unused_days"]')!, "30");
    await waitFor(() => (api.grantReview as ReturnType<typeof vi.fn>).mock.calls.some((c) => c[0].unused_days === 30), 3000);
    expect($('input[type="number"][data-review-filter="refresh_expiring_days"]')).not.toBeNull();
    expect($('input[type="checkbox"][data-review-filter="needs_reconsent"]')).not.toBeNull();
    const flag = $<HTMLSelectElement>('select[data-review-filter="flag"]')!;
    expect([...flag.options].map((o) => o.text)).toContain("Refreshes failing");
    choose(flag, "refresh_failures");
    await waitFor(() =>
      (api.grantReview as ReturnType<typeof vi.fn>).mock.calls.some((c) => c[0].flag?.kind === "refresh_failures"),
    );
    choose(flag, "any");
    await waitFor(() => (api.grantReview as ReturnType<typeof vi.fn>).mock.calls.some((c) => c[0].flag === "any"));
    choose(flag, "");
    await waitFor(() => (api.grantReview as ReturnType<typeof vi.fn>).mock.calls.at(-1)![0].flag === null);

    click($('input[data-select-all]')!);
    await waitFor(() => !bulk.disabled);
    click(bulk);
    const dialog = await el('[role="dialog"]');
    expect(dialog.textContent).toMatch(/Revoke 2 grants/);
    expect(dialog.textContent).toMatch(/acme-corp\/crm/);
    click(dialog.querySelector("[data-confirm]")!);
    await el("[data-bulk-results]");
    expect(api.revokeMany).toHaveBeenCalledWith([
      { tenant: "t-acme", connection: "c-crm" },
      { tenant: "t-acme", connection: "c-old" },
    ]);
    expect(text('[data-result="acme-corp/crm"]')).toMatch(/revoked at the provider/);

    click($('[data-action="export-csv"]')!);
    await waitFor(() => text('[role="status"]').includes("Saved 2 grants to /home/u/Downloads/review.csv"));
    expect((api.exportReview as ReturnType<typeof vi.fn>).mock.calls[0][1]).toBe("csv");
    click($('[data-action="export-json"]')!);
    await waitFor(() => text('[role="status"]').includes("review.json"));
  });

  it("counts only confirmed revocations and warns about the rest", async () => {
    (api.revokeMany as ReturnType<typeof vi.fn>).mockImplementationOnce(async (grants: { connection: string }[]) =>
      grants.map((g) => ({
        connection: g.connection,
        outcome: { revoked_at_provider: false, detail: "not revoked at the provider: the revocation endpoint refused (http_503)", caveat: "may live on" },
        error: null,
      })),
    );
    click(await el('[data-nav="review"]'));
    await el('tr[data-grant="acme-corp/crm"]');
    click($('input[data-select-all]')!);
    await waitFor(() => !$<HTMLButtonElement>('[data-action="bulk-revoke"]')!.disabled);
    click($('[data-action="bulk-revoke"]')!);
    click((await el('[role="dialog"]')).querySelector("[data-confirm]")!);
    const results = await el("[data-bulk-results]");
    expect(results.getAttribute("data-tone")).toBe("warn");
    const summary = "2 grants revoked here; the provider confirmed 0 of 2 — revoke these 2 at the provider yourself: acme-corp/crm, acme-corp/old.";
    expect(text(".bulk-summary")).toBe(summary);
    expect(text('[role="status"]')).toBe(summary);
    expect($('[role="status"]')!.dataset.tone).toBe("warn");
    expect($('[data-result="acme-corp/crm"]')!.dataset.state).toBe("unconfirmed");
    expect(text('[data-result="acme-corp/crm"]')).toMatch(/not confirmed: forgotten here only — not revoked at the provider/);
    expect(text('[data-result="acme-corp/crm"]')).not.toMatch(/revoked at the provider\. /);
    await el('tr[data-grant="acme-corp/crm"] [data-unconfirmed]');
  });

  it("selects single grants", async () => {
    click(await el('[data-nav="review"]'));
    const row = await el('tr[data-grant="acme-corp/old"]');
    click(row.querySelector("input[data-select]")!);
    await waitFor(() => !$<HTMLButtonElement>('[data-action="bulk-revoke"]')!.disabled);
    await waitFor(() => $<HTMLInputElement>("input[data-select-all]")!.indeterminate);
  });
});
