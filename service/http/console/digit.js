// The drawing pad and the MNIST preprocessing of what is drawn on it.
//
// MNIST's digits were size-normalised to fit a 20x20 box keeping their aspect ratio (grey levels
// come from that anti-aliasing), then placed in a 28x28 field so that their centre of mass sits
// at its centre (LeCun, Cortes and Burges, "The MNIST database"). preprocess() does the same to
// the pad's ink, so a drawn digit looks to the model like the digits it was trained on.

export const SIDE = 28;
const BOX = 20;
const INK_THRESHOLD = 0; // any ink counts: MNIST's 20x20 box holds its faintest grey pixels too
// Measured on the MNIST sample (mean of 2,000 images): the centre of mass is at index 14.0 on both
// axes, i.e. pixel coordinates counted from 0 at the first pixel's centre.
const CENTRE = 14;

// Average of src (n samples) over m equal output cells, each weighting the source samples it covers.
function resample1d(read, n, m, write) {
  const scale = n / m;
  for (let i = 0; i < m; i += 1) {
    const start = i * scale;
    const end = start + scale;
    let sum = 0;
    for (let k = Math.floor(start); k < Math.min(n, Math.ceil(end)); k += 1) {
      sum += read(k) * (Math.min(end, k + 1) - Math.max(start, k));
    }
    write(i, sum / scale);
  }
}

// Area (box-filter) resampling of a w x h image to tw x th, separable: rows first, then columns.
export function resample(pixels, w, h, tw, th) {
  const rows = new Float32Array(tw * h);
  for (let y = 0; y < h; y += 1) {
    resample1d((k) => pixels[y * w + k], w, tw, (i, v) => { rows[y * tw + i] = v; });
  }
  const out = new Float32Array(tw * th);
  for (let x = 0; x < tw; x += 1) {
    resample1d((k) => rows[k * tw + x], h, th, (i, v) => { out[i * tw + x] = v; });
  }
  return out;
}

export function boundingBox(ink, w, h, threshold = INK_THRESHOLD) {
  let [x0, y0, x1, y1] = [w, h, -1, -1];
  for (let y = 0; y < h; y += 1) {
    for (let x = 0; x < w; x += 1) {
      if (ink[y * w + x] > threshold) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x);
        y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
    }
  }
  return x1 < 0 ? null : { x0, y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

export function centreOfMass(pixels, w, h) {
  let [total, sx, sy] = [0, 0, 0];
  for (let y = 0; y < h; y += 1) {
    for (let x = 0; x < w; x += 1) {
      const v = pixels[y * w + x];
      total += v; sx += v * x; sy += v * y;
    }
  }
  return total > 0 ? { x: sx / total, y: sy / total } : { x: (w - 1) / 2, y: (h - 1) / 2 };
}

// ink: w*h values in [0, 1] (1 = full ink). Returns 28*28 values in [0, 1], or null if blank.
export function preprocess(ink, w, h) {
  const box = boundingBox(ink, w, h);
  if (!box) return null;
  const crop = new Float32Array(box.width * box.height);
  for (let y = 0; y < box.height; y += 1) {
    for (let x = 0; x < box.width; x += 1) crop[y * box.width + x] = ink[(box.y0 + y) * w + box.x0 + x];
  }
  const scale = BOX / Math.max(box.width, box.height);
  const tw = Math.max(1, Math.min(BOX, Math.round(box.width * scale)));
  const th = Math.max(1, Math.min(BOX, Math.round(box.height * scale)));
  const small = resample(crop, box.width, box.height, tw, th);
  const com = centreOfMass(small, tw, th);
  const ox = Math.max(0, Math.min(SIDE - tw, Math.round(CENTRE - com.x)));
  const oy = Math.max(0, Math.min(SIDE - th, Math.round(CENTRE - com.y)));
  const out = new Float32Array(SIDE * SIDE);
  for (let y = 0; y < th; y += 1) {
    for (let x = 0; x < tw; x += 1) out[(oy + y) * SIDE + ox + x] = Math.min(1, small[y * tw + x]);
  }
  return out;
}

export function toRows(flat, side = SIDE) {
  return Array.from({ length: side }, (_, y) => Array.from(flat.subarray(y * side, (y + 1) * side)));
}

// A square canvas drawn on with a mouse, a finger or a pen (Pointer Events cover all three).
export class DrawingPad {
  constructor(canvas, { onStroke, onDraw } = {}) {
    this.canvas = canvas;
    this.context = canvas.getContext('2d', { willReadFrequently: true });
    this.onStroke = onStroke || (() => {});
    this.onDraw = onDraw || (() => {});
    this.drawing = null;
    this.strokes = 0;
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    for (const type of ['pointerup', 'pointercancel']) canvas.addEventListener(type, (e) => this.up(e));
    this.clear();
  }

  point(event) {
    const rect = this.canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) / rect.width) * this.canvas.width,
      y: ((event.clientY - rect.top) / rect.height) * this.canvas.height,
    };
  }

  style() {
    const c = this.context;
    c.lineWidth = this.canvas.width * 0.075;
    c.lineCap = 'round';
    c.lineJoin = 'round';
    c.strokeStyle = '#000';
    c.fillStyle = '#000';
  }

  down(event) {
    if (event.button !== 0 && event.pointerType === 'mouse') return;
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    this.canvas.dataset.pointer = event.pointerType; // mouse, pen or touch: the tests check each
    this.drawing = { id: event.pointerId, last: this.point(event) };
    this.style();
    const { x, y } = this.drawing.last;
    this.context.beginPath();
    this.context.arc(x, y, this.context.lineWidth / 2, 0, Math.PI * 2);
    this.context.fill();
    this.onDraw();
  }

  move(event) {
    if (!this.drawing || event.pointerId !== this.drawing.id) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    this.context.beginPath();
    this.context.moveTo(this.drawing.last.x, this.drawing.last.y);
    for (const e of events.length ? events : [event]) {
      this.drawing.last = this.point(e);
      this.context.lineTo(this.drawing.last.x, this.drawing.last.y);
    }
    this.context.stroke();
    this.onDraw();
  }

  up(event) {
    if (!this.drawing || event.pointerId !== this.drawing.id) return;
    this.drawing = null;
    this.strokes += 1;
    this.onStroke();
  }

  clear() {
    this.context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.strokes = 0;
  }

  // Ink per canvas pixel in [0, 1]: the alpha channel (the pad is transparent, the ink black).
  ink() {
    const { width, height } = this.canvas;
    const rgba = this.context.getImageData(0, 0, width, height).data;
    const ink = new Float32Array(width * height);
    for (let i = 0; i < ink.length; i += 1) ink[i] = rgba[i * 4 + 3] / 255;
    return ink;
  }
}
