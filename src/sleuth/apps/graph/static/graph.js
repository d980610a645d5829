// The graph crawl's monitor: asks /api/graph/monitor every few seconds and puts the new
// figures in the page the server rendered, without reloading it; its form searches the
// collected posts through /api/graph/posts.
"use strict";

(() => {
  const root = document.getElementById("monitor");
  const status = document.getElementById("status");
  const url = root.dataset.url;
  const interval = Number(root.dataset.interval);

  function figure(data, path) {
    return path.split("/").reduce((value, key) => (value == null ? value : value[key]), data);
  }

  function row(cells, attrs) {
    const tr = document.createElement("tr");
    Object.assign(tr.dataset, attrs);
    for (const cell of cells) {
      const td = document.createElement("td");
      td.textContent = cell;
      tr.append(td);
    }
    return tr;
  }

  function rows(id, items, columns, empty) {
    const body = document.getElementById(id);
    const drawn = items.map(columns);
    if (!drawn.length) {
      const none = row([empty], {});
      none.firstChild.colSpan = body.closest("table").querySelectorAll("th").length;
      drawn.push(none);
    }
    body.replaceChildren(...drawn);
  }

  const known = (value) => (value == null ? "?" : String(value));

  function show(data) {
    for (const el of root.querySelectorAll("[data-figure]")) {
      el.textContent = String(figure(data, el.dataset.figure));
    }
    rows("workers", data.workers, (w) =>
      row([w.consumer, w.state, w.heartbeat_at, w.heartbeat_age, w.current.length],
        { consumer: w.consumer }), "none");
    rows("errors", Object.entries(data.errors_by_reason), ([reason, n]) =>
      row([reason, n], { reason }), "none");
    rows("budgets", data.budgets, (b) =>
      row([b.host, b.source || "default", known(b.remaining), known(b.limit), b.reset_at || "",
        b.blocked_until || ""], { host: b.host, source: b.source }), "none announced");
  }

  async function refresh() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      show(await response.json());
      status.textContent = "";
    } catch (error) {
      status.textContent = `Not refreshed: ${error.message}`;
    } finally {
      setTimeout(refresh, interval);
    }
  }

  const search = document.getElementById("post-search");
  const postsEl = document.getElementById("posts");
  const postsStatus = document.getElementById("posts-status");

  function post(p) {
    const li = document.createElement("li");
    li.className = "post";
    Object.assign(li.dataset, { network: p.network, postId: p.post_id });
    const who = document.createElement(p.url ? "a" : "span");
    if (p.url) who.href = p.url;
    who.textContent = `${p.network}: ${p.account_id}`;
    const text = document.createElement("p");
    text.textContent = p.text;
    li.append(who, text);
    return li;
  }

  search.addEventListener("submit", async (event) => {
    event.preventDefault();
    const q = new FormData(search).get("q");
    postsStatus.textContent = "searching…";
    try {
      const response = await fetch(`${search.dataset.url}?${new URLSearchParams({ q })}`, {
        headers: { Accept: "application/json" },
      });
      const answer = await response.json();
      if (!response.ok) throw new Error(answer.error ? answer.error.message : response.status);
      postsEl.replaceChildren(...answer.posts.map(post));
      postsStatus.textContent = `${answer.posts.length} found`;
    } catch (error) {
      postsStatus.textContent = `Not searched: ${error.message}`;
    }
  });

  setTimeout(refresh, interval);
})();
