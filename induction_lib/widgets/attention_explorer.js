// Attention explorer: one head's attention pattern on a sequence, and the model's next-token predictions.
// Hover a token (in the strip or a row of the pattern) to see where it attends -- the other tokens are
// coloured by its attention, as in CircuitsVis -- and what the model predicts after it.
// Data (AttentionExplorer in __init__.py): per sequence, every head's pattern [layer, head, query, key] as
// uint8 and the top-k predictions at every position. Everything here runs without a kernel; only a typed
// sequence is sent to the kernel (trait "text") to be computed.

function render({ model, el }) {
  const root = widgetRoot("attention-explorer");
  const msg = messageLine(model);
  const controls = h("div", { class: "ih-controls" });
  const strip = h("div", { class: "ih-tokens", "aria-label": "tokens: hover one" });
  const canvas = h("canvas", { class: "ih-pattern", "aria-label": "attention pattern" });
  const patternTitle = h("div", { class: "ih-panel-title" });
  const predTitle = h("div", { class: "ih-panel-title" });
  const bars = h("div", { class: "ih-bars" });
  const predNote = h("div", { class: "ih-small" });
  const attnNote = h("div", { class: "ih-small" });
  root.append(controls, msg.el, strip,
    h("div", { class: "ih-row" },
      h("div", {}, patternTitle, canvas,
        h("div", { class: "ih-small", text: "rows: query position (attends from) · columns: key (attends to)" })),
      h("div", { style: "min-width: 260px" }, predTitle, bars, predNote, attnNote)));
  el.append(root);

  let cell = 8;  // CSS pixels per pattern entry

  const data = () => model.get("data");
  const seq = () => data().sequences[Math.min(model.get("sequence"), data().sequences.length - 1)];

  function buildControls() {
    const d = data();
    controls.replaceChildren(
      select("layer", "layer", [...Array(d.n_layers).keys()].map(l => [l, String(l)]), model.get("layer"),
        v => change({ layer: Number(v) })),
      select("head", "head", [...Array(d.n_heads).keys()].map(i => [i, String(i)]), model.get("head"),
        v => change({ head: Number(v) })),
      select("sequence", "sequence", d.sequences.map((q, i) => [i, q.name]), model.get("sequence"),
        v => change({ sequence: Number(v), query: d.sequences[Number(v)].ids.length - 1 })),
      h("button", { "data-control": "random", text: "new random sequence", onclick: nextRandom }),
      textBox());
  }

  function textBox() {
    const d = data();
    const hint = d.text_input === "text" ? "type text" : "type token ids, e.g. 5 17 9 5 17";
    const input = h("input", { type: "text", placeholder: hint, size: 28, "data-control": "text",
                               "aria-label": "a sequence of your own" });
    input.value = model.get("text");   // the controls are rebuilt when new data arrives: keep what was typed
    const run = () => {
      if (!input.value.trim()) { msg.show("Type a sequence first.", true); return; }
      model.set("text", input.value);
      if (sendToKernel(model, el)) msg.show("computing your sequence…", false);
      else msg.show("Running a sequence you type " + NEEDS_KERNEL, true);
    };
    input.addEventListener("keydown", e => { if (e.key === "Enter") run(); });
    return h("span", { class: "ih-control" }, input,
      h("button", { "data-control": "run", "data-needs-kernel": "", text: "run", onclick: run }));
  }

  function nextRandom() {
    const seqs = data().sequences;
    const randoms = seqs.map((q, i) => [q, i]).filter(([q]) => q.kind === "random").map(([, i]) => i);
    if (!randoms.length) return;
    const now = randoms.indexOf(model.get("sequence"));
    const i = randoms[(now + 1) % randoms.length];
    change({ sequence: i, query: seqs[i].ids.length - 1 });
  }

  function change(values) {
    for (const [k, v] of Object.entries(values)) model.set(k, v);
    sendToKernel(model, el);  // keeps the Python object in step when there is a kernel; harmless without one
    draw();
  }

  function setQuery(q) {
    if (q === model.get("query")) return;
    model.set("query", q);
    draw();
  }

  function draw() {
    const d = data(), q = seq(), n = q.ids.length;
    const L = model.get("layer"), H = model.get("head");
    let query = model.get("query");
    if (query < 0 || query >= n) query = n - 1;
    const pattern = unpack(q.pattern);
    const base = ((L * d.n_heads + H) * n) * n;    // [layer, head, query, key]
    const row = i => pattern[base + query * n + i] / 255;

    // keep the selects in step (also after a change from Python)
    for (const [name, value] of [["layer", L], ["head", H], ["sequence", model.get("sequence")]]) {
      const sel = controls.querySelector(`[data-control=${name}]`);
      if (sel && sel.value !== String(value)) sel.value = String(value);
    }

    // token strip: each token coloured by the hovered token's attention to it
    strip.replaceChildren(...q.labels.map((lab, i) => {
      const a = i <= query ? row(i) : 0;
      const t = h("span", { class: "ih-token" + (i === query ? " ih-query" : ""), "data-pos": i,
                            "data-hover": "query", text: lab,
                            title: `position ${i}: '${lab}'; attention from '${q.labels[query]}': ${fmt(a)}` });
      t.style.background = `rgba(0, 114, 178, ${a.toFixed(3)})`;
      t.style.color = a > 0.55 ? "#fff" : "#222";
      t.addEventListener("mouseenter", () => setQuery(i));
      return t;
    }));

    // pattern heatmap with the hovered query's row outlined
    cell = Math.max(4, Math.min(24, Math.floor(340 / n)));
    const ctx = heatmap(canvas, pattern, base, n, n, cell);
    const dpr = window.devicePixelRatio || 1;
    ctx.strokeStyle = "#D55E00";
    ctx.lineWidth = 2 * dpr;
    ctx.strokeRect(1 * dpr, query * cell * dpr, (n * cell - 2) * dpr, cell * dpr);
    canvas.dataset.row = String(query);
    patternTitle.textContent = `head ${L}.${H} on ${q.name}`;

    // predictions after the hovered token
    const k = d.top_k, topIds = unpack(q.top_ids), topP = unpack(q.top_p), nextP = unpack(q.next_p);
    const actual = query + 1 < n ? q.ids[query + 1] : null;
    predTitle.textContent = `after '${q.labels[query]}' (position ${query}) the model predicts`;
    predTitle.dataset.position = String(query);
    bars.replaceChildren(...[...Array(k).keys()].map(j => {
      const id = topIds[query * k + j], p = topP[query * k + j] / 255;
      return h("div", { class: "ih-bar-row" },
        h("span", { class: "ih-bar-label", text: `'${d.vocab[id]}'` }),
        h("span", { class: "ih-bar" + (id === actual ? " ih-actual" : ""), style: `width:${Math.round(180 * p)}px` }),
        h("span", { text: fmt(p) }));
    }));
    predNote.textContent = actual === null ? "(last position: no next token in the sequence)"
      : `actual next token: '${d.vocab[actual]}' (green if in the top ${k}), probability ${fmt(nextP[query] / 255)}`;
    let best = 0;
    for (let i = 1; i <= query; i++) if (row(i) > row(best)) best = i;
    attnNote.textContent = `'${q.labels[query]}' attends most to position ${best} ('${q.labels[best]}'), ` +
                           `weight ${fmt(row(best))}`;
    setShown(root, { layer: L, head: H, sequence: model.get("sequence"), query });
  }

  canvas.addEventListener("mousemove", e => {
    const r = canvas.getBoundingClientRect();
    const i = Math.floor((e.clientY - r.top) / cell);
    if (i >= 0 && i < seq().ids.length) setQuery(i);
  });

  const redraw = () => { buildControls(); draw(); };
  model.on("change:data", redraw);
  for (const name of ["layer", "head", "sequence", "query"]) model.on(`change:${name}`, draw);
  redraw();
}

export default { render };
