// The Ctrl+K search dialog over tenants, connections and actions.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { moveIndex } from "./keys";
import { type SearchItem, type SearchKind, searchItems } from "./search";
import { Dialog, onText } from "./ui";

const kindLabel: Record<SearchKind, string> = { action: "Action", tenant: "Tenant", connection: "Connection" };

type Props = {
  items: SearchItem[];
  /** Connections are still loading (all tenants' list). */
  loading: boolean;
  onPick: (item: SearchItem) => void;
  onClose: () => void;
};

export function Search({ items, loading, onPick, onClose }: Props) {
  const [query, setQuery] = useState("");
  const [active, setActive] = useState(0);
  const results = useMemo(() => searchItems(items, query, 50), [items, query]);
  const list = useRef<HTMLUListElement>(null);

  useEffect(() => setActive(0), [query]);
  useEffect(() => {
    list.current?.querySelector<HTMLElement>(`[data-index="${active}"]`)?.scrollIntoView?.({ block: "nearest" });
  }, [active, results]);

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === "Enter") {
      e.preventDefault();
      const r = results[active];
      if (r) onPick(r);
      return;
    }
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
    const next = moveIndex(e.key, active, results.length, 10, true);
    if (next !== null) {
      e.preventDefault();
      setActive(next);
    }
  };

  return (
    <Dialog label="Search" onClose={onClose} class="search-dialog" attrs={{ "data-search": "" }}>
      <div class="search-input">
        <svg viewBox="0 0 16 16" width="16" height="16" aria-hidden="true">
          <circle cx="7" cy="7" r="4.5" fill="none" stroke="currentColor" stroke-width="1.6" />
          <line x1="10.4" y1="10.4" x2="14" y2="14" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" />
        </svg>
        <input
          type="text"
          name="search"
          data-autofocus
          role="combobox"
          aria-label="Search tenants, connections and actions"
          aria-expanded="true"
          aria-controls="search-results"
          aria-autocomplete="list"
          aria-activedescendant={results[active] ? `sr-${active}` : undefined}
          placeholder="Search tenants, connections, actions…"
          autoComplete="off"
          spellcheck={false}
          value={query}
          {...onText(setQuery)}
          onKeyDown={onKeyDown}
        />
      </div>
      <ul id="search-results" class="search-results" role="listbox" aria-label="Results" ref={list}>
        {results.map((r, i) => (
          <li
            key={r.id}
            id={`sr-${i}`}
            role="option"
            aria-selected={i === active ? "true" : "false"}
            data-search-result={r.id}
            data-index={i}
            class={i === active ? "active" : ""}
            onMouseMove={() => i !== active && setActive(i)}
            onClick={() => onPick(r)}
          >
            <span class={`kind-icon ${r.kind}`} aria-hidden="true">
              {r.kind === "action" ? "→" : r.kind === "tenant" ? "#" : "•"}
            </span>
            <span class="sr-text">
              <span class="sr-label">{r.label}</span>
              {r.sub && <span class="sr-sub">{r.sub}</span>}
            </span>
            <span class="sr-kind">{kindLabel[r.kind]}</span>
          </li>
        ))}
      </ul>
      {results.length === 0 && <p class="search-empty">{loading ? "Loading connections…" : "Nothing matches."}</p>}
      <footer class="search-foot" aria-hidden="true">
        <span>
          <kbd>↑</kbd>
          <kbd>↓</kbd> move
        </span>
        <span>
          <kbd>Enter</kbd> open
        </span>
        <span>
          <kbd>Esc</kbd> close
        </span>
      </footer>
    </Dialog>
  );
}
