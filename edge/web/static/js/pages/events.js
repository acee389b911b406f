// Events log: search by text / kind / source, page back in time, optionally follow live.
import { api, clear, errorBox, fmtTime, h, kindName, live, severityBadge, t } from "../core.js";

function summary(p) {
  const s = JSON.stringify(p);
  return s.length > 160 ? `${s.slice(0, 157)}…` : s;
}

function row(e, fresh) {
  const detail = h("pre", { class: "payload", text: JSON.stringify(e.payload, null, 2) });
  detail.hidden = true;
  const tr = h("tr", { class: fresh ? "flash" : "", dataset: { id: e.id, kind: e.kind } },
    h("td", { class: "nowrap", text: fmtTime(e.ts_ms) }),
    h("td", {}, h("code", { text: e.kind }), h("div", { class: "muted", text: kindName(e.kind) === e.kind ? "" : kindName(e.kind) })),
    h("td", { text: e.source }), h("td", {}, severityBadge(e.severity)),
    h("td", { class: "payload-cell" }, h("span", { text: summary(e.payload) }), detail));
  tr.addEventListener("click", () => { detail.hidden = !detail.hidden; });
  return tr;
}

export async function render(view) {
  const text = h("input", { id: "ev-text", type: "search", placeholder: t("events.text") });
  const kind = h("input", { id: "ev-kind", type: "search", placeholder: t("events.kind") });
  const source = h("input", { id: "ev-source", type: "search", placeholder: t("events.source") });
  const follow = h("input", { id: "ev-follow", type: "checkbox", checked: true });
  const tbody = h("tbody");
  const msg = h("div");
  const more = h("button", { type: "button", i18n: "events.more" });
  let last = null;

  const form = h("form", { class: "filters", onsubmit: (ev) => { ev.preventDefault(); load(true); } },
    text, kind, source, h("button", { type: "submit", class: "primary", i18n: "btn.search" }),
    h("label", { class: "inline" }, follow, " ", t("events.follow")));
  view.append(h("h2", { i18n: "nav.events" }), form, msg,
    h("div", { class: "table-wrap" }, h("table", { class: "events" },
      h("thead", {}, h("tr", {}, [t("col.time"), t("col.kind"), t("col.source"), t("col.severity"), t("col.payload")]
        .map((x) => h("th", { text: x })))), tbody)), more);

  function query(before) {
    const q = new URLSearchParams({ limit: "100" });
    if (text.value.trim()) q.set("text", text.value.trim());
    if (kind.value.trim()) q.set("kind", kind.value.trim());
    if (source.value.trim()) q.set("source", source.value.trim());
    if (before) q.set("before", before);
    return q;
  }

  async function load(reset) {
    clear(msg);
    if (reset) { clear(tbody); last = null; }
    let d;
    try { d = await api(`/api/events?${query(last)}`); } catch (err) { msg.append(errorBox(err)); return; }
    d.events.forEach((e) => tbody.append(row(e, false)));
    if (d.events.length) last = d.events[d.events.length - 1].id;
    more.hidden = d.events.length < 100;
  }
  more.addEventListener("click", () => load(false));

  function matches(e) {
    const k = kind.value.trim();
    if (k && !(k.endsWith(".*") ? e.kind.startsWith(k.slice(0, -1)) : e.kind === k)) return false;
    if (source.value.trim() && e.source !== source.value.trim()) return false;
    if (text.value.trim() && !JSON.stringify(e).includes(text.value.trim())) return false;
    return true;
  }

  await load(true);
  return live.on("event", (e) => {
    if (!follow.checked || !matches(e)) return;
    tbody.prepend(row(e, true));
    while (tbody.children.length > 500) tbody.lastChild.remove();
  });
}
