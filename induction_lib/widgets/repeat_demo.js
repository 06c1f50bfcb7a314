// Repeat demo (setup page): BOS + r + r for the length of r on the slider; each token of the second copy
// has the colour of the token it copies. All lengths are precomputed (RepeatDemo in __init__.py).

function render({ model, el }) {
  const root = widgetRoot("repeat-demo");
  const msg = messageLine(model);
  const data = model.get("data");
  const label = h("span", { class: "ih-step" });
  const slider = range("half_len", "half_len", 1, data.max_half_len, 1, model.get("half_len"), v => {
    model.set("half_len", v);
    sendToKernel(model, el);
    draw();
  });
  const strip = h("div", { class: "ih-tokens" });
  const note = h("div", { class: "ih-small" });
  root.append(h("div", { class: "ih-controls" }, h("span", { text: "|r| =" }), slider, label), msg.el, strip, note);
  el.append(root);

  function draw() {
    const n = model.get("half_len"), ids = data.sequences[String(n)];
    label.textContent = String(n);
    if (slider.value !== String(n)) slider.value = String(n);
    strip.replaceChildren(...ids.map((id, i) => {
      const k = i === 0 ? -1 : (i - 1) % n;                         // position within r
      const t = h("span", { class: "ih-token", text: i === 0 ? "BOS" : String(id),
                            title: i === 0 ? "beginning of sequence" : (i > n ? `copy of position ${i - n}` : `r[${k}]`) });
      if (i > 0) t.style.background = `hsl(${Math.round(360 * k / n)}, 70%, ${i > n ? 88 : 78}%)`;
      if (i === n + 1) t.style.marginLeft = "12px";
      return t;
    }));
    note.textContent = `BOS + r + r with |r| = ${n}: ${2 * n + 1} tokens. The first ${n} after BOS are random ` +
                       `(no model can beat chance there); the last ${n} repeat them and can be copied.`;
    setShown(root, { half_len: n });
  }
  model.on("change:half_len", draw);
  draw();
}

export default { render };
