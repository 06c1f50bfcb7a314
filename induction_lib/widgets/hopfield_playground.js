// Hopfield playground: N random +-1 images (8 x 8, unit norm) stored in a modern Hopfield network; the
// query is the first (the target) plus noise. The update  xi <- X softmax(beta X^T xi)  is cheap, so it is
// computed here, live, for the reader's beta, N and noise -- the same computation as
// HopfieldPlayground.compute() in Python (induction_lib.hopfield.retrieve / energy), which the tests compare.
//   energy E(xi) = -lse(beta, X^T xi) + |xi|^2 / 2 + log(N) / beta + M^2 / 2   (M = 1: unit patterns)

function retrieval(X, d, n, query, beta, maxSteps, tol) {
  const z = new Float64Array(n), w = new Float64Array(n);
  const weightsOf = xi => {
    let m = -Infinity;
    for (let i = 0; i < n; i++) { let t = 0; for (let k = 0; k < d; k++) t += X[i * d + k] * xi[k]; z[i] = t; m = Math.max(m, t); }
    let sum = 0;
    for (let i = 0; i < n; i++) { w[i] = Math.exp(beta * (z[i] - m)); sum += w[i]; }
    for (let i = 0; i < n; i++) w[i] /= sum;
    return { lse: m + Math.log(sum) / beta, w: Float64Array.from(w) };
  };
  const energy = xi => {
    let sq = 0;
    for (let k = 0; k < d; k++) sq += xi[k] * xi[k];
    return -weightsOf(xi).lse + 0.5 * sq + Math.log(n) / beta + 0.5;
  };
  let xi = Float64Array.from(query);
  const path = [xi], energies = [energy(xi)];
  let steps = 0;
  for (steps = 1; steps <= maxSteps; steps++) {
    const { w: ww } = weightsOf(xi);
    const next = new Float64Array(d);
    for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) next[k] += ww[i] * X[i * d + k];
    let change = 0;
    for (let k = 0; k < d; k++) change = Math.max(change, Math.abs(next[k] - xi[k]));
    xi = next;
    path.push(xi);
    energies.push(energy(xi));
    if (change < tol) break;
  }
  steps = Math.min(steps, maxSteps);
  return { state: xi, weights: weightsOf(xi).w, energies, steps, path };
}

function render({ model, el }) {
  const root = widgetRoot("hopfield-playground");
  const msg = messageLine(model);
  const data = model.get("data");
  const { side, d, grid } = data;
  const signs = unpack(data.signs), noiseDir = unpack(data.noise_dir);
  const X = Float64Array.from(signs, v => v / side);              // [max_patterns, d], unit rows
  root.dataset.reference = JSON.stringify(data.reference);

  const [bLo, bHi] = data.beta_range.map(Math.log10);
  const labels = { beta: h("span", { class: "ih-step" }), n: h("span", { class: "ih-step" }),
                   noise: h("span", { class: "ih-step" }) };
  const sliders = {
    beta: range("log_beta", "log10 beta", bLo, bHi, "any", Math.log10(model.get("beta")), v => set("beta", 10 ** v)),
    n: range("n", "N patterns", 2, data.max_patterns, 1, model.get("n"), v => set("n", v)),
    noise: range("noise", "query noise", data.noise_range[0], data.noise_range[1], 0.05, model.get("noise"),
                 v => set("noise", v)),
  };
  const land = h("canvas", { "aria-label": "energy landscape" });
  const overlay = s("svg", { width: 260, height: 260, style: "position:absolute;left:0;top:0" });
  const energyPlot = s("svg", { width: 250, height: 150, role: "img", "aria-label": "energy per update" });
  const weightPlot = s("svg", { width: 250, height: 90, role: "img", "aria-label": "weights" });
  const imgs = ["query", "retrieved", "target"].map(t => [h("div", { class: "ih-small", text: t }), h("canvas")]);
  const stats = h("div", { class: "ih-small" });
  root.append(
    h("div", { class: "ih-controls" },
      h("span", { class: "ih-control" }, "β", sliders.beta, labels.beta),
      h("span", { class: "ih-control" }, "N", sliders.n, labels.n),
      h("span", { class: "ih-control" }, "noise", sliders.noise, labels.noise)),
    msg.el,
    h("div", { class: "ih-row" },
      h("div", {}, h("div", { class: "ih-panel-title", text: "energy on the plane of the target and the runner-up" }),
        h("div", { style: "position:relative;width:260px;height:260px" }, land, overlay),
        h("div", { class: "ih-small", text: "x: along the target · y: along the runner-up · white: stored patterns · " +
                                            "×: query · red: the updates" })),
      h("div", {}, h("div", { class: "ih-panel-title", text: "energy after each update" }), energyPlot,
        h("div", { class: "ih-panel-title", text: "weights softmax(β Xᵀξ) at the end (green: target)" }), weightPlot,
        stats),
      h("div", {}, ...imgs.flat())));
  el.append(root);

  function set(name, value) {
    model.set(name, value);
    sendToKernel(model, el);
    draw();
  }

  function draw() {
    const beta = model.get("beta"), n = model.get("n"), noise = model.get("noise");
    const q = new Float64Array(d);
    for (let k = 0; k < d; k++) q[k] = X[k] + noise * noiseDir[k];
    const r = retrieval(X, d, n, q, beta, data.max_steps, data.tol);
    // the plane through the origin spanned by the target and the pattern most similar to the query
    let other = 1, best = -Infinity;
    for (let i = 1; i < n; i++) {
      let t = 0; for (let k = 0; k < d; k++) t += q[k] * X[i * d + k];
      if (t > best) { best = t; other = i; }
    }
    const u1 = X.slice(0, d);                                      // the target (unit norm)
    let dot = 0; for (let k = 0; k < d; k++) dot += X[other * d + k] * u1[k];
    const u2 = new Float64Array(d);
    for (let k = 0; k < d; k++) u2[k] = X[other * d + k] - dot * u1[k];
    const nu2 = Math.hypot(...u2); for (let k = 0; k < d; k++) u2[k] /= nu2;
    const proj = (v, off = 0) => { let a = 0, b = 0; for (let k = 0; k < d; k++) { a += v[off + k] * u1[k]; b += v[off + k] * u2[k]; } return [a, b]; };
    const P = [...Array(n).keys()].map(i => proj(X, i * d));
    // the landscape: X^T (a u1 + b u2) = a p1 + b p2, |a u1 + b u2|^2 = a^2 + b^2
    const E = new Float64Array(grid * grid);
    let lo = Infinity, hi = -Infinity;
    for (let gy = 0; gy < grid; gy++) for (let gx = 0; gx < grid; gx++) {
      const a = -0.5 + 2 * gx / (grid - 1), b = -0.5 + 2 * gy / (grid - 1);
      let m = -Infinity;
      for (let i = 0; i < n; i++) m = Math.max(m, a * P[i][0] + b * P[i][1]);
      let sum = 0;
      for (let i = 0; i < n; i++) sum += Math.exp(beta * (a * P[i][0] + b * P[i][1] - m));
      const e = -(m + Math.log(sum) / beta) + 0.5 * (a * a + b * b) + Math.log(n) / beta + 0.5;
      E[(grid - 1 - gy) * grid + gx] = e;                          // row 0 at the top: b = 1.5
      lo = Math.min(lo, e); hi = Math.max(hi, e);
    }
    heatmap(land, E, 0, grid, grid, 260 / grid, hi - lo || 1, lo);
    const px = a => (a + 0.5) / 2 * 260, py = b => 260 - (b + 0.5) / 2 * 260;
    const path = r.path.map(v => proj(v));
    overlay.replaceChildren(
      ...P.map(([a, b]) => s("circle", { cx: px(a), cy: py(b), r: 3, fill: "#fff", stroke: "#000", "stroke-width": 0.6 })),
      s("polyline", { points: path.map(([a, b]) => `${px(a).toFixed(1)},${py(b).toFixed(1)}`).join(" "),
                      fill: "none", stroke: OKABE_ITO[3], "stroke-width": 1.5 }),
      ...path.map(([a, b]) => s("circle", { cx: px(a), cy: py(b), r: 2.2, fill: OKABE_ITO[3] })),
      s("text", { x: px(path[0][0]), y: py(path[0][1]) + 5, "text-anchor": "middle", "font-size": 16,
                  fill: OKABE_ITO[1], "font-weight": "bold", text: "×" }));
    // energy per update (never increasing)
    const es = r.energies, eLo = Math.min(...es), eHi = Math.max(...es), pad = Math.max(1e-3, 0.1 * (eHi - eLo));
    const ex = scale(0, Math.max(1, es.length - 1), 40, 240), ey = scale(eLo - pad, eHi + pad, 130, 10);
    energyPlot.replaceChildren(
      s("rect", { x: 40, y: 10, width: 200, height: 120, fill: "none", stroke: "#999" }),
      s("polyline", { points: es.map((e, i) => `${ex(i)},${ey(e)}`).join(" "), fill: "none", stroke: OKABE_ITO[0] }),
      ...es.map((e, i) => s("circle", { cx: ex(i), cy: ey(e), r: 2.5, fill: OKABE_ITO[0] })),
      s("text", { x: 36, y: 14, "text-anchor": "end", "font-size": 9, text: fmt(eHi + pad, 3) }),
      s("text", { x: 36, y: 130, "text-anchor": "end", "font-size": 9, text: fmt(eLo - pad, 3) }),
      s("text", { x: 140, y: 146, "text-anchor": "middle", "font-size": 10, text: `update (0 … ${es.length - 1})` }));
    const bw = 200 / n;
    weightPlot.replaceChildren(
      s("rect", { x: 40, y: 5, width: 200, height: 70, fill: "none", stroke: "#999" }),
      ...Array.from(r.weights, (w, i) => s("rect", { x: 40 + i * bw + 0.1 * bw, width: 0.8 * bw, y: 75 - 70 * w,
        height: 70 * w, fill: i === 0 ? OKABE_ITO[2] : OKABE_ITO[0] })),
      s("text", { x: 36, y: 12, "text-anchor": "end", "font-size": 9, text: "1" }),
      s("text", { x: 36, y: 76, "text-anchor": "end", "font-size": 9, text: "0" }),
      s("text", { x: 140, y: 88, "text-anchor": "middle", "font-size": 10, text: `stored pattern (0 … ${n - 1})` }));
    // the three images (vec * side in [-1.2, 1.2] -> grey)
    [q, r.state, X.slice(0, d)].forEach((v, j) => {
      heatmapGrey(imgs[j][1], v, side);
    });
    let err = 0; for (let k = 0; k < d; k++) err += (r.state[k] - X[k]) ** 2;
    err = Math.sqrt(err);
    let sq = 0; for (const w of r.weights) sq += w * w;
    const count = 1 / sq;
    imgs[1][0].textContent = `retrieved (error ${fmt(err)})`;
    stats.textContent = `${r.steps} update${r.steps !== 1 ? "s" : ""} to a fixed point; it averages ≈${fmt(count, 1)} ` +
                        `pattern${count >= 1.5 ? "s" : ""}; error ${fmt(err)}`;
    labels.beta.textContent = `${Number(beta.toPrecision(3))}`;
    labels.n.textContent = String(n);
    labels.noise.textContent = fmt(noise);
    for (const [k, inp] of Object.entries(sliders)) {
      const v = k === "beta" ? Math.log10(beta) : model.get(k);
      if (Math.abs(Number(inp.value) - v) > 1e-9) inp.value = String(v);
    }
    setShown(root, { log_beta: Math.log10(beta), beta, n, noise, steps: r.steps, error: err, count,
                     energy: r.energies });
  }

  function heatmapGrey(canvas, v, side) {
    const c = 12, dpr = window.devicePixelRatio || 1;
    canvas.width = side * c * dpr; canvas.height = side * c * dpr;
    canvas.style.width = `${side * c}px`; canvas.style.height = `${side * c}px`;
    const ctx = canvas.getContext("2d");
    for (let i = 0; i < side; i++) for (let j = 0; j < side; j++) {
      const g = Math.round(255 * Math.min(1, Math.max(0, (v[i * side + j] * side + 1.2) / 2.4)));
      ctx.fillStyle = `rgb(${g},${g},${g})`;
      ctx.fillRect(j * c * dpr, i * c * dpr, c * dpr, c * dpr);
    }
  }

  for (const name of ["beta", "n", "noise"]) model.on(`change:${name}`, draw);
  draw();
}

export default { render };
