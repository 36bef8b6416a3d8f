import { describe, expect, it } from "vitest";
import { DAY_MS, chartMax, chartSummary, dailyBars, dayLabel, niceCeil, utcDay } from "./chart";

const today = 20_000; // 2024-10-04 (UTC)

describe("dailyBars", () => {
  it("buckets hand-outs and refreshes per day over 30 days", () => {
    const bars = dailyBars(
      [
        { day: today, kind: "handed_out", count: 3 },
        { day: today, kind: "revealed", count: 1 },
        { day: today, kind: "refreshed", count: 2 },
        { day: today - 1, kind: "refresh_failed", count: 1 },
        { day: today - 29, kind: "handed_out", count: 5 },
        { day: today - 30, kind: "handed_out", count: 99 }, // too old
        { day: today + 1, kind: "handed_out", count: 99 }, // in the future
        { day: today, kind: "consented", count: 1 }, // not charted
      ],
      today,
    );
    expect(bars).toHaveLength(30);
    expect(bars[0]).toEqual({ day: today - 29, handouts: 5, refreshes: 0 });
    expect(bars[28]).toEqual({ day: today - 1, handouts: 0, refreshes: 1 });
    expect(bars[29]).toEqual({ day: today, handouts: 4, refreshes: 2 });
    expect(bars.reduce((n, b) => n + b.handouts, 0)).toBe(9);
  });
  it("has empty days", () => {
    expect(dailyBars([], today, 7).every((b) => b.handouts === 0 && b.refreshes === 0)).toBe(true);
  });
});

describe("axis", () => {
  it("rounds the maximum up", () => {
    expect(niceCeil(0)).toBe(1);
    expect(niceCeil(1)).toBe(1);
    expect(niceCeil(3)).toBe(5);
    expect(niceCeil(7)).toBe(10);
    expect(niceCeil(11)).toBe(20);
    expect(niceCeil(480)).toBe(500);
    expect(niceCeil(1000)).toBe(1000);
    expect(chartMax([{ day: 1, handouts: 3, refreshes: 12 }])).toBe(20);
  });
  it("finds UTC days", () => {
    expect(utcDay(today * DAY_MS + DAY_MS - 1)).toBe(today);
    expect(utcDay(today * DAY_MS)).toBe(today);
    expect(dayLabel(0)).toBe("1 Jan");
    expect(dayLabel(today)).toBe("4 Oct");
  });
});

describe("chartSummary", () => {
  it("sums up and names the busiest day", () => {
    const s = chartSummary([
      { day: today - 1, handouts: 1, refreshes: 0 },
      { day: today, handouts: 4, refreshes: 2 },
    ]);
    expect(s).toBe("Last 2 days (3 Oct to 4 Oct): 5 hand-outs, 2 refreshes; busiest day 4 Oct with 4 hand-outs and 2 refreshes.");
  });
  it("says when nothing happened", () => {
    expect(chartSummary(dailyBars([], today, 30))).toMatch(/no tokens handed out and no refreshes/);
    expect(chartSummary([])).toBe("No days to show.");
  });
});
