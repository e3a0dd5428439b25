// SVG charts drawn here (no library): bars, a line chart over time, and a heat map.

import { fmt, svg } from './dom.js';

const PALETTE = ['#2563eb', '#d97706', '#059669', '#db2777', '#7c3aed', '#0891b2', '#65a30d', '#dc2626'];

export function seriesColour(index) {
  return PALETTE[index % PALETTE.length];
}

function frame(width, height, label) {
  return svg('svg', {
    viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img', 'aria-label': label,
    preserveAspectRatio: 'xMidYMid meet',
  }, svg('title', { text: label }));
}

// "Nice" axis steps (1, 2, 5 x 10^k) so tick labels are round numbers.
export function niceTicks(low, high, count = 5) {
  if (!(high > low)) {
    const pad = Math.abs(low) * 0.1 || 1;
    return niceTicks(low - pad, high + pad, count);
  }
  const raw = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let t = Math.floor(low / step) * step; t <= high + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  if (ticks[ticks.length - 1] < high) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

// Vertical bars: items = [{label, value, highlight}], values in [0, max].
export function barChart(items, { label, max = 1, format = (v) => fmt(v, 3) } = {}) {
  const width = 420;
  const height = 190;
  const top = 22;
  const bottom = 24;
  const slot = width / items.length;
  const root = frame(width, height, label);
  const plot = height - top - bottom;
  items.forEach((item, i) => {
    const barHeight = max > 0 ? Math.max(0, Math.min(1, item.value / max)) * plot : 0;
    const x = i * slot + slot * 0.15;
    const group = svg('g', { class: item.highlight ? 'bar bar-top' : 'bar', 'data-label': item.label, 'data-value': item.value });
    group.append(
      svg('title', { text: `${item.label}: ${format(item.value)}` }),
      svg('rect', { class: 'bar-track', x, y: top, width: slot * 0.7, height: plot, rx: 3 }),
      svg('rect', { class: 'bar-fill', x, y: top + plot - barHeight, width: slot * 0.7, height: barHeight, rx: 3 }),
      svg('text', { class: 'bar-value', x: x + slot * 0.35, y: top + plot - barHeight - 5, 'text-anchor': 'middle', text: format(item.value) }),
      svg('text', { class: 'bar-label', x: x + slot * 0.35, y: height - 6, 'text-anchor': 'middle', text: item.label }),
    );
    root.append(group);
  });
  return root;
}

function timeTicks(low, high) {
  if (high <= low) return [low];
  return [0, 0.5, 1].map((f) => low + (high - low) * f);
}

function timeLabel(ms, span) {
  const date = new Date(ms);
  return span < 2 * 86400e3
    ? date.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: span < 600e3 ? '2-digit' : undefined })
    : date.toLocaleDateString('en-GB', { day: 'numeric', month: 'short' });
}

// Series over time: series = [{name, points: [{x: epoch ms, y, title}]}].
export function lineChart(series, { label, yLabel = '' } = {}) {
  // Sized for a third of a desktop page: text stays near its nominal size when scaled to fit.
  const width = 360;
  const height = 210;
  const points = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.y));
  const root = frame(width, height, label);
  if (!points.length) {
    root.append(svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'chart-empty', text: 'No values to plot' }));
    return root;
  }
  const xs = points.map((p) => p.x);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  if (x1 === x0) { x0 -= 60e3; x1 += 60e3; }
  const yTicks = niceTicks(Math.min(...points.map((p) => p.y)), Math.max(...points.map((p) => p.y)));
  const [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
  // As many decimals as the tick step needs, so neighbouring ticks never print alike.
  const decimals = Math.max(0, -Math.floor(Math.log10((yTicks[1] - yTicks[0]) || 1) + 1e-9));
  const tickText = yTicks.map((t) => t.toFixed(decimals));
  const widest = Math.max(...tickText.map((t) => t.length));
  const pad = { left: 12 + widest * 6.6 + (yLabel ? 16 : 0), right: 14, top: 12, bottom: 30 };
  const sx = (x) => pad.left + ((x - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const sy = (y) => height - pad.bottom - ((y - y0) / (y1 - y0 || 1)) * (height - pad.top - pad.bottom);

  const axes = svg('g', { class: 'axes' });
  yTicks.forEach((t, i) => {
    axes.append(
      svg('line', { class: 'grid', x1: pad.left, x2: width - pad.right, y1: sy(t), y2: sy(t) }),
      svg('text', { class: 'tick', x: pad.left - 6, y: sy(t) + 4, 'text-anchor': 'end', text: tickText[i] }),
    );
  });
  for (const t of timeTicks(x0, x1)) {
    axes.append(svg('text', { class: 'tick', x: sx(t), y: height - pad.bottom + 18, 'text-anchor': 'middle', text: timeLabel(t, x1 - x0) }));
  }
  if (yLabel) {
    axes.append(svg('text', { class: 'axis-title', x: 14, y: height / 2, transform: `rotate(-90 14 ${height / 2})`, 'text-anchor': 'middle', text: yLabel }));
  }
  root.append(axes);

  series.forEach((s, i) => {
    const valid = s.points.filter((p) => Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
    const group = svg('g', { class: 'series', 'data-series': s.name });
    group.style.color = seriesColour(i);
    if (valid.length > 1) {
      const d = valid.map((p, j) => `${j ? 'L' : 'M'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
      group.append(svg('path', { class: 'line', d }));
    }
    for (const p of valid) {
      group.append(svg('circle', { class: 'point', cx: sx(p.x), cy: sy(p.y), r: 4.5 }, svg('title', { text: p.title || fmt(p.y) })));
    }
    root.append(group);
  });
  return root;
}

// Confusion matrix: rows are true classes, columns predicted; colour is the share of the row.
export function heatMap(matrix, labels, { label } = {}) {
  const n = matrix.length;
  const cell = Math.max(22, Math.min(44, 400 / n));
  const left = 64;
  const top = 42;
  const width = left + n * cell + 8;
  const height = top + n * cell + 8;
  const root = frame(width, height, label);
  root.classList.add('heatmap');
  root.append(
    svg('text', { class: 'axis-title', x: left + (n * cell) / 2, y: 12, 'text-anchor': 'middle', text: 'Predicted class' }),
    svg('text', { class: 'axis-title', x: 12, y: top + (n * cell) / 2, transform: `rotate(-90 12 ${top + (n * cell) / 2})`, 'text-anchor': 'middle', text: 'True class' }),
  );
  labels.forEach((name, i) => {
    root.append(
      svg('text', { class: 'tick', x: left + i * cell + cell / 2, y: top - 8, 'text-anchor': 'middle', text: name }),
      svg('text', { class: 'tick', x: left - 8, y: top + i * cell + cell / 2 + 4, 'text-anchor': 'end', text: name }),
    );
  });
  matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((count, j) => {
      const share = count / total;
      const g = svg('g', { class: i === j ? 'cell cell-diagonal' : 'cell', 'data-count': count });
      const fill = `hsl(221 83% ${Math.round(97 - share * 62)}%)`;
      g.append(
        svg('rect', { x: left + j * cell, y: top + i * cell, width: cell - 1, height: cell - 1, fill }),
        svg('title', { text: `true ${labels[i]}, predicted ${labels[j]}: ${count} (${(share * 100).toFixed(1)}% of true ${labels[i]})` }),
      );
      if (n <= 12) {
        g.append(svg('text', {
          x: left + j * cell + cell / 2, y: top + i * cell + cell / 2 + 4, 'text-anchor': 'middle',
          class: share > 0.5 ? 'cell-text cell-text-dark' : 'cell-text', text: count,
        }));
      }
      root.append(g);
    });
  });
  return root;
}
