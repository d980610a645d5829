// The forum dashboard: every figure read from the JSON API under /api/forum/ for the chosen
// forum, year and board, and drawn here as plain SVG and tables. The choice lives in the query
// string, so a drawn view can be linked; a newer choice discards answers to an older one.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  const form = document.getElementById("forum");
  const api = form.dataset.apiUrl;
  const pageSize = Number(form.dataset.pageSize);
  const graphEdges = Number(form.dataset.graphEdges);
  const domainRows = Number(form.dataset.domains);
  const stateEl = document.getElementById("state");
  const errorEl = document.getElementById("error");
  const totalsEl = document.getElementById("totals");
  const rankings = document.getElementById("rankings");
  const orderSelect = rankings.querySelector("select[name=order_by_column]");
  const kindSelect = document.querySelector("select[name=kind]");
  // The rankings page shown: the keyset arguments of each page up to it (null: the first),
  // and those of the page after it (null: it is the last).
  let pages = [null];
  let nextPage = null;

  function element(tag, props = {}, children = []) {
    const node = document.createElement(tag);
    Object.assign(node, props);
    node.append(...children);
    return node;
  }

  function svg(tag, attrs = {}, children = []) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    node.append(...children);
    return node;
  }

  function title(text) {
    const node = svg("title");
    node.textContent = text;
    return node;
  }

  function text(x, y, content, attrs = {}) {
    const node = svg("text", { x, y, ...attrs });
    node.textContent = content;
    return node;
  }

  function plural(n, word) {
    return `${n.toLocaleString("en")} ${word}${n === 1 ? "" : "s"}`;
  }

  // A count's colour on the heatmaps: none is pale grey, the most is the accent.
  function shade(count, most) {
    if (!count) return "#eef0f2";
    const t = Math.sqrt(count / most);
    const mix = (a, b) => Math.round(a + (b - a) * t);
    return `rgb(${mix(214, 23)}, ${mix(230, 70)}, ${mix(245, 135)})`;
  }

  function scope() {
    const values = {};
    for (const name of ["site", "year", "bid"]) {
      const value = form.elements[name].value;
      if (value) values[name] = value;
    }
    return values;
  }

  async function get(path, params) {
    const query = new URLSearchParams(params).toString();
    const response = await fetch(`${api}${path}${query ? `?${query}` : ""}`);
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || `${path} answered ${response.status}`);
    return body;
  }

  function fill(select, options, chosen) {
    const first = select.options[0];
    const known = new Set(options.map(([value]) => value));
    if (chosen && !known.has(chosen)) options.push([chosen, chosen]);
    select.replaceChildren(
      first,
      ...options.map(([value, label]) => element("option", { value, textContent: label }))
    );
    select.value = chosen || "";
  }

  // -- the figures ------------------------------------------------------------------------

  function drawTotals(daily, threads) {
    const posts = Object.values(daily.rows).reduce((sum, r) => sum + r.post_count, 0);
    const hours = (s) => (s === null ? "–" : `${(s / 3600).toFixed(1)} h`);
    const items = [
      ["posts", "posts", posts.toLocaleString("en")],
      ["threads", "threads started", threads.threads.toLocaleString("en")],
      ["first-response", "first answer (median)", hours(threads.first_response.median_seconds)],
      ["lifetime", "thread lifetime (median)", hours(threads.lifetime.median_seconds)],
    ];
    totalsEl.replaceChildren(
      ...items.map(([key, label, value]) => {
        const dd = element("dd", { textContent: value });
        dd.dataset.total = key;
        return element("div", {}, [element("dt", { textContent: label }), dd]);
      })
    );
  }

  function drawRankings(answer, first) {
    const body = rankings.querySelector("tbody");
    body.replaceChildren(
      ...answer.rows.map((r, i) => {
        const row = element("tr", {}, [
          element("td", { textContent: String(first + i + 1) }),
          element("td", { textContent: r.user.name || `#${r.user.uid}`, className: "name" }),
          element("td", { textContent: String(r.post_count) }),
          element("td", { textContent: String(r.edit_count) }),
          element("td", { textContent: r.avg_post_length.toFixed(1) }),
          element("td", { textContent: String(r.threads_created) }),
        ]);
        row.dataset.uid = r.user.uid;
        return row;
      })
    );
    rankings.querySelector("button[name=next]").disabled = answer.next === null;
    rankings.querySelector("button[name=previous]").disabled = pages.length === 1;
    rankings.querySelector("button[name=first]").disabled = pages.length === 1;
    rankings.dataset.page = String(pages.length);
  }

  function drawWeek(hourly) {
    const cells = WEEKDAYS.map(() => new Array(24).fill(0));
    for (const [slot, numbers] of Object.entries(hourly.rows)) {
      const [, weekday, hour] = slot.split(":").map(Number);
      cells[weekday - 1][hour] += numbers.post_count;
    }
    const most = Math.max(1, ...cells.flat());
    const size = 26;
    const left = 40;
    const top = 18;
    const chart = svg("svg", {
      class: "heatmap week", viewBox: `0 0 ${left + 24 * size + 4} ${top + 7 * size + 4}`,
    });
    for (let h = 0; h < 24; h += 3) {
      chart.append(text(left + h * size + size / 2, top - 5, String(h).padStart(2, "0"),
        { class: "tick x" }));
    }
    cells.forEach((hours, d) => {
      chart.append(text(left - 6, top + d * size + size * 0.65, WEEKDAYS[d], { class: "tick y" }));
      hours.forEach((count, h) => {
        const from = `${String(h).padStart(2, "0")}:00`;
        const rect = svg("rect", {
          class: "cell", x: left + h * size, y: top + d * size, width: size - 2, height: size - 2,
          fill: shade(count, most), "data-weekday": d + 1, "data-hour": h, "data-count": count,
        }, [title(`${WEEKDAYS[d]} ${from} UTC: ${plural(count, "post")}`)]);
        chart.append(rect);
      });
    });
    replaceChart("week", chart);
  }

  function drawCalendar(daily) {
    const days = Object.keys(daily.rows);
    const counts = Object.fromEntries(days.map((d) => [d, daily.rows[d].post_count]));
    const years = [...new Set(days.map((d) => Number(d.slice(0, 4))))].sort((a, b) => a - b);
    const most = Math.max(1, ...Object.values(counts));
    const size = 12;
    const left = 44;
    const block = 8 * size + 6;
    const chart = svg("svg", {
      class: "heatmap calendar", viewBox: `0 0 ${left + 54 * size} ${Math.max(1, years.length) * block}`,
    });
    if (!years.length) chart.append(text(left + 27 * size, block / 2, "no posts", { class: "empty" }));
    years.forEach((year, row) => {
      const top = row * block + size;
      chart.append(text(left - 6, top + 4 * size, String(year), { class: "tick y" }));
      const start = Date.UTC(year, 0, 1);
      const offset = (new Date(start).getUTCDay() + 6) % 7; // Monday 0
      for (let t = start; new Date(t).getUTCFullYear() === year; t += 86400000) {
        const index = Math.round((t - start) / 86400000) + offset;
        const day = new Date(t).toISOString().slice(0, 10);
        const count = counts[day] || 0;
        chart.append(svg("rect", {
          class: "cell", x: left + Math.floor(index / 7) * size, y: top + (index % 7) * size,
          width: size - 2, height: size - 2, fill: shade(count, most),
          "data-day": day, "data-count": count,
        }, [title(`${day}: ${plural(count, "post")}`)]));
      }
    });
    replaceChart("calendar", chart);
  }

  function drawYears(years, chosen) {
    const rows = Object.entries(years.rows);
    const width = 640;
    const height = 220;
    const bottom = 24;
    const top = 18;
    const most = Math.max(1, ...rows.map(([, n]) => n.post_count));
    const slot = (width - 20) / Math.max(1, rows.length);
    const chart = svg("svg", { class: "histogram years", viewBox: `0 0 ${width} ${height}` });
    chart.append(svg("line", {
      class: "axis", x1: 10, x2: width - 10, y1: height - bottom, y2: height - bottom,
    }));
    rows.forEach(([year, numbers], i) => {
      const h = ((height - bottom - top) * numbers.post_count) / most;
      const x = 10 + i * slot + slot * 0.15;
      const y = height - bottom - h;
      const group = svg("g", {
        class: `year${year === chosen ? " chosen" : ""}`,
        "data-year": year, "data-count": numbers.post_count,
      }, [
        svg("rect", { x, y, width: slot * 0.7, height: h },
          [title(`${year}: ${plural(numbers.post_count, "post")}`)]),
        text(x + slot * 0.35, y - 4, numbers.post_count.toLocaleString("en"), { class: "count" }),
        text(x + slot * 0.35, height - bottom + 16, year, { class: "tick x" }),
      ]);
      chart.append(group);
    });
    replaceChart("years", chart);
  }

  function drawGraph(graph) {
    const size = 560;
    const centre = size / 2;
    const radius = size / 2 - 70;
    const nodes = new Map(); // uid → {name, weight}
    for (const edge of graph.rows) {
      for (const u of [edge.from, edge.to]) {
        const node = nodes.get(u.uid) || { name: u.name || `#${u.uid}`, weight: 0 };
        node.weight += edge.count;
        nodes.set(u.uid, node);
      }
    }
    const uids = [...nodes.keys()].sort((a, b) => a - b);
    uids.forEach((uid, i) => {
      const angle = (2 * Math.PI * i) / uids.length - Math.PI / 2;
      Object.assign(nodes.get(uid), {
        x: centre + radius * Math.cos(angle), y: centre + radius * Math.sin(angle), angle,
      });
    });
    const chart = svg("svg", { class: "graph", viewBox: `0 0 ${size} ${size}` }, [
      svg("defs", {}, [svg("marker", {
        id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 9, markerHeight: 9,
        markerUnits: "userSpaceOnUse",
        orient: "auto-start-reverse",
      }, [svg("path", { d: "M0,0 L10,5 L0,10 z" })])]),
    ]);
    if (!graph.rows.length) chart.append(text(centre, centre, "no quotes", { class: "empty" }));
    const most = Math.max(1, ...[...nodes.values()].map((n) => n.weight));
    const r = (node) => 4 + 8 * Math.sqrt(node.weight / most);
    const edges = svg("g", { class: "edges" });
    for (const edge of graph.rows) {
      const a = nodes.get(edge.from.uid);
      const b = nodes.get(edge.to.uid);
      let d;
      if (a === b) { // a user quoting themself: a loop outside the circle
        const ox = Math.cos(a.angle) * 28;
        const oy = Math.sin(a.angle) * 28;
        d = `M${a.x},${a.y} C${a.x + ox - oy},${a.y + oy + ox} ${a.x + ox + oy},${a.y + oy - ox} ${a.x},${a.y}`;
      } else { // bent towards the centre, so a → b and b → a stay apart; ends at b's rim
        const mx = (a.x + b.x) / 2 + (centre - (a.x + b.x) / 2) * 0.25;
        const my = (a.y + b.y) / 2 + (centre - (a.y + b.y) / 2) * 0.25;
        const len = Math.hypot(b.x - mx, b.y - my) || 1;
        const ex = b.x - ((b.x - mx) / len) * r(b);
        const ey = b.y - ((b.y - my) / len) * r(b);
        d = `M${a.x},${a.y} Q${mx},${my} ${ex},${ey}`;
      }
      edges.append(svg("path", {
        class: "edge", d, "stroke-width": 0.6 + 4 * edge.intensity,
        "marker-end": a === b ? "" : "url(#arrow)",
        "data-from": edge.from.uid, "data-to": edge.to.uid, "data-count": edge.count,
      }, [title(`${a.name} → ${b.name}: ${edge.count}`)]));
    }
    chart.append(edges);
    for (const uid of uids) {
      const node = nodes.get(uid);
      const right = Math.cos(node.angle) >= 0;
      chart.append(svg("g", { class: "node", "data-uid": uid }, [
        svg("circle", { cx: node.x, cy: node.y, r: r(node) }, [title(`${node.name}: ${node.weight}`)]),
        text(node.x + Math.cos(node.angle) * (r(node) + 4), node.y + Math.sin(node.angle) * (r(node) + 4) + 4,
          node.name, { class: "label", "text-anchor": right ? "start" : "end" }),
      ]));
    }
    replaceChart("graph", chart);
  }

  function drawDomains(kind, answer) {
    const table = document.getElementById(`domains-${kind}`);
    const most = Math.max(1, ...answer.rows.map((r) => r.count));
    const rows = answer.rows.map((r) => {
      const bar = element("span", { className: "bar" });
      bar.style.width = `${(100 * r.count) / most}%`;
      const row = element("tr", {}, [
        element("td", { textContent: r.domain, className: "name" }),
        element("td", { textContent: String(r.count) }),
        element("td", { className: "meter" }, [bar]),
      ]);
      row.dataset.domain = r.domain;
      return row;
    });
    if (!rows.length) rows.push(element("tr", {}, [element("td", { colSpan: 3, textContent: "none" })]));
    table.querySelector("tbody").replaceChildren(...rows);
  }

  function replaceChart(id, chart) {
    const figure = document.getElementById(id);
    chart.setAttribute("role", "img");
    chart.setAttribute("aria-label", figure.querySelector("figcaption").textContent);
    figure.querySelector("svg")?.remove();
    figure.prepend(chart);
  }

  // -- loading ----------------------------------------------------------------------------

  // Whose answers are current: a new choice takes every part's turn, a rankings page or a
  // graph kind only its own; answers to a turn since taken are dropped.
  const turns = { all: 0, rankings: 0, graph: 0 };
  let pending = 0;

  async function run(parts, work) {
    const mine = {};
    for (const part of parts) mine[part] = ++turns[part];
    pending += 1;
    form.dataset.state = "loading";
    stateEl.textContent = "loading";
    try {
      await work(mine);
    } catch (err) {
      if (parts.every((part) => mine[part] === turns[part])) {
        errorEl.hidden = false;
        errorEl.textContent = `Error: ${err.message}`;
      }
    } finally {
      pending -= 1;
      if (!pending) {
        form.dataset.state = errorEl.hidden ? "drawn" : "error";
        form.dataset.drawn = new URLSearchParams(scope()).toString();
        stateEl.textContent = errorEl.hidden ? "" : "error";
      }
    }
  }

  async function loadRankings(upTo, mine) {
    const params = { ...scope(), limit: pageSize, order_by_column: orderSelect.value };
    const answer = await get("poster-stats", { ...params, ...(upTo[upTo.length - 1] || {}) });
    if (mine.rankings !== turns.rankings) return;
    pages = upTo;
    nextPage = answer.next;
    drawRankings(answer, (pages.length - 1) * pageSize);
  }

  async function loadGraph(mine) {
    const params = { ...scope(), limit: graphEdges };
    if (kindSelect.value) params.kind = kindSelect.value;
    const answer = await get("social-graph", params);
    if (mine.graph === turns.graph) drawGraph(answer);
  }

  function refresh() {
    const chosen = scope();
    history.replaceState(null, "", `?${new URLSearchParams(chosen)}`);
    errorEl.hidden = true;
    const everyYear = { site: chosen.site, ...(chosen.bid ? { bid: chosen.bid } : {}) };
    return run(["all", "rankings", "graph"], async (mine) => {
      const [boards, years, hourly, daily, threads, ...domains] = await Promise.all([
        get("boards", { site: chosen.site }),
        get("year-over-year-stats", everyYear),
        get("hourly-stats", chosen),
        get("daily-stats", chosen),
        get("thread-stats", chosen),
        ...["link", "image", "video"].map((type) =>
          get("domains", { ...chosen, type, limit: domainRows })),
        loadRankings([null], mine),
        loadGraph(mine),
      ]);
      if (mine.all !== turns.all) return;
      fill(form.elements.bid, Object.entries(boards).map(([bid, b]) => [bid, b.name]), chosen.bid);
      fill(form.elements.year, Object.keys(years.rows).map((y) => [y, y]), chosen.year);
      drawTotals(daily, threads);
      drawWeek(hourly);
      drawCalendar(daily);
      drawYears(years, chosen.year);
      ["link", "image", "video"].forEach((kind, i) => drawDomains(kind, domains[i]));
    });
  }

  function turnPage(upTo) {
    return run(["rankings"], (mine) => loadRankings(upTo, mine));
  }

  // -- choices ----------------------------------------------------------------------------

  const asked = new URLSearchParams(location.search);
  for (const name of ["site", "year", "bid"]) {
    const value = asked.get(name);
    if (!value) continue;
    const select = form.elements[name];
    if (![...select.options].some((o) => o.value === value)) {
      select.append(element("option", { value, textContent: value }));
    }
    select.value = value;
  }
  form.elements.site.addEventListener("change", () => {
    form.elements.year.value = "";
    form.elements.bid.value = "";
    refresh();
  });
  form.elements.year.addEventListener("change", refresh);
  form.elements.bid.addEventListener("change", refresh);
  form.addEventListener("submit", (event) => event.preventDefault());
  orderSelect.addEventListener("change", () => turnPage([null]));
  rankings.querySelector("button[name=next]").addEventListener("click", () => {
    if (nextPage) turnPage([...pages, nextPage]);
  });
  rankings.querySelector("button[name=previous]").addEventListener("click", () => {
    if (pages.length > 1) turnPage(pages.slice(0, -1));
  });
  rankings.querySelector("button[name=first]").addEventListener("click", () => turnPage([null]));
  kindSelect.addEventListener("change", () => run(["graph"], loadGraph));
  refresh();
})();
