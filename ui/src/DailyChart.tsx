// Hand-outs and refreshes per day over the last 30 days, as grouped bars (SVG attributes only:
// the CSP forbids inline style strings).
import type { DailyCount } from "./bindings/DailyCount";
import { chartMax, chartSummary, dailyBars, dayLabel, utcDay } from "./chart";

const W = 440;
const H = 120;
const TOP = 8;
const BOTTOM = 20;
const LEFT = 28;

export function DailyChart({ daily, now, days = 30 }: { daily: DailyCount[]; now: number; days?: number }) {
  const bars = dailyBars(daily, utcDay(now), days);
  const max = chartMax(bars);
  const summary = chartSummary(bars);
  const plotH = H - TOP - BOTTOM;
  const slot = (W - LEFT) / bars.length;
  const barW = Math.max(1, (slot - 3) / 2);
  const y = (v: number) => TOP + plotH - (v / max) * plotH;
  const labelDays = [0, Math.floor((bars.length - 1) / 2), bars.length - 1];
  return (
    <figure class="chart">
      <svg class="daily-chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={summary}>
        <title>{summary}</title>
        <line class="grid" x1={LEFT} x2={W} y1={TOP} y2={TOP} />
        <line class="grid" x1={LEFT} x2={W} y1={TOP + plotH / 2} y2={TOP + plotH / 2} />
        <line class="axis" x1={LEFT} x2={W} y1={TOP + plotH} y2={TOP + plotH} />
        <text class="tick" x={LEFT - 6} y={TOP + 4} text-anchor="end">
          {max}
        </text>
        <text class="tick" x={LEFT - 6} y={TOP + plotH + 4} text-anchor="end">
          0
        </text>
        {bars.map((b, i) => {
          const x = LEFT + i * slot + 1;
          return (
            <g key={b.day}>
              <title>{`${dayLabel(b.day)}: ${b.handouts} handed out or revealed, ${b.refreshes} refreshes`}</title>
              <rect class="hit" x={x - 1} y={TOP} width={slot} height={plotH} />
              {b.handouts > 0 && <rect class="bar handouts" x={x} y={y(b.handouts)} width={barW} height={TOP + plotH - y(b.handouts)} rx={1} />}
              {b.refreshes > 0 && (
                <rect class="bar refreshes" x={x + barW + 1} y={y(b.refreshes)} width={barW} height={TOP + plotH - y(b.refreshes)} rx={1} />
              )}
            </g>
          );
        })}
        {labelDays.map((i) => (
          <text key={i} class="tick" x={LEFT + i * slot + slot / 2} y={H - 5} text-anchor={i === 0 ? "start" : i === bars.length - 1 ? "end" : "middle"}>
            {dayLabel(bars[i].day)}
          </text>
        ))}
      </svg>
      <figcaption class="legend">
        <span>
          <span class="swatch handouts" aria-hidden="true" /> Handed out or revealed
        </span>
        <span>
          <span class="swatch refreshes" aria-hidden="true" /> Refreshes (incl. failed)
        </span>
      </figcaption>
    </figure>
  );
}
