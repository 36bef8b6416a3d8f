// The handle between the connections list and the detail: drag it (or use the arrow keys) to
// make the detail wider or narrower; the width is kept for the next start.
import { useEffect, useRef } from "preact/hooks";

const KEY = "gk.detailWidth";
const MIN = 300;
/** The list keeps at least this much. */
const LIST_MIN = 320;
const STEP = 24;

function clampWidth(w: number, total: number): number {
  return Math.round(Math.max(MIN, Math.min(w, total - LIST_MIN)));
}

/** Sets the detail's width on the workspace (`--detail-w`); the CSS default applies until the user picks one. */
export function Splitter() {
  const ref = useRef<HTMLDivElement>(null);
  const space = () => ref.current?.parentElement ?? null;
  const apply = (w: number | null) => {
    const ws = space();
    if (!ws) return;
    if (w === null) {
      ws.style.removeProperty("--detail-w");
      return;
    }
    const width = clampWidth(w, ws.getBoundingClientRect().width);
    ws.style.setProperty("--detail-w", `${width}px`);
    ref.current?.setAttribute("aria-valuenow", String(width));
    try {
      localStorage.setItem(KEY, String(width));
    } catch {
      // Storage unavailable: the width lasts for this session.
    }
  };
  const current = () => space()?.querySelector<HTMLElement>(".detail")?.getBoundingClientRect().width ?? MIN;

  useEffect(() => {
    const saved = Number(localStorage.getItem(KEY));
    if (Number.isFinite(saved) && saved > 0) apply(saved);
  }, []);

  const onPointerDown = (e: PointerEvent) => {
    const ws = space();
    if (!ws) return;
    e.preventDefault();
    const right = ws.getBoundingClientRect().right;
    const move = (m: PointerEvent) => apply(right - m.clientX);
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
      document.body.classList.remove("resizing");
    };
    document.body.classList.add("resizing");
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  };
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === "ArrowLeft") apply(current() + STEP);
    else if (e.key === "ArrowRight") apply(current() - STEP);
    else if (e.key === "Home") apply(null);
    else return;
    e.preventDefault();
  };

  return (
    <div
      ref={ref}
      class="splitter"
      role="separator"
      aria-orientation="vertical"
      aria-label="Resize the detail (arrow keys; Home resets)"
      aria-valuemin={MIN}
      tabIndex={0}
      data-splitter
      onPointerDown={onPointerDown}
      onKeyDown={onKeyDown}
    />
  );
}
