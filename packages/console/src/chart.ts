/// <reference lib="dom" />
// A line chart drawn as inline SVG: one line per series over the same minutes. No library: a
// few paths and axes are all the overview needs. Colours keep 3:1 contrast against white.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 720;
const HEIGHT = 180;
const PAD = { left: 40, right: 8, top: 8, bottom: 22 };
const COLOURS = ['#0055cc', '#b34700', '#007a4d', '#8a2be2', '#c0005a', '#5c5c00'];

export interface Series {
  name: string;
  /** One value per minute, oldest first; every series as long as `minutes`. */
  values: number[];
}

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | number>,
  text?: string,
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** The chart, labelled by the heading `labelledBy`, with a legend; minutes are epoch ms. */
export function lineChart(minutes: number[], series: Series[], labelledBy: string): Element {
  const figure = document.createElement('figure');
  if (series.length === 0 || minutes.length === 0) {
    figure.append('No refreshes in this window.');
    return figure;
  }
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const x = (i: number) =>
    PAD.left + (i / Math.max(1, minutes.length - 1)) * (WIDTH - PAD.left - PAD.right);
  const y = (v: number) => HEIGHT - PAD.bottom - (v / max) * (HEIGHT - PAD.top - PAD.bottom);
  const chart = svg('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: 'img',
    'aria-labelledby': labelledBy,
  });
  // Axes: 0 and the maximum on the left, the window's ends below.
  chart.append(
    svg('line', { x1: PAD.left, y1: y(0), x2: WIDTH - PAD.right, y2: y(0), stroke: '#767676' }),
    svg('text', { x: PAD.left - 4, y: y(0), 'text-anchor': 'end', 'font-size': 11 }, '0'),
    svg(
      'text',
      { x: PAD.left - 4, y: y(max) + 10, 'text-anchor': 'end', 'font-size': 11 },
      String(max),
    ),
    svg('text', { x: PAD.left, y: HEIGHT - 4, 'font-size': 11 }, clock(minutes[0]!)),
    svg(
      'text',
      { x: WIDTH - PAD.right, y: HEIGHT - 4, 'text-anchor': 'end', 'font-size': 11 },
      clock(minutes[minutes.length - 1]!),
    ),
  );
  const legend = document.createElement('ul');
  legend.className = 'legend';
  series.forEach((s, index) => {
    const colour = COLOURS[index % COLOURS.length]!;
    const points = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    chart.append(svg('polyline', { points, fill: 'none', stroke: colour, 'stroke-width': 2 }));
    const swatch = svg('svg', { width: 14, height: 14, 'aria-hidden': 'true' });
    swatch.append(svg('rect', { width: 14, height: 14, fill: colour }));
    const item = document.createElement('li');
    item.append(swatch, ` ${s.name} (peak ${Math.max(...s.values)}/min)`);
    legend.append(item);
  });
  figure.append(chart, legend);
  return figure;
}

function clock(ms: number): string {
  return new Date(ms).toLocaleTimeString('en', { hour: '2-digit', minute: '2-digit' });
}
