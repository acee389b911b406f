// Alerts: filter by state/kind/zone, live list, detail with evidence, history, acknowledge and resolve.
import { api, clear, debounce, put, errorBox, fmtAge, fmtTime, h, kindName, live, severityBadge, stateBadge, t, table, toast }
  from "../core.js";

const KINDS = ["fire_lane.blocked", "bin.full", "bin.temperature", "waste.litter", "waste.off_hours_drop",
  "waste.overflow", "door.forced", "door.held_open", "door.fire_alarm", "reader.tamper", "camera.offline",
  "device.offline", "gateway.storage_eviction"];
const STATES = ["active", "", "raised", "updated", "acknowledged", "resolved", "cleared"];

function select(id, options, value) {
  return h("select", { id }, options.map(([v, label]) => h("option", { value: v, text: label, selected: v === value })));
}

export async function render(view, params) {
  if (params[0]) return renderDetail(view, params[0]);
  const saved = JSON.parse(sessionStorage.getItem("edge.alerts.filter") || "{}");
  const fState = select("f-state", STATES.map((s) => [s, s ? t(`filter.${s}`) : t("filter.all")]), saved.state ?? "active");
  const fKind = select("f-kind", [["", t("filter.all_kinds")], ...KINDS.map((k) => [k, kindName(k)])], saved.kind || "");
  const fZone = h("input", { id: "f-zone", type: "search", value: saved.zone || "", "data-i18n-ph": "filter.zone",
    placeholder: t("filter.zone") });
  const list = h("div", { id: "alert-list", class: "alert-list" });
  view.append(h("h2", { i18n: "nav.alerts" }),
    h("div", { class: "filters" }, fState, fKind, fZone), list);

  async function load(flashId) {
    const q = new URLSearchParams();
    if (fState.value) q.set("state", fState.value);
    if (fKind.value) q.set("kind", fKind.value);
    if (fZone.value.trim()) q.set("zone", fZone.value.trim());
    sessionStorage.setItem("edge.alerts.filter", JSON.stringify({ state: fState.value, kind: fKind.value,
      zone: fZone.value.trim() }));
    let data;
    try { data = await api(`/api/alerts?${q}`); } catch (err) { clear(list).append(errorBox(err)); return; }
    clear(list);
    if (!data.alerts.length) { list.append(h("p", { class: "muted", i18n: "alerts.none" })); return; }
    for (const a of data.alerts) list.append(alertRow(a, a.id === flashId));
  }

  [fState, fKind].forEach((el) => el.addEventListener("change", () => load()));
  fZone.addEventListener("input", debounce(() => load(), 400));
  await load();
  const reload = debounce((id) => load(id), 300);
  const offAlert = live.on("alert", (e) => {
    reload(e.payload.alert_id);
    if (e.payload.state === "raised") toast(`${kindName(e.payload.alert_kind)}: ${e.payload.title}`, "bad");
  });
  const offResync = live.on("resync", () => reload());
  return () => { offAlert(); offResync(); };
}

function alertRow(a, flash) {
  return h("a", { class: `alert-row sev-${a.severity}${flash ? " flash" : ""}`, href: `#/alerts/${a.id}`,
    dataset: { id: a.id, state: a.state } },
    h("div", { class: "line1" }, severityBadge(a.severity), " ", h("strong", { text: kindName(a.kind) }), " ",
      stateBadge(a.state)),
    h("div", { class: "title", text: a.title }),
    h("div", { class: "muted" }, `${a.place || a.zone || a.source} · ${fmtTime(a.raised_ms)} (${fmtAge(a.raised_ms)})`,
      a.evidence && a.evidence.length ? ` · ${t("alerts.pictures", { n: a.evidence.length })}` : ""));
}

function lightbox(src, alt) {
  const box = h("div", { class: "lightbox", role: "dialog", "aria-label": alt, tabindex: "-1" },
    h("img", { src, alt }), h("button", { class: "close", type: "button", text: "×", "aria-label": t("btn.close") }));
  const close = () => { box.remove(); document.removeEventListener("keydown", onKey); };
  const onKey = (e) => { if (e.key === "Escape") close(); };
  box.addEventListener("click", close);
  document.addEventListener("keydown", onKey);
  document.body.append(box);
  box.focus();
}

async function renderDetail(view, id) {
  const box = h("div", { id: "alert-detail" });
  view.append(h("p", {}, h("a", { href: "#/alerts", i18n: "alerts.back" })), box);

  async function load() {
    let d;
    try { d = await api(`/api/alerts/${encodeURIComponent(id)}`); } catch (err) { clear(box).append(errorBox(err)); return; }
    const a = d.alert;
    const active = ["raised", "updated", "acknowledged"].includes(a.state);
    const note = h("textarea", { id: "note", rows: 2, maxlength: 1000, placeholder: t("alerts.note_ph") });
    const msg = h("div");
    async function act(action) {
      clear(msg);
      if (action === "resolve" && !note.value.trim()) { msg.append(errorBox(new Error(t("alerts.note_needed")))); return; }
      try {
        await api(`/api/alerts/${encodeURIComponent(id)}/${action}`, { method: "POST", body: { note: note.value } });
        toast(t(action === "ack" ? "alerts.acked" : "alerts.resolved"), "ok");
        await load();
      } catch (err) { msg.append(errorBox(err)); }
    }
    const evidence = d.evidence.map((m) => m.missing
      ? h("div", { class: "no-picture", i18n: "alerts.evidence_gone" })
      : h("button", { class: "thumb", type: "button", onclick: () => lightbox(`/api/media/${encodeURIComponent(m.id)}`, a.title) },
        h("img", { src: `/api/media/${encodeURIComponent(m.id)}`, alt: t("alerts.evidence"), class: "evidence" })));
    put(clear(box),
      h("h2", {}, severityBadge(a.severity), " ", kindName(a.kind), " ", stateBadge(a.state)),
      h("p", { class: "title", text: a.title }),
      h("div", { class: "facts" },
        fact(t("alerts.place"), a.place || a.zone || "-"), fact(t("alerts.source"), a.source),
        fact(t("alerts.raised"), `${fmtTime(a.raised_ms)} (${fmtAge(a.raised_ms)})`),
        fact(t("alerts.updated"), `${fmtTime(a.updated_ms)} · ${t("alerts.updates", { n: a.updates })}`),
        a.acked_by ? fact(t("alerts.acked_by"), `${a.acked_by} · ${fmtTime(a.acked_ms)}`) : null,
        a.resolved_ms ? fact(t(a.state === "cleared" ? "alerts.cleared_at" : "alerts.resolved_at"), fmtTime(a.resolved_ms)) : null,
        a.note ? fact(t("alerts.note"), a.note) : null),
      h("h3", { i18n: "alerts.evidence" }),
      evidence.length ? h("div", { class: "evidence-row" }, evidence) : h("p", { class: "muted", i18n: "alerts.no_evidence" }),
      active ? h("div", { class: "actions" }, note,
        h("div", { class: "buttons" },
          a.state !== "acknowledged" ? h("button", { id: "btn-ack", class: "primary", type: "button", i18n: "btn.ack",
            onclick: () => act("ack") }) : null,
          h("button", { id: "btn-resolve", type: "button", i18n: "btn.resolve", onclick: () => act("resolve") })), msg) : null,
      h("h3", { i18n: "alerts.history" }),
      table([t("col.time"), t("col.action"), t("col.actor"), t("col.note")], d.history.map((x) => h("tr", {},
        h("td", { text: fmtTime(x.ts_ms) }), h("td", {}, stateBadge(x.action)), h("td", { text: x.actor || "-" }),
        h("td", { text: x.note || "" })))));
  }

  function fact(k, v) { return h("div", { class: "kv" }, h("span", { class: "k", text: k }), h("span", { class: "v", text: v })); }

  await load();
  const off = live.on("alert", (e) => { if (e.payload.alert_id === id) load(); });
  return off;
}
