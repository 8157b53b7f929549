// The API token for private analytics: kept in this tab only (sessionStorage), sent only
// with requests for private data, checked against /api/whoami when it is given.
"use strict";

const Access = (() => {
  const KEY = "hubcounter.token";
  const listeners = [];
  let info = null;  // what /api/whoami said about the current token

  const token = () => sessionStorage.getItem(KEY) || "";

  /** Headers for a request for private data: the bearer token, when there is one. */
  function headers() {
    const t = token();
    return t ? { Authorization: `Bearer ${t}` } : {};
  }

  function describe() {
    if (!token()) return "No token: public counts only.";
    if (!info) return "Checking the token…";
    if (info.error) return `Refused: ${info.error}`;
    const until = info.expires ? `until ${Fmt.dayLong(info.expires.slice(0, 10))}` : "without expiry";
    return `Token "${info.name}" covers ${info.orgs.join(", ")}, ${until}.`;
  }

  function render() {
    const button = document.getElementById("token-button");
    button.dataset.state = !token() ? "none" : info && !info.error ? "ok" : "refused";
    button.textContent = !token() ? "Token" : info && !info.error ? `Token · ${info.orgs.join(", ")}` : "Token";
    document.getElementById("token-status").textContent = describe();
  }

  async function check() {
    info = null;
    render();
    if (token()) {
      try {
        info = await Views.getJson("/api/whoami", { auth: true });
      } catch (err) {
        info = { error: err.message };
      }
    }
    render();
    listeners.forEach((fn) => fn());
  }

  function set(value) {
    if (value) sessionStorage.setItem(KEY, value); else sessionStorage.removeItem(KEY);
    return check();
  }

  function start() {
    const button = document.getElementById("token-button");
    const panel = document.getElementById("token-panel");
    const input = document.getElementById("token-input");
    button.addEventListener("click", () => {
      panel.hidden = !panel.hidden;
      button.setAttribute("aria-expanded", String(!panel.hidden));
      if (!panel.hidden) input.focus();
    });
    const close = () => { panel.hidden = true; button.setAttribute("aria-expanded", "false"); };
    panel.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const value = input.value.trim();
      input.value = "";
      await set(value);
      if (info && !info.error) close();  // accepted: out of the way; refused: the panel says why
    });
    document.getElementById("token-forget").addEventListener("click", () => { input.value = ""; set(""); });
    check();
  }

  /** Run ``fn`` whenever the token changes (the open view refreshes its private parts). */
  const onChange = (fn) => listeners.push(fn);

  return { headers, start, onChange, token };
})();
