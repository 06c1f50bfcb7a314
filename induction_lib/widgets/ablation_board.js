// Ablation board: tick heads (their whole output) or one path of a head into later layers (K, Q, V);
// the per-position loss, clean and ablated, follows. Every combination of the checkboxes, for each
// replacement method, is precomputed (AblationBoard in __init__.py: losses [method, mask, position] in
// uint16 milli-nats); a combination that was not (big models only) is asked of the kernel.

function render({ model, el }) {
  const root = widgetRoot("ablation-board");
  const msg = messageLine(model);
  const d = () => model.get("data");
  const W = 600, Hh = 230, M = { l: 44, r: 10, t: 24, b: 34 };
  const boxes = h("div", { class: "ih-controls", style: "flex-direction: column; align-items: flex-start" });
  const plot = s("svg", { width: W, height: Hh, viewBox: `0 0 ${W} ${Hh}`, role: "img",
                          "aria-label": "per-position loss" });
  const summary = h("div", { class: "ih-small" });
  root.append(boxes, msg.el, plot, summary);
  el.append(root);

  function buildControls() {
    const data = d(), toggles = data.toggles;
    const box = (t, i, text) => {
      const cb = h("input", { type: "checkbox", "data-control": `t${i}`, "data-bit": i, "aria-label": t.name });
      cb.checked = !!(model.get("mask") >> i & 1);
      cb.addEventListener("change", () => {
        const m = model.get("mask");
        setSelection(cb.checked ? (m | 1 << i) : (m & ~(1 << i)), model.get("method"));
      });
      return h("label", { class: "ih-control" }, cb, h("span", { text }));
    };
    const rows = [h("b", { text: "Remove whole heads" })];
    for (let l = 0; l < data.n_layers; l++)
      rows.push(h("div", { class: "ih-controls" }, h("span", { text: `layer ${l}:` }),
        toggles.map((t, i) => [t, i]).filter(([t]) => t.kind === "head" && t.layer === l)
          .map(([t, i]) => box(t, i, t.name))));
    if (toggles.some(t => t.kind === "path")) {
      rows.push(h("span", {}, h("b", { text: "Remove one path only" }),
        ": a head's output as seen by the keys (K), queries (Q) or values (V) of later layers"));
      const byHead = new Map();
      toggles.forEach((t, i) => {
        if (t.kind !== "path") return;
        const key = `${t.layer}.${t.head}`;
        if (!byHead.has(key)) byHead.set(key, []);
        byHead.get(key).push(box(t, i, t.path.toUpperCase()));
      });
      rows.push(h("div", { class: "ih-controls" },
        [...byHead].map(([name, bs]) => h("span", { class: "ih-control" }, h("span", { text: `${name}:` }), bs))));
    }
    rows.push(select("method", "replace by", data.methods.map(m => [m, m]), model.get("method"),
      v => setSelection(model.get("mask"), v)));
    boxes.replaceChildren(...rows);
  }

  function setSelection(mask, method) {
    model.set("mask", mask);
    model.set("method", method);
    const live = sendToKernel(model, el);
    draw(live);
  }

  // the loss curve for (method, mask): precomputed, or computed live by the kernel ("extra")
  function lossFor(method, mask) {
    const data = d(), P = data.clean.shape[0];
    const extra = model.get("extra") || {};
    if (extra[`${method}:${mask}`]) return unpack(extra[`${method}:${mask}`]);
    const index = data.masks === "all" ? mask : data.masks.indexOf(mask);
    if (index < 0) return null;
    const nMasks = data.table.shape[1];
    const m = data.methods.indexOf(method);
    return unpack(data.table).subarray((m * nMasks + index) * P, (m * nMasks + index + 1) * P);
  }

  function draw(live = false) {
    const data = d(), mask = model.get("mask"), method = model.get("method");
    boxes.querySelectorAll("input[type=checkbox]").forEach(cb => { cb.checked = !!(mask >> Number(cb.dataset.bit) & 1); });
    const sel = boxes.querySelector("[data-control=method]");
    if (sel && sel.value !== method) sel.value = method;
    const clean = unpack(data.clean), P = clean.length;
    const loss = lossFor(method, mask);
    const names = data.toggles.filter((t, i) => mask >> i & 1).map(t => t.name);
    if (!loss) {
      msg.show(live ? "computing this combination…" :
        "This combination was not precomputed; computing it " + NEEDS_KERNEL, !live);
    } else if (!model.get("error")) msg.show("", false);
    const curveMax = Math.max(data.chance, ...Array.from(clean, v => v / 1000), ...(loss ? Array.from(loss, v => v / 1000) : []));
    const x = scale(-0.5, P - 0.5, M.l, W - M.r), y = scale(0, 1.1 * curveMax, Hh - M.b, M.t);
    const poly = (vals, color) => s("polyline", { fill: "none", stroke: color, "stroke-width": 1.6,
      points: Array.from(vals, (v, i) => `${x(i).toFixed(1)},${y(v / 1000).toFixed(1)}`).join(" ") });
    const yt = [];
    for (let v = 0; v <= 1.1 * curveMax; v += 1)
      yt.push(s("text", { x: M.l - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 10, text: String(v) }));
    const xt = [];
    for (let p = 0; p < P; p += 8)
      xt.push(s("text", { x: x(p), y: Hh - M.b + 13, "text-anchor": "middle", "font-size": 10, text: String(p) }));
    const region = data.region;
    let what;
    const mean = (a, lo, hi) => { let t = 0; for (let i = lo; i < hi; i++) t += a[i] / 1000; return t / (hi - lo); };
    if (loss && region) what = `repeat: clean ${fmt(mean(clean, region[0], region[1]))} → ` +
                               `${fmt(mean(loss, region[0], region[1]))} nats`;
    else if (loss) what = `mean loss: clean ${fmt(mean(clean, 0, P))} → ${fmt(mean(loss, 0, P))} nats`;
    else what = "not computed";
    const title = `removed: ${names.length ? names.join(", ") : "nothing"} (${method}); ${what}`;
    plot.replaceChildren(
      region ? s("rect", { x: x(region[0] - 0.5), y: M.t, width: x(region[1] - 0.5) - x(region[0] - 0.5),
                           height: Hh - M.t - M.b, fill: "#e0e0e0" }) : null,
      s("rect", { x: M.l, y: M.t, width: W - M.l - M.r, height: Hh - M.t - M.b, fill: "none", stroke: "#999" }),
      s("line", { x1: M.l, x2: W - M.r, y1: y(data.chance), y2: y(data.chance), stroke: "#666", "stroke-dasharray": "5 4" }),
      poly(clean, OKABE_ITO[0]), loss ? poly(loss, OKABE_ITO[3]) : null, ...yt, ...xt,
      s("text", { x: M.l, y: 15, "font-size": 11, text: title, class: "ih-title" }),
      s("text", { x: (W + M.l) / 2, y: Hh - 4, "text-anchor": "middle", "font-size": 11,
                  text: "position p (loss of predicting token p + 1)" }),
      s("text", { x: 12, y: Hh / 2, "font-size": 11, transform: `rotate(-90 12 ${Hh / 2})`, "text-anchor": "middle",
                  text: "loss (nats)" }));
    summary.innerHTML = "";
    summary.append(
      h("span", { style: `color:${OKABE_ITO[0]}`, text: "— clean model   " }),
      h("span", { style: `color:${OKABE_ITO[3]}`, text: "— with ablations   " }),
      h("span", { style: "color:#666", text: "- - chance, ln(vocab)   " }),
      region ? h("span", { style: "background:#e0e0e0", text: " shaded: repeated half (predictable) " }) : null);
    setShown(root, { mask, method, removed: names, title });
  }

  model.on("change:data", () => { buildControls(); draw(); });
  model.on("change:extra", () => draw());
  model.on("change:mask", () => draw());
  model.on("change:method", () => draw());
  buildControls();
  draw();
}

export default { render };
