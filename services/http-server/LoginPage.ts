/**
 * The login page: served for `/login` and, with status 200 as Kinode does, for any
 * authenticated path requested without a valid cookie. The password never leaves the
 * browser: the page computes Kinode's `password_hash` (Argon2id, salt = node name,
 * t = 2, m = 19 456 KiB, p = 1, 32 bytes, `0x`-hex) with hash-wasm's browser build,
 * served from `node_modules` at `/login/argon2.js`, and posts it to `/login`.
 *
 * A login on an app's own subdomain (secure binds) posts that app's process id as
 * `subdomain`, so the cookie it gets is the app's, not the whole node's.
 */
import * as fs from "node:fs"
import { createRequire } from "node:module"

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" })[c]!)

/** hash-wasm's browser build of Argon2 (30 KB, Wasm inlined). */
export const argon2Script = (): Buffer => {
  const require = createRequire(import.meta.url)
  const main = require.resolve("hash-wasm")
  return fs.readFileSync(main.replace(/[^/\\]+$/, "argon2.umd.min.js"))
}

export const loginPage = (node: string, subdomain: string | null): string => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(node)}: log in</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f1ea;color:#222;display:flex;min-height:100vh;align-items:center;justify-content:center;margin:0}
form{background:#fff;padding:2rem;border-radius:12px;box-shadow:0 2px 12px #0002;display:flex;flex-direction:column;gap:.8rem;min-width:18rem}
h1{font-size:1.2rem;margin:0}input,button{font:inherit;padding:.5rem;border-radius:6px;border:1px solid #bbb}
button{background:#2d6a4f;color:#fff;border:0;cursor:pointer}#status{min-height:1.2em;color:#a00;margin:0}
</style></head>
<body><form id="login">
<h1>Log in to <span id="node">${escapeHtml(node)}</span></h1>
<input id="password" type="password" name="password" placeholder="password" autocomplete="current-password" autofocus required>
<button id="submit" type="submit">Log in</button>
<p id="status" role="status"></p>
</form>
<script src="/login/argon2.js"></script>
<script>
const node = ${JSON.stringify(node).replace(/</g, "\\u003c")};
const subdomain = ${JSON.stringify(subdomain).replace(/</g, "\\u003c")};
const form = document.getElementById("login");
const status = document.getElementById("status");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  status.textContent = "checking...";
  try {
    const hash = await hashwasm.argon2id({ password: document.getElementById("password").value, salt: node,
      parallelism: 1, iterations: 2, memorySize: 19456, hashLength: 32, outputType: "hex" });
    const res = await fetch("/login", { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ password_hash: "0x" + hash, subdomain }) });
    if (res.ok) {
      const target = new URLSearchParams(location.search).get("redirect");
      location.replace(target && target.startsWith("/") && !target.startsWith("//") ? target : (location.pathname === "/login" ? "/" : location.href));
    } else {
      status.textContent = (await res.text()) || ("login failed: " + res.status);
    }
  } catch (e) {
    status.textContent = "login failed: " + e;
  }
});
</script></body></html>
`
