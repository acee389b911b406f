// Settings: own password (everyone); for installers also console accounts, API tokens and the
// configuration as the gateway runs it (read-only, secrets hidden).
import { api, clear, errorBox, fmtTime, h, put, state, t, table, toast } from "../core.js";

function passwordForm() {
  const old = h("input", { id: "pw-old", type: "password", autocomplete: "current-password", required: true });
  const neu = h("input", { id: "pw-new", type: "password", autocomplete: "new-password", minlength: 10, required: true });
  const msg = h("div");
  const form = h("form", { class: "stack narrow" }, h("label", {}, t("settings.pw_old"), old),
    h("label", {}, t("settings.pw_new"), neu), h("button", { type: "submit", class: "primary", i18n: "btn.save" }), msg);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault(); clear(msg);
    try {
      const r = await api("/api/me/password", { method: "POST", body: { old: old.value, new: neu.value } });
      state.me.csrf = r.csrf; old.value = ""; neu.value = ""; toast(t("settings.pw_changed"), "ok");
    } catch (err) { msg.append(errorBox(err)); }
  });
  return form;
}

async function usersSection() {
  const box = h("div");
  async function load() {
    const { users } = await api("/api/users");
    clear(box).append(table([t("col.user"), t("col.role"), t("col.created"), t("col.last_login"), ""], users.map((u) =>
      h("tr", {}, h("td", { text: u.name }), h("td", { text: t(`role.${u.role}`) }), h("td", { text: fmtTime(u.created_ms) }),
        h("td", { text: fmtTime(u.last_login_ms) }),
        h("td", {}, u.name === state.me.name ? null : h("button", { type: "button", class: "danger", i18n: "btn.delete",
          onclick: async () => {
            if (!confirm(t("settings.confirm_delete_user", { name: u.name }))) return;
            try { await api(`/api/users/${encodeURIComponent(u.name)}`, { method: "DELETE" }); load(); } catch (err) { toast(err.message, "bad"); }
          } }))))));
    const name = h("input", { id: "user-name", required: true, maxlength: 64, autocomplete: "off" });
    const role = h("select", { id: "user-role" }, ["manager", "installer"].map((r) => h("option", { value: r, text: t(`role.${r}`) })));
    const pw = h("input", { id: "user-pw", type: "password", minlength: 10, required: true, autocomplete: "new-password" });
    const msg = h("div");
    const form = h("form", { class: "filters" }, name, role, pw, h("button", { type: "submit", class: "primary", i18n: "settings.add_user" }));
    name.placeholder = t("col.user"); pw.placeholder = t("settings.pw_new");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault(); clear(msg);
      try { await api("/api/users", { method: "POST", body: { name: name.value.trim(), role: role.value, password: pw.value } }); load(); }
      catch (err) { msg.append(errorBox(err)); }
    });
    box.append(form, msg);
  }
  await load();
  return box;
}

async function tokensSection() {
  const box = h("div");
  async function load(shown) {
    const { tokens } = await api("/api/tokens");
    clear(box);
    if (shown) box.append(h("div", { class: "notice" }, h("p", { i18n: "settings.token_once" }), h("code", { class: "token", text: shown })));
    box.append(table([t("col.name"), t("col.role"), t("col.created"), t("col.last_used"), ""], tokens.map((k) =>
      h("tr", {}, h("td", { text: k.name }), h("td", { text: t(`role.${k.role}`) }), h("td", { text: fmtTime(k.created_ms) }),
        h("td", { text: fmtTime(k.last_used_ms) }),
        h("td", {}, h("button", { type: "button", class: "danger", i18n: "settings.revoke", onclick: async () => {
          try { await api(`/api/tokens/${encodeURIComponent(k.id)}`, { method: "DELETE" }); load(); } catch (err) { toast(err.message, "bad"); }
        } }))))));
    const name = h("input", { id: "token-name", required: true, maxlength: 64, autocomplete: "off", placeholder: t("col.name") });
    const role = h("select", {}, ["manager", "installer"].map((r) => h("option", { value: r, text: t(`role.${r}`) })));
    const msg = h("div");
    const form = h("form", { class: "filters" }, name, role, h("button", { type: "submit", class: "primary", i18n: "settings.add_token" }));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault(); clear(msg);
      try { const r = await api("/api/tokens", { method: "POST", body: { name: name.value.trim(), role: role.value } }); load(r.token); }
      catch (err) { msg.append(errorBox(err)); }
    });
    box.append(form, msg);
  }
  await load();
  return box;
}

export async function render(view) {
  view.append(h("h2", { i18n: "nav.settings" }), h("h3", { i18n: "settings.account" }), passwordForm());
  if (state.me.role !== "installer") return null;
  try {
    view.append(h("h3", { i18n: "settings.users" }), await usersSection());
    view.append(h("h3", { i18n: "settings.tokens" }), h("p", { class: "hint", i18n: "settings.tokens_hint" }), await tokensSection());
    const s = await api("/api/settings");
    put(view, h("h3", { i18n: "settings.config" }),
      h("p", { class: "muted", text: `${s.path || t("settings.no_file")} · ${s.config_hash}` }),
      s.backups.length ? h("details", {}, h("summary", { text: `${t("settings.backups")} (${s.backups.length})` }),
        h("ul", {}, s.backups.map((b) => h("li", {}, h("code", { text: b }))))) : null,
      h("pre", { class: "config", id: "config-view", text: JSON.stringify(s.config, null, 2) }));
  } catch (err) { view.append(errorBox(err)); }
  return null;
}
