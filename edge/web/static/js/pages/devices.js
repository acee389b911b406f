// Device tests (installer): poll a sensor now, show the last frames/events of a reader, capture the
// "clear lane" reference of a fire-lane camera, send a test push to each channel.
import { api, clear, errorBox, fmtTime, h, stateBadge, t, table, toast } from "../core.js";

function resultBox() { return h("pre", { class: "result", hidden: true }); }

function show(box, data) { box.hidden = false; box.textContent = typeof data === "string" ? data : JSON.stringify(data, null, 2); }

export async function render(view) {
  let d;
  try { d = await api("/api/devices"); } catch (err) { view.append(errorBox(err)); return null; }
  view.append(h("h2", { i18n: "nav.devices" }));

  const rows = d.devices.map((dev) => {
    const out = resultBox();
    const probe = h("button", { type: "button", class: "primary", i18n: "devices.probe", disabled: !dev.probe,
      title: dev.probe ? "" : t("devices.no_probe"), dataset: { device: dev.id } });
    probe.addEventListener("click", async () => {
      probe.disabled = true; show(out, t("devices.probing"));
      try { show(out, await api(`/api/devices/${encodeURIComponent(dev.id)}/probe`, { method: "POST", body: {} })); }
      catch (err) { show(out, err.message); } finally { probe.disabled = false; }
    });
    const recent = h("button", { type: "button", i18n: "devices.recent" });
    recent.addEventListener("click", async () => {
      try {
        const r = await api(`/api/devices/${encodeURIComponent(dev.id)}/events`);
        show(out, r.events.length ? r.events.map((e) => `${fmtTime(e.ts_ms)}  ${e.kind}  ${JSON.stringify(e.payload)}`).join("\n")
          : t("devices.no_events"));
      } catch (err) { show(out, err.message); }
    });
    return h("tr", {}, h("td", { text: dev.id }), h("td", { text: dev.type }), h("td", { text: dev.port || "" }),
      h("td", { text: (dev.bins || []).join(", ") }), h("td", {}, stateBadge(dev.state)),
      h("td", {}, h("div", { class: "buttons" }, probe, recent), out));
  });
  view.append(h("h3", { i18n: "dash.devices" }), d.devices.length
    ? table([t("col.device"), t("col.type"), t("col.port"), t("col.bins"), t("col.state"), ""], rows)
    : h("p", { class: "muted", i18n: "dash.no_devices" }));

  view.append(h("h3", { i18n: "devices.lanes" }), h("p", { class: "hint", i18n: "devices.lanes_hint" }));
  const lanes = h("div", { class: "cameras" });
  for (const z of d.fire_lanes) {
    const out = resultBox();
    const btn = h("button", { type: "button", class: "primary", i18n: "devices.capture", disabled: !d.reference_capture,
      title: d.reference_capture ? "" : t("devices.no_capture"), dataset: { zone: z.id } });
    btn.addEventListener("click", async () => {
      if (!confirm(t("devices.capture_confirm", { zone: z.name || z.id }))) return;
      try { show(out, await api(`/api/zones/${encodeURIComponent(z.id)}/reference`, { method: "POST", body: {} })); toast(t("devices.captured"), "ok"); }
      catch (err) { show(out, err.message); }
    });
    const img = h("img", { alt: z.name || z.id, loading: "lazy", src: `/api/cameras/${encodeURIComponent(z.camera)}/snapshot.jpg?t=${Date.now()}` });
    img.addEventListener("error", () => { img.hidden = true; });
    lanes.append(h("figure", { class: "camera" }, img,
      h("figcaption", {}, h("strong", { text: z.name || z.id }), ` · ${z.camera} `, btn, out)));
  }
  if (!d.fire_lanes.length) lanes.append(h("p", { class: "muted", i18n: "devices.no_lanes" }));
  view.append(lanes);

  const pushBox = h("div");
  view.append(h("h3", { i18n: "devices.push" }), pushBox);
  async function loadPush() {
    let n;
    try { n = await api("/api/notify"); } catch (err) { clear(pushBox).append(errorBox(err)); return; }
    clear(pushBox);
    if (!n.channels.length) { pushBox.append(h("p", { class: "muted", i18n: "dash.push_off" })); return; }
    pushBox.append(table([t("col.channel"), t("col.type"), t("col.url"), ""], n.channels.map((c) => {
      const b = h("button", { type: "button", i18n: "devices.test_push", dataset: { channel: c.id } });
      b.addEventListener("click", async () => {
        try { await api(`/api/notify/${encodeURIComponent(c.id)}/test`, { method: "POST", body: {} }); toast(t("devices.push_ok"), "ok"); }
        catch (err) { toast(err.message, "bad"); }
        loadPush();
      });
      return h("tr", {}, h("td", { text: c.id }), h("td", { text: c.type }), h("td", { class: "muted", text: c.url }), h("td", {}, b));
    })));
    if (n.recent && n.recent.length) {
      pushBox.append(h("h4", { i18n: "devices.push_recent" }), table(
        [t("col.time"), t("col.channel"), t("col.alert"), t("col.state"), t("col.attempts"), t("col.last_error")],
        n.recent.map((r) => h("tr", {}, h("td", { text: fmtTime(r.created_ms) }), h("td", { text: r.channel }),
          h("td", {}, h("a", { href: `#/alerts/${r.alert_id}`, text: r.title || r.alert_id })),
          h("td", {}, stateBadge(r.state === "pending" ? "restarting" : r.state === "sent" ? "running" : "failed"), ` ${r.purpose}`),
          h("td", { text: String(r.attempts) }), h("td", { class: "muted", text: r.last_error || "" })))));
    }
  }
  await loadPush();
  return null;
}
