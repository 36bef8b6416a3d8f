// The connection table: sortable, filterable and virtualized (only the visible rows plus an
// overscan are in the DOM), with a roving focus for ↑/↓/Enter.
import { Component, type RefObject } from "preact";
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import type { ConnectionRow } from "./bindings/ConnectionRow";
import type { TenantId } from "./bindings/TenantId";
import { ConnectionTable } from "./connectionTable";
import { providerLabel, useShell } from "./ctx";
import { type Badge, badge, badgeLabel, badgeOrder, exactTime, plural, refreshExpiryAt, refreshExpiryText, relativeTime } from "./format";
import { useNow } from "./hooks";
import { moveIndex } from "./keys";
import { type ExtraWords, ListKeys, type SortKey, type SortState, ariaSort, filterRows, nextSort, sortRows } from "./sort";
import { secondTicker, slowTicker } from "./ticker";
import { CountdownText, ProviderMark, StatusBadge, onText } from "./ui";
import { pageSize, scrollToReveal, visibleRange } from "./virtual";

/** Fixed row height in px (styles.css sets the same on `.connections tbody tr.row`). */
const ROW_HEIGHT = 40;
const OVERSCAN = 8;
const COLUMNS = 7;
/** The table of a list not loaded yet. */
const EMPTY = ConnectionTable.of([]);

type Props = {
  connections: ConnectionTable | null;
  tenant: TenantId | null;
  openId: string | null;
  onOpen: (c: ConnectionRow) => void;
  /** Brings a connection into view (after a search or a new connection). */
  reveal: { id: string; seq: number } | null;
  onConnect: () => void;
};

export function ConnectionsView({ connections, tenant, openId, onOpen, reveal, onConnect }: Props) {
  const { tenants, apps, presetNames } = useShell();
  const [sort, setSort] = useState<SortState>(null);
  const [text, setText] = useState("");
  const [status, setStatus] = useState<Badge | "">("");
  const [activeId, setActiveId] = useState<string | null>(null);
  const scrollRef = useRef<HTMLDivElement>(null);
  const theadRef = useRef<HTMLTableSectionElement>(null);
  const focusIndex = useRef<number | null>(null);
  const slowNow = useNow(slowTicker);
  const tenantInfo = useTenantInfo(tenants);
  const { viewport, header } = useViewport(scrollRef, theadRef, connections !== null && connections.length > 0);
  const { scrollTop, setScrollTop, onScroll } = useScrollTop(scrollRef, tenant, setActiveId);

  // The sort and filter keys of this load, each built on first use (lowercased names, accounts;
  // the text filter's haystacks once a filter is typed).
  const keys = useMemo(() => {
    const table = connections ?? EMPTY;
    const words: ExtraWords = (t, i) => {
      const ti = tenantInfo.get(t.tenantId(i));
      const p = providerLabel(t.appId(i), apps, presetNames);
      return [ti?.slug ?? null, ti?.name ?? null, p.app, p.provider];
    };
    return new ListKeys(table, words);
  }, [connections, tenantInfo, apps, presetNames]);
  const table = keys.table;

  // Row indexes in the order shown. `now` only matters for status sorting/filtering ("expiring
  // soon"): re-evaluated every 30 s.
  const sortNow = sort?.key === "status" ? slowNow : 0;
  const sorted = useMemo(() => sortRows(keys, keys.order(), sort, sortNow), [keys, sort, sortNow]);
  const filterNow = status !== "" ? slowNow : 0;
  const filtered = useMemo(() => filterRows(keys, sorted, text, status, filterNow), [keys, sorted, text, status, filterNow]);
  /** The position in the shown order of the connection with id `id`, or -1. */
  const positionOf = (id: string) => {
    const i = table.indexOf(id);
    return i < 0 ? -1 : filtered.indexOf(i);
  };

  const scrollTo = (index: number, center = false) => {
    const el = scrollRef.current;
    if (!el) return;
    const vp = el.clientHeight || viewport;
    let st = scrollToReveal(index, el.scrollTop, vp, ROW_HEIGHT, header);
    if (center && st !== el.scrollTop) st = Math.max(0, index * ROW_HEIGHT - (vp - header) / 2);
    if (st !== el.scrollTop) {
      el.scrollTop = st;
      setScrollTop(st);
    }
  };

  // Reveal a connection on request: clear filters hiding it, scroll to it, make it active.
  const lastReveal = useRef(0);
  useEffect(() => {
    if (!reveal || reveal.seq === lastReveal.current) return;
    const i = positionOf(reveal.id);
    if (i < 0) {
      if (table.indexOf(reveal.id) >= 0 && (text !== "" || status !== "")) {
        setText("");
        setStatus("");
      }
      return;
    }
    lastReveal.current = reveal.seq;
    setActiveId(reveal.id);
    scrollTo(i, true);
  }, [reveal, filtered]);

  // Move DOM focus to the row the keyboard moved to, once it is rendered.
  useLayoutEffect(() => {
    if (focusIndex.current === null) return;
    const row = scrollRef.current?.querySelector<HTMLElement>(`tr[data-index="${focusIndex.current}"]`);
    if (row) {
      row.focus({ preventScroll: true });
      focusIndex.current = null;
    }
  });

  const range = visibleRange(scrollTop, viewport || 600, ROW_HEIGHT, filtered.length, OVERSCAN);
  const activeIndex = activeId === null ? -1 : positionOf(activeId);
  // Roving tabindex: the active row, else the first rendered one, takes Tab.
  const tabIndexRow = activeIndex >= range.start && activeIndex < range.end ? activeIndex : range.start;

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const target = e.target as HTMLElement;
    if (!target.matches("tr.row")) return;
    // The state's active row, not the event target: keys can come faster than focus moves.
    const current = activeIndex >= 0 ? activeIndex : Number(target.dataset.index ?? 0);
    if (e.key === "Enter") {
      e.preventDefault();
      const r = filtered[current];
      if (r !== undefined) onOpen(table.row(r));
      return;
    }
    const vp = scrollRef.current?.clientHeight || viewport;
    const next = moveIndex(e.key, current, filtered.length, pageSize(vp, ROW_HEIGHT, header));
    if (next === null) return;
    e.preventDefault();
    setActiveId(table.id(filtered[next]));
    scrollTo(next);
    // Rendered already (within the overscan)? Focus it now; else once it is rendered.
    const row = scrollRef.current?.querySelector<HTMLElement>(`tr[data-index="${next}"]`);
    if (row) row.focus({ preventScroll: true });
    else focusIndex.current = next;
  };

  const { onRowClick, onRowFocus } = useRowHandlers({ filtered, table, onOpen }, setActiveId);

  const sortHeader = (key: SortKey, label: string, cls: string, title?: string) => {
    const s = ariaSort(sort, key);
    return (
      <th class={cls} data-sort={key} aria-sort={s} scope="col" title={title}>
        <button type="button" class="sort" onClick={() => setSort(nextSort(sort, key))}>
          <span>{label}</span>
          <span class={`sort-ind ${s}`} aria-hidden="true">
            {s === "ascending" ? "▲" : s === "descending" ? "▼" : "↕"}
          </span>
        </button>
      </th>
    );
  };

  const rows: preact.JSX.Element[] = [];
  for (let i = range.start; i < range.end; i++) {
    const c = table.row(filtered[i]);
    const t = tenant === null ? tenantInfo.get(c.tenant_id) : undefined;
    const p = providerLabel(c.provider_app_id, apps, presetNames);
    rows.push(
      <Row
        key={c.id}
        c={c}
        account={table.account(filtered[i])}
        index={i}
        tabbable={i === tabIndexRow}
        active={i === activeIndex}
        open={c.id === openId}
        tenantLabel={t ? t.slug : null}
        app={p.known ? p.app : null}
        provider={p.provider}
        onClick={onRowClick}
        onFocus={onRowFocus}
      />,
    );
  }

  const total = connections?.length ?? 0;
  return (
    <div class="connections-view">
      <div class="toolbar" role="search">
        <label class="filter">
          <span class="visually-hidden">Filter connections</span>
          <input
            type="search"
            data-filter="connections"
            placeholder="Filter by name, account, provider…"
            value={text}
            {...onText(setText)}
          />
        </label>
        <label class="status-filter">
          <span class="visually-hidden">Status</span>
          <select data-filter="status" value={status} onChange={(e) => setStatus(e.currentTarget.value as Badge | "")}>
            <option value="">All statuses</option>
            {badgeOrder.map((b) => (
              <option key={b} value={b}>
                {badgeLabel[b]}
              </option>
            ))}
          </select>
        </label>
        <span class="result-count" aria-live="polite">
          {connections === null
            ? ""
            : filtered.length === total
              ? plural(total, "connection")
              : `${filtered.length.toLocaleString()} of ${plural(total, "connection")}`}
        </span>
      </div>
      {connections === null ? (
        <p class="empty">Loading connections…</p>
      ) : total === 0 ? (
        <div class="empty-state">
          <p>No connections yet.</p>
          <button type="button" class="btn primary" onClick={onConnect}>
            Connect account
          </button>
        </div>
      ) : (
        <div class="table-scroll" ref={scrollRef} onScroll={onScroll}>
          <table class="connections" aria-label="Connections" aria-rowcount={filtered.length + 1}>
            <thead ref={theadRef}>
              <tr aria-rowindex={1}>
                {sortHeader("name", "Connection", "col-name")}
                <th class="col-provider" scope="col">
                  <span class="th-text">Provider</span>
                </th>
                {sortHeader("account", "Account", "col-account")}
                {sortHeader("status", "Status", "col-status")}
                {sortHeader("access", "Access", "col-access", "Access token expires")}
                {sortHeader("refresh", "Refresh", "col-refresh", "Refresh token expires")}
                {sortHeader("last_used", "Last use", "col-last")}
              </tr>
            </thead>
            <tbody onKeyDown={onKeyDown}>
              {range.padTop > 0 && (
                <tr key="pad-top" class="spacer" aria-hidden="true">
                  <td colSpan={COLUMNS} style={{ height: range.padTop }} />
                </tr>
              )}
              {rows}
              {range.padBottom > 0 && (
                <tr key="pad-bottom" class="spacer" aria-hidden="true">
                  <td colSpan={COLUMNS} style={{ height: range.padBottom }} />
                </tr>
              )}
            </tbody>
          </table>
          {filtered.length === 0 && (
            <div class="empty-state">
              <p>No connection matches the filter.</p>
              <button
                type="button"
                class="btn"
                data-action="clear-filter"
                onClick={() => {
                  setText("");
                  setStatus("");
                }}
              >
                Clear filter
              </button>
            </div>
          )}
        </div>
      )}
    </div>
  );
}

type RowProps = {
  c: ConnectionRow;
  /** The account as shown. */
  account: string;
  index: number;
  tabbable: boolean;
  active: boolean;
  open: boolean;
  tenantLabel: string | null;
  app: string | null;
  provider: string | null;
  onClick: (index: number) => void;
  onFocus: (index: number) => void;
};

// The hooks below keep callbacks and effects across renders. They live outside the view on
// purpose: a closure made in the view's body keeps that render's whole scope alive (the engine
// shares one scope object among a render's closures), so an effect or callback kept from an older
// render would keep that render's 10,000-row table too.

/** Tenant names and slugs by id. */
function useTenantInfo(tenants: { tenant: { id: string; slug: string; name: string } }[]) {
  return useMemo(() => {
    const m = new Map<string, { slug: string; name: string }>();
    for (const t of tenants) m.set(t.tenant.id, { slug: t.tenant.slug, name: t.tenant.name });
    return m;
  }, [tenants]);
}

/** The scroll area's height and the table header's, measured again when rows appear and on resize. */
function useViewport(scrollRef: RefObject<HTMLDivElement>, theadRef: RefObject<HTMLTableSectionElement>, hasRows: boolean) {
  const [viewport, setViewport] = useState(0);
  const [header, setHeader] = useState(36);
  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (!el) return;
    const measure = () => {
      setViewport(el.clientHeight || window.innerHeight || 600);
      if (theadRef.current && theadRef.current.offsetHeight > 0) setHeader(theadRef.current.offsetHeight);
    };
    measure();
    if (typeof ResizeObserver === "function") {
      const ro = new ResizeObserver(measure);
      ro.observe(el);
      return () => ro.disconnect();
    }
    window.addEventListener("resize", measure);
    return () => window.removeEventListener("resize", measure);
  }, [hasRows]);
  return { viewport, header };
}

/** The list's scroll position, read once per frame while scrolling; a new tenant starts at the top. */
function useScrollTop(scrollRef: RefObject<HTMLDivElement>, tenant: TenantId | null, setActiveId: (id: string | null) => void) {
  const [scrollTop, setScrollTop] = useState(0);
  useEffect(() => {
    if (scrollRef.current) scrollRef.current.scrollTop = 0;
    setScrollTop(0);
    setActiveId(null);
  }, [tenant]);
  const frame = useRef(0);
  const onScroll = useCallback(() => {
    if (frame.current) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = 0;
      if (scrollRef.current) setScrollTop(scrollRef.current.scrollTop);
    });
  }, []);
  useEffect(() => () => cancelAnimationFrame(frame.current), []);
  return { scrollTop, setScrollTop, onScroll };
}

type Shown = { filtered: number[]; table: ConnectionTable; onOpen: (c: ConnectionRow) => void };

/** Stable row callbacks (rows compare props shallowly) that act on the list shown now. */
function useRowHandlers(shown: Shown, setActiveId: (id: string) => void) {
  const latest = useRef(shown);
  latest.current = shown;
  const onRowClick = useCallback((index: number) => {
    const { filtered, table, onOpen } = latest.current;
    const r = filtered[index];
    if (r === undefined) return;
    setActiveId(table.id(r));
    onOpen(table.row(r));
  }, []);
  const onRowFocus = useCallback((index: number) => {
    const { filtered, table } = latest.current;
    const r = filtered[index];
    if (r !== undefined) setActiveId(table.id(r));
  }, []);
  return { onRowClick, onRowFocus };
}

/**
 * One table row. It listens to the shared 1 s ticker itself, so only the rendered rows update
 * their countdowns, and it skips re-rendering when its props did not change.
 */
class Row extends Component<RowProps, { now: number }> {
  state = { now: Date.now() };
  private unsubscribe: (() => void) | null = null;

  componentDidMount() {
    this.unsubscribe = secondTicker.subscribe((now) => this.setState({ now }));
  }

  componentWillUnmount() {
    this.unsubscribe?.();
  }

  shouldComponentUpdate(next: RowProps, nextState: { now: number }) {
    if (nextState.now !== this.state.now) return true;
    const cur = this.props as Record<string, unknown>;
    const nxt = next as Record<string, unknown>;
    for (const k in nxt) if (nxt[k] !== cur[k]) return true;
    return false;
  }

  render() {
    const { c, account, index, tabbable, active, open, tenantLabel, app, provider, onClick, onFocus } = this.props;
    const { now } = this.state;
    const b = badge(c, now);
    const cls = `row${active ? " active" : ""}${open ? " selected" : ""}`;
    return (
      <tr
        role="row"
        class={cls}
        data-connection={c.name}
        data-id={c.id}
        data-index={index}
        aria-rowindex={index + 2}
        aria-current={open ? "true" : undefined}
        tabIndex={tabbable ? 0 : -1}
        onClick={() => onClick(index)}
        onFocus={() => onFocus(index)}
      >
        <td class="col-name">
          <span class="conn-name">{c.name}</span>
          {tenantLabel && <span class="sub"> {tenantLabel}</span>}
          <span class="conn-account" title={account}>
            {account}
          </span>
        </td>
        <td class="col-provider" title={provider ? `${app} (${provider})` : (app ?? c.provider_app_id)}>
          {app === null ? (
            <span class="muted">…</span>
          ) : (
            <>
              <ProviderMark name={provider ?? app} />
              <span class="provider-name">{app}</span>
            </>
          )}
        </td>
        <td class="col-account" title={account}>
          {account}
        </td>
        <td class="col-status" title={c.status_detail ?? undefined}>
          <StatusBadge b={b} />
          <span class="status-access">
            <CountdownText at={c.access_expires_at} now={now} />
          </span>
        </td>
        <td class="col-access">
          <CountdownText at={c.access_expires_at} now={now} />
        </td>
        <td class="col-refresh" title={refreshTitle(c)}>
          {refreshExpiryText(c, now)}
        </td>
        <td class="col-last" title={exactTime(c.last_used_at)}>
          {c.last_used_at === null ? "never" : relativeTime(c.last_used_at, now)}
        </td>
      </tr>
    );
  }
}

function refreshTitle(c: ConnectionRow): string | undefined {
  const at = c.has_refresh_token ? (c.refresh_expires_at ?? c.refresh_hard_expires_at) : null;
  if (at === null) return c.has_refresh_token ? "Refresh token held; no expiry known" : "No refresh token";
  return `Refresh token expires ${exactTime(refreshExpiryAt(c))}`;
}
