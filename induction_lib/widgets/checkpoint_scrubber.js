// Checkpoint scrubber: a slider over the training snapshots. The loss curves (with a marker at the step),
// the previous-token and induction heads' patterns on BOS + r + r, and every head's scores move together;
// the step label is always the slider's snapshot. Every snapshot is precomputed (CheckpointScrubber in
// __init__.py): patterns [snapshot, 2, n, n] and scores [snapshot, layer, head], both uint8.

function render({ model, el }) {
  const root = widgetRoot("checkpoint-scrubber");
  const msg = messageLine(model);
  const d = () => model.get("data");
  const W = 560, Hh = 190, M = { l: 48, r: 10, t: 10, b: 30 };

  const label = h("span", { class: "ih-step", "data-label-for": "step_index" });
  const slider = range("step_index", "training step", 0, 0, 1, 0, i => setIndex(i));
  slider.style.width = "420px";
  const plot = s("svg", { width: W, height: Hh, viewBox: `0 0 ${W} ${Hh}`, role: "img", "aria-label": "loss curves" });
  const heat = [h("canvas", { "aria-label": "previous-token head pattern" }),
                h("canvas", { "aria-label": "induction head pattern" })];
  const heatTitles = [h("div", { class: "ih-panel-title" }), h("div", { class: "ih-panel-title" })];
  const tables = [h("table", { class: "ih-grid" }), h("table", { class: "ih-grid" })];
  const summary = h("div", { class: "ih-small" });
  const legend = h("div", { class: "ih-small" });
  root.append(
    h("div", { class: "ih-controls" }, h("span", { text: "snapshot" }), slider, label),
    msg.el, plot, legend, summary,
    h("div", { class: "ih-row" },
      h("div", {}, heatTitles[0], heat[0]), h("div", {}, heatTitles[1], heat[1]),
      h("div", {}, h("div", { class: "ih-panel-title", text: "previous-token score" }), tables[0]),
      h("div", {}, h("div", { class: "ih-panel-title", text: "induction score" }), tables[1])));
  el.append(root);

  let curve = null;   // the static part of the plot, drawn once per data
  function drawCurves() {
    const { curves, formed_step } = d();
    const all = curves.train.concat(curves.repeat).filter(v => v > 0);
    const ymin = Math.min(...all) * 0.8, ymax = Math.max(...all) * 1.2;
    const x = scale(Math.min(...curves.steps), Math.max(...curves.steps), M.l, W - M.r);
    const y = scale(ymin, ymax, Hh - M.b, M.t, true);
    const line = (ys, color) => s("polyline", { fill: "none", stroke: color, "stroke-width": 1.6,
      points: curves.steps.map((st, i) => `${x(st).toFixed(1)},${y(Math.max(ys[i], ymin)).toFixed(1)}`).join(" ") });
    const ticks = [];
    for (let e = Math.floor(Math.log10(ymin)); e <= Math.ceil(Math.log10(ymax)); e++)
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= ymin && v <= ymax)
          ticks.push(s("line", { x1: M.l - 4, x2: M.l, y1: y(v), y2: y(v), stroke: "#444" }),
                     s("text", { x: M.l - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 10, text: String(v) }));
      }
    const xt = [];
    const maxStep = Math.max(...curves.steps);
    let every = 10 ** Math.floor(Math.log10(maxStep));
    while (maxStep / every < 4) every /= 2;   // at least four intervals
    for (let v = 0; v <= maxStep; v += every)   // the last label ends at the axis, inside the plot
      xt.push(s("text", { x: x(v), y: Hh - M.b + 14, "text-anchor": v + every > maxStep ? "end" : "middle",
                          "font-size": 10, text: String(v) }));
    plot.replaceChildren(
      s("rect", { x: M.l, y: M.t, width: W - M.l - M.r, height: Hh - M.t - M.b, fill: "none", stroke: "#999" }),
      ...ticks, ...xt,
      s("text", { x: (W + M.l) / 2, y: Hh - 3, "text-anchor": "middle", "font-size": 11, text: "training step" }),
      s("text", { x: 12, y: Hh / 2, "font-size": 11, transform: `rotate(-90 12 ${Hh / 2})`, "text-anchor": "middle",
                  text: "loss (nats, log)" }),
      ...(formed_step === null ? [] : [s("line", { x1: x(formed_step), x2: x(formed_step), y1: M.t, y2: Hh - M.b,
        stroke: "#888", "stroke-dasharray": "2 3" })]),
      line(curves.train, OKABE_ITO[0]), line(curves.repeat, OKABE_ITO[1]),
    );
    legend.replaceChildren(
      h("span", { style: `color:${OKABE_ITO[0]}`, text: "— training loss   " }),
      h("span", { style: `color:${OKABE_ITO[1]}`, text: "— loss on held-out repeats   " }),
      ...(formed_step === null ? [] : [h("span", { style: "color:#666",
                                                  text: `┆ induction head formed (step ${formed_step})   ` })]),
      h("span", { style: `color:${OKABE_ITO[3]}`, text: "│ the snapshot shown" }));
    const marker = s("line", { y1: M.t, y2: Hh - M.b, stroke: OKABE_ITO[3], "stroke-width": 2, class: "ih-marker" });
    const dots = [s("circle", { r: 4, fill: OKABE_ITO[3] }), s("circle", { r: 4, fill: OKABE_ITO[3] })];
    plot.append(marker, ...dots);
    curve = { x, y, ymin, marker, dots };
  }

  function table(tbl, values, offset, L, H) {
    tbl.replaceChildren(h("tr", {}, h("th"), [...Array(H).keys()].map(j => h("th", { text: `head ${j}` }))),
      ...[...Array(L).keys()].map(l => h("tr", {}, h("th", { text: `L${l}` }),
        [...Array(H).keys()].map(j => {
          const v = values[offset + l * H + j] / 255;
          return h("td", { text: fmt(v), style: `background:${viridis(v)};color:${v > 0.6 ? "#000" : "#fff"}` });
        }))));
  }

  function setIndex(i) {
    const steps = d().steps;
    i = Math.max(0, Math.min(steps.length - 1, Math.round(i)));
    model.set("step", steps[i]);
    sendToKernel(model, el);
    draw();
  }

  function draw() {
    const data = d(), steps = data.steps;
    let i = steps.indexOf(model.get("step"));
    if (i < 0) i = steps.length - 1;
    const step = steps[i];
    slider.max = String(steps.length - 1);
    if (slider.value !== String(i)) slider.value = String(i);
    slider.setAttribute("aria-valuetext", `step ${step}`);
    label.textContent = `step ${step}`;
    // loss curves: marker at the step, dots at the losses recorded there
    const rl = data.record_loss;
    curve.marker.setAttribute("x1", curve.x(step));
    curve.marker.setAttribute("x2", curve.x(step));
    [rl.train[i], rl.repeat[i]].forEach((v, k) => {
      curve.dots[k].setAttribute("cx", curve.x(rl.step[i]));
      curve.dots[k].setAttribute("cy", curve.y(Math.max(v, curve.ymin)));
    });
    summary.textContent = `step ${step}: training loss ${fmt(rl.train[i], 3)}, ` +
                          `loss on held-out repeats ${fmt(rl.repeat[i], 3)}`;
    // the two heads' patterns at this snapshot
    const n = data.labels.length, pats = unpack(data.patterns);
    const names = [`previous-token head ${data.heads.prev.join(".")}`, `induction head ${data.heads.ind.join(".")}`];
    for (let k = 0; k < 2; k++) {
      heatmap(heat[k], pats, ((i * 2 + k) * n) * n, n, n, 6);
      heat[k].dataset.step = String(step);
      heatTitles[k].textContent = `${names[k]}, step ${step}`;
    }
    // every head's scores at this snapshot
    const [, L, H] = data.prev_scores.shape;
    table(tables[0], unpack(data.prev_scores), i * L * H, L, H);
    table(tables[1], unpack(data.ind_scores), i * L * H, L, H);
    setShown(root, { step_index: i, step });
  }

  model.on("change:data", () => { drawCurves(); draw(); });
  model.on("change:step", draw);
  root.dataset.steps = JSON.stringify(d().steps);
  drawCurves();
  draw();
}

export default { render };
