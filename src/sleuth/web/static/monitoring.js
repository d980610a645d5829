// Draws the /monitoring histogram as inline SVG: one group of stacked bars per minute (the
// app's declared outcomes, in its order and colours), axes, legend and totals; polls the
// JSON every 2 s so the chart follows a running crawl without reloading the page.
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";
  // [{name, label, colour}], stacked bottom to top
  const OUTCOMES = JSON.parse(document.getElementById("outcomes").textContent);
  const W = 960;
  const H = 340;
  const M = { top: 36, right: 16, bottom: 52, left: 60 };
  const PW = W - M.left - M.right;
  const PH = H - M.top - M.bottom;
  const LABEL_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720]; // minutes

  const chart = document.getElementById("chart");
  const status = document.getElementById("status");
  const range = document.getElementById("range");
  const url = chart.dataset.url;
  const interval = Number(chart.dataset.interval) || 2000;
  const unit = chart.dataset.unit;
  let shown = "";

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs || {})) {
      node.setAttribute(key, String(value));
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // The smallest 1, 2 or 5 × 10^k at or above v: round axis ends.
  function niceCeil(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function hhmm(epoch) {
    return new Date(epoch * 1000).toISOString().slice(11, 16);
  }

  function drawAxes(svg, scaleMax, minutes, slot) {
    const ticks = 5;
    for (let i = 0; i <= ticks; i++) {
      const value = (scaleMax * i) / ticks;
      const y = M.top + PH - (PH * i) / ticks;
      svg.append(el("line", { class: "grid", x1: M.left, x2: M.left + PW, y1: y, y2: y }));
      const label = Number.isInteger(value) ? value : value.toFixed(1);
      svg.append(el("text", { class: "tick y", x: M.left - 6, y: y + 4 }, label));
    }
    svg.append(el("line", { class: "axis", x1: M.left, x2: M.left, y1: M.top, y2: M.top + PH }));
    svg.append(
      el("line", { class: "axis", x1: M.left, x2: M.left + PW, y1: M.top + PH, y2: M.top + PH }),
    );
    const step = LABEL_STEPS.find((s) => s * slot >= 56) || 1440;
    minutes.forEach((m, i) => {
      if ((m.epoch / 60) % step !== 0) return;
      const x = M.left + slot * (i + 0.5);
      svg.append(el("line", { class: "axis", x1: x, x2: x, y1: M.top + PH, y2: M.top + PH + 4 }));
      svg.append(el("text", { class: "tick x", x: x, y: M.top + PH + 18 }, hhmm(m.epoch)));
    });
    svg.append(
      el("text", { class: "title x", x: M.left + PW / 2, y: H - 8 }, "minute (UTC)"),
    );
    svg.append(
      el(
        "text",
        { class: "title y", transform: `translate(16 ${M.top + PH / 2}) rotate(-90)` },
        `${unit} per minute`,
      ),
    );
  }

  function drawLegend(svg) {
    const legend = el("g", { class: "legend" });
    let x = M.left;
    for (const o of OUTCOMES) {
      legend.append(el("rect", { class: o.name, fill: o.colour, x: x, y: 10, width: 12, height: 12 }));
      legend.append(el("text", { x: x + 17, y: 20 }, o.label));
      x += 110;
    }
    svg.append(legend);
  }

  function drawBars(svg, minutes, scaleMax, slot) {
    const width = Math.max(slot * 0.8, 0.5);
    const bars = el("g", { class: "bars" });
    minutes.forEach((m, i) => {
      const group = el("g", { class: "minute", "data-epoch": m.epoch, "data-minute": m.minute });
      for (const o of OUTCOMES) group.setAttribute(`data-${o.name}`, String(m[o.name]));
      const parts = OUTCOMES.map((o) => `${o.label} ${m[o.name]}`).join(", ");
      group.append(el("title", {}, `${m.minute}: ${parts}`));
      let base = M.top + PH;
      for (const o of OUTCOMES) {
        const height = (m[o.name] / scaleMax) * PH;
        base -= height;
        group.append(
          el("rect", {
            class: o.name,
            fill: o.colour,
            "data-outcome": o.name,
            "data-count": m[o.name],
            x: M.left + slot * i + (slot - width) / 2,
            y: base,
            width: width,
            height: height,
          }),
        );
      }
      bars.append(group);
    });
    svg.append(bars);
  }

  // Failed items per reason, most frequent first (the JSON object's keys are sorted by name).
  function drawFailures(failures) {
    const body = document.getElementById("failures-by-reason");
    const rows = Object.entries(failures).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    if (rows.length === 0) rows.push(["none", ""]);
    body.replaceChildren(
      ...rows.map(([reason, n]) => {
        const tr = document.createElement("tr");
        for (const text of [reason, n]) {
          const td = document.createElement("td");
          td.textContent = String(text);
          tr.append(td);
        }
        return tr;
      }),
    );
  }

  function draw(data) {
    drawFailures(data.failures_by_reason);
    const minutes = data.minutes;
    const key = JSON.stringify([data.app, minutes]);
    if (key === shown) return;
    shown = key;
    const sum = (m) => OUTCOMES.reduce((total, o) => total + m[o.name], 0);
    const peak = Math.max(1, ...minutes.map(sum));
    const scaleMax = niceCeil(peak);
    const slot = minutes.length ? PW / minutes.length : PW;
    const svg = el("svg", {
      class: "histogram",
      viewBox: `0 0 ${W} ${H}`,
      role: "img",
      "aria-label": `${data.app}: ${unit} per minute by outcome`,
      "data-scale-max": scaleMax,
      "data-plot-height": PH,
    });
    drawLegend(svg);
    drawAxes(svg, scaleMax, minutes, slot);
    if (minutes.length === 0) {
      svg.append(
        el("text", { class: "empty", x: M.left + PW / 2, y: M.top + PH / 2 }, "no events yet"),
      );
    }
    drawBars(svg, minutes, scaleMax, slot);
    chart.replaceChildren(svg);
    range.textContent = minutes.length
      ? `, ${minutes[0].minute.slice(0, 16).replace("T", " ")} to ` +
        `${minutes[minutes.length - 1].minute.slice(0, 16).replace("T", " ")}`
      : "";
    for (const [name, value] of Object.entries(data.totals)) {
      const dd = document.querySelector(`#totals dd[data-outcome="${name}"]`);
      if (dd) dd.textContent = String(value);
    }
  }

  async function poll() {
    try {
      if (!document.hidden) {
        const response = await fetch(url, { headers: { Accept: "application/json" } });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        draw(await response.json());
        status.textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC.`;
      }
    } catch (error) {
      status.textContent = `Update failed (${error.message}); retrying.`;
    } finally {
      setTimeout(poll, interval);
    }
  }

  draw(JSON.parse(document.getElementById("initial-data").textContent));
  setTimeout(poll, interval);
})();
