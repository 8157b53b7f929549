// The private analytics of an organisation and of one repo, read with the API token
// (Access) and shown only when the token covers the owner; otherwise each view says why
// it is closed. The counts themselves stay public (views.js).
"use strict";

const Analytics = (() => {
  const ORG_DAYS = 30;
  const UNCOUNTED_DAYS = 30;  // the API looks back 31 days at most
  const LIST_ROWS = 10;  // values shown per top list; the rest as one "other" row
  // Traffic classes, bottom of the stack first. "" is the rest the API sums up: downloads
  // with no class recorded (counted while analytics were off, or past their 90 days).
  const CLASSES = [
    { value: "other", label: "other", cls: "cls-other" },
    { value: "browser", label: "browser", cls: "cls-browser" },
    { value: "mirror", label: "mirror", cls: "cls-mirror" },
    { value: "bot", label: "bot", cls: "cls-bot" },
    { value: "ci", label: "CI", cls: "cls-ci" },
    { value: "", label: "no class recorded", cls: "cls-none" },
  ];
  const EXCLUDED = ["ci", "bot"];  // as downloadsExcludingCI leaves out
  const REPO_WANTS = "this repo's traffic classes, clients, countries, files, unique downloaders and " +
    "uncounted requests need";

  /** RFC 4180 rows: CRLF or LF line ends, quoted fields ("" for a quote; file paths may hold commas). */
  function csvRows(text) {
    const rows = [];
    let row = [];
    let field = "";
    let quoted = false;
    for (let i = 0; i < text.length; i += 1) {
      const c = text[i];
      if (quoted) {
        if (c !== '"') field += c;
        else if (text[i + 1] === '"') { field += '"'; i += 1; } else quoted = false;
      } else if (c === '"') quoted = true;
      else if (c === ",") { row.push(field); field = ""; }
      else if (c === "\n") { row.push(field); rows.push(row); row = []; field = ""; }
      else if (c !== "\r") field += c;
    }
    if (field || row.length) { row.push(field); rows.push(row); }
    return rows;
  }

  /**
   * Why a private view is closed, in words: no token (``err`` null), or the API's refusal.
   * ``wants`` names what the view shows, ending in its verb ("its daily breakdown needs").
   */
  function refusal(err, org, wants) {
    const owner = org ? `Private to ${org}` : "Private";
    if (!err) {
      const who = org ? `an API token that covers ${org}` : "an operator token (*), as the repo has no organisation";
      return `${owner}: ${wants} ${who}. Give one with Token, top right.`;
    }
    if (err.status === 401) return `The token was refused (${err.message}). Give another with Token, top right.`;
    if (err.status === 403) return `${owner}: ${err.message}.`;
    if (err.status === 404 && err.message === "Not Found") return "This API serves public counts only.";
    if (err.status === 404) return "Nothing has been counted or recorded under this id.";
    return `Could not load the analytics (${err.message}); retrying.`;
  }

  // -- an organisation: its daily downloads from the CSV breakdown ---------------------------

  /** Sum the organisation's CSV breakdown per day: {day: downloads}. */
  function dailyTotals(csv) {
    const totals = {};
    for (const fields of csvRows(csv).slice(1)) {
      const day = fields[3].slice(0, 10);
      totals[day] = (totals[day] || 0) + Number(fields[4]);
    }
    return totals;
  }

  /** The organisation's daily downloads from its CSV breakdown (private), and the CSV download. */
  function org(name) {
    const chart = h("div", { class: "chart-box", id: "org-daily-chart" });
    const lock = h("p", { class: "locked", id: "org-private-lock", hidden: true });
    const summary = h("span", { class: "muted", id: "org-daily-range" });
    const button = h("button", { type: "button", class: "button", id: "org-csv", disabled: true,
      onclick: () => download() }, "Download CSV breakdown");
    const card = h("section", { class: "card private", id: "org-private" },
      h("div", { class: "card-head" }, h("h2", {}, `Daily downloads · last ${ORG_DAYS} days`),
        h("span", { class: "badge private" }, "private"), summary),
      lock, chart);

    /** Closed: ``err`` is the API's refusal, or null when there is no token to ask with. */
    function closed(err) {
      lock.hidden = false;
      lock.textContent = refusal(err, name, "its daily breakdown needs");
      lock.dataset.reason = err ? String(err.status || "error") : "no-token";
      chart.replaceChildren();
      summary.textContent = "";
      button.disabled = true;
    }

    async function refresh() {
      if (!Access.token()) { closed(null); return; }  // the API would refuse it: no need to ask
      const end = Fmt.todayUtc();
      const start = Fmt.shiftDay(end, -(ORG_DAYS - 1));
      try {
        const reply = await Views.get(`/api/organizations/${name}/download-breakdown?start=${start}&end=${end}`,
          { auth: true, accept: "text/csv" });
        const totals = dailyTotals(await reply.text());
        const days = Fmt.daysBetween(start, end);
        lock.hidden = true;
        button.disabled = false;
        summary.textContent = `${Fmt.dayLong(start)} – ${Fmt.dayLong(end)} · all repos`;
        Charts.daily(chart, days, days.map((d) => totals[d] || 0));
      } catch (err) {
        closed(err);
      }
    }

    /** The whole breakdown (every day), fetched with the token and saved as a file. */
    async function download() {
      try {
        const reply = await Views.get(`/api/organizations/${name}/download-breakdown`, { auth: true, accept: "text/csv" });
        const found = (reply.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
        const link = h("a", { href: URL.createObjectURL(await reply.blob()), download: found ? found[1] : `${name}.csv` });
        link.click();
        setTimeout(() => URL.revokeObjectURL(link.href), 10000);
      } catch (err) {
        closed(err);
      }
    }

    return { card, button, refresh };
  }

  // -- one repo: classes, top values, unique downloaders, what did not count ---------------

  const regionNames = (() => {
    try { return new Intl.DisplayNames(["en"], { type: "region" }); } catch (_) { return null; }
  })();

  /** "US" -> "United States (US)"; "unknown" and codes without a name stay as they are. */
  function countryLabel(code) {
    if (!regionNames || !/^[A-Z]{2}$/.test(code)) return code;
    try {
      const name = regionNames.of(code);
      return name && name !== code ? `${name} (${code})` : code;
    } catch (_) {
      return code;
    }
  }

  /** The class CSV as stack layers over ``days``, bottom first; only the classes present. */
  function classLayers(csv, days) {
    const perClass = new Map();  // value -> {day: downloads}
    for (const fields of csvRows(csv).slice(1)) {
      const [, , day, , value, n] = fields;
      if (!perClass.has(value)) perClass.set(value, {});
      perClass.get(value)[day] = Number(n);
    }
    return CLASSES.filter((c) => perClass.has(c.value))  // a classes file cannot name others
      .map((c) => ({ ...c, values: days.map((d) => perClass.get(c.value)[d] || 0) }));
  }

  /**
   * A breakdown's rows as shown: the ``LIST_ROWS`` values with most downloads, then one
   * "other" row for the rest (the values past them and what the API already summed, null).
   */
  function listRows(breakdown) {
    const named = breakdown.values.filter((v) => v.value !== null);
    const shown = named.slice(0, LIST_ROWS).map((v) => ({ value: v.value, downloads: v.downloads }));
    const rest = breakdown.total - shown.reduce((sum, v) => sum + v.downloads, 0);
    return rest > 0 ? [...shown, { value: "", downloads: rest }] : shown;
  }

  function listCard(dimension, title, label) {
    const body = h("tbody");
    const note = h("span", { class: "muted small" });
    const el = h("section", { class: "card", id: `repo-top-${dimension}-card` },
      h("div", { class: "card-head" }, h("h2", {}, title), note),
      h("table", { class: "table compact bars", id: `repo-top-${dimension}` }, body));

    function draw(breakdown) {
      const rows = listRows(breakdown);
      note.textContent = `${breakdown.values.filter((v) => v.value !== null).length} in range`;
      body.replaceChildren(...(rows.length ? rows.map((r) => h("tr", { "data-value": r.value, "data-downloads": r.downloads },
        h("td", { class: `label${dimension === "file" ? " mono" : ""}`, title: r.value || "the other values, summed" },
          r.value ? label(r.value) : h("span", { class: "muted" }, "other")),
        h("td", { class: "share" }, h("div", { class: "share-bar" },
          h("div", { style: { width: `${breakdown.total ? (100 * r.downloads) / breakdown.total : 0}%` } }))),
        h("td", { class: "num downloads" }, Fmt.count(r.downloads)),
        h("td", { class: "num muted pct" }, Fmt.percent(r.downloads, breakdown.total)))) :
        [h("tr", {}, h("td", { colspan: 4, class: "empty" }, "No downloads in range."))]));
    }

    return { el, draw };
  }

  /** A repo's private analytics over the range its page shows; ``base`` is its /downloads path. */
  function repo(repoType, id, base) {
    const owner = id.includes("/") ? id.split("/")[0] : null;
    const models = repoType === "model";
    const lock = h("p", { class: "locked", id: "repo-private-lock", hidden: true });
    const range = h("span", { class: "muted", id: "repo-private-range" });
    const note = h("p", { class: "muted small", id: "repo-private-note", hidden: true });
    const classChart = h("div", { class: "chart-box", id: "repo-class-chart" });
    const legend = h("div", { class: "legend", id: "repo-class-legend" });
    const uniquesChart = h("div", { class: "chart-box", id: "repo-uniques-chart" });
    const uncountedBody = h("tbody");
    const lists = {
      client: listCard("client", "Top clients", (v) => v),
      country: listCard("country", "Top countries", countryLabel),
      file: listCard("file", "Top files", (v) => v),
    };
    const counted = h("div", { id: "repo-private-counted" },
      h("div", { class: models ? "stats" : "stats three" },
        Views.stat("repo-uniques", "Unique downloaders", ""),
        Views.stat("repo-excluding", "Excluding CI and bots", ""),
        Views.stat("repo-automated", "CI and bots", ""),
        models ? Views.stat("repo-uncounted-total", "Not counted", `candidate requests, last ${UNCOUNTED_DAYS} days`) : null),
      h("section", { class: "card" }, h("div", { class: "card-head" },
        h("h2", {}, "Daily downloads by traffic class"), legend), classChart),
      h("div", { class: "grid-3" }, lists.client.el, lists.country.el, lists.file.el),
      h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", {}, "Unique downloaders per day"),
        h("span", { class: "muted small" }, "HyperLogLog estimates (about 0.81% error); anonymous requests are not in them")),
      uniquesChart));
    const uncounted = models ? h("section", { class: "card", id: "repo-uncounted-card" },
      h("div", { class: "card-head" }, h("h2", {}, `Not counted · last ${UNCOUNTED_DAYS} days`),
        h("span", { class: "muted small" }, "requests for this repo's files that were download candidates, and the rule that did not count them")),
      h("table", { class: "table", id: "repo-uncounted" },
        h("thead", {}, h("tr", {}, h("th", {}, "Path"), h("th", { class: "num" }, "Requests"), h("th", {}, "Why it did not count"))),
        uncountedBody)) : null;
    const body = h("div", { id: "repo-private-body", hidden: true }, note, counted, uncounted);
    const section = h("section", { class: "private-area", id: "repo-private" },
      h("div", { class: "section-head" }, h("h2", {}, "Publisher analytics"),
        h("span", { class: "badge private" }, "private"), range),
      lock, body);
    let calls = 0;

    function closed(err) {
      lock.hidden = false;
      lock.textContent = refusal(err, owner, REPO_WANTS);
      lock.dataset.reason = err ? String(err.status || "error") : "no-token";
      body.hidden = true;
      range.textContent = "";
      [classChart, legend, uniquesChart, uncountedBody].forEach((el) => el.replaceChildren());
    }

    function drawCounted(start, end, classCsv, breakdowns, uniques) {
      const days = Fmt.daysBetween(start, end);
      const layers = classLayers(classCsv, days);
      const total = breakdowns.client.total;
      const byClass = Object.fromEntries(layers.map((l) => [l.value, l.values.reduce((a, b) => a + b, 0)]));
      const automated = EXCLUDED.reduce((sum, c) => sum + (byClass[c] || 0), 0);
      Views.setText("repo-uniques", Fmt.count(uniques.uniqueDownloaders));
      Views.setText("repo-uniques-hint", "distinct downloaders in range, ±0.81%");
      Views.setText("repo-excluding", Fmt.count(total - automated));
      Views.setText("repo-excluding-hint", `${Fmt.percent(total - automated, total)} of ${Fmt.count(total)} downloads in range`);
      Views.setText("repo-automated", Fmt.count(automated));
      Views.setText("repo-automated-hint", `${Fmt.percent(automated, total)} of downloads in range`);
      legend.replaceChildren(...layers.map((l) => h("span", { class: `key swatch ${l.cls}`, "data-class": l.value }, l.label)));
      Charts.stacked(classChart, days, layers);
      for (const [dimension, list] of Object.entries(lists)) list.draw(breakdowns[dimension]);
      Charts.daily(uniquesChart, days, uniques.daily.map((d) => d.uniqueDownloaders),
        { yLabel: "Unique downloaders", noun: "unique downloaders" });
    }

    function drawUncounted(rows) {
      Views.setText("repo-uncounted-total", Fmt.count(rows.reduce((sum, r) => sum + r.requests, 0)));
      uncountedBody.replaceChildren(...(rows.length ? rows.map((r) => h("tr", { "data-path": r.path === null ? "" : r.path },
        h("td", { class: "mono path" }, r.path === null ? h("span", { class: "muted" }, "other paths") : r.path),
        h("td", { class: "num requests" }, Fmt.count(r.requests)),
        h("td", { class: "muted small rule" }, r.rule))) :
        [h("tr", {}, h("td", { colspan: 3, class: "empty" },
          `Every candidate request for this repo's files counted in the last ${UNCOUNTED_DAYS} days.`))]));
    }

    /** Read and draw the analytics of [start, end]; never throws (a refusal closes the view). */
    async function refresh(start, end) {
      const call = ++calls;
      if (!Access.token()) { closed(null); return; }  // the API would refuse it: no need to ask
      const q = `start=${start}&end=${end}`;
      const json = (path) => Views.getJson(path, { auth: true });
      const asked = await Promise.allSettled([
        Views.get(`${base}/breakdown.csv?by=class&${q}`, { auth: true, accept: "text/csv" }).then((r) => r.text()),
        json(`${base}/breakdown?by=client&${q}`),
        json(`${base}/breakdown?by=country&${q}`),
        json(`${base}/breakdown?by=file&${q}`),
        json(`${base}/uniques?${q}`),
        models ? json(`${base}/uncounted?days=${UNCOUNTED_DAYS}`) : Promise.resolve(null),
      ]);
      if (call !== calls) return;  // a later refresh (another range, another token) is under way
      const failed = asked.filter((a) => a.status === "rejected").map((a) => a.reason);
      const refused = failed.find((err) => err.status !== 404);
      if (refused) { closed(refused); return; }
      // 404: no download counted under this id; a model may still have requests that did not count.
      const nothingCounted = failed.length > 0;
      if (nothingCounted && (!models || asked[5].status === "rejected")) { closed(failed[0]); return; }
      lock.hidden = true;
      body.hidden = false;
      range.textContent = `${Fmt.dayLong(start)} – ${Fmt.dayLong(end)}`;
      counted.hidden = nothingCounted;
      note.hidden = !nothingCounted;
      note.textContent = nothingCounted ? "No download of this repo has been counted. The requests below were " +
        "download candidates that its library's rule did not count." : "";
      if (!nothingCounted) {
        const [classCsv, client, country, file, uniques] = asked.map((a) => a.value);
        drawCounted(start, end, classCsv, { client, country, file }, uniques);
      }
      if (models) drawUncounted(asked[5].value);
    }

    return { section, refresh };
  }

  return { org, repo, csvRows };
})();
