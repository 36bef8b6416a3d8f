// The open connection's detail: which connection is open (with its list row, shown while the
// detail loads), the loaded detail or why it failed; the newest load wins. A load the user
// asked for records the `history` perf mark (ask → painted).
import { useCallback, useRef, useState } from "preact/hooks";
import { api, errorMessage } from "./api";
import type { ConnectionDetail } from "./bindings/ConnectionDetail";
import type { ConnectionRow } from "./bindings/ConnectionRow";
import type { TenantId } from "./bindings/TenantId";
import type { Target } from "./Detail";
import { markAfterPaint } from "./perf";

export type Open = { target: Target; summary: ConnectionRow | null };

export function useDetail() {
  const [open, setOpen] = useState<Open | null>(null);
  const [detail, setDetail] = useState<ConnectionDetail | null>(null);
  const [detailError, setDetailError] = useState<string | null>(null);
  const seq = useRef(0);
  const markFrom = useRef<number | null>(null);
  const openRef = useRef(open);
  openRef.current = open;

  const loadDetail = useCallback(async (target: Target, mark: boolean) => {
    const mine = ++seq.current;
    if (mark) markFrom.current = performance.now();
    try {
      const d = await api.connectionDetail(target);
      if (mine !== seq.current) return;
      setDetail(d);
      setDetailError(null);
      if (markFrom.current !== null) {
        markAfterPaint("history", markFrom.current);
        markFrom.current = null;
      }
    } catch (e) {
      if (mine === seq.current) setDetailError(errorMessage(e));
    }
  }, []);

  /** Opens (or reloads) a connection's detail; `summary` shows until it loads. */
  const openConnection = useCallback(
    (c: { tenant_id: TenantId; id: string }, summary: ConnectionRow | null) => {
      const target = { tenant: c.tenant_id, connection: c.id };
      const cur = openRef.current;
      const same = cur?.target.connection === c.id && cur.target.tenant === c.tenant_id;
      setOpen({ target, summary: summary ?? cur?.summary ?? null });
      if (!same) {
        setDetail(null);
        setDetailError(null);
      }
      void loadDetail(target, true);
    },
    [loadDetail],
  );

  /** Closes the detail and gives the focus back to the connection's row. */
  const closeDetail = useCallback(() => {
    const was = openRef.current;
    seq.current++;
    setOpen(null);
    setDetail(null);
    setDetailError(null);
    if (was) {
      requestAnimationFrame(() => {
        const rows = document.querySelectorAll<HTMLElement>("tr[data-id]");
        for (const row of rows) if (row.dataset.id === was.target.connection) row.focus({ preventScroll: true });
      });
    }
  }, []);

  /** Whatever is open now (for handlers that run later). */
  const current = useCallback(() => openRef.current, []);

  return { open, detail, detailError, loadDetail, openConnection, closeDetail, current };
}
