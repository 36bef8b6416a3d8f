// The Ctrl+K search's state: open or not, every tenant's connections (the list already shown
// when it is all of them, else loaded once per opening and dropped on a vault change), and the
// index of actions, tenants and connections it searches.
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, errorMessage } from "./api";
import type { ConnectionRow } from "./bindings/ConnectionRow";
import type { ProviderApp } from "./bindings/ProviderApp";
import type { TenantId } from "./bindings/TenantId";
import type { TenantSummary } from "./bindings/TenantSummary";
import { ConnectionTable } from "./connectionTable";
import { providerLabel } from "./ctx";
import { type SearchItem, makeItem } from "./search";

/** The search's items, and the connection behind a `connection:` item's id. */
export type SearchIndex = { items: SearchItem[]; connection: (itemId: string) => ConnectionRow | undefined };

/** The search's items: the actions, every tenant, every connection (`connection:slug/name`). */
export function searchIndex(
  tenants: TenantSummary[],
  connections: ConnectionTable,
  apps: Map<string, ProviderApp>,
  presetNames: Map<string, string>,
): SearchIndex {
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
  const conns = new Map<string, number>();
  for (let i = 0; i < connections.length; i++) {
    const tenantId = connections.tenantId(i);
    const appId = connections.appId(i);
    const slug = slugs.get(tenantId) ?? "";
    const name = connections.name(i);
    const id = `connection:${slug}/${name}`;
    const p = providerLabel(appId, apps, presetNames);
    const account = connections.account(i);
    conns.set(id, i);
    items.push(
      makeItem(id, "connection", name, [slug, account === "—" ? "" : account, p.app].filter((x) => x !== "").join(" · "), [
        appId,
        names.get(tenantId) ?? null,
        p.provider,
        connections.subject(i),
        connections.username(i),
        connections.orgId(i),
      ]),
    );
  }
  const connection = (itemId: string) => {
    const i = conns.get(itemId);
    return i === undefined ? undefined : connections.row(i);
  };
  return { items, connection };
}

type Options = {
  /** The list shown and whose it is (null: all tenants, then the search reuses it). */
  tenant: TenantId | null;
  connections: ConnectionTable | null;
  tenants: TenantSummary[];
  apps: Map<string, ProviderApp>;
  presetNames: Map<string, string>;
  onError: (message: string) => void;
};

export function useSearch({ tenant, connections, tenants, apps, presetNames, onError }: Options) {
  const [open, setOpen] = useState(false);
  const [all, setAll] = useState<ConnectionTable | null>(null);
  // Read through a ref, not captured: a closure kept from an older render would keep its list.
  const shownAll = useRef<ConnectionTable | null>(null);
  shownAll.current = tenant === null ? connections : null;

  useEffect(() => {
    if (!open || all) return;
    if (shownAll.current) {
      setAll(shownAll.current);
      return;
    }
    let live = true;
    api.listConnections(null).then(
      (l) => live && setAll(l),
      (e) => live && onError(errorMessage(e)),
    );
    return () => {
      live = false;
    };
  }, [open, all, tenant, connections]);

  const index = useMemo(
    () => (open ? searchIndex(tenants, all ?? ConnectionTable.of([]), apps, presetNames) : { items: [], connection: () => undefined }),
    [open, tenants, all, apps, presetNames],
  );

  /** Forgets the connections loaded (the vault changed): the next opening loads them again. */
  const invalidate = useCallback(() => setAll(null), []);

  return { open, setOpen, index, loading: all === null, invalidate };
}
