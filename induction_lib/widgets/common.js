// Shared helpers of the book's widgets (prepended to each widget's module by widgets/__init__.py).
// Every widget draws from `model.get("data")`, precomputed in Python, and handles its own controls,
// so it works in the static web book (no kernel) as well as in JupyterLab and Colab.

// A packed array {dtype, shape, b64} (see `pack` in __init__.py) as a typed array, decoded once.
const _unpacked = new WeakMap();
function unpack(packed) {
  if (_unpacked.has(packed)) return _unpacked.get(packed);
  const bin = atob(packed.b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const Type = { uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, float32: Float32Array }[packed.dtype];
  const out = new Type(bytes.buffer);
  _unpacked.set(packed, out);
  return out;
}

// DOM helpers: h("div", {class: "x", onclick: f}, child, ...) and the same for SVG elements.
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  return _fill(e, attrs, children);
}
const SVG_NS = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, ...children) {
  return _fill(document.createElementNS(SVG_NS, tag), attrs, children);
}
function _fill(e, attrs, children) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// Viridis (the book's sequential colour map), t in [0, 1] -> "rgb(...)".
const VIRIDIS = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
                 [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]];
function viridisRGB(t) {
  t = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(t)), f = t - i, a = VIRIDIS[i], b = VIRIDIS[i + 1];
  return [0, 1, 2].map(k => Math.round(a[k] + f * (b[k] - a[k])));
}
function viridis(t) { const [r, g, b] = viridisRGB(t); return `rgb(${r},${g},${b})`; }
const OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000"];

// Draw a [rows, cols] block of `values` (uint8 unless `scale` says otherwise) starting at `offset`
// as a heatmap on `canvas`, `cell` CSS pixels per entry (crisp on high-DPI screens).
function heatmap(canvas, values, offset, rows, cols, cell, scale = 255, lo = 0) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(cols * cell * dpr);
  canvas.height = Math.round(rows * cell * dpr);
  canvas.style.width = `${cols * cell}px`;
  canvas.style.height = `${rows * cell}px`;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(cols, rows);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const v = (values[offset + r * cols + c] - lo) / scale, j = 4 * (r * cols + c);
      const [R, G, B] = viridisRGB(v);
      img.data[j] = R; img.data[j + 1] = G; img.data[j + 2] = B; img.data[j + 3] = 255;
    }
  const tmp = document.createElement("canvas");
  tmp.width = cols; tmp.height = rows;
  tmp.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
  return ctx;
}

// Send changed traits to the kernel. Returns false when there is none: in the static web book the
// embedded widget has no comm (ipywidgets marks its view "jupyter-widgets-disconnected" and save_changes
// does nothing), and the widget works from its data alone.
function hasKernel(el) {
  return !(el && el.closest && el.closest(".jupyter-widgets-disconnected"));
}
function sendToKernel(model, el) {
  if (!hasKernel(el)) return false;
  try { model.save_changes(); return true; } catch (err) { return false; }
}
const NEEDS_KERNEL = "needs a live kernel: open this chapter in JupyterLab, Binder or Colab (launch button at " +
                     "the top of the page). Everything precomputed works here.";

// The widget's message line: the kernel's message (model "message"/"error"), or a local note.
function messageLine(model) {
  const line = h("div", { class: "ih-message", role: "status", "aria-live": "polite" });
  const show = (text, error) => {
    line.textContent = text || "";
    line.classList.toggle("ih-error", !!(error && text));
  };
  const fromModel = () => show(model.get("message"), model.get("error"));
  model.on("change:message", fromModel);
  model.on("change:error", fromModel);
  fromModel();
  return { el: line, show, fromModel };
}

// The root element of a widget, with a record of what its figure shows (read by the browser test).
function widgetRoot(name) {
  return h("div", { class: "ih-widget", "data-widget": name });
}
function setShown(root, shown) { root.dataset.shown = JSON.stringify(shown); }

// A labelled <select> / range input / checkbox, each tagged data-control=<name> for the browser test.
function select(name, label, options, value, onchange) {
  const sel = h("select", { "data-control": name, "aria-label": label },
    options.map(([v, text]) => h("option", { value: String(v), text })));
  sel.value = String(value);
  sel.addEventListener("change", () => onchange(sel.value));
  return h("label", { class: "ih-control" }, h("span", { text: label }), sel);
}
function range(name, label, min, max, step, value, oninput) {
  const inp = h("input", { type: "range", min, max, step, "data-control": name, "aria-label": label });
  inp.value = String(value);
  inp.addEventListener("input", () => oninput(Number(inp.value)));
  return inp;
}

// Axis helper for small SVG plots: linear or log scale mapping [lo, hi] -> [a, b].
function scale(lo, hi, a, b, log = false) {
  const f = log ? Math.log : x => x;
  const L = f(lo), H = f(hi);
  return x => a + (f(x) - L) / (H - L || 1) * (b - a);
}
function fmt(x, digits = 2) { return Number(x).toFixed(digits); }
