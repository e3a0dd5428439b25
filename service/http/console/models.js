// Models view: every model and version with its state, and each version's card in full.

import { getBlob, modelPath } from './api.js';
import { loadCard, loadModels } from './catalog.js';
import { clear, errorBox, fmt, h, stateBadge, table, when } from './dom.js';

export const title = 'Models';
let objectUrls = [];

export function unmount() {
  for (const u of objectUrls) URL.revokeObjectURL(u);
  objectUrls = [];
}

export function mount(root, [selected]) {
  const list = h('ul', { class: 'model-list', 'aria-label': 'Models' });
  const detail = h('section', { class: 'model-detail', 'aria-label': 'Model details' });
  const refresh = h('button', { type: 'button', class: 'button-quiet', text: 'Refresh' });
  root.append(
    h('div', { class: 'view-head' },
      h('div', {}, h('h1', { tabindex: -1, text: 'Models' }),
        h('p', { class: 'lede', text: 'Every model and version the service knows of, with its card: signature, held-out metrics, training and data.' })),
      refresh),
    h('div', { class: 'split' }, list, detail),
  );
  const load = async () => {
    clear(list, h('li', { class: 'muted', text: 'Loading…' }));
    try {
      const models = await loadModels();
      renderList(list, detail, models, selected);
    } catch (error) {
      clear(list);
      clear(detail, errorBox(error));
    }
  };
  refresh.addEventListener('click', () => { unmount(); load(); });
  load();
}

function renderList(list, detail, models, selected) {
  clear(list);
  if (!models.length) {
    clear(detail, h('p', { class: 'muted', text: 'The repository holds no models.' }));
    return;
  }
  const buttons = models.map((model) => {
    const button = h('button', { type: 'button', class: 'model-item', 'data-model': model.name },
      h('span', { class: 'model-name', text: model.name }),
      h('span', { class: 'model-versions' }, model.versions.map((v) => h('span', { class: 'version-state' }, `v${v.version} `, stateBadge(v.state)))));
    button.addEventListener('click', () => select(model));
    list.append(h('li', {}, button));
    return [model.name, button];
  });
  const select = (model) => {
    for (const [name, button] of buttons) button.setAttribute('aria-pressed', String(name === model.name));
    window.history.replaceState(null, '', `#models/${encodeURIComponent(model.name)}`);
    renderModel(detail, model);
  };
  select(models.find((m) => m.name === selected) || models[0]);
}

function renderModel(detail, model) {
  unmount();
  clear(detail, h('h2', { text: model.name }));
  for (const version of model.versions) {
    const article = h('article', { class: 'version', 'data-version': version.version, 'aria-label': `${model.name} version ${version.version}` });
    detail.append(article);
    renderVersion(article, model.name, version);
  }
}

async function renderVersion(article, name, version) {
  const head = h('header', { class: 'version-head' },
    h('h3', { text: `Version ${version.version}` }), stateBadge(version.state));
  article.append(head);
  if (version.state === 'END' && version.reason) {
    article.append(h('p', { class: 'error state-error' }, h('strong', { text: 'Failed to load: ' }), version.reason));
  }
  let doc;
  try {
    doc = await loadCard(name, version.version, { fresh: true });
  } catch (error) {
    article.append(errorBox(error));
    return;
  }
  for (const label of doc.labels) head.append(h('span', { class: 'chip chip-label', text: label }));
  const card = doc.card;
  head.append(h('span', { class: 'chip', text: card.task }));
  if (card.description) article.append(h('p', { class: 'description', text: card.description }));
  article.append(h('div', { class: 'panels' },
    panel('Signature', signature(card)),
    panel(`Held-out metrics${card.metrics_split ? ` (${card.metrics_split})` : ''}`, heldOut(card)),
    panel('Training', training(card)),
    panel('Data', provenance(card)),
  ));
  if (doc.training_curves) article.append(await curves(name, version.version));
}

function panel(heading, ...content) {
  return h('section', { class: 'panel' }, h('h4', { text: heading }), content);
}

function shape(dims) {
  return dims.map((d) => (d < 0 ? 'batch' : d)).join(' × ') || 'scalar';
}

function signature(card) {
  const rows = [
    ...card.inputs.map((s) => [s.name, 'input', s.dtype, shape(s.shape)]),
    ...card.outputs.map((s) => [s.name, 'output', s.dtype, shape(s.shape)]),
  ];
  const labels = card.class_labels ? h('p', { class: 'muted', text: `Classes: ${card.class_labels.join(', ')}` }) : null;
  return [table(`Signature ${card.signature_name}`, ['Tensor', 'Role', 'Type', 'Shape'], rows), labels];
}

function heldOut(card) {
  const metrics = card.metrics || {};
  const scalar = Object.entries(metrics).filter(([, v]) => typeof v === 'number');
  if (!scalar.length) return h('p', { class: 'muted', text: 'The card records no metrics.' });
  return [
    table('Held-out metrics', ['Metric', 'Value'], scalar.map(([k, v]) => [k, h('span', { title: String(v), text: fmt(v) })])),
    card.data?.test_from ? h('p', { class: 'muted', text: card.data.test_from }) : null,
  ];
}

function definitions(pairs) {
  return h('dl', { class: 'facts' }, pairs
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]));
}

function training(card) {
  const config = card.config || {};
  const t = config.training || {};
  return [
    config.layers ? h('ul', { class: 'chips', 'aria-label': 'Layers' }, config.layers.map((l) => h('li', { class: 'chip', text: l }))) : null,
    definitions([
      ['Optimizer', t.optimizer], ['Learning rate', t.learning_rate !== undefined ? `${t.learning_rate} (${t.schedule || 'constant'})` : null],
      ['Loss', t.loss], ['Epochs', t.epochs], ['Batch size', t.batch_size],
      ['Validation split', t.validation_split], ['Seed', t.seed],
      ['Parameters', card.parameter_count !== undefined ? fmt(card.parameter_count) : null],
      ['Learned weights', learned(card.weights)],
      ['Training time', card.training_seconds !== undefined ? `${fmt(card.training_seconds, 3)} s` : null],
      ['Created', card.created_at ? when(card.created_at) : null],
      ['Libraries', card.libraries ? Object.entries(card.libraries).map(([k, v]) => `${k} ${v}`).join(', ') : null],
    ]),
  ];
}

// Small models record their fitted weights in the card (e.g. {weight, bias}); big ones do not.
function learned(weights) {
  if (!weights || typeof weights !== 'object') return null;
  const scalars = Object.entries(weights).filter(([, v]) => typeof v === 'number');
  return scalars.length ? scalars.map(([k, v]) => `${k} ${fmt(v, 6)}`).join(', ') : null;
}

function provenance(card) {
  const data = card.data || {};
  const split = data.split ? Object.entries(data.split).map(([k, v]) => `${k} ${fmt(v)}`).join(' · ') : null;
  const files = (data.files || []).map((f) => h('li', {},
    h('span', { class: 'path', text: f.path }), ' ', h('code', { title: `sha256 ${f.sha256}`, text: `sha256 ${String(f.sha256).slice(0, 12)}…` })));
  const params = data.params ? Object.entries(data.params).map(([k, v]) => `${k}=${v}`).join(', ') : null;
  return [
    definitions([['Source', data.source], ['Generator', data.generator], ['Parameters', params], ['Split', split], ['Seed', data.seed]]),
    files.length ? h('ul', { class: 'files', 'aria-label': 'Data files' }, files) : null,
  ];
}

async function curves(name, version) {
  const figure = h('figure', { class: 'curves' });
  try {
    // Fetched, not linked: with auth on, an <img src> could not carry the bearer token.
    const objectUrl = URL.createObjectURL(await getBlob(`${modelPath(name, version)}/card/training_curves.png`));
    objectUrls.push(objectUrl);
    figure.append(
      h('img', { src: objectUrl, alt: `Training curves of ${name} version ${version}: loss and metrics per epoch.`, loading: 'lazy' }),
      h('figcaption', { text: 'Training curves (from the model card)' }),
    );
  } catch (error) {
    figure.append(errorBox(error));
  }
  return figure;
}
