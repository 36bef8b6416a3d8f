// Windowing math for the virtualized connection table (fixed row height).

export type VRange = {
  /** First rendered row. */
  start: number;
  /** One past the last rendered row. */
  end: number;
  /** Height of the spacer above the rendered rows. */
  padTop: number;
  /** Height of the spacer below them. */
  padBottom: number;
};

/** The rows to render for a scroll position: the visible ones plus `overscan` on each side. */
export function visibleRange(scrollTop: number, viewport: number, rowHeight: number, count: number, overscan: number): VRange {
  if (count <= 0 || rowHeight <= 0) return { start: 0, end: 0, padTop: 0, padBottom: 0 };
  const first = Math.min(count - 1, Math.max(0, Math.floor(scrollTop / rowHeight)));
  const visible = Math.ceil(Math.max(0, viewport) / rowHeight) + 1;
  const start = Math.max(0, first - overscan);
  const end = Math.min(count, first + visible + overscan);
  return { start, end, padTop: start * rowHeight, padBottom: (count - end) * rowHeight };
}

/**
 * The scroll position that brings row `index` fully into view below a sticky header of
 * `header` px, moving as little as possible (unchanged when it is already visible).
 */
export function scrollToReveal(index: number, scrollTop: number, viewport: number, rowHeight: number, header = 0): number {
  const top = index * rowHeight; // within the body; the body starts at `header` in the content
  const bottom = top + rowHeight;
  if (top < scrollTop) return top;
  if (header + bottom > scrollTop + viewport) return Math.max(0, header + bottom - viewport);
  return scrollTop;
}

/** How many rows one page (PageUp/PageDown) moves. */
export function pageSize(viewport: number, rowHeight: number, header = 0): number {
  return Math.max(1, Math.floor((viewport - header) / rowHeight) - 1);
}
