// @vitest-environment jsdom
// Shared tenants in the window: the sidebar's badge and the tenant settings' section, from the
// core's TenantSharing (fixtures shaped as the core sends them).
import { render } from "preact";
import { afterEach, describe, expect, it } from "vitest";
import type { TenantSharing } from "./bindings/TenantSharing";
import type { TenantSummary } from "./bindings/TenantSummary";
import { ShellContext, type Shell } from "./ctx";
import { mergeSharing, sharingLabel, SharingSection, type SharingView } from "./Sharing";
import { Sidebar } from "./Sidebar";

const summary = (id: string, slug: string, name: string): TenantSummary => ({
  tenant: { id, slug, name, notes: "", created_at: 1_700_000_000_000 },
  connections: 1,
  needs_attention: 0,
  attention_label: "",
  recount_at: null,
});

const shared = (over: Partial<TenantSharing> = {}): TenantSharing => ({
  tenant_id: "t-acme",
  team: "firm",
  member: "alice",
  members: ["alice", "bob"],
  reachable: true,
  problem: null,
  ...over,
});

const shell = (tenants: TenantSummary[]): Shell => ({
  net: (p) => p,
  offline: false,
  note: () => {},
  tenants,
  catalog: [],
  presetNames: new Map(),
  apps: new Map(),
  changeTick: 0,
});

function sidebar(sharing: Map<string, TenantSharing>) {
  render(
    <ShellContext.Provider value={shell([summary("t-acme", "acme", "Acme"), summary("t-own", "own", "Own")])}>
      <Sidebar
        status={{ home: "/h", keychain: "test", error: null, problem: null, demo: false }}
        view="connections"
        tenant={null}
        onTenant={() => {}}
        onView={() => {}}
        onConnect={() => {}}
        onSearch={() => {}}
        sharing={sharing}
      />
    </ShellContext.Provider>,
    document.body,
  );
}

describe("shared tenants", () => {
  afterEach(() => render(null, document.body));

  it("marks only the shared tenant in the sidebar, saying with whom", () => {
    sidebar(new Map([["t-acme", shared()]]));
    const badge = document.querySelector('[data-tenant="acme"] [data-shared]') as HTMLElement;
    expect(badge.dataset.shared).toBe("firm");
    expect(badge.dataset.reachable).toBe("true");
    expect(badge.getAttribute("aria-label")).toBe("Shared with team firm (alice, bob); the team vault answers.");
    expect(document.querySelector('[data-tenant="own"] [data-shared]')).toBeNull();
  });

  it("says when the team vault is unreachable, and why", () => {
    const down = shared({
      reachable: false,
      members: [],
      problem: "the team vault is unreachable (connection refused); tokens cached here stay usable until they expire. Try again when it is back",
    });
    sidebar(new Map([["t-acme", down]]));
    const badge = document.querySelector('[data-tenant="acme"] [data-shared]') as HTMLElement;
    expect(badge.classList.contains("unreachable")).toBe(true);
    expect(badge.dataset.reachable).toBe("false");
    expect(sharingLabel(down)).toBe(
      "Shared with team firm; the team vault is unreachable (connection refused); tokens cached here stay usable until they expire. Try again when it is back.",
    );
  });

  it("lists team, member, members and the vault's state in the tenant settings", () => {
    render(<SharingSection sharing={shared({ members: ["alice", "bob", "carol"] })} />, document.body);
    const fact = (f: string) => document.querySelector(`[data-fact="${f}"]`)!.textContent;
    expect(fact("team")).toBe("firm");
    expect(fact("member")).toBe("alice");
    expect(fact("members")).toBe("alice, bob, carol");
    expect(fact("reachable")).toBe("reachable");
    render(<SharingSection sharing={shared({ reachable: false, members: [], problem: "your team vault login has ended: log in again: grantkeeper team login" })} />, document.body);
    expect(fact("members")).toBe("unknown while the team vault is unreachable");
    expect(fact("reachable")).toBe("your team vault login has ended: log in again: grantkeeper team login");
  });

  it("keeps the members last seen while the team vault does not answer, until it answers again", () => {
    const down = shared({ reachable: false, members: [], problem: "the team vault is unreachable" });
    const up = new Map<string, SharingView>([["t-acme", shared()]]);
    const offline = mergeSharing(up, [down]);
    expect(offline.get("t-acme")).toEqual({ ...down, members: ["alice", "bob"], membersLastSeen: true });
    // The same answer again changes nothing (no redraw).
    expect(mergeSharing(offline, [down])).toBe(offline);
    render(<SharingSection sharing={offline.get("t-acme")!} />, document.body);
    expect(document.querySelector('[data-fact="members"]')!.textContent).toBe(
      "alice, bob (as last seen; the team vault does not answer)",
    );
    // Back: the members it names now, nothing kept.
    const back = mergeSharing(offline, [shared({ members: ["alice"] })]);
    expect(back.get("t-acme")).toEqual(shared({ members: ["alice"] }));
    // Never seen: nothing to keep.
    expect(mergeSharing(new Map(), [down]).get("t-acme")).toEqual(down);
    // A tenant no longer shared is gone.
    expect(mergeSharing(back, []).size).toBe(0);
  });
});
