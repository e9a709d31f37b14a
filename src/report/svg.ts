/**
 * A small SVG plotting module for the offline HTML report: axes with "nice" ticks, lines, points,
 * error bars and a legend, as one self-contained <svg> string (no scripts, no fonts, no network).
 * Enough for the paper's figures, which are all x–y plots of a few series.
 */

export interface PlotPoint {
  x: number;
  y: number;
  /** Error bar ends (absolute y values), drawn when both are given. */
  yLow?: number;
  yHigh?: number;
}

export interface Series {
  name: string;
  points: PlotPoint[];
  /** 'line' joins points, 'points' marks them, 'both' does both. Default 'both'. */
  style?: 'line' | 'points' | 'both';
  dashed?: boolean;
  /** CSS colour; default from the palette by series index. */
  color?: string;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Fixed axis ranges; default: the data's range (with error bars) padded to nice ticks. */
  xDomain?: [number, number];
  yDomain?: [number, number];
  /** Log-scale x axis (base 10), e.g. model sizes or N of best-of-N. */
  xLog?: boolean;
  width?: number;
  height?: number;
}

// Colour-blind-safe palette (Okabe & Ito).
export const PALETTE = [
  '#0072B2',
  '#D55E00',
  '#009E73',
  '#CC79A7',
  '#E69F00',
  '#56B4E9',
  '#000000',
  '#F0E442',
];

/** Escapes text for SVG/HTML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * About `count` round tick values covering [lo, hi] (steps of 1, 2 or 5 × 10^k).
 *
 * @example niceTicks(0, 1, 5) // [0, 0.2, 0.4, 0.6, 0.8, 1]
 */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) return [0, 1];
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * power >= raw) ?? 10) * power;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  }
  return ticks;
}

/**
 * [lo, hi] widened to the enclosing multiples of the nice tick step, so the ticks span the data.
 *
 * @example niceDomain(0.58, 0.69) // [0.58, 0.7]
 */
export function niceDomain(lo: number, hi: number, count = 5): [number, number] {
  const ticks = niceTicks(lo, hi, count);
  if (ticks.length < 2) return [lo, hi];
  const step = ticks[1]! - ticks[0]!;
  return [Math.floor(lo / step + 1e-9) * step, Math.ceil(hi / step - 1e-9) * step];
}

/** Short tick label: 0.25, 1.5k, 2M, 1e-5. */
export function formatTick(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  if (a < 1e-3) return v.toExponential(0);
  return String(Number(v.toPrecision(3)));
}

function extent(values: number[], fallback: [number, number]): [number, number] {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return fallback;
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  return [lo, hi];
}

const f = (v: number) => (Math.round(v * 10) / 10).toString();

/**
 * Renders an x–y chart as an <svg> string. Non-finite points are dropped.
 *
 * @example
 * lineChart({ title: 'AUROC by layer', xLabel: 'layer', yLabel: 'AUROC', yDomain: [0, 1],
 *   series: [{ name: 'SRM', points: [{ x: 0, y: 0.6 }, { x: 1, y: 0.9 }] }] });
 */
export function lineChart(o: ChartOptions): string {
  const width = o.width ?? 560;
  const height = o.height ?? 360;
  const margin = { left: 64, right: 16, top: 36, bottom: 52 };
  // Legend entries flow left to right and wrap; text width estimated at 6.2 px a character (11 px font).
  const legendWidth = width - margin.left - margin.right;
  const legendPos: { x: number; row: number }[] = [];
  let cursor = 0;
  let row = 0;
  for (const s of o.series) {
    const w = 34 + 6.2 * s.name.length;
    if (cursor > 0 && cursor + w > legendWidth) {
      cursor = 0;
      row++;
    }
    legendPos.push({ x: margin.left + cursor, row });
    cursor += w + 12;
  }
  const legendHeight = 18 * (row + 1);
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom - legendHeight;
  const series = o.series.map((s) => ({
    ...s,
    points: s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (!o.xLog || p.x > 0)),
  }));
  const tx = (x: number) => (o.xLog ? Math.log10(x) : x);
  const xs = series.flatMap((s) => s.points.map((p) => tx(p.x)));
  const ys = series.flatMap((s) =>
    s.points.flatMap((p) => [
      p.y,
      ...(p.yLow !== undefined && p.yHigh !== undefined ? [p.yLow, p.yHigh] : []),
    ]),
  );
  // Data x range padded by 4% a side, so end points and their error bars are not cut by the frame.
  const [x0, x1] = o.xDomain
    ? [tx(o.xDomain[0]), tx(o.xDomain[1])]
    : ((lo: number, hi: number) => [lo - 0.04 * (hi - lo), hi + 0.04 * (hi - lo)])(...extent(xs, [0, 1]));
  const [y0, y1] = o.yDomain ?? niceDomain(...extent(ys, [0, 1]));
  const yTicks = niceTicks(y0, y1);
  // Log axes: 1, 2, 5 × 10^k ticks inside the range (log10 values).
  const xTicks = o.xLog
    ? Array.from({ length: Math.floor(x1) - Math.floor(x0) + 1 }, (_, i) => Math.floor(x0) + i)
        .flatMap((k) => [k, k + Math.log10(2), k + Math.log10(5)])
        .filter((v) => v >= x0 - 1e-9 && v <= x1 + 1e-9)
    : niceTicks(x0, x1, 6).filter((v) => v >= x0 - 1e-9 && v <= x1 + 1e-9);
  const px = (x: number) => margin.left + ((tx(x) - x0) / (x1 - x0 || 1)) * plotW;
  const pxRaw = (v: number) => margin.left + ((v - x0) / (x1 - x0 || 1)) * plotW;
  const py = (y: number) => margin.top + plotH - ((y - y0) / (y1 - y0 || 1)) * plotH;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(o.title)}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${escapeXml(o.title)}</text>`,
  );
  // Grid and ticks.
  for (const v of yTicks) {
    if (v < y0 - 1e-9 || v > y1 + 1e-9) continue;
    const y = f(py(v));
    parts.push(
      `<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`,
      `<text x="${margin.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${formatTick(v)}</text>`,
    );
  }
  for (const v of xTicks) {
    const x = f(pxRaw(v));
    const label = o.xLog ? formatTick(10 ** v) : formatTick(v);
    parts.push(
      `<line x1="${x}" x2="${x}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#f0f0f0"/>`,
      `<text x="${x}" y="${margin.top + plotH + 16}" text-anchor="middle">${label}</text>`,
    );
  }
  parts.push(
    `<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    `<text x="${margin.left + plotW / 2}" y="${margin.top + plotH + 36}" text-anchor="middle">${escapeXml(o.xLabel)}</text>`,
    `<text transform="translate(16 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(o.yLabel)}</text>`,
  );
  // Data, clipped to the plot area.
  const clipId = `clip${Math.abs(hashCode(o.title))}`;
  parts.push(
    `<clipPath id="${clipId}"><rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}"/></clipPath>`,
    `<g clip-path="url(#${clipId})">`,
  );
  series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    const style = s.style ?? 'both';
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    if (style !== 'points' && pts.length > 1) {
      const d = pts.map((p, k) => `${k ? 'L' : 'M'}${f(px(p.x))},${f(py(p.y))}`).join('');
      parts.push(
        `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      );
    }
    for (const p of pts) {
      if (p.yLow !== undefined && p.yHigh !== undefined) {
        const x = f(px(p.x));
        parts.push(
          `<path d="M${x},${f(py(p.yLow))}V${f(py(p.yHigh))}M${f(px(p.x) - 4)},${f(py(p.yLow))}h8M${f(px(p.x) - 4)},${f(py(p.yHigh))}h8" stroke="${color}" stroke-width="1.2" fill="none"/>`,
        );
      }
      if (style !== 'line')
        parts.push(`<circle cx="${f(px(p.x))}" cy="${f(py(p.y))}" r="3.5" fill="${color}"/>`);
    }
  });
  parts.push('</g>');
  // Legend below the plot.
  series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length]!;
    const { x, row: r } = legendPos[i]!;
    const y = height - legendHeight + 18 * r + 4;
    parts.push(
      `<line x1="${f(x)}" x2="${f(x + 20)}" y1="${y}" y2="${y}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<circle cx="${f(x + 10)}" cy="${y}" r="3" fill="${color}"/>`,
      `<text x="${f(x + 26)}" y="${y}" dominant-baseline="middle">${escapeXml(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function hashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}
