// Login page: name + password -> session cookie; then back to the page the user wanted (URL hash kept).
import { api, applyI18n, clear, errorBox, loadLang, preferredLang, state, t } from "./core.js";

async function main() {
  await loadLang(preferredLang(document.documentElement.lang.startsWith("en") ? "en" : "zh"));
  applyI18n();
  document.title = t("login.title");
  const lang = document.getElementById("lang");
  lang.textContent = state.lang === "zh" ? "EN" : "中文";
  lang.addEventListener("click", () => { localStorage.setItem("edge.lang", state.lang === "zh" ? "en" : "zh"); location.reload(); });
  const form = document.getElementById("login");
  const msg = document.getElementById("msg");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(msg);
    try {
      await api("/api/login", { method: "POST", body: { name: form.name.value.trim(), password: form.password.value } });
      location.href = "/" + location.hash;
    } catch (err) {
      const e = err.status === 401 ? new Error(t("login.wrong")) : err.status === 429 ? new Error(t("login.throttled", { s: (err.data && err.data.retry_after_s) || "?" })) : err;
      msg.append(errorBox(e));
      form.password.value = "";
    }
  });
  document.body.dataset.ready = "1";
}
main();
