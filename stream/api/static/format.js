// Number, date and DOM helpers shared by the dashboard's scripts.
"use strict";

const Fmt = (() => {
  const whole = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const oneDecimal = new Intl.NumberFormat("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

  /** 1234567 -> "1,234,567" (counts are shown in full, with separators). */
  function count(n) {
    return n === null || n === undefined || Number.isNaN(n) ? "—" : whole.format(n);
  }

  /** A rate: one decimal under 10/s, whole numbers above. */
  function rate(n) {
    if (n === null || n === undefined || Number.isNaN(n)) return "—";
    return Math.abs(n) < 10 ? oneDecimal.format(n) : whole.format(n);
  }

  /** Axis labels: 1200 -> "1.2K". */
  function short(n) {
    return Math.abs(n) < 1000 ? whole.format(n) : compact.format(n);
  }

  function percent(part, total) {
    if (!total) return "0%";
    const p = (100 * part) / total;
    return p > 0 && p < 0.1 ? "<0.1%" : `${oneDecimal.format(p)}%`;
  }

  /** "2026-11-22" -> "Nov 22" (UTC calendar day, no time zone shift). */
  function day(iso) {
    const [, m, d] = iso.split("-").map(Number);
    return `${MONTHS[m - 1]} ${d}`;
  }

  function dayLong(iso) {
    const [y] = iso.split("-");
    return `${day(iso)}, ${y}`;
  }

  /** Epoch ms -> "14:03:07" in UTC. */
  function clock(ms) {
    return new Date(ms).toISOString().slice(11, 19);
  }

  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    return `${Math.round(s / 3600)} h ago`;
  }

  function duration(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min`;
    const h = Math.floor(s / 3600);
    return h < 48 ? `${h} h ${Math.floor((s % 3600) / 60)} min` : `${Math.floor(h / 24)} days`;
  }

  /** Days between two ISO dates, inclusive, as ISO strings. */
  function daysBetween(startIso, endIso) {
    const out = [];
    const end = Date.parse(`${endIso}T00:00:00Z`);
    for (let t = Date.parse(`${startIso}T00:00:00Z`); t <= end; t += 86400000) {
      out.push(new Date(t).toISOString().slice(0, 10));
    }
    return out;
  }

  function todayUtc() {
    return new Date().toISOString().slice(0, 10);
  }

  function shiftDay(iso, days) {
    return new Date(Date.parse(`${iso}T00:00:00Z`) + days * 86400000).toISOString().slice(0, 10);
  }

  return { count, rate, short, percent, day, dayLong, clock, ago, duration, daysBetween, todayUtc, shiftDay };
})();

/** Build an HTML element: h("a", {href: "#"}, "text", child). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style") Object.assign(el.style, v);  // through the CSSOM: the page's CSP refuses style attributes
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}
