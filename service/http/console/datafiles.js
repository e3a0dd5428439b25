// Labelled files picked in the browser, turned into the NDJSON stream :evaluate reads
// (one {"instance": ..., "label": ...} per line; see docs/evaluation.md): CSV, NDJSON as it is,
// or an MNIST IDX images + labels pair, decoded here (gzip included) and scaled to [0, 1].

const IDX_IMAGES = 0x803;
const IDX_LABELS = 0x801;
const SLICE = 512; // rows converted between two updates of the progress bar

const tick = () => new Promise((resolve) => { setTimeout(resolve, 0); });

async function bytesOf(file) {
  const head = new Uint8Array(await file.slice(0, 2).arrayBuffer());
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const stream = file.stream().pipeThrough(new DecompressionStream('gzip'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }
  return new Uint8Array(await file.arrayBuffer());
}

// {kind: 'images' | 'labels', count, rows, cols, data}; refuses anything that is not exactly IDX.
export async function readIdx(file) {
  let bytes;
  try {
    bytes = await bytesOf(file);
  } catch {
    throw new Error(`${file.name} is not a readable gzip file.`);
  }
  if (bytes.length < 8) throw new Error(`${file.name} is too short to be an IDX file.`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  if (magic !== IDX_IMAGES && magic !== IDX_LABELS) {
    throw new Error(`${file.name} is not an MNIST IDX file (magic 0x${magic.toString(16)}).`);
  }
  const images = magic === IDX_IMAGES;
  const header = images ? 16 : 8;
  const count = view.getUint32(4);
  const [rows, cols] = images ? [view.getUint32(8), view.getUint32(12)] : [1, 1];
  if (bytes.length !== header + count * rows * cols) {
    throw new Error(`${file.name} is truncated or corrupt: ${bytes.length} bytes for ${count} items.`);
  }
  return { kind: images ? 'images' : 'labels', count, rows, cols, data: bytes.subarray(header), name: file.name };
}

// The float32 value training gives pixel k (k / 255), printed with enough digits to survive the trip.
const PIXELS = Array.from({ length: 256 }, (_, k) => String(Number(Math.fround(k / 255).toPrecision(9))));

// Lays flat values out as the model's input shape (without the batch axis): scalar, list or grid.
export function shaper(dims, width) {
  const fixed = dims.map((d) => (d < 0 ? null : d));
  if (fixed.length === 0) {
    if (width !== 1) throw new Error(`The model takes one number per row; the file has ${width}.`);
    return (values) => values[0];
  }
  const size = fixed.reduce((a, d) => a * (d ?? width), 1);
  if (size !== width) {
    throw new Error(`The model takes ${dims.join('x')} values per row; the file has ${width}.`);
  }
  if (fixed.length === 1) return (values) => values;
  const [rows, cols] = [fixed[0], fixed.slice(1).reduce((a, d) => a * d, 1)];
  if (fixed.length > 2) throw new Error(`Inputs of shape ${dims.join('x')} are not supported here.`);
  return (values) => Array.from({ length: rows }, (_, r) => values.slice(r * cols, (r + 1) * cols));
}

// JSON of nested arrays of numbers already printed as text (JSON.stringify would quote them).
function numbersJson(nested) {
  return Array.isArray(nested) ? `[${nested.map(numbersJson).join(',')}]` : nested;
}

async function idxPair(files, dims, progress) {
  const parts = await Promise.all(files.map(readIdx));
  const images = parts.find((p) => p.kind === 'images');
  const labels = parts.find((p) => p.kind === 'labels');
  if (!images || !labels) throw new Error('Select one IDX images file and one IDX labels file.');
  if (images.count !== labels.count) {
    throw new Error(`${images.name} holds ${images.count} images but ${labels.name} ${labels.count} labels.`);
  }
  const width = images.rows * images.cols;
  const layout = shaper(dims, width);
  const lines = [];
  for (let start = 0; start < images.count; start += SLICE) {
    for (let i = start; i < Math.min(images.count, start + SLICE); i += 1) {
      const pixels = Array.from(images.data.subarray(i * width, (i + 1) * width), (k) => PIXELS[k]);
      lines.push(`{"instance":${numbersJson(layout(pixels))},"label":${labels.data[i]}}\n`);
    }
    progress(Math.min(images.count, start + SLICE), images.count);
    await tick();
  }
  return { blob: new Blob(lines, { type: 'application/x-ndjson' }), rows: images.count };
}

// RFC 4180 fields: commas, quotes doubled inside quoted fields, CRLF or LF line ends.
export function parseCsv(text) {
  const rows = [];
  let [row, cell, quoted] = [[], '', false];
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i += 1; } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i += 1;
      row.push(cell); rows.push(row); [row, cell] = [[], ''];
    } else cell += c;
  }
  if (cell !== '' || row.length) { row.push(cell); rows.push(row); }
  return rows.filter((r) => r.length > 1 || r[0] !== '');
}

function value(cell) {
  const text = cell.trim();
  if (text === '') return null; // a missing value: the service says which row lacks it
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
}

async function csv(file, dims, labelColumn, progress) {
  const [header, ...rows] = parseCsv(await file.text());
  if (!header) throw new Error(`${file.name} is empty.`);
  const labelAt = header.map((h) => h.trim()).indexOf(labelColumn);
  if (labelAt < 0) throw new Error(`${file.name} has no column named "${labelColumn}".`);
  const layout = shaper(dims, header.length - 1);
  const lines = [];
  for (let start = 0; start < rows.length; start += SLICE) {
    for (const [n, row] of rows.slice(start, start + SLICE).entries()) {
      if (row.length !== header.length) {
        throw new Error(`Row ${start + n + 2} of ${file.name} has ${row.length} fields; the header has ${header.length}.`);
      }
      const features = row.filter((_, i) => i !== labelAt).map(value);
      lines.push(`${JSON.stringify({ instance: layout(features), label: value(row[labelAt]) })}\n`);
    }
    progress(Math.min(rows.length, start + SLICE), rows.length);
    await tick();
  }
  return { blob: new Blob(lines, { type: 'application/x-ndjson' }), rows: rows.length };
}

async function ndjson(file) {
  const rows = (await file.text()).split('\n').filter((line) => line.trim()).length;
  return { blob: file, rows };
}

// files: what the file input holds; dims: the model input's shape without the batch axis.
export async function prepare(files, dims, { labelColumn = 'label', progress = () => {} } = {}) {
  if (!files.length) throw new Error('Choose a labelled file first.');
  if (files.length === 2) return idxPair(files, dims, progress);
  if (files.length > 2) throw new Error('Choose one CSV or NDJSON file, or an IDX images + labels pair.');
  const [file] = files;
  const name = file.name.toLowerCase();
  if (name.endsWith('.csv')) return csv(file, dims, labelColumn, progress);
  if (/\.(nd)?jsonl?$|\.ndjson$/.test(name)) return ndjson(file);
  if (name.includes('idx') || name.endsWith('.gz')) {
    throw new Error('An IDX file needs its partner: select the images file and the labels file together.');
  }
  throw new Error(`${file.name}: use a .csv, .ndjson/.jsonl, or an IDX images + labels pair.`);
}

// A dataset name the service accepts (letters, digits, _ . : -, at most 64) from a file name.
export function datasetName(files) {
  const base = files.length ? files[0].name.replace(/\.(gz|csv|ndjson|jsonl|json)$/gi, '') : 'console';
  return base.replace(/[^A-Za-z0-9_.:-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 64) || 'console';
}
