// The dashboard's driver: live worker rates, hash routing, polling and the search box.
//
// Worker heartbeats carry cumulative totals; rates are the difference between two
// heartbeats of the same worker process, computed here in the browser, so any API process
// behind a load balancer can answer any poll.
"use strict";

const POLL_MS = 2000;
const HISTORY_MS = 5 * 60000;
const ALIVE_MS = 10000;

const Live = (() => {
  const samples = new Map();  // worker id -> the last heartbeat seen
  const rates = new Map();    // worker id -> {read, counted, dead} between its last two heartbeats
  const history = [];
  let latest = { nowMs: Date.now(), workers: [] };

  function ingest(data) {
    latest = data;
    const present = new Set();
    for (const w of data.workers) {
      present.add(w.id);
      const prev = samples.get(w.id);
      // A restarted worker (new startedMs) starts its totals again from zero: no rate then.
      if (prev && prev.startedMs === w.startedMs && w.updatedMs > prev.updatedMs) {
        const dt = (w.updatedMs - prev.updatedMs) / 1000;
        rates.set(w.id, {
          read: Math.max(0, w.eventsRead - prev.eventsRead) / dt,
          counted: Math.max(0, w.eventsCounted - prev.eventsCounted) / dt,
          dead: Math.max(0, w.deadLettered - prev.deadLettered) / dt,
        });
      }
      if (!prev || prev.updatedMs !== w.updatedMs) samples.set(w.id, w);
    }
    for (const id of [...samples.keys()]) {
      if (!present.has(id)) { samples.delete(id); rates.delete(id); }
    }
    const snap = snapshot();
    if (snap.rates) history.push({ t: data.nowMs, ...snap.rates });
    while (history.length && history[0].t < data.nowMs - HISTORY_MS) history.shift();
  }

  function snapshot() {
    const nowMs = latest.nowMs;
    const workers = latest.workers.map((w) => ({ ...w, alive: nowMs - w.updatedMs < ALIVE_MS }));
    const alive = workers.filter((w) => w.alive);
    const measured = alive.filter((w) => rates.has(w.id));
    const total = { read: 0, counted: 0, dead: 0 };
    for (const w of measured) {
      const r = rates.get(w.id);
      total.read += r.read; total.counted += r.counted; total.dead += r.dead;
    }
    return {
      nowMs, workers, alive: alive.length, history,
      rates: measured.length || (workers.length && !alive.length) ? total : null,
      lag: alive.reduce((sum, w) => sum + (w.lag || 0), 0),
    };
  }

  return { ingest, snapshot };
})();

const App = (() => {
  const root = document.getElementById("view");
  const notice = document.getElementById("notice");
  let view = null;
  let dueAt = 0;
  let routeSeq = 0;

  function say(message) {
    notice.hidden = !message;
    notice.textContent = message || "";
  }

  function setLive(ok, text) {
    const el = document.getElementById("live");
    el.dataset.state = ok ? "ok" : "down";
    document.getElementById("live-text").textContent = text;
  }

  function route() {
    const parts = (location.hash.replace(/^#\/?/, "") || "").split("/").filter(Boolean).map(decodeURIComponent);
    say("");
    routeSeq += 1;
    if (parts[0] === "models" || parts[0] === "datasets") {
      view = Views.repo(root, parts[0] === "models" ? "model" : "dataset", parts.slice(1).join("/"));
    } else if (parts[0] === "org" && parts[1]) {
      view = Views.organization(root, parts[1]);
    } else {
      view = Views.overview(root, Live);
    }
    window.scrollTo(0, 0);
    dueAt = 0;
    refreshView(routeSeq);
  }

  async function refreshView(seq) {
    if (!view) return;
    dueAt = Date.now() + view.every;
    try {
      await view.refresh();
      if (seq === routeSeq) say("");
    } catch (err) {
      if (seq !== routeSeq) return;
      if (err.status === 404) {
        if (view.missing) view.missing(); else root.querySelectorAll(".stats, .card").forEach((el) => el.remove());
        say(`${err.message}: nothing has been counted under this id.`);
      } else {
        say(`Could not load this view (${err.message}); retrying.`);
      }
    }
    if (view.live) view.live();
  }

  async function tick() {
    try {
      Live.ingest(await Views.getJson("/api/pipeline/workers"));
      setLive(true, `live · updated ${Fmt.clock(Date.now())} UTC`);
    } catch (err) {
      setLive(false, `offline · retrying (${err.message})`);
    }
    if (view && view.live) view.live();
    if (view && Date.now() >= dueAt) await refreshView(routeSeq);
    setTimeout(tick, POLL_MS);
  }

  // -- search ----------------------------------------------------------------------------

  async function exists(path) {
    try { await Views.getJson(path); return true; } catch (_) { return false; }
  }

  /** Open what the search box names: a repo (models first, then datasets) or an organisation. */
  async function open(query) {
    const q = query.trim().replace(/^https?:\/\/[^/]+\//, "").replace(/\/+$/, "");
    if (!q) return;
    const typed = q.match(/^(models|datasets)\/(.+)$/);
    if (typed) { location.hash = `#/${typed[1]}/${typed[2]}`; return; }
    const candidates = q.includes("/")
      ? [[`/api/models/${q}?expand[]=downloads`, `#/models/${q}`], [`/api/datasets/${q}?expand[]=downloads`, `#/datasets/${q}`]]
      : [[`/api/pipeline/organizations/${q}`, `#/org/${q}`], [`/api/models/${q}?expand[]=downloads`, `#/models/${q}`],
         [`/api/datasets/${q}?expand[]=downloads`, `#/datasets/${q}`]];
    for (const [probe, target] of candidates) {
      if (await exists(probe)) { location.hash = target; return; }
    }
    say(`No repo or organisation named "${q}" has been counted.`);
  }

  let suggestTimer = null;
  function suggest(value) {
    clearTimeout(suggestTimer);
    suggestTimer = setTimeout(async () => {
      const list = document.getElementById("search-suggestions");
      try {
        const found = await Views.getJson(`/api/pipeline/suggest?q=${encodeURIComponent(value)}&limit=12`);
        list.replaceChildren(...found.ids.map((r) => h("option", { value: r.repoType === "dataset" ? `datasets/${r.id}` : r.id })));
      } catch (_) { list.replaceChildren(); }
    }, 180);
  }

  function start() {
    const form = document.getElementById("search");
    const input = document.getElementById("search-input");
    form.addEventListener("submit", (ev) => { ev.preventDefault(); open(input.value); });
    input.addEventListener("input", () => suggest(input.value));
    window.addEventListener("hashchange", route);
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => refreshView(routeSeq), 200);
    });
    Access.onChange(() => refreshView(routeSeq));
    Access.start();
    route();
    tick();
  }

  return { start, open };
})();

App.start();
