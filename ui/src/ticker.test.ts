import { describe, expect, it } from "vitest";
import { createTicker } from "./ticker";

function fakeTimers() {
  const running = new Map<number, () => void>();
  let next = 1;
  return {
    running,
    timers: {
      set: (f: () => void) => {
        running.set(next, f);
        return next++;
      },
      clear: (h: unknown) => running.delete(h as number),
    },
    fire: () => [...running.values()].forEach((f) => f()),
  };
}

describe("createTicker", () => {
  it("runs one interval for all listeners and stops when none is left", () => {
    const t = fakeTimers();
    let now = 1000;
    const ticker = createTicker(1000, () => now, t.timers);
    const a: number[] = [];
    const b: number[] = [];
    const offA = ticker.subscribe((n) => a.push(n));
    const offB = ticker.subscribe((n) => b.push(n));
    expect(t.running.size).toBe(1);
    now = 2000;
    t.fire();
    expect(a).toEqual([2000]);
    expect(b).toEqual([2000]);
    offA();
    now = 3000;
    t.fire();
    expect(a).toEqual([2000]);
    expect(b).toEqual([2000, 3000]);
    expect(ticker.size()).toBe(1);
    offB();
    expect(t.running.size).toBe(0);
    ticker.subscribe(() => {});
    expect(t.running.size).toBe(1);
  });
  it("lets a listener unsubscribe while ticking", () => {
    const t = fakeTimers();
    const ticker = createTicker(1000, () => 1, t.timers);
    const seen: string[] = [];
    const off = ticker.subscribe(() => {
      seen.push("a");
      off();
    });
    ticker.subscribe(() => seen.push("b"));
    t.fire();
    t.fire();
    expect(seen).toEqual(["a", "b", "b"]);
  });
});
