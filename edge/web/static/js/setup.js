// First-start setup: the one-time token from the gateway log creates the first installer account.
import { api, applyI18n, clear, errorBox, loadLang, preferredLang } from "./core.js";

async function main() {
  await loadLang(preferredLang("zh"));
  applyI18n();
  const form = document.getElementById("setup");
  const msg = document.getElementById("msg");
  const fromLink = new URLSearchParams(location.hash.replace(/^#/, "")).get("token");
  if (fromLink) { form.token.value = fromLink; history.replaceState(null, "", "/setup"); }
  const st = await api("/api/setup/status");
  if (!st.needed) { location.href = "/login"; return; }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clear(msg);
    try {
      await api("/api/setup", { method: "POST", body: { token: form.token.value.trim(), name: form.name.value.trim(), password: form.password.value } });
      location.href = "/";
    } catch (err) { msg.append(errorBox(err)); }
  });
  document.body.dataset.ready = "1";
}
main();
