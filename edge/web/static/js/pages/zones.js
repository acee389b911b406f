// Zone editor: draw and edit polygons on a fresh camera snapshot, pick the type, save to edge.yaml.
// Coordinates are fractions of the picture (0..1), the same as in the config file.
import { api, clear, errorBox, h, put, t, toast } from "../core.js";

const COLORS = { fire_lane: "#e5484d", bin_station: "#3e8ef7", keep_clear_ground: "#f5a524", mask: "#9aa0a6" };
const HIT_PX = 14;

export async function render(view, params) {
  let meta;
  try { meta = await api("/api/zones"); } catch (err) { view.append(errorBox(err)); return null; }
  if (!meta.cameras.length) { view.append(h("h2", { i18n: "nav.zones" }), h("p", { class: "muted", i18n: "zones.no_cameras" })); return null; }

  let camera = params[0] && meta.cameras.some((c) => c.id === params[0]) ? params[0] : meta.cameras[0].id;
  let edit = null; // {orig: id|null, points: [[x,y]...]}
  let drag = -1;

  const camSel = h("select", { id: "zone-camera" }, meta.cameras.map((c) =>
    h("option", { value: c.id, text: c.name ? `${c.name} (${c.id})` : c.id, selected: c.id === camera })));
  const img = h("img", { id: "zone-snapshot", alt: t("zones.snapshot") });
  const canvas = h("canvas", { id: "zone-canvas" });
  const noPic = h("div", { class: "no-picture overlay", i18n: "zones.no_snapshot" });
  noPic.hidden = true;
  const stage = h("div", { class: "stage" }, img, canvas, noPic);
  const list = h("ul", { class: "zone-list", id: "zone-list" });
  const msg = h("div", { id: "zone-msg" });

  const fId = h("input", { id: "zone-id", required: true, maxlength: 64, autocomplete: "off" });
  const fName = h("input", { id: "zone-name", maxlength: 100, autocomplete: "off" });
  const fType = h("select", { id: "zone-type" }, meta.types.map((x) => h("option", { value: x, text: t(`zone.${x}`) })));
  const fStation = h("select", { id: "zone-station" }, h("option", { value: "", text: "-" }),
    meta.stations.map((s) => h("option", { value: s.id, text: s.name || s.id })));
  const fDwell = h("input", { id: "zone-dwell", type: "number", min: "1", step: "1", inputmode: "numeric" });
  const pointsInfo = h("span", { class: "muted", id: "zone-points" });
  const saveBtn = h("button", { id: "zone-save", class: "primary", type: "submit", i18n: "btn.save" });
  const delBtn = h("button", { id: "zone-delete", type: "button", class: "danger", i18n: "btn.delete" });
  const form = h("form", { id: "zone-form", class: "stack" },
    h("label", {}, t("zones.id"), fId), h("label", {}, t("zones.name"), fName),
    h("label", {}, t("zones.type"), fType), h("label", {}, t("zones.station"), fStation),
    h("label", {}, t("zones.dwell"), fDwell),
    h("p", { class: "hint", i18n: "zones.hint" }), pointsInfo,
    h("div", { class: "buttons" },
      h("button", { type: "button", id: "zone-undo", i18n: "zones.undo", onclick: () => { if (edit) { edit.points.pop(); draw(); } } }),
      h("button", { type: "button", id: "zone-clear", i18n: "zones.clear", onclick: () => { if (edit) { edit.points = []; draw(); } } })),
    h("div", { class: "buttons" }, saveBtn, delBtn,
      h("button", { type: "button", i18n: "btn.cancel", onclick: () => { edit = null; showForm(); draw(); } })));
  form.hidden = true;

  put(view, h("h2", { i18n: "nav.zones" }),
    meta.editable ? null : h("div", { class: "error", i18n: "zones.not_editable" }),
    h("div", { class: "filters" }, camSel,
      h("button", { type: "button", id: "zone-refresh", i18n: "zones.refresh", onclick: () => loadSnapshot() }),
      h("button", { type: "button", id: "zone-new", class: "primary", i18n: "zones.new", onclick: () => startNew() })),
    h("div", { class: "zone-editor" }, stage, h("aside", {}, list, form, msg)));

  function zonesHere() { return meta.zones.filter((z) => z.camera === camera); }

  function loadSnapshot() {
    noPic.hidden = true;
    img.src = `/api/cameras/${encodeURIComponent(camera)}/snapshot.jpg?t=${Date.now()}`;
  }
  img.addEventListener("load", () => { stage.classList.remove("blank"); noPic.hidden = true; sizeCanvas(); });
  img.addEventListener("error", () => { stage.classList.add("blank"); noPic.hidden = false; sizeCanvas(); });

  function sizeCanvas() {
    const r = stage.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(r.width * dpr));
    canvas.height = Math.max(1, Math.round(r.height * dpr));
    draw();
  }

  function toPx(p) { return [p[0] * canvas.width, p[1] * canvas.height]; }

  function polygon(ctx, pts, color, active) {
    if (!pts.length) return;
    const dpr = window.devicePixelRatio || 1;
    ctx.beginPath();
    pts.forEach((p, i) => { const [x, y] = toPx(p); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
    if (pts.length > 2) ctx.closePath();
    ctx.lineWidth = (active ? 3 : 2) * dpr;
    ctx.strokeStyle = color;
    ctx.fillStyle = `${color}${active ? "55" : "33"}`;
    if (pts.length > 2) ctx.fill();
    ctx.stroke();
    if (active) {
      pts.forEach((p) => {
        const [x, y] = toPx(p);
        ctx.beginPath(); ctx.arc(x, y, 6 * dpr, 0, Math.PI * 2);
        ctx.fillStyle = "#fff"; ctx.fill(); ctx.lineWidth = 2 * dpr; ctx.strokeStyle = color; ctx.stroke();
      });
    }
  }

  function draw() {
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    for (const z of zonesHere()) {
      if (edit && edit.orig === z.id) continue;
      polygon(ctx, z.polygon, COLORS[z.type] || "#fff", false);
    }
    if (edit) polygon(ctx, edit.points, COLORS[fType.value] || "#fff", true);
    pointsInfo.textContent = edit ? t("zones.points", { n: edit.points.length }) : "";
  }

  function showForm(z) {
    form.hidden = !edit;
    clear(msg);
    if (!edit) return;
    fId.value = z ? z.id : "";
    fName.value = z ? z.name || "" : "";
    fType.value = z ? z.type : "fire_lane";
    fStation.value = z && z.station ? z.station : "";
    fDwell.value = z && z.dwell_s ? String(z.dwell_s) : "";
    delBtn.hidden = !z;
    saveBtn.disabled = !meta.editable;
    renderList();
  }

  function renderList() {
    clear(list);
    const zs = zonesHere();
    if (!zs.length) list.append(h("li", { class: "muted", i18n: "zones.none" }));
    for (const z of zs) {
      list.append(h("li", { class: edit && edit.orig === z.id ? "active" : "" },
        h("button", { type: "button", class: "link", dataset: { zone: z.id }, onclick: () => select(z) },
          h("span", { class: "swatch", dataset: { type: z.type } }), `${z.name || z.id} · ${t(`zone.${z.type}`)}`)));
    }
  }

  function select(z) { edit = { orig: z.id, points: z.polygon.map((p) => [p[0], p[1]]) }; showForm(z); draw(); }
  function startNew() { edit = { orig: null, points: [] }; showForm(null); draw(); fId.focus(); }

  function norm(ev) {
    const r = canvas.getBoundingClientRect();
    const x = Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width));
    const y = Math.min(1, Math.max(0, (ev.clientY - r.top) / r.height));
    return [Math.round(x * 10000) / 10000, Math.round(y * 10000) / 10000];
  }

  function nearest(ev) {
    if (!edit) return -1;
    const r = canvas.getBoundingClientRect();
    let best = -1; let bestD = HIT_PX;
    edit.points.forEach((p, i) => {
      const d = Math.hypot(p[0] * r.width - (ev.clientX - r.left), p[1] * r.height - (ev.clientY - r.top));
      if (d < bestD) { best = i; bestD = d; }
    });
    return best;
  }

  canvas.addEventListener("pointerdown", (ev) => {
    if (!edit) return;
    ev.preventDefault();
    drag = nearest(ev);
    if (drag < 0) { edit.points.push(norm(ev)); draw(); return; }
    canvas.setPointerCapture(ev.pointerId);
  });
  canvas.addEventListener("pointermove", (ev) => { if (edit && drag >= 0) { edit.points[drag] = norm(ev); draw(); } });
  canvas.addEventListener("pointerup", () => { drag = -1; });
  canvas.addEventListener("pointercancel", () => { drag = -1; });
  fType.addEventListener("change", draw);
  new ResizeObserver(() => sizeCanvas()).observe(stage);

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(msg);
    if (!edit) return;
    if (edit.points.length < 3) { msg.append(errorBox(new Error(t("zones.need_points")))); return; }
    const body = { id: fId.value.trim(), name: fName.value.trim(), type: fType.value, camera,
      polygon: edit.points, station: fStation.value || null };
    if (fDwell.value) body.dwell_s = Number(fDwell.value);
    try {
      const r = edit.orig
        ? await api(`/api/zones/${encodeURIComponent(edit.orig)}`, { method: "PUT", body })
        : await api("/api/zones", { method: "POST", body });
      toast(r.applied ? t("zones.saved_applied") : t("zones.saved"), "ok");
      meta = await api("/api/zones");
      const z = meta.zones.find((x) => x.id === body.id);
      if (z) select(z); // re-opens the form (and clears the message box) with what the file now says
      msg.append(h("p", { class: r.applied ? "ok-text" : "muted", id: "zone-saved",
        text: r.applied ? t("zones.saved_applied") : `${t("zones.saved")} ${r.apply_error || ""}` }),
      h("p", { class: "muted", text: `${t("zones.backup")}: ${r.backup}` }));
    } catch (err) { msg.append(errorBox(err)); }
  });

  delBtn.addEventListener("click", async () => {
    if (!edit || !edit.orig || !confirm(t("zones.confirm_delete", { id: edit.orig }))) return;
    try {
      await api(`/api/zones/${encodeURIComponent(edit.orig)}`, { method: "DELETE" });
      meta = await api("/api/zones");
      edit = null; showForm(); renderList(); draw();
      toast(t("zones.deleted"), "ok");
    } catch (err) { clear(msg).append(errorBox(err)); }
  });

  camSel.addEventListener("change", () => { camera = camSel.value; edit = null; showForm(); renderList(); loadSnapshot(); });
  renderList();
  loadSnapshot();
  return null;
}
