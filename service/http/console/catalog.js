// What the service serves, fetched through its public API and shared by the views:
// the model index (V2 repository index) and each version's card.

import { getJSON, modelPath } from './api.js';

const cards = new Map();

// [{name, versions: [{version, state, reason}] newest first}] sorted by name.
export async function loadModels() {
  const { models } = await getJSON('v2/models');
  const byName = new Map();
  for (const entry of models) {
    if (!byName.has(entry.name)) byName.set(entry.name, []);
    byName.get(entry.name).push({ version: entry.version, state: entry.state, reason: entry.reason });
  }
  return [...byName.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, versions]) => ({ name, versions: versions.sort((a, b) => Number(b.version) - Number(a.version)) }));
}

// The card document of a version (state, labels, card); cached unless `fresh`.
export function loadCard(name, version, { fresh = false } = {}) {
  const key = `${name}/${version}`;
  if (fresh || !cards.has(key)) {
    const pending = getJSON(`${modelPath(name, version)}/card`);
    pending.catch(() => cards.delete(key)); // a failure is not remembered
    cards.set(key, pending);
  }
  return cards.get(key);
}

export function available(model) {
  return model.versions.filter((v) => v.state === 'AVAILABLE');
}

// What the Try-it view can offer for a card's single input: an image pad, or number fields.
export function inputKind(card) {
  if (card.inputs.length !== 1) return null;
  const dims = card.inputs[0].shape.slice(1);
  if (dims.length === 2 && dims[0] === 28 && dims[1] === 28) return { kind: 'image' };
  if (dims.length === 0) return { kind: 'numbers', count: 1 };
  if (dims.length === 1 && dims[0] > 0 && dims[0] <= 8) return { kind: 'numbers', count: dims[0] };
  return null;
}
