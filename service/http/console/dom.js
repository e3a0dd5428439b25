// Small DOM helpers shared by the views: element building, number and time formatting.

const SVG_NS = 'http://www.w3.org/2000/svg';

// Attributes go through setAttribute; "class", "text" and "on*" get their usual meaning. Styles are
// never set as attributes: the page's Content-Security-Policy forbids inline style attributes.
function apply(node, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'text') node.textContent = String(value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  apply(node, attrs);
  return append(node, children);
}

export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  apply(node, attrs);
  return append(node, children);
}

export function clear(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

let uid = 0;
export function uniqueId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

// A labelled form control: the label is always a real <label for>, so screen readers name it.
export function field(labelText, control, hint) {
  if (!control.id) control.id = uniqueId('field');
  const hintNode = hint ? h('span', { class: 'hint', id: `${control.id}-hint`, text: hint }) : null;
  if (hintNode) control.setAttribute('aria-describedby', hintNode.id);
  return h('div', { class: 'field' }, h('label', { for: control.id, text: labelText }), control, hintNode);
}

export function select(options, selected) {
  const node = h('select');
  for (const option of options) {
    const [value, label] = Array.isArray(option) ? option : [option, option];
    node.append(h('option', { value, selected: value === selected }, label));
  }
  return node;
}

// Figures: up to 4 significant digits for metrics, full precision kept in title attributes.
export function fmt(value, digits = 4) {
  if (value === null || value === undefined) return '—';
  if (typeof value !== 'number') return String(value);
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e6)) return value.toExponential(digits - 1);
  // 0.999998 is not 1: add digits until a fraction stays a fraction.
  let shown = Number(value.toPrecision(digits));
  for (let more = digits + 1; Number.isInteger(shown) && more <= 8; more += 1) shown = Number(value.toPrecision(more));
  return shown.toString();
}

export function percent(value, digits = 1) {
  return `${(value * 100).toFixed(digits)}%`;
}

export function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso ?? '—');
  return date.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
}

export function stateBadge(state) {
  const kind = { AVAILABLE: 'ok', LOADING: 'busy', START: 'busy', UNLOADING: 'busy', END: 'bad' }[state] || 'busy';
  return h('span', { class: `badge badge-${kind}`, text: state });
}

export function errorBox(error) {
  return h('p', { class: 'error', role: 'alert' }, error?.message || String(error));
}

export function table(caption, headers, rows, attrs = {}) {
  return h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': caption },
    h('table', attrs,
      h('caption', { class: 'visually-hidden', text: caption }),
      h('thead', {}, h('tr', {}, headers.map((text) => h('th', { scope: 'col', text })))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((cell, i) => (i === 0
        ? h('th', { scope: 'row' }, cell)
        : h('td', {}, cell))))))));
}
