// The Ctrl+K search's state: open or not, every tenant's connections (the list already shown
// when it is all of them, else loaded once per opening and dropped on a vault change), and the
// index of actions, tenants and connections it searches.
import { useCallback, useEffect, useMemo, useState } from "preact/hooks";
import { api, errorMessage } from "./api";
import type { ConnectionRow } from "./bindings/ConnectionRow";
import type { ProviderApp } from "./bindings/ProviderApp";
import type { TenantId } from "./bindings/TenantId";
import type { TenantSummary } from "./bindings/TenantSummary";
import { providerLabel } from "./ctx";
import { accountText } from "./format";
import { type SearchItem, makeItem } from "./search";

export type SearchIndex = { items: SearchItem[]; conns: Map<string, ConnectionRow> };

/** The search's items: the actions, every tenant, every connection (`connection:slug/name`). */
export function searchIndex(
  tenants: TenantSummary[],
  connections: ConnectionRow[],
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
  const conns = new Map<string, ConnectionRow>();
  for (const c of connections) {
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
}

type Options = {
  /** The list shown and whose it is (null: all tenants, then the search reuses it). */
  tenant: TenantId | null;
  connections: ConnectionRow[] | null;
  tenants: TenantSummary[];
  apps: Map<string, ProviderApp>;
  presetNames: Map<string, string>;
  onError: (message: string) => void;
};

export function useSearch({ tenant, connections, tenants, apps, presetNames, onError }: Options) {
  const [open, setOpen] = useState(false);
  const [all, setAll] = useState<ConnectionRow[] | null>(null);

  useEffect(() => {
    if (!open || all) return;
    if (tenant === null && connections) {
      setAll(connections);
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
    () => (open ? searchIndex(tenants, all ?? [], apps, presetNames) : { items: [], conns: new Map<string, ConnectionRow>() }),
    [open, tenants, all, apps, presetNames],
  );

  /** Forgets the connections loaded (the vault changed): the next opening loads them again. */
  const invalidate = useCallback(() => setAll(null), []);

  return { open, setOpen, index, loading: all === null, invalidate };
}
