// Small SVG charts drawn by hand: a sparkline, daily bar charts (one series, or stacked)
// and a time-series line chart, with labelled axes. No chart library: nothing is loaded
// from elsewhere.
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";

  function s(tag, attrs, ...children) {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) el.setAttribute(k, v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  /** Round tick values from 0 up to at least ``max``: steps of 1, 2 or 5 x 10^k. */
  function niceTicks(max, count = 4) {
    if (!(max > 0)) return [0, 1];
    const raw = max / count;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((v) => v >= raw);
    const ticks = [];
    for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Math.round(v * 1e6) / 1e6);
    return ticks;
  }

  /** A 30-day trend line: no axes, the last day marked. */
  function sparkline(values, { width = 132, height = 30, label = "" } = {}) {
    const max = Math.max(1, ...values);
    const n = values.length;
    const x = (i) => (n <= 1 ? width / 2 : 2 + (i * (width - 4)) / (n - 1));
    const y = (v) => height - 3 - (v / max) * (height - 6);
    const line = values.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join("");
    const area = `${line}L${x(n - 1).toFixed(1)},${height - 1}L${x(0).toFixed(1)},${height - 1}Z`;
    return s("svg", { class: "sparkline", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
                      "aria-label": label },
      s("path", { d: area, class: "spark-area" }),
      s("path", { d: line, class: "spark-line" }),
      s("circle", { cx: x(n - 1), cy: y(values[n - 1] || 0), r: 2.4, class: "spark-dot" }));
  }

  function frame(container, height, margin) {
    container.replaceChildren();
    const width = Math.max(320, Math.floor(container.getBoundingClientRect().width));
    const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "chart" });
    container.append(svg);
    const inner = { x0: margin.left, x1: width - margin.right, y0: margin.top, y1: height - margin.bottom };
    return { svg, width, height, inner };
  }

  function yAxis(svg, inner, ticks, scaleY, title) {
    const g = s("g", { class: "axis y-axis" });
    for (const t of ticks) {
      const y = scaleY(t);
      g.append(s("line", { x1: inner.x0, x2: inner.x1, y1: y, y2: y, class: t === 0 ? "baseline" : "grid" }));
      g.append(s("text", { x: inner.x0 - 8, y: y + 4, "text-anchor": "end" }, Fmt.short(t)));
    }
    const mid = (inner.y0 + inner.y1) / 2;
    g.append(s("text", { class: "axis-title", transform: `translate(14,${mid}) rotate(-90)`,
                         "text-anchor": "middle" }, title));
    svg.append(g);
  }

  function xTitle(svg, inner, height, title) {
    svg.append(s("text", { class: "axis-title", x: (inner.x0 + inner.x1) / 2, y: height - 6,
                           "text-anchor": "middle" }, title));
  }

  function tooltip(container) {
    const tip = h("div", { class: "tooltip", hidden: true });
    container.append(tip);
    return {
      show(px, py, html) {
        tip.hidden = false;
        tip.replaceChildren(...html);
        const box = container.getBoundingClientRect();
        const left = Math.min(Math.max(px + 12, 0), box.width - tip.offsetWidth - 4);
        tip.style.left = `${left}px`;
        tip.style.top = `${Math.max(py - tip.offsetHeight - 8, 0)}px`;
      },
      hide() { tip.hidden = true; },
    };
  }

  /** Daily downloads as bars: x = UTC days, y = downloads, both axes labelled. */
  function daily(container, days, values, { height = 280, yLabel = "Downloads per day", noun = "downloads" } = {}) {
    columns(container, days, [{ cls: null, label: noun, values }], { height, yLabel });
  }

  /**
   * Stacked daily columns: one layer per series ({cls, label, values}), the first at the
   * bottom; each rect carries its day, its layer's value and the layer's class.
   */
  function stacked(container, days, layers, { height = 280, yLabel = "Downloads per day" } = {}) {
    columns(container, days, layers, { height, yLabel });
  }

  function columns(container, days, layers, { height, yLabel }) {
    const margin = { top: 14, right: 16, bottom: 46, left: 66 };
    const { svg, height: h0, inner } = frame(container, height, margin);
    const n = days.length;
    const totals = days.map((_, i) => layers.reduce((sum, layer) => sum + layer.values[i], 0));
    const ticks = niceTicks(Math.max(...totals, 0));
    const top = ticks[ticks.length - 1] || 1;
    const scaleY = (v) => inner.y1 - (v / top) * (inner.y1 - inner.y0);
    yAxis(svg, inner, ticks, scaleY, yLabel);
    const slot = (inner.x1 - inner.x0) / Math.max(n, 1);
    const gap = slot > 6 ? Math.min(slot * 0.22, 6) : 0;
    const bars = s("g", { class: "bars" });
    for (let i = 0; i < n; i += 1) {
      let base = 0;
      for (const layer of layers) {
        const v = layer.values[i];
        if (layers.length > 1 && !v) continue;  // a stack draws only the layers present that day
        const y = scaleY(base + v);
        bars.append(s("rect", { class: layer.cls ? `bar ${layer.cls}` : "bar",
                                x: (inner.x0 + i * slot + gap / 2).toFixed(2), y: y.toFixed(2),
                                width: Math.max(slot - gap, 0.8).toFixed(2),
                                height: Math.max(scaleY(base) - y, 0).toFixed(2),
                                "data-day": days[i], "data-value": v, "data-layer": layer.cls }));
        base += v;
      }
    }
    svg.append(bars);
    // About six date labels, always including the last day.
    const every = Math.max(1, Math.ceil(n / 6));
    const xg = s("g", { class: "axis x-axis" });
    for (let i = n - 1; i >= 0; i -= every) {
      const cx = inner.x0 + (i + 0.5) * slot;
      xg.append(s("line", { x1: cx, x2: cx, y1: inner.y1, y2: inner.y1 + 4, class: "tick" }));
      xg.append(s("text", { x: cx, y: inner.y1 + 17, "text-anchor": "middle" }, Fmt.day(days[i])));
    }
    svg.append(xg);
    xTitle(svg, inner, h0, "Day (UTC)");
    const tip = tooltip(container);
    const hover = s("rect", { class: "hover-band", y: inner.y0, height: inner.y1 - inner.y0, width: slot, x: -999 });
    svg.insertBefore(hover, bars);
    const describe = (i) => {
      if (layers.length === 1) {
        return [h("strong", {}, Fmt.count(totals[i])), h("span", {}, ` ${layers[0].label} · ${Fmt.dayLong(days[i])}`)];
      }
      const parts = layers.filter((layer) => layer.values[i]).reverse()
        .map((layer) => h("div", { class: `tip-row ${layer.cls}` }, `${layer.label} ${Fmt.count(layer.values[i])}`));
      return [h("strong", {}, `${Fmt.count(totals[i])} · ${Fmt.dayLong(days[i])}`), ...parts];
    };
    svg.addEventListener("mousemove", (ev) => {
      const bx = ev.offsetX;
      const i = Math.floor((bx - inner.x0) / slot);
      if (i < 0 || i >= n) { tip.hide(); hover.setAttribute("x", -999); return; }
      hover.setAttribute("x", inner.x0 + i * slot);
      tip.show(bx, scaleY(totals[i]), describe(i));
    });
    svg.addEventListener("mouseleave", () => { tip.hide(); hover.setAttribute("x", -999); });
  }

  /** Rates over time: one line per series, x = wall-clock time (UTC), y = ``yLabel``. */
  function timeSeries(container, series, { from, to, height = 230, yLabel = "events / s" } = {}) {
    const margin = { top: 14, right: 16, bottom: 46, left: 66 };
    const { svg, height: h0, inner } = frame(container, height, margin);
    const max = Math.max(0, ...series.flatMap((ser) => ser.points.map((p) => p.v)));
    const ticks = niceTicks(max);
    const top = ticks[ticks.length - 1] || 1;
    const scaleY = (v) => inner.y1 - (v / top) * (inner.y1 - inner.y0);
    const scaleX = (t) => inner.x0 + ((t - from) / Math.max(to - from, 1)) * (inner.x1 - inner.x0);
    yAxis(svg, inner, ticks, scaleY, yLabel);
    const xg = s("g", { class: "axis x-axis" });
    // The smallest round step that gives at most six labels; seconds shown below a minute.
    const step = [10, 15, 30, 60, 120, 300, 600].map((sec) => sec * 1000).find((ms) => (to - from) / ms <= 6) || 600000;
    for (let t = Math.ceil(from / step) * step; t <= to; t += step) {
      const x = scaleX(t);
      xg.append(s("line", { x1: x, x2: x, y1: inner.y1, y2: inner.y1 + 4, class: "tick" }));
      xg.append(s("text", { x, y: inner.y1 + 17, "text-anchor": "middle" }, Fmt.clock(t).slice(0, step < 60000 ? 8 : 5)));
    }
    svg.append(xg);
    xTitle(svg, inner, h0, "Time (UTC)");
    for (const ser of series) {
      const pts = ser.points.filter((p) => p.t >= from);
      if (!pts.length) continue;
      const d = pts.map((p, i) => `${i ? "L" : "M"}${scaleX(p.t).toFixed(1)},${scaleY(p.v).toFixed(1)}`).join("");
      svg.append(s("path", { d, class: `series ${ser.cls}` }));
      const last = pts[pts.length - 1];
      svg.append(s("circle", { cx: scaleX(last.t), cy: scaleY(last.v), r: 3, class: `series-dot ${ser.cls}` }));
    }
    if (!series.some((ser) => ser.points.length)) {
      svg.append(s("text", { x: (inner.x0 + inner.x1) / 2, y: (inner.y0 + inner.y1) / 2, class: "empty-note",
                             "text-anchor": "middle" }, "measuring… rates appear after two worker heartbeats"));
    }
  }

  return { niceTicks, sparkline, daily, stacked, timeSeries };
})();
