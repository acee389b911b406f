// Dashboard: gateway, uplink and outbox, pushes, open alerts, cameras with their last snapshot, devices.
import { api, clear, debounce, errorBox, fmtAge, fmtTime, h, live, stateBadge, t, table } from "../core.js";

function card(title, ...rows) {
  return h("section", { class: "card" }, h("h3", { text: title }), ...rows);
}

function kv(label, value) {
  return h("div", { class: "kv" }, h("span", { class: "k", text: label }),
    value instanceof Node ? value : h("span", { class: "v", text: value ?? "-" }));
}

function cameraTile(cam) {
  const img = h("img", { alt: cam.name || cam.id, loading: "lazy" });
  const missing = h("div", { class: "no-picture", i18n: "dash.no_picture" });
  missing.hidden = true;
  img.addEventListener("error", () => { img.hidden = true; missing.hidden = false; });
  img.addEventListener("load", () => { img.hidden = false; missing.hidden = true; });
  img.src = `/api/cameras/${encodeURIComponent(cam.id)}/snapshot.jpg?t=${Date.now()}`;
  const st = cam.state || "unknown";
  return h("figure", { class: "camera" }, img, missing,
    h("figcaption", {}, h("strong", { text: cam.name || cam.id }), " ", stateBadge(st),
      cam.fps_out !== undefined ? h("span", { class: "muted", text: ` ${cam.fps_out} fps` }) : null));
}

export async function render(view) {
  const body = h("div", { class: "grid" });
  const camBox = h("div", { class: "cameras" });
  const devBox = h("div");
  const compBox = h("div");
  view.append(h("h2", { i18n: "nav.dashboard" }), body,
    h("h3", { i18n: "dash.cameras" }), camBox,
    h("h3", { i18n: "dash.devices" }), devBox,
    h("details", { class: "components" }, h("summary", { i18n: "dash.components" }), compBox));

  async function load(withCameras) {
    let d;
    try { d = await api("/api/dashboard"); } catch (err) { clear(body).append(errorBox(err)); return; }
    const gw = d.gateway;
    const up = d.uplink;
    clear(body).append(
      card(t("dash.gateway"),
        kv(t("dash.name"), gw.name || gw.id), kv(t("dash.id"), gw.id), kv(t("dash.version"), gw.version),
        kv(t("dash.uptime"), gw.started_ms ? fmtAge(gw.started_ms, d.now_ms) : "-"),
        kv(t("dash.health"), stateBadge(gw.healthy ? "running" : "failed"))),
      card(t("dash.uplink"),
        kv(t("dash.uplink_state"), up ? stateBadge(up.connected === true ? "online" : up.connected === false
          ? "offline" : up.state) : h("span", { class: "muted", i18n: d.uplink_configured ? "dash.uplink_missing"
          : "dash.uplink_off" })),
        kv(t("dash.outbox"), String(d.outbox.depth)),
        kv(t("dash.outbox_age"), d.outbox.oldest_age_s ? t("age.s", { n: d.outbox.oldest_age_s }) : "-")),
      card(t("dash.push"),
        d.notify ? [kv(t("push.pending"), String(d.notify.pending)), kv(t("push.sent"), String(d.notify.sent)),
          kv(t("push.failed"), String(d.notify.failed))] : h("p", { class: "muted", i18n: "dash.push_off" })),
      card(t("dash.alerts"),
        h("a", { href: "#/alerts", class: `big ${d.alerts.open ? "bad" : "ok"}`, text: String(d.alerts.open) }),
        kv(t("severity.critical"), String(d.alerts.critical))));
    if (withCameras) {
      clear(camBox);
      if (!d.cameras.length) camBox.append(h("p", { class: "muted", i18n: "dash.no_cameras" }));
      d.cameras.forEach((c) => camBox.append(cameraTile(c)));
    }
    clear(devBox).append(d.devices.length ? table(
      [t("col.device"), t("col.type"), t("col.state"), t("col.last_seen")],
      d.devices.map((x) => h("tr", {}, h("td", { text: x.id }), h("td", { text: x.type }),
        h("td", {}, stateBadge(x.state)), h("td", { text: x.last_seen_ms ? fmtTime(x.last_seen_ms) : "-" }))))
      : h("p", { class: "muted", i18n: "dash.no_devices" }));
    clear(compBox).append(table([t("col.component"), t("col.state"), t("col.restarts"), t("col.last_error")],
      Object.entries(d.components).map(([n, c]) => h("tr", {}, h("td", { text: n }),
        h("td", {}, stateBadge(c.state)), h("td", { text: String(c.restarts ?? 0) }),
        h("td", { class: "muted", text: c.last_error || "" })))));
  }

  await load(true);
  const refresh = debounce(() => load(false), 500);
  const off = live.on("event", (e) => {
    if (/^(device|camera|gateway)\.|^alert$/.test(e.kind)) refresh();
  });
  const timer = setInterval(() => load(false), 15000);
  const camTimer = setInterval(() => load(true), 60000);
  return () => { off(); clearInterval(timer); clearInterval(camTimer); };
}
