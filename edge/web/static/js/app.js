// Console shell: who is logged in, navigation by URL hash (#/alerts/ID), language switch, live status.
import { api, applyI18n, clear, errorBox, h, live, loadLang, preferredLang, state, t } from "./core.js";
import * as dashboard from "./pages/dashboard.js";
import * as alerts from "./pages/alerts.js";
import * as events from "./pages/events.js";
import * as stations from "./pages/stations.js";
import * as zones from "./pages/zones.js";
import * as devices from "./pages/devices.js";
import * as settings from "./pages/settings.js";

const PAGES = [
  { id: "dashboard", page: dashboard, role: "manager" },
  { id: "alerts", page: alerts, role: "manager" },
  { id: "events", page: events, role: "manager" },
  { id: "stations", page: stations, role: "manager" },
  { id: "zones", page: zones, role: "installer" },
  { id: "devices", page: devices, role: "installer" },
  { id: "settings", page: settings, role: "manager" },
];

let cleanup = null;

function allowed(p) { return p.role === "manager" || state.me.role === "installer"; }

function buildNav() {
  const nav = clear(document.getElementById("nav"));
  for (const p of PAGES.filter(allowed)) {
    nav.append(h("a", { href: `#/${p.id}`, id: `nav-${p.id}`, i18n: `nav.${p.id}` }));
  }
}

async function route() {
  const parts = (location.hash.replace(/^#\/?/, "") || "dashboard").split("/").map(decodeURIComponent);
  const entry = PAGES.find((p) => p.id === parts[0] && allowed(p)) || PAGES[0];
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.id === `nav-${entry.id}`));
  if (cleanup) { try { cleanup(); } catch (e) { /* page already gone */ } cleanup = null; }
  const view = clear(document.getElementById("view"));
  document.title = `${t(`nav.${entry.id}`)} · ${state.me.gateway}`;
  try {
    cleanup = (await entry.page.render(view, parts.slice(1))) || null;
  } catch (err) {
    view.append(errorBox(err));
  }
}

async function boot() {
  try {
    state.me = await api("/api/me");
  } catch (err) {
    return; // api() already sent us to the login page
  }
  state.tz = state.me.timezone || undefined;
  await loadLang(preferredLang(state.me.language));
  document.getElementById("gw-name").textContent = state.me.gateway;
  document.getElementById("who").textContent = `${state.me.name} · ${t(`role.${state.me.role}`)}`;
  const langBtn = document.getElementById("lang");
  langBtn.textContent = state.lang === "zh" ? "EN" : "中文";
  langBtn.addEventListener("click", async () => {
    localStorage.setItem("edge.lang", state.lang === "zh" ? "en" : "zh");
    location.reload();
  });
  document.getElementById("logout").addEventListener("click", async () => {
    try { await api("/api/logout", { method: "POST", body: {} }); } finally { location.href = "/login"; }
  });
  const dot = document.getElementById("live");
  live.on("status", (ok) => {
    dot.className = ok ? "live on" : "live off";
    dot.title = t(ok ? "live.on" : "live.off");
  });
  live.connect();
  buildNav();
  applyI18n();
  window.addEventListener("hashchange", route);
  await route();
  document.body.dataset.ready = "1";
}

boot();
