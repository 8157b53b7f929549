// The dashboard's three views: the pipeline overview, one repo, one organisation.
// Each view builds its DOM once and refreshes its numbers in place on every poll; the
// private parts of a repo's and an organisation's pages are in analytics.js.
"use strict";

const Views = (() => {
  /** GET from this API (with the token when ``auth``); a non-2xx answer throws with its error text. */
  async function get(path, { auth = false, accept = "application/json" } = {}) {
    const headers = { Accept: accept, ...(auth ? Access.headers() : {}) };
    const reply = await fetch(path, { headers, cache: "no-store" });
    if (!reply.ok) {
      let message = `${reply.status}`;
      try { message = (await reply.json()).error || message; } catch (_) { /* keep the status */ }
      const err = new Error(message);
      err.status = reply.status;
      throw err;
    }
    return reply;
  }

  const getJson = async (path, options) => (await get(path, options)).json();

  const SEGMENT = { model: "models", dataset: "datasets" };
  const repoHref = (type, id) => `#/${SEGMENT[type]}/${id}`;
  const orgHref = (org) => `#/org/${org}`;

  function card(title, ...body) {
    return h("section", { class: "card" }, title ? h("h2", {}, title) : null, ...body);
  }

  function stat(id, label, hint) {
    return h("div", { class: "stat" },
      h("div", { class: "stat-label" }, label),
      h("div", { class: "stat-value", id }, "—"),
      h("div", { class: "stat-hint", id: `${id}-hint` }, hint || ""));
  }

  function setText(id, text) {
    const el = document.getElementById(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  // -- overview ------------------------------------------------------------------------

  /** The pipeline overview: live rates, workers, and the 30-day top with sparklines. */
  function overview(root, live) {
    let repoType = "model";
    const topBody = h("tbody");
    const tabs = ["model", "dataset"].map((type) => h("button", {
      class: "tab", type: "button", "data-type": type,
      onclick: () => { repoType = type; syncTabs(); refreshTop(); },
    }, type === "model" ? "Models" : "Datasets"));
    const syncTabs = () => tabs.forEach((t) => t.classList.toggle("active", t.dataset.type === repoType));
    syncTabs();
    const throughput = h("div", { class: "chart-box", id: "throughput-chart" });
    const workersBody = h("tbody");
    const topRange = h("span", { class: "muted", id: "top-range" });

    root.replaceChildren(
      h("div", { class: "page-head" }, h("h1", {}, "Pipeline"),
        h("span", { class: "muted" }, "events from the CDN log, counted into Redis")),
      h("div", { class: "stats" },
        stat("stat-read", "Events read / s", "from Kafka"),
        stat("stat-counted", "Events counted / s", "added a download"),
        stat("stat-dead", "Dead letters / s", ""),
        stat("stat-lag", "Consumer lag", "messages behind")),
      h("div", { class: "grid-2" },
        card(null, h("div", { class: "card-head" }, h("h2", {}, "Throughput"),
          h("div", { class: "legend" },
            h("span", { class: "key read" }, "read"), h("span", { class: "key counted" }, "counted"),
            h("span", { class: "key dead" }, "dead-lettered"))), throughput),
        card(null, h("div", { class: "card-head" }, h("h2", {}, "Workers"), h("span", { class: "muted", id: "workers-count" })),
          h("table", { class: "table compact", id: "workers-table" },
            h("thead", {}, h("tr", {}, h("th", {}, "Worker"), h("th", { class: "num" }, "Read"),
              h("th", { class: "num" }, "Counted"), h("th", { class: "num" }, "Dead"),
              h("th", { class: "num" }, "Lag"))), workersBody),
          h("p", { class: "muted small", id: "workers-note" }))),
      card(null, h("div", { class: "card-head" }, h("h2", {}, "Top repos · last 30 days"), topRange, h("div", { class: "tabs" }, tabs)),
        h("table", { class: "table", id: "top-table" },
          h("thead", {}, h("tr", {}, h("th", { class: "rank" }, "#"), h("th", {}, "Repository"),
            h("th", { class: "trend" }, "30-day trend"), h("th", { class: "num" }, "Last 30 days"),
            h("th", { class: "num" }, "All time"))), topBody)),
    );

    function drawLive() {
      const snap = live.snapshot();
      setText("stat-read", snap.rates ? Fmt.rate(snap.rates.read) : "—");
      setText("stat-counted", snap.rates ? Fmt.rate(snap.rates.counted) : "—");
      setText("stat-dead", snap.rates ? Fmt.rate(snap.rates.dead) : "—");
      document.getElementById("stat-dead").classList.toggle("bad", Boolean(snap.rates && snap.rates.dead > 0));
      setText("stat-dead-hint", snap.rates ? `${Fmt.percent(snap.rates.dead, snap.rates.read)} of events read` : "");
      setText("stat-lag", snap.workers.length ? Fmt.count(snap.lag) : "—");
      setText("stat-counted-hint", snap.rates ? `${Fmt.percent(snap.rates.counted, snap.rates.read)} of events read` : "added a download");
      setText("workers-count", `${snap.alive} alive`);
      workersBody.replaceChildren(...(snap.workers.length ? snap.workers.map((w) => h("tr", { "data-worker": w.id },
        h("td", { class: "worker" }, h("span", { class: `status ${w.alive ? "ok" : "stale"}` }),
          h("span", { class: "mono" }, w.id),
          h("div", { class: "muted small" }, `up ${Fmt.duration(snap.nowMs - w.startedMs)} · beat ${Fmt.ago(snap.nowMs - w.updatedMs)}`),
          h("div", { class: "muted small" }, w.group)),
        h("td", { class: "num" }, Fmt.count(w.eventsRead)),
        h("td", { class: "num" }, Fmt.count(w.eventsCounted)),
        h("td", { class: "num" }, Fmt.count(w.deadLettered)),
        h("td", { class: "num" }, Fmt.count(w.lag)))) :
        [h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No worker has sent a heartbeat in the last 30 s."))]));
      setText("workers-note", snap.workers.length
        ? "Totals since each worker started; rates are the change between two heartbeats (every 2 s)." : "");
      // Up to five minutes, but never squeezed into a corner while the history is short.
      const to = snap.nowMs;
      const first = snap.history.length ? snap.history[0].t : to;
      const from = Math.max(to - 5 * 60000, Math.min(first - 2000, to - 30000));
      Charts.timeSeries(throughput, [
        { cls: "read", points: snap.history.map((p) => ({ t: p.t, v: p.read })) },
        { cls: "counted", points: snap.history.map((p) => ({ t: p.t, v: p.counted })) },
        { cls: "dead", points: snap.history.map((p) => ({ t: p.t, v: p.dead })) },
      ], { from, to });
    }

    async function refreshTop() {
      const shown = repoType;
      const top = await getJson(`/api/pipeline/top?repoType=${shown}&limit=15`);
      if (shown !== repoType) return;  // the tab changed while this was in flight
      setText("top-range", `${Fmt.dayLong(top.start)} – ${Fmt.dayLong(top.end)}`);
      if (!top.repos.length) {
        topBody.replaceChildren(h("tr", {}, h("td", { colspan: 5, class: "empty" }, "Nothing counted yet.")));
        return;
      }
      topBody.replaceChildren(...top.repos.map((r, i) => h("tr", { "data-id": r.id, "data-type": r.repoType },
        h("td", { class: "rank" }, i + 1),
        h("td", {}, h("a", { href: repoHref(r.repoType, r.id), class: "repo-link" }, r.id)),
        h("td", { class: "trend" }, Charts.sparkline(r.daily, { label: `daily downloads of ${r.id}` })),
        h("td", { class: "num downloads", "data-value": r.downloads }, Fmt.count(r.downloads)),
        h("td", { class: "num muted all-time", "data-value": r.downloadsAllTime }, Fmt.count(r.downloadsAllTime)))));
    }

    return { live: drawLive, refresh: refreshTop, every: 4000 };
  }

  // -- one repo ------------------------------------------------------------------------

  const RANGES = [30, 90, 365];

  /**
   * A repo's page: totals and its daily chart over 30, 90 or 365 days (public), then its
   * publisher analytics over the same days (private: analytics.js).
   */
  function repo(root, repoType, id) {
    let days = 30;
    const chart = h("div", { class: "chart-box", id: "repo-chart" });
    const buttons = RANGES.map((n) => h("button", { type: "button", class: "tab", "data-days": n,
      onclick: () => { days = n; sync(); refresh(); } }, `${n} days`));
    const sync = () => buttons.forEach((b) => b.classList.toggle("active", Number(b.dataset.days) === days));
    sync();
    const org = id.includes("/") ? id.split("/")[0] : null;
    const base = `/api/${SEGMENT[repoType]}/${id}`;
    const analytics = Analytics.repo(repoType, id, `${base}/downloads`);
    const counts = h("div", { id: "repo-public" },
      h("div", { class: "stats" },
        stat("repo-30d", "Last 30 days", "UTC days, today included"),
        stat("repo-all", "All time", "since counting began"),
        stat("repo-today", "Today", "UTC, so far"),
        stat("repo-best", "Best day in range", "")),
      card(null, h("div", { class: "card-head" }, h("h2", {}, "Daily downloads"),
        h("span", { class: "muted", id: "repo-range" }), h("div", { class: "tabs" }, buttons)), chart));
    root.replaceChildren(
      h("div", { class: "page-head" },
        h("a", { href: "#/", class: "crumb" }, "Dashboard"), h("span", { class: "crumb-sep" }, "/"),
        org ? h("a", { href: orgHref(org), class: "crumb" }, org) : h("span", { class: "crumb muted" }, "no organisation"),
        h("span", { class: "crumb-sep" }, "/"),
        h("h1", { id: "repo-title" }, id.split("/").pop()),
        h("span", { class: `badge ${repoType}` }, repoType),
        h("a", { class: "button", href: `${base}/downloads` }, "JSON")),
      counts,
      analytics.section,
    );

    async function refresh() {
      const end = Fmt.todayUtc();
      const start = Fmt.shiftDay(end, -(days - 1));
      // Private, beside the public counts: a repo with nothing counted may still have requests
      // that did not count, which is what its publisher needs to see.
      const privately = analytics.refresh(start, end);
      const [info, series] = await Promise.all([
        getJson(`${base}?expand[]=downloads&expand[]=downloadsAllTime`),
        getJson(`${base}/downloads?start=${start}&end=${end}`),
      ]);
      const values = series.daily.map((d) => d.downloads);
      const dates = series.daily.map((d) => d.date);
      const best = values.reduce((b, v, i) => (v > values[b] ? i : b), 0);
      setText("repo-30d", Fmt.count(info.downloads));
      setText("repo-all", Fmt.count(info.downloadsAllTime));
      setText("repo-today", Fmt.count(values[values.length - 1] || 0));
      setText("repo-best", values.length ? Fmt.count(values[best]) : "—");
      setText("repo-best-hint", values[best] ? Fmt.dayLong(dates[best]) : "no downloads in range");
      setText("repo-range", `${Fmt.dayLong(series.start)} – ${Fmt.dayLong(series.end)}`);
      Charts.daily(chart, dates, values);
      await privately;
    }

    /** Nothing counted under this id: the public counts go, the private part stays. */
    const missing = () => counts.remove();

    return { refresh, missing, every: 5000 };
  }

  // -- one organisation -------------------------------------------------------------------

  /** An organisation's repos with their totals, and its private analytics. */
  function organization(root, org) {
    const body = h("tbody");
    const analytics = Analytics.org(org);
    root.replaceChildren(
      h("div", { class: "page-head" },
        h("a", { href: "#/", class: "crumb" }, "Dashboard"), h("span", { class: "crumb-sep" }, "/"),
        h("h1", { id: "org-title" }, org), h("span", { class: "badge org" }, "organisation"),
        analytics.button),
      h("div", { class: "stats three" },
        stat("org-repos", "Repos counted", ""),
        stat("org-30d", "Last 30 days", "all repos"),
        stat("org-all", "All time", "all repos")),
      card("Repos by downloads, last 30 days",
        h("table", { class: "table", id: "org-table" },
          h("thead", {}, h("tr", {}, h("th", {}, "Repository"), h("th", {}, "Type"),
            h("th", { class: "share" }, "Share of the organisation's 30 days"),
            h("th", { class: "num" }, "Last 30 days"), h("th", { class: "num" }, "All time"))), body)),
      analytics.card,
    );

    async function refresh() {
      analytics.refresh();  // private: refused without a token that covers the org, which the public part ignores
      const data = await getJson(`/api/pipeline/organizations/${org}`);
      const types = Object.entries(data.reposByType).map(([t, n]) => `${Fmt.count(n)} ${t}${n === 1 ? "" : "s"}`);
      setText("org-repos", Fmt.count(data.repos));
      setText("org-repos-hint", types.join(" · "));
      setText("org-30d", Fmt.count(data.downloads));
      setText("org-all", Fmt.count(data.downloadsAllTime));
      body.replaceChildren(...data.top.map((r) => h("tr", { "data-id": r.id, "data-type": r.repoType },
        h("td", {}, h("a", { href: repoHref(r.repoType, r.id), class: "repo-link" }, r.id)),
        h("td", {}, h("span", { class: `badge ${r.repoType}` }, r.repoType)),
        h("td", { class: "share" }, h("div", { class: "share-bar" },
          h("div", { style: { width: `${data.downloads ? (100 * r.downloads) / data.downloads : 0}%` } }))),
        h("td", { class: "num downloads" }, Fmt.count(r.downloads)),
        h("td", { class: "num muted" }, Fmt.count(r.downloadsAllTime)))));
    }

    return { refresh, every: 10000 };
  }

  return { get, getJson, overview, repo, organization, repoHref, orgHref, stat, setText };
})();
