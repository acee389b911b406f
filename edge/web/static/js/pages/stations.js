// Bin stations: fill level of each bin, drop windows, station statistics, open alerts of the station.
import { api, badge, clear, debounce, errorBox, fmtAge, h, kindName, live, t } from "../core.js";

function fillBar(pct) {
  const v = typeof pct === "number" ? Math.max(0, Math.min(100, pct)) : null;
  const cls = v === null ? "" : v >= 90 ? "bad" : v >= 70 ? "warn" : "ok";
  const bar = h("div", { class: `fill ${cls}`, role: "meter", "aria-valuemin": "0", "aria-valuemax": "100",
    "aria-valuenow": v === null ? "" : String(v) }, h("span", { class: "level" }));
  bar.firstChild.style.width = `${v ?? 0}%`;
  return h("div", { class: "fill-wrap" }, bar, h("span", { class: "pct", text: v === null ? "-" : `${Math.round(v)} %` }));
}

function hourChart(perHour) {
  const max = Math.max(1, ...perHour);
  const chart = h("div", { class: "hours", title: t("stations.visits_per_hour") });
  perHour.forEach((n, hr) => {
    const col = h("div", { class: "hour", title: `${hr}:00 · ${n}` }, h("span"));
    col.firstChild.style.height = `${Math.round((n / max) * 100)}%`;
    chart.append(col);
  });
  return chart;
}

function stats(s) {
  if (!s) return h("p", { class: "muted", i18n: "stations.no_stats" });
  const rows = [];
  const add = (key, v) => { if (v !== undefined && v !== null) rows.push(h("div", { class: "kv" }, h("span", { class: "k", text: t(key) }), h("span", { class: "v", text: String(v) }))); };
  add("stations.visits", s.visits);
  add("stations.drops_in", s.drops_in_window);
  add("stations.drops_out", s.drops_outside_window ?? s.off_hours_drops);
  add("stations.litter", s.litter);
  add("stations.overflow_min", s.overflow_minutes ?? s.minutes_overflowing);
  add("stations.overflow_episodes", s.overflow_episodes ?? s.full_alerts);
  return h("div", { class: "stats" },
    h("p", { class: "muted", text: t(s.source === "events" ? "stations.from_events" : "stations.from_analytics") }),
    rows, Array.isArray(s.visits_per_hour) && s.visits_per_hour.some((n) => n > 0) ? hourChart(s.visits_per_hour) : null);
}

export async function render(view) {
  const box = h("div", { class: "grid wide" });
  view.append(h("h2", { i18n: "nav.stations" }), box);

  async function load() {
    let d;
    try { d = await api("/api/stations"); } catch (err) { clear(box).append(errorBox(err)); return; }
    clear(box);
    if (!d.stations.length) { box.append(h("p", { class: "muted", i18n: "stations.none" })); return; }
    for (const st of d.stations) {
      box.append(h("section", { class: "card station", dataset: { id: st.id } },
        h("h3", { text: st.name || st.id }),
        h("p", { class: "muted", text: `${t("stations.windows")}: ${st.windows.join(", ") || "-"}` }),
        h("div", { class: "bins" }, st.bins.map((b) => h("div", { class: "bin" },
          h("div", {}, h("strong", { text: b.id }), " ", b.full ? badge(t("stations.full"), "bad") : null,
            h("span", { class: "muted", text: b.ts_ms ? ` · ${fmtAge(b.ts_ms)}` : ` · ${t("stations.no_reading")}` })),
          fillBar(b.fill_pct)))),
        st.alerts.length ? h("ul", { class: "station-alerts" }, st.alerts.map((a) => h("li", {},
          h("a", { href: `#/alerts/${a.id}`, text: `${kindName(a.kind)} · ${a.title}` })))) : null,
        stats(st.stats),
        st.stats_error ? h("p", { class: "muted", text: st.stats_error }) : null));
    }
  }
  await load();
  const refresh = debounce(load, 1000);
  const off = live.on("event", (e) => { if (/^(bin|waste)\.|^alert$/.test(e.kind)) refresh(); });
  const timer = setInterval(load, 60000);
  return () => { off(); clearInterval(timer); };
}
