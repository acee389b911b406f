// Shared helpers of the console: API calls (with the CSRF header), texts (zh/en), DOM building, live updates.
// Plain ES modules, no build step. Text from the gateway is always set with textContent, never as HTML.

export const state = { me: null, lang: "zh", dict: {}, fallback: {}, tz: undefined };

export class ApiError extends Error {
  constructor(status, message, data) { super(message); this.status = status; this.data = data || {}; }
}

// ---- texts --------------------------------------------------------------------------------------------------
async function fetchDict(lang) {
  const r = await fetch(`/static/i18n/${lang}.json`, { credentials: "same-origin" });
  return r.ok ? r.json() : {};
}

export async function loadLang(lang) {
  state.lang = lang === "en" ? "en" : "zh";
  [state.dict, state.fallback] = await Promise.all([fetchDict(state.lang), fetchDict("en")]);
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
}

export function t(key, params) {
  let s = state.dict[key] ?? state.fallback[key] ?? key;
  if (params) for (const [k, v] of Object.entries(params)) s = s.split(`{${k}}`).join(String(v));
  return s;
}

export function kindName(kind) {
  const s = t(`kind.${kind}`);
  return s === `kind.${kind}` ? kind : s;
}

export function applyI18n(root = document) {
  root.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
  root.querySelectorAll("[data-i18n-ph]").forEach((n) => { n.placeholder = t(n.dataset.i18nPh); });
  root.querySelectorAll("[data-i18n-title]").forEach((n) => { n.title = t(n.dataset.i18nTitle); });
}

export function preferredLang(serverDefault) {
  const saved = localStorage.getItem("edge.lang");
  return saved === "en" || saved === "zh" ? saved : serverDefault || "zh";
}

// ---- API ----------------------------------------------------------------------------------------------------
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.me && state.me.csrf) headers["X-CSRF-Token"] = state.me.csrf;
  const r = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const isJson = (r.headers.get("content-type") || "").includes("json");
  const data = isJson ? await r.json() : null;
  if (r.status === 401 && !path.startsWith("/api/login")) {
    location.href = "/login" + location.hash;
    throw new ApiError(401, t("err.login_required"), data);
  }
  if (!r.ok) throw new ApiError(r.status, (data && data.error) || `${r.status} ${r.statusText}`, data);
  return data;
}

// ---- DOM ----------------------------------------------------------------------------------------------------
// h("div", {class: "x", text: "..", onclick: fn, dataset: {...}, attrs}, child, "text", ...)
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "i18n") { el.dataset.i18n = v; el.textContent = t(v); }
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) { while (el.firstChild) el.firstChild.remove(); return el; }

// el.append() would turn a null child into the text "null"; conditional children go through put().
export function put(el, ...kids) {
  el.append(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false));
  return el;
}

export function badge(text, kind) { return h("span", { class: `badge ${kind || ""}`, text }); }

export function stateBadge(st) {
  const cls = { raised: "bad", updated: "bad", acknowledged: "warn", resolved: "ok", cleared: "ok",
    online: "ok", running: "ok", offline: "bad", restarting: "warn", failed: "bad", stopped: "warn" }[st] || "";
  const label = t(`state.${st}`);
  return badge(label === `state.${st}` ? st : label, cls);
}

export function severityBadge(sev) {
  return badge(t(`severity.${sev}`), { critical: "bad", warning: "warn", info: "" }[sev]);
}

export function table(headers, rows) {
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("thead", {}, h("tr", {}, headers.map((x) => h("th", { text: x })))),
      h("tbody", {}, rows)));
}

export function errorBox(err) {
  const box = h("div", { class: "error", role: "alert" }, h("strong", { text: err.message || String(err) }));
  const problems = err.data && err.data.problems;
  if (problems && problems.length) box.append(h("ul", {}, problems.map((p) => h("li", { text: p }))));
  return box;
}

let toastTimer;
export function toast(message, kind = "") {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = message;
  el.className = `toast show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.className = "toast"; }, 4000);
}

// ---- time -----------------------------------------------------------------------------------------------------
export function fmtTime(ms) {
  if (!ms) return "-";
  try {
    return new Intl.DateTimeFormat(state.lang === "zh" ? "zh-CN" : "en-GB", {
      timeZone: state.tz, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    }).format(new Date(ms));
  } catch (e) { return new Date(ms).toISOString(); }
}

export function fmtAge(ms, now = Date.now()) {
  if (!ms) return "-";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return t("age.s", { n: s });
  if (s < 3600) return t("age.m", { n: Math.round(s / 60) });
  if (s < 86400) return t("age.h", { n: Math.round(s / 360) / 10 });
  return t("age.d", { n: Math.round(s / 8640) / 10 });
}

export function debounce(fn, ms) {
  let timer;
  return (...a) => { clearTimeout(timer); timer = setTimeout(() => fn(...a), ms); };
}

// ---- live updates (Server-Sent Events) -----------------------------------------------------------------------
const listeners = { alert: new Set(), event: new Set(), resync: new Set(), status: new Set() };
let source = null;

export const live = {
  connected: false,
  on(topic, fn) { listeners[topic].add(fn); return () => listeners[topic].delete(fn); },
  connect() {
    if (source) return;
    source = new EventSource("/api/stream?topics=alert,event");
    const setStatus = (ok) => { live.connected = ok; listeners.status.forEach((f) => f(ok)); };
    source.addEventListener("hello", () => setStatus(true));
    source.addEventListener("error", () => setStatus(false));
    for (const topic of ["alert", "event"]) {
      source.addEventListener(topic, (m) => {
        let data;
        try { data = JSON.parse(m.data); } catch (e) { return; }
        listeners[topic].forEach((f) => f(data));
        if (topic === "alert") listeners.event.forEach((f) => f(data));
      });
    }
    source.addEventListener("resync", () => listeners.resync.forEach((f) => f()));
  },
};
