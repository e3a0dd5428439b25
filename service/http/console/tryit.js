// Try-it view: draw a digit for image models, or type features, and see the model's answer live.

import { modelPath, postJSON } from './api.js';
import { available, inputKind, loadCard, loadModels } from './catalog.js';
import { barChart } from './charts.js';
import { DrawingPad, SIDE, preprocess, toRows } from './digit.js';
import { clear, errorBox, field, fmt, h, percent, select } from './dom.js';

export const title = 'Try it';

export function mount(root, [wanted, wantedVersion]) {
  const controls = h('div', { class: 'controls' });
  const stage = h('div', { class: 'try-stage' });
  root.append(
    h('h1', { tabindex: -1, text: 'Try it' }),
    h('p', { class: 'lede', text: 'Send your own input to a served model through its :predict API and see what it answers.' }),
    controls, stage,
  );
  setUp(controls, stage, wanted, wantedVersion).catch((error) => clear(stage, errorBox(error)));
}

async function setUp(controls, stage, wanted, wantedVersion) {
  const models = (await loadModels()).filter((m) => available(m).length);
  if (!models.length) {
    clear(stage, h('p', { class: 'muted', text: 'No model has a version available yet.' }));
    return;
  }
  const modelSelect = select(models.map((m) => m.name), models.some((m) => m.name === wanted) ? wanted : models[0].name);
  const versionSelect = h('select');
  controls.append(field('Model', modelSelect), field('Version', versionSelect));
  const fillVersions = (preferred) => {
    const model = models.find((m) => m.name === modelSelect.value);
    clear(versionSelect, h('option', { value: '', text: 'latest' }),
      available(model).map((v) => h('option', { value: v.version, selected: v.version === preferred, text: v.version })));
  };
  const show = async () => {
    const name = modelSelect.value;
    const version = versionSelect.value;
    window.history.replaceState(null, '', `#try/${encodeURIComponent(name)}${version ? `/${version}` : ''}`);
    const model = models.find((m) => m.name === name);
    clear(stage, h('p', { class: 'muted', text: 'Loading the model card…' }));
    try {
      const doc = await loadCard(name, version || available(model)[0].version);
      renderTry(stage, name, version, doc.card);
    } catch (error) {
      clear(stage, errorBox(error));
    }
  };
  modelSelect.addEventListener('change', () => { fillVersions(''); show(); });
  versionSelect.addEventListener('change', show);
  fillVersions(wantedVersion);
  await show();
}

function renderTry(stage, name, version, card) {
  const kind = inputKind(card);
  if (!kind) {
    clear(stage, h('p', { class: 'muted', text: `The console has no input form for ${card.inputs.length} inputs of these shapes; use the API.` }));
    return;
  }
  const result = h('div', { class: 'try-result', 'aria-live': 'polite' });
  const predictor = livePredictor(name, version, card, result);
  clear(stage, h('div', { class: 'try-grid' }, kind.kind === 'image' ? drawing(predictor) : numbers(kind.count, card, predictor), result));
  if (kind.kind === 'image') clear(result, h('p', { class: 'muted', text: 'Draw a digit in the box: the model answers as you draw.' }));
}

// Sends the latest input; while a request is in flight, newer inputs wait and only the last is sent.
// data-sent / data-answered count inputs and answers: equal (and aria-busy false) once settled.
function livePredictor(name, version, card, result) {
  let [busy, queued, sent] = [false, null, 0];
  const run = async (body, number) => {
    busy = true;
    try {
      const answer = await postJSON(`${modelPath(name, version)}:predict`, body);
      showAnswer(result, card, answer.predictions[0]);
    } catch (error) {
      clear(result, errorBox(error));
    } finally {
      busy = false;
      result.dataset.answered = number;
      if (queued) { const next = queued; queued = null; run(...next); } else result.setAttribute('aria-busy', 'false');
    }
  };
  return (body) => {
    sent += 1;
    result.dataset.sent = sent;
    result.setAttribute('aria-busy', 'true');
    if (busy) queued = [body, sent]; else run(body, sent);
  };
}

function showAnswer(result, card, prediction) {
  if (card.task === 'classification') {
    const labels = card.class_labels || prediction.probabilities.map((_, i) => String(i));
    const top = prediction.class_id;
    clear(result,
      h('p', { class: 'answer' }, h('span', { class: 'answer-label', text: 'Prediction' }),
        h('strong', { class: 'answer-value', 'data-top-class': prediction.label, text: prediction.label }),
        h('span', { class: 'muted', text: percent(prediction.probabilities[top]) })),
      barChart(prediction.probabilities.map((p, i) => ({ label: labels[i], value: p, highlight: i === top })),
        { label: `Class probabilities; the top class is ${prediction.label}`, format: (v) => (v >= 0.995 ? '1' : v < 0.005 ? '' : v.toFixed(2).replace(/^0/, '')) }));
  } else if (card.task === 'binary') {
    const p = prediction.probability;
    const labels = card.class_labels || ['0', '1'];
    clear(result,
      h('p', { class: 'answer' }, h('span', { class: 'answer-label', text: 'Probability of the positive class' }),
        h('strong', { class: 'answer-value', 'data-probability': p, text: fmt(p, 4) }),
        h('span', { class: 'muted', text: `class ${prediction.label}` })),
      barChart([{ label: labels[0], value: 1 - p, highlight: prediction.class_id === 0 }, { label: labels[1], value: p, highlight: prediction.class_id === 1 }],
        { label: `Probability ${fmt(p, 4)} of ${labels[1]}` }));
  } else {
    const value = typeof prediction === 'number' ? prediction : Object.values(prediction)[0];
    clear(result, h('p', { class: 'answer' }, h('span', { class: 'answer-label', text: card.outputs[0]?.name || 'prediction' }),
      h('strong', { class: 'answer-value', 'data-prediction': value, text: fmt(value, 6) })));
  }
}

function drawing(predict) {
  const canvas = h('canvas', {
    width: 280, height: 280, class: 'pad', tabindex: 0,
    'aria-label': 'Drawing area: draw one digit with a mouse, finger or pen. Press Delete to clear.',
  });
  const preview = h('canvas', { width: SIDE, height: SIDE, class: 'preview', 'aria-hidden': 'true' });
  const send = () => {
    const image = preprocess(pad.ink(), canvas.width, canvas.height);
    if (!image) return;
    paintPreview(preview, image);
    predict({ instances: [toRows(image)] });
  };
  let frame = 0;
  const pad = new DrawingPad(canvas, {
    onStroke: () => { canvas.dataset.strokes = pad.strokes; send(); },
    onDraw: () => { if (!frame) frame = requestAnimationFrame(() => { frame = 0; send(); }); },
  });
  const reset = () => { pad.clear(); canvas.dataset.strokes = 0; paintPreview(preview, new Float32Array(SIDE * SIDE)); };
  canvas.addEventListener('keydown', (e) => { if (e.key === 'Delete' || e.key === 'Backspace') { e.preventDefault(); reset(); } });
  return h('div', { class: 'pad-column' }, canvas,
    h('div', { class: 'pad-actions' },
      h('button', { type: 'button', class: 'button-quiet', onclick: reset, text: 'Clear' }),
      h('figure', { class: 'preview-figure' }, preview, h('figcaption', { text: 'What the model sees: 28×28, centred by mass' }))));
}

function paintPreview(canvas, image) {
  const context = canvas.getContext('2d');
  const pixels = context.createImageData(SIDE, SIDE);
  image.forEach((v, i) => {
    const grey = Math.round(255 * (1 - v));
    pixels.data.set([grey, grey, grey, 255], i * 4);
  });
  context.putImageData(pixels, 0, 0);
}

function numbers(count, card, predict) {
  const names = count === 1 ? [card.inputs[0].name] : Array.from({ length: count }, (_, i) => `${card.inputs[0].name}[${i}]`);
  const inputs = names.map((_, i) => h('input', { type: 'number', step: 'any', value: count === 1 ? 10 : [0.45, 0.6][i] ?? 0, inputmode: 'decimal', required: true }));
  const threshold = card.task === 'binary' ? h('input', { type: 'number', step: 'any', min: 0, max: 1, value: 0.5 }) : null;
  const form = h('form', { class: 'number-form' },
    names.map((name, i) => field(name, inputs[i])),
    threshold ? field('Threshold', threshold, 'Probability at or above which the positive class is chosen.') : null,
    h('button', { type: 'submit', text: 'Predict' }));
  const send = () => {
    const values = inputs.map((input) => Number(input.value));
    if (inputs.some((input) => input.value.trim() === '') || values.some((v) => !Number.isFinite(v))) return;
    const body = { instances: [count === 1 ? values[0] : values] };
    if (threshold && threshold.value !== '') body.threshold = Number(threshold.value);
    predict(body);
  };
  form.addEventListener('submit', (e) => { e.preventDefault(); send(); });
  form.addEventListener('input', send);
  queueMicrotask(send);
  return form;
}
