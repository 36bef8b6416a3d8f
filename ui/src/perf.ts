// Always-on, cheap performance marks for the benchmark: window.__gkPerf.marks.

export type PerfMark = { name: string; ms: number };

declare global {
  interface Window {
    __gkPerf: { marks: PerfMark[] };
  }
}

function store(): { marks: PerfMark[] } | null {
  if (typeof window === "undefined") return null;
  if (!window.__gkPerf) window.__gkPerf = { marks: [] };
  return window.__gkPerf;
}

export function initPerf(): void {
  store();
}

export function perfMark(name: string, ms: number): void {
  store()?.marks.push({ name, ms: Math.round(ms * 10) / 10 });
}

/** Runs `f` once the next frame has been painted (requestAnimationFrame, then a macrotask). */
export function afterPaint(f: () => void): void {
  if (typeof requestAnimationFrame !== "function") {
    setTimeout(f, 0);
    return;
  }
  requestAnimationFrame(() => setTimeout(f, 0));
}

/** Pushes `name` with the time from `start` (performance.now()) until after the next paint. */
export function markAfterPaint(name: string, start: number): void {
  afterPaint(() => perfMark(name, performance.now() - start));
}
