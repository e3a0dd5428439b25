// Server view: readiness, and per-model traffic, latency percentiles and batch sizes computed
// from two samples of the service's own /metrics, refreshed while the view is open.

import { getJSON, getText, request } from './api.js';
import { barChart } from './charts.js';
import { clear, errorBox, fmt, h, stateBadge, table } from './dom.js';
import { bucketsBy, distribution, increase, parse, quantile, sumBy, total } from './prometheus.js';

export const title = 'Server';

const INTERVAL_MS = 5000;
const INFERENCE_ENDPOINTS = new Set(['predict', 'classify', 'regress', 'infer']);
let timer = null;

export function unmount() {
  clearInterval(timer);
  timer = null;
}

export function mount(root) {
  const health = h('section', { class: 'panel', 'aria-labelledby': 'health-title' });
  const traffic = h('section', { class: 'panel', 'aria-labelledby': 'traffic-title' });
  const batches = h('section', { class: 'panel', 'aria-labelledby': 'batches-title' });
  const auto = h('input', { type: 'checkbox', id: 'auto-refresh', checked: true });
  const now = h('button', { type: 'button', class: 'button-quiet', text: 'Sample now' });
  root.append(
    h('div', { class: 'view-head' },
      h('div', {}, h('h1', { tabindex: -1, text: 'Server' }),
        h('p', { class: 'lede', text: 'Readiness, and what /metrics says about traffic: rates and percentiles over the interval between two samples.' })),
      h('div', { class: 'inline-controls' }, h('label', { class: 'check' }, auto, ` Refresh every ${INTERVAL_MS / 1000} s`), now)),
    health, traffic, batches,
  );
  let previous = null;
  const sample = async () => {
    showHealth(health);
    try {
      const current = { at: performance.now(), samples: parse(await getText('metrics')) };
      showTraffic(traffic, batches, current, previous);
      previous = current;
    } catch (error) {
      clear(traffic, h('h2', { id: 'traffic-title', text: 'Traffic' }), errorBox(error));
    }
  };
  const schedule = () => {
    unmount();
    if (auto.checked) timer = setInterval(sample, INTERVAL_MS);
  };
  auto.addEventListener('change', schedule);
  now.addEventListener('click', sample);
  // Two samples a second apart make the first figures appear quickly; then the regular interval.
  sample().then(() => setTimeout(sample, 1000));
  schedule();
}

async function showHealth(panel) {
  const parts = [h('h2', { id: 'health-title', text: 'Health' })];
  try {
    const response = await request('v2/health/ready');
    const ready = await response.json();
    const meta = await getJSON('v2');
    const { models } = await getJSON('v2/models');
    const counts = {};
    for (const m of models) counts[m.state] = (counts[m.state] || 0) + 1;
    parts.push(h('dl', { class: 'facts facts-row' },
      h('dt', { text: 'Readiness' }), h('dd', { 'data-ready': String(Boolean(ready.ready)) }, ready.ready
        ? h('span', { class: 'badge badge-ok', text: 'Ready' })
        : [h('span', { class: 'badge badge-bad', text: 'Not ready' }), ' ', ready.error || '']),
      h('dt', { text: 'Server' }), h('dd', { text: `${meta.name} ${meta.version}` }),
      h('dt', { text: 'Extensions' }), h('dd', { text: (meta.extensions || []).join(', ') }),
      h('dt', { text: 'Versions' }), h('dd', {}, Object.entries(counts).map(([state, n]) => [stateBadge(state), ` ${n} `]))));
  } catch (error) {
    parts.push(errorBox(error));
  }
  clear(panel, ...parts);
}

const ms = (seconds) => (seconds === null ? '—' : `${fmt(seconds * 1000, 3)} ms`);

function showTraffic(traffic, batches, current, previous) {
  const seconds = previous ? (current.at - previous.at) / 1000 : 0;
  const isInference = (labels) => INFERENCE_ENDPOINTS.has(labels.endpoint);
  const requests = sumBy(current.samples, 'serving_requests_total', 'model');
  const before = previous ? sumBy(previous.samples, 'serving_requests_total', 'model') : new Map();
  const errors = sumBy(current.samples, 'serving_requests_total', 'model', (l) => !l.code?.startsWith('2'));
  const errorsBefore = previous ? sumBy(previous.samples, 'serving_requests_total', 'model', (l) => !l.code?.startsWith('2')) : new Map();
  const latency = bucketsBy(current.samples.filter((s) => isInference(s.labels)), 'serving_request_duration_seconds', 'model');
  const latencyBefore = previous ? bucketsBy(previous.samples.filter((s) => isInference(s.labels)), 'serving_request_duration_seconds', 'model') : new Map();
  const names = [...new Set([...requests.keys(), ...latency.keys()])].sort();
  let lifetimeShown = false;
  const rows = names.map((name) => {
    const rate = (now, then) => (seconds > 0 ? Math.max(0, (now.get(name) || 0) - (then.get(name) || 0)) / seconds : null);
    let window = increase(latency.get(name), latencyBefore.get(name));
    if (!total(window)) { window = latency.get(name); lifetimeShown = true; }
    const mark = seconds > 0 && window === latency.get(name) ? ' *' : '';
    return [name, rate(requests, before) === null ? '…' : fmt(rate(requests, before), 3), rate(errors, errorsBefore) === null ? '…' : fmt(rate(errors, errorsBefore), 3),
      ...[0.5, 0.9, 0.99].map((q) => h('span', { 'data-quantile': q }, ms(quantile(q, window)), mark)), fmt(requests.get(name) || 0)];
  });
  clear(traffic, h('h2', { id: 'traffic-title', text: 'Traffic by model' }),
    rows.length
      ? table('Requests and inference latency by model', ['Model', 'Requests/s', 'Errors/s', 'p50', 'p90', 'p99', 'Requests'], rows, { class: 'traffic-table' })
      : h('p', { class: 'muted', text: 'No model has been asked anything yet.' }),
    h('p', { class: 'muted', text: seconds > 0
      ? `Rates over the last ${fmt(seconds, 2)} s; latency of predict/classify/regress/infer requests.${lifetimeShown ? ' * since the server started (no such request in the interval).' : ''}`
      : 'Taking a second sample for rates…' }));
  showBatches(batches, current, previous);
}

function showBatches(panel, current, previous) {
  const lifetime = bucketsBy(current.samples, 'serving_batch_size', 'model');
  const sums = sumBy(current.samples, 'serving_batch_size_sum', 'model');
  const sumsBefore = previous ? sumBy(previous.samples, 'serving_batch_size_sum', 'model') : new Map();
  const earlier = previous ? bucketsBy(previous.samples, 'serving_batch_size', 'model') : new Map();
  const figures = [...lifetime.keys()].sort().map((name) => {
    const calls = total(lifetime.get(name));
    const windowCalls = total(increase(lifetime.get(name), earlier.get(name)));
    const mean = windowCalls ? ((sums.get(name) || 0) - (sumsBefore.get(name) || 0)) / windowCalls : (sums.get(name) || 0) / (calls || 1);
    // Buckets up to the largest batch seen (at least 8 rows): wide enough bars to read.
    const all = distribution(lifetime.get(name)).filter((b) => b.le !== Infinity);
    const largest = Math.max(8, ...all.filter((b) => b.count > 0).map((b) => b.le));
    const bars = all.filter((b) => b.le <= largest);
    const most = Math.max(1, ...bars.map((b) => b.count));
    return h('figure', { class: 'batch-figure', 'data-model': name },
      h('figcaption', {}, h('strong', { text: name }), ` · ${fmt(calls)} model call${calls === 1 ? '' : 's'} · mean ${fmt(mean, 3)} row${mean === 1 ? '' : 's'}${windowCalls ? ' (interval)' : ''}`),
      barChart(bars.map((b) => ({ label: `≤${b.le}`, value: b.count })), {
        label: `Model calls of ${name} by batch size`, max: most, format: (v) => (v ? fmt(v) : ''),
      }));
  });
  clear(panel, h('h2', { id: 'batches-title', text: 'Batch sizes' }),
    figures.length ? h('div', { class: 'batch-grid' }, figures) : h('p', { class: 'muted', text: 'No model call yet.' }));
}
