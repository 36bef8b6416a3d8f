import { describe, expect, it } from "vitest";
import { isSearchShortcut, moveIndex, trapIndex } from "./keys";

describe("moveIndex", () => {
  it("moves with arrows and stops at the ends", () => {
    expect(moveIndex("ArrowDown", 0, 5)).toBe(1);
    expect(moveIndex("ArrowDown", 4, 5)).toBe(4);
    expect(moveIndex("ArrowUp", 0, 5)).toBe(0);
    expect(moveIndex("ArrowUp", 3, 5)).toBe(2);
    expect(moveIndex("ArrowDown", -1, 5)).toBe(0);
  });
  it("wraps when asked", () => {
    expect(moveIndex("ArrowDown", 4, 5, 10, true)).toBe(0);
    expect(moveIndex("ArrowUp", 0, 5, 10, true)).toBe(4);
  });
  it("jumps by page and to the ends", () => {
    expect(moveIndex("PageDown", 0, 100, 10)).toBe(10);
    expect(moveIndex("PageDown", 95, 100, 10)).toBe(99);
    expect(moveIndex("PageUp", 5, 100, 10)).toBe(0);
    expect(moveIndex("Home", 50, 100)).toBe(0);
    expect(moveIndex("End", 50, 100)).toBe(99);
  });
  it("ignores other keys and empty lists", () => {
    expect(moveIndex("a", 0, 5)).toBeNull();
    expect(moveIndex("ArrowDown", 0, 0)).toBeNull();
  });
});

describe("shortcuts", () => {
  const k = (key: string, mods: Partial<{ ctrlKey: boolean; metaKey: boolean; altKey: boolean; shiftKey: boolean }> = {}) => ({
    key,
    ctrlKey: false,
    metaKey: false,
    altKey: false,
    shiftKey: false,
    ...mods,
  });
  it("recognises Ctrl+K and ⌘K only", () => {
    expect(isSearchShortcut(k("k", { ctrlKey: true }))).toBe(true);
    expect(isSearchShortcut(k("K", { ctrlKey: true }))).toBe(true);
    expect(isSearchShortcut(k("k", { metaKey: true }))).toBe(true);
    expect(isSearchShortcut(k("k"))).toBe(false);
    expect(isSearchShortcut(k("k", { ctrlKey: true, shiftKey: true }))).toBe(false);
    expect(isSearchShortcut(k("j", { ctrlKey: true }))).toBe(false);
  });
  it("cycles focus in dialogs", () => {
    expect(trapIndex(2, 3, false)).toBe(0);
    expect(trapIndex(0, 3, true)).toBe(2);
    expect(trapIndex(1, 3, false)).toBe(2);
    expect(trapIndex(-1, 3, false)).toBe(0);
    expect(trapIndex(-1, 3, true)).toBe(2);
    expect(trapIndex(0, 0, false)).toBe(-1);
  });
});
