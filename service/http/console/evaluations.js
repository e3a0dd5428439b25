// Evaluations view: history per model and version, charts over time, the latest confusion matrix,
// and a labelled file evaluated from the page through :evaluate (streamed NDJSON) with progress.

import { getJSON, modelPath, upload } from './api.js';
import { available, loadCard, loadModels } from './catalog.js';
import { heatMap, lineChart, seriesColour } from './charts.js';
import { datasetName, prepare } from './datafiles.js';
import { clear, errorBox, field, fmt, h, select, table, when } from './dom.js';

export const title = 'Evaluations';

const CHARTED = {
  classification: ['accuracy', 'roc_auc', 'log_loss'],
  binary: ['accuracy', 'roc_auc', 'log_loss'],
  regression: ['mse', 'r2'],
};
const TABLED = {
  classification: ['accuracy', 'top_k_accuracy', 'roc_auc', 'log_loss'],
  binary: ['accuracy', 'f1', 'roc_auc', 'log_loss'],
  regression: ['mse', 'rmse', 'mae', 'r2'],
};

export function mount(root, [wanted]) {
  const controls = h('div', { class: 'controls' });
  const body = h('div', { class: 'evaluations' });
  root.append(
    h('h1', { tabindex: -1, text: 'Evaluations' }),
    h('p', { class: 'lede', text: 'How each version scored on labelled data, over time; run a new evaluation from a file.' }),
    controls, body,
  );
  setUp(controls, body, wanted).catch((error) => clear(body, errorBox(error)));
}

async function setUp(controls, body, wanted) {
  const models = await loadModels();
  if (!models.length) {
    clear(body, h('p', { class: 'muted', text: 'The repository holds no models.' }));
    return;
  }
  const modelSelect = select(models.map((m) => m.name), models.some((m) => m.name === wanted) ? wanted : models[0].name);
  const versionFilter = h('select');
  controls.append(field('Model', modelSelect), field('Show versions', versionFilter));
  const history = h('div', { class: 'history' });
  const runner = h('section', { class: 'panel run-panel', 'aria-labelledby': 'run-title' });
  clear(body, runner, history);

  const model = () => models.find((m) => m.name === modelSelect.value);
  const refresh = () => showHistory(history, model(), versionFilter.value);
  modelSelect.addEventListener('change', () => {
    window.history.replaceState(null, '', `#evaluations/${encodeURIComponent(modelSelect.value)}`);
    fillFilter(versionFilter, model());
    runPanel(runner, model(), refresh);
    refresh();
  });
  versionFilter.addEventListener('change', refresh);
  fillFilter(versionFilter, model());
  runPanel(runner, model(), refresh);
  refresh();
}

function fillFilter(filter, model) {
  clear(filter, h('option', { value: '', text: 'all' }), model.versions.map((v) => h('option', { value: v.version, text: v.version })));
}

async function showHistory(container, model, version) {
  clear(container, h('p', { class: 'muted', text: 'Loading the history…' }));
  let records;
  try {
    const query = new URLSearchParams({ limit: '1000' });
    if (version) query.set('version', version);
    ({ evaluations: records } = await getJSON(`v1/models/${encodeURIComponent(model.name)}/evaluations?${query}`));
  } catch (error) {
    clear(container, errorBox(error));
    return;
  }
  if (!records.length) {
    clear(container, h('p', { class: 'muted empty-history', text: `No evaluation of ${model.name} recorded yet. Run one above, or POST to :evaluate.` }));
    return;
  }
  const task = records[0].task;
  clear(container,
    h('section', { class: 'panel' }, h('h2', { text: 'Over time' }), charts(records, task)),
    confusion(records),
    h('section', { class: 'panel' }, h('h2', { text: 'History' }), historyTable(records, task)));
}

function charts(records, task) {
  const versions = [...new Set(records.map((r) => r.version))].sort((a, b) => Number(a) - Number(b));
  const legend = h('ul', { class: 'legend', 'aria-label': 'Versions' }, versions.map((v, i) => {
    const swatch = h('span', { class: 'swatch' });
    swatch.style.background = seriesColour(i);
    return h('li', {}, swatch, `version ${v}`);
  }));
  const grid = h('div', { class: 'chart-grid' });
  for (const metric of CHARTED[task] || []) {
    const series = versions.map((v) => ({
      name: `version ${v}`,
      points: records.filter((r) => r.version === v && typeof r.metrics?.[metric] === 'number').map((r) => ({
        x: Date.parse(r.evaluated_at), y: r.metrics[metric],
        title: `${metric} ${fmt(r.metrics[metric])} · version ${v} · ${r.dataset} · ${when(r.evaluated_at)}`,
      })),
    }));
    grid.append(h('figure', { class: 'chart-figure', 'data-metric': metric },
      h('figcaption', { text: metric }),
      lineChart(series, { label: `${metric} of each evaluation over time, by version` })));
  }
  return [legend, grid];
}

function confusion(records) {
  const latest = records.find((r) => Array.isArray(r.metrics?.confusion_matrix));
  if (!latest) return null;
  const matrix = latest.metrics.confusion_matrix;
  const labels = latest.metrics.per_class ? Object.keys(latest.metrics.per_class) : matrix.map((_, i) => String(i));
  return h('section', { class: 'panel' },
    h('h2', { text: 'Latest confusion matrix' }),
    h('p', { class: 'muted', text: `Version ${latest.version} on ${latest.dataset}, ${fmt(latest.sample_count)} samples, ${when(latest.evaluated_at)}. Colour: share of the true class.` }),
    h('div', { class: 'heatmap-wrap' }, heatMap(matrix, labels, { label: `Confusion matrix of version ${latest.version} on ${latest.dataset}` })));
}

function historyTable(records, task) {
  const metrics = TABLED[task] || [];
  const rows = records.map((r) => [
    h('time', { datetime: r.evaluated_at, text: when(r.evaluated_at) }), r.version, r.dataset, fmt(r.sample_count),
    ...metrics.map((m) => h('span', { title: String(r.metrics?.[m] ?? ''), text: fmt(r.metrics?.[m]) })),
    `${fmt(r.duration_seconds, 3)} s`,
  ]);
  return table('Evaluation history, newest first', ['When', 'Version', 'Dataset', 'Samples', ...metrics, 'Duration'], rows, { class: 'history-table' });
}

function runPanel(panel, model, done) {
  const files = h('input', { type: 'file', multiple: true, accept: '.csv,.ndjson,.jsonl,.gz,.idx,.idx1-ubyte,.idx3-ubyte,application/gzip,text/csv' });
  const labelColumn = h('input', { type: 'text', value: 'label', spellcheck: 'false' });
  const dataset = h('input', { type: 'text', value: 'console', pattern: '[A-Za-z0-9_.:\\-]{1,64}', spellcheck: 'false' });
  const versions = available(model);
  const version = select([['', 'latest'], ...versions.map((v) => [v.version, v.version])], '');
  const run = h('button', { type: 'submit', text: 'Run evaluation', disabled: !versions.length });
  const progress = h('progress', { max: 1, value: 0, hidden: true, 'aria-label': 'Evaluation progress' });
  const status = h('p', { class: 'run-status', role: 'status' });
  files.addEventListener('change', () => { dataset.value = datasetName([...files.files]); });
  const form = h('form', { class: 'run-form' },
    field('Labelled data', files, 'CSV (label column + features), NDJSON ({"instance", "label"} per line), or an MNIST IDX images + labels pair (select both).'),
    field('CSV label column', labelColumn),
    field('Dataset name', dataset, 'Letters, digits, _ . : - (recorded with the result).'),
    field('Version', version),
    h('div', { class: 'actions' }, run));
  clear(panel, h('h2', { id: 'run-title', text: `Evaluate ${model.name}` }), form, progress, status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    run.disabled = true;
    try {
      const result = await evaluate(model, version.value, [...files.files], labelColumn.value.trim() || 'label', dataset.value, { progress, status });
      clear(status, summary(result));
      done();
    } catch (error) {
      progress.hidden = true;
      clear(status, errorBox(error));
    } finally {
      run.disabled = false;
    }
  });
}

async function evaluate(model, version, files, labelColumn, dataset, { progress, status }) {
  const show = (value, text) => {
    progress.hidden = false;
    if (value === null) progress.removeAttribute('value'); else progress.value = value;
    status.textContent = text;
  };
  const doc = await loadCard(model.name, version || available(model)[0]?.version);
  const dims = doc.card.inputs[0].shape.slice(1);
  show(0, 'Reading the file…');
  const { blob, rows } = await prepare(files, dims, {
    labelColumn, progress: (done, total) => show(0.4 * (done / total), `Converting: ${fmt(done)} of ${fmt(total)} rows`),
  });
  const query = new URLSearchParams({ dataset });
  const answer = await upload(`${modelPath(model.name, version)}:evaluate?${query}`, blob, 'application/x-ndjson', (sent, total) => {
    if (sent < total) show(0.4 + 0.5 * (sent / total), `Uploading ${fmt(rows)} rows: ${Math.round((100 * sent) / total)}%`);
    else show(null, `Scoring ${fmt(rows)} rows on the server…`);
  });
  show(1, '');
  return answer;
}

function summary(result) {
  const figures = Object.entries(result.metrics).filter(([, v]) => typeof v === 'number' && !Number.isInteger(v)).slice(0, 5);
  return h('span', { class: 'run-done' },
    `Version ${result.version} scored ${fmt(result.sample_count)} rows of ${result.dataset} in ${fmt(result.duration_seconds, 3)} s: `,
    figures.map(([k, v]) => `${k} ${fmt(v)}`).join(', '), '.');
}
