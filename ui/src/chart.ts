// Bucketing of per-day event counts for the detail's usage chart.
import type { DailyCount } from "./bindings/DailyCount";

export const DAY_MS = 86_400_000;

export type DayBar = {
  /** Days since 1970-01-01 (UTC). */
  day: number;
  /** Tokens handed out or revealed. */
  handouts: number;
  /** Refreshes, successful or not. */
  refreshes: number;
};

/** Today's UTC day number. */
export function utcDay(now: number): number {
  return Math.floor(now / DAY_MS);
}

/** One bar group per day of the last `days` days up to `today` (inclusive), oldest first. */
export function dailyBars(daily: DailyCount[], today: number, days = 30): DayBar[] {
  const first = today - days + 1;
  const bars: DayBar[] = [];
  for (let d = first; d <= today; d++) bars.push({ day: d, handouts: 0, refreshes: 0 });
  for (const c of daily) {
    if (c.day < first || c.day > today) continue;
    const bar = bars[c.day - first];
    if (c.kind === "handed_out" || c.kind === "revealed") bar.handouts += c.count;
    else if (c.kind === "refreshed" || c.kind === "refresh_failed") bar.refreshes += c.count;
  }
  return bars;
}

/** A round axis maximum ≥ n: 1, 2, 5, 10, 20, 50, … (at least 1). */
export function niceCeil(n: number): number {
  if (n <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

/** The axis maximum for the bars (grouped, so the larger series counts). */
export function chartMax(bars: DayBar[]): number {
  let max = 0;
  for (const b of bars) max = Math.max(max, b.handouts, b.refreshes);
  return niceCeil(max);
}

/**
 * "3 Mar" for a UTC day number. Written out rather than through `Intl`: the window then needs no
 * ICU formatter (and its data pages) to show a chart.
 */
export function dayLabel(day: number): string {
  const d = new Date(day * DAY_MS);
  return `${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`;
}
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** A sentence describing the chart, for screen readers and the chart's title. */
export function chartSummary(bars: DayBar[]): string {
  if (bars.length === 0) return "No days to show.";
  let handouts = 0;
  let refreshes = 0;
  let busiest: DayBar | null = null;
  for (const b of bars) {
    handouts += b.handouts;
    refreshes += b.refreshes;
    if (b.handouts + b.refreshes > 0 && (busiest === null || b.handouts + b.refreshes > busiest.handouts + busiest.refreshes))
      busiest = b;
  }
  const span = `${dayLabel(bars[0].day)} to ${dayLabel(bars[bars.length - 1].day)}`;
  if (busiest === null) return `Last ${bars.length} days (${span}): no tokens handed out and no refreshes.`;
  return (
    `Last ${bars.length} days (${span}): ${handouts} ${handouts === 1 ? "hand-out" : "hand-outs"}, ` +
    `${refreshes} ${refreshes === 1 ? "refresh" : "refreshes"}; busiest day ${dayLabel(busiest.day)} ` +
    `with ${busiest.handouts} ${busiest.handouts === 1 ? "hand-out" : "hand-outs"} and ${busiest.refreshes} ` +
    `${busiest.refreshes === 1 ? "refresh" : "refreshes"}.`
  );
}
