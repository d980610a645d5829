// The finder's page: POST the artwork URL to /aotf/query, ask again every second until the
// request reaches END, and show its status, accounts and matching posts as they come.
"use strict";

(() => {
  const form = document.getElementById("finder");
  const statusEl = document.getElementById("status");
  const firstScan = document.getElementById("first-scan");
  const errorEl = document.getElementById("error");
  const accountsEl = document.getElementById("accounts");
  const resultsEl = document.getElementById("results");
  const queryUrl = form.dataset.queryUrl;
  const interval = Number(form.dataset.interval);
  let asking = 0; // which submission the running poll belongs to

  function element(tag, props, children = []) {
    const node = document.createElement(tag);
    Object.assign(node, props);
    node.append(...children);
    return node;
  }

  function show(answer) {
    statusEl.textContent = answer.status || "no request";
    statusEl.dataset.status = answer.status || "";
    firstScan.textContent = answer.has_first_time_scan ? "(first scan of these accounts)" : "";
    errorEl.hidden = !answer.error;
    errorEl.textContent = answer.error ? `Error: ${answer.error}` : "";
    accountsEl.replaceChildren(
      ...(answer.twitter_accounts || []).map((a) =>
        element("li", { textContent: `${a.network}: ${a.account_name}` })
      )
    );
    resultsEl.replaceChildren(
      ...(answer.results || []).map((r) => {
        const link = element("a", { href: r.post_url, className: "post" }, [r.post_url]);
        const children = [link, ` image ${r.image_position}, distance ${r.distance}`];
        if (r.mirrored) children.push(" (mirrored)");
        if (r.media_url) {
          const thumb = element("img", {
            src: r.media_url, alt: `image ${r.image_position}`, loading: "lazy", width: 120,
          });
          children.unshift(element("a", { href: r.media_url, className: "thumb" }, [thumb]));
        }
        return element("li", { className: "result" }, children);
      })
    );
  }

  async function ask(url, mine) {
    if (mine !== asking) return; // a newer submission took over
    let response;
    try {
      response = await fetch(queryUrl, {
        method: "POST", headers: { "Content-Type": "text/plain" }, body: url,
      });
    } catch (err) {
      statusEl.textContent = `cannot reach the server (${err.message}), trying again`;
      setTimeout(() => ask(url, mine), interval);
      return;
    }
    if (response.status === 429) { // one request a second per address: try on the next tick
      setTimeout(() => ask(url, mine), interval);
      return;
    }
    if (!response.ok) {
      statusEl.textContent = `the server answered ${response.status}`;
      return;
    }
    const answer = await response.json();
    if (mine !== asking) return;
    show(answer);
    if (answer.status !== "END" && !answer.error) setTimeout(() => ask(url, mine), interval);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    asking += 1;
    statusEl.textContent = "asking";
    ask(form.elements.url.value.trim(), asking);
  });
})();
