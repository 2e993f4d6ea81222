// The sign-in page: posts the credentials; the service answers with an HttpOnly session cookie.
import { loadMessages, t, translate, setLang, currentLang, api } from "/static/common.js";

async function main() {
  await loadMessages();
  translate(document);
  document.getElementById("lang").addEventListener("click", () => setLang(currentLang() === "zh" ? "en" : "zh"));
  document.getElementById("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await api("POST", "/api/v1/session", {
      username: document.getElementById("username").value,
      password: document.getElementById("password").value,
    });
    if (!r.ok) {
      document.getElementById("error").textContent = r.status === 401 ? t("login.failed") : t("err.failed", { msg: (r.body && r.body.error) || r.status });
      return;
    }
    const next = new URLSearchParams(location.search).get("next");
    location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : "/dashboard";
  });
  document.body.dataset.ready = "true"; // the form posts through this script from now on
}

main();
