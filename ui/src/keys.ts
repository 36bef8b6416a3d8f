// Keyboard helpers (pure): list navigation and shortcut matching.

/**
 * The index a navigation key moves to in a list of `count` items (`index` -1 = none yet), or
 * null when the key is not a navigation key. `wrap` makes ↑/↓ wrap around (search results).
 */
export function moveIndex(key: string, index: number, count: number, page = 10, wrap = false): number | null {
  if (count <= 0) return null;
  const last = count - 1;
  switch (key) {
    case "ArrowDown":
      if (index < 0) return 0;
      return index >= last ? (wrap ? 0 : last) : index + 1;
    case "ArrowUp":
      if (index < 0) return wrap ? last : 0;
      return index <= 0 ? (wrap ? last : 0) : index - 1;
    case "Home":
      return 0;
    case "End":
      return last;
    case "PageDown":
      return Math.min(last, Math.max(0, index) + page);
    case "PageUp":
      return Math.max(0, index - page);
    default:
      return null;
  }
}

/** Whether a key event is the search shortcut (Ctrl+K, or ⌘K). */
export function isSearchShortcut(e: { key: string; ctrlKey: boolean; metaKey: boolean; altKey: boolean; shiftKey: boolean }): boolean {
  return (e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey && e.key.toLowerCase() === "k";
}

/** The next focus index when Tab cycles inside a dialog (`shift` = backwards). */
export function trapIndex(current: number, count: number, shift: boolean): number {
  if (count <= 0) return -1;
  if (current < 0) return shift ? count - 1 : 0;
  return shift ? (current - 1 + count) % count : (current + 1) % count;
}
