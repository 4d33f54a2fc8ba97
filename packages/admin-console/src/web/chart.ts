import { svg } from './dom.js';

/** One bar of a chart. */
export interface Bar {
  readonly label: string;
  readonly value: number;
  /** What a screen reader and the tooltip say about it. */
  readonly description: string;
}

/**
 * A horizontal bar chart drawn as SVG by the console (no library). It has a
 * title and each bar a `<title>`; the table beside it carries the same numbers
 * for screen readers.
 */
export function barChart(title: string, bars: readonly Bar[]): SVGElement {
  const rowHeight = 22;
  const labelWidth = 180;
  const width = 520;
  const height = Math.max(1, bars.length) * rowHeight + 8;
  const max = Math.max(1, ...bars.map((bar) => bar.value));
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title, class: 'chart' }, svg('title', {}, title));
  bars.forEach((bar, index) => {
    const y = 4 + index * rowHeight;
    const barWidth = Math.max(1, Math.round(((width - labelWidth - 8) * bar.value) / max));
    chart.append(
      svg(
        'g',
        {},
        svg('title', {}, bar.description),
        svg('text', { x: labelWidth - 6, y: y + 15, 'text-anchor': 'end', class: 'chart-label' }, bar.label.length > 26 ? `${bar.label.slice(0, 25)}…` : bar.label),
        svg('rect', { x: labelWidth, y: y + 3, width: barWidth, height: rowHeight - 8, rx: 2, class: 'chart-bar' }),
      ),
    );
  });
  return chart;
}

/** A column chart over time (one column per day; two series stacked: local below, remote above). */
export function columnChart(title: string, columns: readonly { label: string; local: number; remote: number; description: string }[]): SVGElement {
  const width = 520;
  const height = 160;
  const max = Math.max(1, ...columns.map((c) => c.local + c.remote));
  const step = width / Math.max(1, columns.length);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height + 20}`, role: 'img', 'aria-label': title, class: 'chart' }, svg('title', {}, title));
  columns.forEach((column, index) => {
    const x = index * step + 1;
    const localHeight = Math.round((height * column.local) / max);
    const remoteHeight = Math.round((height * column.remote) / max);
    chart.append(
      svg(
        'g',
        {},
        svg('title', {}, column.description),
        svg('rect', { x, y: height - localHeight, width: Math.max(1, step - 2), height: localHeight, class: 'chart-bar' }),
        svg('rect', { x, y: height - localHeight - remoteHeight, width: Math.max(1, step - 2), height: remoteHeight, class: 'chart-bar remote' }),
      ),
    );
  });
  const first = columns[0];
  const last = columns.at(-1);
  if (first && last) {
    chart.append(svg('text', { x: 0, y: height + 16, class: 'chart-label' }, first.label), svg('text', { x: width, y: height + 16, 'text-anchor': 'end', class: 'chart-label' }, last.label));
  }
  return chart;
}
