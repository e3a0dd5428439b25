// Reading the service's own /metrics (Prometheus text format): samples, rates and histogram
// quantiles computed the way Prometheus' rate() and histogram_quantile() compute them.

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/g;

function unescape(value) {
  return value.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
}

function number(text) {
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text); // "NaN" becomes NaN
}

// [{name, labels, value}] for every sample line; comments and blank lines are skipped.
export function parse(text) {
  const samples = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const match = LINE.exec(line);
    if (!match) continue;
    const labels = {};
    for (const [, key, value] of (match[3] || '').matchAll(LABEL)) labels[key] = unescape(value);
    samples.push({ name: match[1], labels, value: number(match[4]) });
  }
  return samples;
}

// Sum of a metric's samples grouped by one label (samples without it, or with it empty, skipped).
export function sumBy(samples, name, label, keep = () => true) {
  const out = new Map();
  for (const s of samples) {
    const key = s.labels[label];
    if (s.name !== name || !key || !keep(s.labels)) continue;
    out.set(key, (out.get(key) || 0) + s.value);
  }
  return out;
}

// Cumulative bucket counts of a histogram per value of `label`: Map(key -> Map(le -> count)).
export function bucketsBy(samples, name, label) {
  const out = new Map();
  for (const s of samples) {
    const key = s.labels[label];
    if (s.name !== `${name}_bucket` || !key) continue;
    const le = number(s.labels.le);
    const buckets = out.get(key) || new Map();
    buckets.set(le, (buckets.get(le) || 0) + s.value);
    out.set(key, buckets);
  }
  return out;
}

// later - earlier per bucket (the increase over a window); a restart (a drop) counts from zero.
export function increase(later, earlier) {
  const out = new Map();
  for (const [le, count] of later || []) {
    const before = earlier?.get(le) ?? 0;
    out.set(le, count >= before ? count - before : count);
  }
  return out;
}

export function total(buckets) {
  return buckets?.get(Infinity) ?? 0;
}

// Prometheus' histogram_quantile: find the bucket holding rank q*total and interpolate linearly
// inside it (from 0 for the first bucket); a rank in the +Inf bucket answers the largest bound.
export function quantile(q, buckets) {
  const sorted = [...(buckets || [])].sort((a, b) => a[0] - b[0]);
  const count = sorted.length ? sorted[sorted.length - 1][1] : 0;
  if (!count || sorted[sorted.length - 1][0] !== Infinity) return null;
  const rank = q * count;
  let [lower, below] = [0, 0];
  for (const [le, cumulative] of sorted) {
    if (cumulative >= rank) {
      if (le === Infinity) return sorted.length > 1 ? sorted[sorted.length - 2][0] : null;
      if (cumulative === below) return le;
      return lower + (le - lower) * ((rank - below) / (cumulative - below));
    }
    [lower, below] = [le, cumulative];
  }
  return null;
}

// Non-cumulative counts per bucket, for drawing a distribution: [{le, count}].
export function distribution(buckets) {
  const sorted = [...(buckets || [])].sort((a, b) => a[0] - b[0]);
  let previous = 0;
  return sorted.map(([le, cumulative]) => {
    const count = cumulative - previous;
    previous = cumulative;
    return { le, count };
  });
}
