import { describe, expect, it } from "vitest";
import { pageSize, scrollToReveal, visibleRange } from "./virtual";

describe("visibleRange", () => {
  it("renders the visible rows plus overscan", () => {
    expect(visibleRange(0, 400, 40, 10_000, 5)).toEqual({ start: 0, end: 16, padTop: 0, padBottom: (10_000 - 16) * 40 });
    const r = visibleRange(4000, 400, 40, 10_000, 5);
    expect(r.start).toBe(95);
    expect(r.end).toBe(116);
    expect(r.padTop).toBe(95 * 40);
    expect(r.padTop + (r.end - r.start) * 40 + r.padBottom).toBe(10_000 * 40);
  });
  it("clamps at the end and handles tiny lists", () => {
    const r = visibleRange(1_000_000, 400, 40, 100, 5);
    expect(r.end).toBe(100);
    expect(r.start).toBeLessThan(100);
    expect(r.padBottom).toBe(0);
    expect(visibleRange(0, 400, 40, 3, 5)).toEqual({ start: 0, end: 3, padTop: 0, padBottom: 0 });
    expect(visibleRange(0, 400, 40, 0, 5)).toEqual({ start: 0, end: 0, padTop: 0, padBottom: 0 });
    expect(visibleRange(-50, 400, 40, 100, 0).start).toBe(0);
  });
  it("never renders more than a screenful plus overscan", () => {
    for (const top of [0, 123, 39_999, 200_000]) {
      const r = visibleRange(top, 600, 40, 10_000, 8);
      expect(r.end - r.start).toBeLessThanOrEqual(Math.ceil(600 / 40) + 1 + 16);
    }
  });
});

describe("scrollToReveal", () => {
  it("keeps the position when the row is visible", () => {
    expect(scrollToReveal(5, 0, 400, 40, 36)).toBe(0);
  });
  it("scrolls up to a row above", () => {
    expect(scrollToReveal(3, 400, 400, 40, 36)).toBe(120);
  });
  it("scrolls down just enough for a row below, under a sticky header", () => {
    // row 20 spans 800..840 in the body; the body starts at 36
    expect(scrollToReveal(20, 0, 400, 40, 36)).toBe(36 + 840 - 400);
    expect(scrollToReveal(0, 0, 400, 40, 36)).toBe(0);
  });
  it("pages by a screenful minus one", () => {
    expect(pageSize(436, 40, 36)).toBe(9);
    expect(pageSize(10, 40, 36)).toBe(1);
  });
});
