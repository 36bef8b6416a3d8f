// The Ctrl+K search: a flat index of tenants, connections and actions, ranked by where the
// query matches. Pure; the dialog renders the results.

export type SearchKind = "action" | "tenant" | "connection";

export type SearchItem = {
  /** Stable id, also the `data-search-result` value: "action:review", "tenant:acme", "connection:acme/crm". */
  id: string;
  kind: SearchKind;
  /** What the result shows. */
  label: string;
  /** A second line (account, provider app, tenant). */
  sub: string;
  /** Lowercased label. */
  labelKey: string;
  /** Lowercased haystack: label and every other searchable word. */
  key: string;
};

export function makeItem(id: string, kind: SearchKind, label: string, sub: string, words: (string | null)[] = []): SearchItem {
  const labelKey = label.toLowerCase();
  const key = [labelKey, sub.toLowerCase(), ...words.map((w) => (w ?? "").toLowerCase())].join("\u0000");
  return { id, kind, label, sub, labelKey, key };
}

/** Lowercased words of a query. */
export function tokenize(q: string): string[] {
  return q.toLowerCase().split(/\s+/).filter((t) => t !== "");
}

/** Whether a lowercased haystack contains every token. */
export function matchesTokens(hay: string, tokens: string[]): boolean {
  for (const t of tokens) if (!hay.includes(t)) return false;
  return true;
}

const kindRank: Record<SearchKind, number> = { action: 0, tenant: 1, connection: 2 };

/**
 * Ranks items for a query: label starts with the query, then a word of the label starts with
 * it, then the label contains it, then anything else matches; actions before tenants before
 * connections within a tier. An empty query lists actions and tenants.
 */
export function searchItems(items: SearchItem[], query: string, limit = 50): SearchItem[] {
  const tokens = tokenize(query);
  if (tokens.length === 0) return items.filter((i) => i.kind !== "connection").slice(0, limit);
  const q = tokens.join(" ");
  const scored: { item: SearchItem; score: number; i: number }[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (!matchesTokens(item.key, tokens)) continue;
    let tier: number;
    if (item.labelKey.startsWith(q)) tier = 0;
    else if (wordStart(item.labelKey, q)) tier = 1;
    else if (item.labelKey.includes(q)) tier = 2;
    else tier = 3;
    scored.push({ item, score: tier * 10 + kindRank[item.kind], i });
  }
  scored.sort((a, b) => a.score - b.score || a.item.label.length - b.item.label.length || a.i - b.i);
  return scored.slice(0, limit).map((s) => s.item);
}

function wordStart(label: string, q: string): boolean {
  let at = label.indexOf(q);
  while (at > 0) {
    if (/[\s\-_/.@]/.test(label[at - 1])) return true;
    at = label.indexOf(q, at + 1);
  }
  return at === 0;
}
