/**
 * The homepage's HTML, rendered on the server: one small document per page, inline CSS,
 * no script. Every string that comes from outside this file (node and process names,
 * tile labels, capability params, file names, error text) goes through `esc`; links
 * are built here from paths that start with `/`. Pages are served with a CSP that allows
 * no script at all, so a string that slipped through would still not run.
 *
 * Widgets (HTML an app supplies) are never inlined: each is its own document at
 * `/widget?process=<id>`, framed with `sandbox="allow-scripts"` and served with a
 * `sandbox` CSP, so it runs in an opaque origin without the node's cookie.
 */
import type { ProcessInfo } from "../../src/Kernel.ts"
import type { Capability } from "../../src/Message.ts"
import type { PeerView } from "../net/index.ts"
import { describeCapability, type Installed, type RequestedCapability } from "../packages/index.ts"
import type { Entry } from "./Entries.ts"

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#39;" }

/** Text or attribute value, HTML-escaped. */
export const esc = (s: string | number): string => String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]!)

/** `data:image/...` for an app's icon (a data URL, or bare base64 taken as PNG); else undefined. */
export const iconSrc = (icon: string | undefined): string | undefined => {
  if (icon === undefined) return undefined
  if (/^data:image\/(?:png|jpeg|gif|webp|avif|svg\+xml)[;,]/i.test(icon)) return icon
  const bare = icon.replace(/\s+/g, "")
  return /^[A-Za-z0-9+/]+=*$/.test(bare) ? `data:image/png;base64,${bare}` : undefined
}

const CSS = `
:root{color-scheme:light dark;--bg:#f6f4ef;--fg:#1d1d1b;--muted:#6b6960;--card:#fff;--line:#e2ded4;--accent:#2d6a4f;--on-accent:#fff;--warn:#a4161a}
@media (prefers-color-scheme:dark){:root{--bg:#161614;--fg:#ecebe6;--muted:#9b998f;--card:#21211e;--line:#3a3933;--accent:#74c69d;--on-accent:#10231a;--warn:#ff8a8a}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:var(--bg);color:var(--fg)}
header{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:baseline;justify-content:space-between;padding:.9rem 1.5rem;border-bottom:1px solid var(--line);background:var(--card)}
header .node{margin:0;font-size:1.2rem;font-weight:650}
header .node a{color:inherit;text-decoration:none}
nav{display:flex;gap:1.1rem}
main{max-width:72rem;margin:0 auto;padding:.5rem 1.5rem 3rem}
a{color:var(--accent)}
section{margin:1.6rem 0}
h1{font-size:1.35rem;margin:1.2rem 0 .8rem}
h2{font-size:1.05rem;margin:0 0 .6rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(9rem,1fr));gap:.8rem}
.tile{display:flex;flex-direction:column;align-items:center;gap:.35rem;padding:1rem .6rem;background:var(--card);border:1px solid var(--line);border-radius:12px;text-align:center;text-decoration:none;color:inherit;overflow-wrap:anywhere}
a.tile:hover{border-color:var(--accent)}
.tile img,.tile .ph{width:48px;height:48px;border-radius:12px;object-fit:cover}
.ph{display:flex;align-items:center;justify-content:center;background:var(--accent);color:var(--on-accent);font-weight:700;font-size:1.4rem}
.widgets{display:grid;grid-template-columns:repeat(auto-fill,minmax(18rem,1fr));gap:.8rem;margin-top:.8rem}
.widgets iframe{width:100%;height:16rem;border:1px solid var(--line);border-radius:12px;background:var(--card)}
table{border-collapse:collapse;width:100%;background:var(--card);border:1px solid var(--line)}
th,td{text-align:left;padding:.45rem .65rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:.85rem}
code,.mono{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}
ul.plain{list-style:none;margin:0;padding:0}
ul.caps{margin:.3rem 0 0;padding-left:1.1rem}
.muted{color:var(--muted)}
.badge{display:inline-block;font-size:12px;padding:0 .4rem;border-radius:4px;border:1px solid var(--line);color:var(--muted)}
.st-running{color:var(--accent)}.st-stopped,.st-exited{color:var(--warn)}
button{font:inherit;padding:.35rem .9rem;border-radius:7px;border:1px solid var(--line);background:var(--card);color:inherit;cursor:pointer}
button.primary{background:var(--accent);border-color:var(--accent);color:var(--on-accent)}
button.danger{color:var(--warn);border-color:var(--warn)}
form.inline{display:inline}
.actions{display:flex;gap:.6rem;align-items:center;margin-top:1rem}
.note{padding:.7rem 1rem;background:var(--card);border:1px solid var(--line);border-left:4px solid var(--accent);border-radius:6px}
.note.error{border-left-color:var(--warn)}
input[type=text],input[type=file]{font:inherit;padding:.35rem;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:inherit;max-width:100%}
.form{display:flex;flex-direction:column;gap:.8rem;max-width:36rem}
label.cap{display:flex;gap:.6rem;align-items:baseline}
label.cap .withheld{color:var(--warn);font-weight:600}
label.cap input:checked~.withheld,label.cap input:not(:checked)~.granted{display:none}
label.cap .granted{color:var(--accent);font-weight:600}
`

/** A whole document around `body`, with the node's header. */
export const layout = (node: string, title: string, body: string): string => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · ${esc(node)}</title><style>${CSS}</style></head>
<body><header><p class="node"><a href="/">${esc(node)}</a></p>
<nav><a href="/">Home</a><a href="/processes">Processes</a><a href="/install">Install</a><a href="/logout">Log out</a></nav></header>
<main>${body}</main></body></html>
`

const hidden = (name: string, value: string) => `<input type="hidden" name="${esc(name)}" value="${esc(value)}">`

const status = (p: Pick<ProcessInfo, "status" | "stoppedBecause">) =>
  `<span class="st-${esc(p.status)}">${esc(p.status)}</span>${p.stoppedBecause === undefined ? "" : ` <span class="muted">(${esc(p.stoppedBecause)})</span>`}`

// ---- capabilities in words ---------------------------------------------------------

/** What a capability lets its holder do, for the well-known ones (kinode-semantics §4.2); else "". */
export const describeCap = describeCapability

const capLine = (node: string, cap: Capability) => {
  const words = describeCap(node, cap)
  return `${words === "" ? "" : `${esc(words)}<br>`}<code>${esc(cap.issuer.toString())}</code> <code>${esc(cap.params)}</code>`
}

// ---- the homepage -----------------------------------------------------------------

export interface PackageRow {
  /** `package:publisher`. */
  readonly id: string
  readonly processes: ReadonlyArray<Pick<ProcessInfo, "id" | "status" | "stoppedBecause">>
  /** Where its UI is: a tile's path, else a process's bound root `/<process id>`. */
  readonly ui: string | undefined
}

export type PeersView =
  | { readonly _tag: "Offline" }
  | {
    readonly _tag: "Online"
    readonly connected: ReadonlyArray<PeerView>
    /** Other nodes of the PKI, not connected now (the first few by name). */
    readonly known: ReadonlyArray<string>
    readonly moreKnown: number
  }

export interface HomeView {
  readonly node: string
  /** The networking public key, `0x`-hex. */
  readonly key: string
  readonly processCount: number
  readonly tiles: ReadonlyArray<Entry>
  readonly packages: ReadonlyArray<PackageRow>
  readonly peers: PeersView
  readonly csrf: string
}

const tile = (e: Entry) => {
  const src = iconSrc(e.icon)
  const first = Array.from(e.label.trim())[0] ?? "?"
  const pic = src === undefined ? `<span class="ph" aria-hidden="true">${esc(first.toUpperCase())}</span>` : `<img src="${esc(src)}" alt="">`
  const inner = `${pic}<span>${esc(e.label)}</span><span class="muted mono">${esc(e.id)}</span>`
  return e.path === undefined ? `<div class="tile">${inner}</div>` : `<a class="tile" href="${esc(e.path)}">${inner}</a>`
}

const peersSection = (peers: PeersView) => {
  if (peers._tag === "Offline") return `<p class="note">offline: this node runs without a network, every other node is unreachable.</p>`
  const rows = [
    ...peers.connected.map((p) =>
      `<tr><td class="mono">${esc(p.name)}</td><td class="st-running">connected</td><td class="muted">${
        [p.relayed ? "relayed" : "", p.routing ? "routes through this node" : "", `active ${esc(p.secondsSinceActive)} s ago`]
          .filter((s) => s !== "").join(", ")
      }</td></tr>`
    ),
    ...peers.known.map((name) => `<tr><td class="mono">${esc(name)}</td><td class="muted">not connected</td><td></td></tr>`)
  ]
  const more = peers.moreKnown > 0 ? `<p class="muted">and ${esc(peers.moreKnown)} more nodes known, not connected.</p>` : ""
  return rows.length === 0
    ? `<p class="muted">No peers: no other node is known yet.</p>`
    : `<table><thead><tr><th>Node</th><th>State</th><th></th></tr></thead><tbody>${rows.join("")}</tbody></table>${more}`
}

export const homePage = (v: HomeView): string => {
  const widgets = v.tiles.filter((e) => e.widget !== undefined).map((e) =>
    `<iframe sandbox="allow-scripts" loading="lazy" title="${esc(e.label)}" src="/widget?process=${esc(encodeURIComponent(e.id))}"></iframe>`
  )
  const packages = v.packages.map((p) =>
    `<tr><td class="mono">${esc(p.id)}</td><td><ul class="plain">${
      p.processes.map((q) => `<li><code>${esc(q.id)}</code> ${status(q)}</li>`).join("")
    }</ul></td><td>${p.ui === undefined ? `<span class="muted">no UI</span>` : `<a href="${esc(p.ui)}">open</a>`}</td>
<td><form class="inline" method="post" action="/uninstall">${hidden("csrf", v.csrf)}${hidden("package", p.id)}<button class="danger" type="submit">Uninstall</button></form></td></tr>`
  )
  return layout(v.node, "Home", `
<section><h1>${esc(v.node)}</h1><dl class="facts">
<dt>Node</dt><dd class="mono">${esc(v.node)}</dd>
<dt>Networking key</dt><dd class="mono" id="key">${esc(v.key)}</dd>
<dt>Processes</dt><dd><a href="/processes">${esc(v.processCount)} processes</a></dd></dl></section>
<section><h2>Apps</h2>${
    v.tiles.length === 0 ? `<p class="muted">No app has added itself to the homepage yet.</p>` : `<div class="tiles">${v.tiles.map(tile).join("")}</div>`
  }${widgets.length === 0 ? "" : `<div class="widgets">${widgets.join("")}</div>`}</section>
<section><h2>Installed packages</h2>${
    packages.length === 0
      ? `<p class="muted">No package is installed.</p>`
      : `<table><thead><tr><th>Package</th><th>Processes</th><th>UI</th><th></th></tr></thead><tbody>${packages.join("")}</tbody></table>`
  }<p><a href="/install">Install a package from a zip…</a></p></section>
<section><h2>Peers</h2>${peersSection(v.peers)}</section>`)
}

// ---- processes ----------------------------------------------------------------------

export const processesPage = (node: string, processes: ReadonlyArray<ProcessInfo>): string => {
  const rows = processes.map((p) => {
    const details = [
      p.public ? "public" : "",
      p.status === "runtime" ? "runtime module" : `on exit: ${p.onExit._tag}`,
      p.witVersion === null ? "" : `wit ${p.witVersion}`,
      p.mailboxDepth > 0 ? `${p.mailboxDepth} queued` : ""
    ].filter((s) => s !== "")
    const caps = p.capabilities.length === 0
      ? `<span class="muted">none</span>`
      : `<details><summary>${esc(p.capabilities.length)} capabilities</summary><ul class="caps">${
        p.capabilities.map((c) => `<li>${capLine(node, c)}</li>`).join("")
      }</ul></details>`
    return `<tr id="${esc(p.id)}"><td><code>${esc(p.id)}</code>${p.handle === "" ? "" : `<br><span class="muted mono">${esc(p.handle)}</span>`}</td>
<td>${status(p)}</td><td class="muted">${details.map(esc).join("<br>")}</td><td>${caps}</td></tr>`
  })
  return layout(node, "Processes", `<h1>Processes</h1><p class="muted">${esc(processes.length)} processes on ${esc(node)}.</p>
<table><thead><tr><th>Process</th><th>Status</th><th>Details</th><th>Capabilities (issuer, params)</th></tr></thead><tbody>${rows.join("")}</tbody></table>`)
}

// ---- install ------------------------------------------------------------------------

export const installPage = (node: string, csrf: string, error?: string): string =>
  layout(node, "Install", `<h1>Install a package</h1>
${error === undefined ? "" : `<p class="note error" role="alert">${esc(error)}</p>`}
<form class="form" method="post" action="/install" enctype="multipart/form-data">${hidden("csrf", csrf)}
<label>Package zip (the package's <code>pkg/</code> folder, zipped)<br><input type="file" name="package" accept=".zip,application/zip" required></label>
<label>Package id <span class="muted">(only if the zip has no metadata.json)</span><br><input type="text" name="package_id" placeholder="package:publisher" autocomplete="off"></label>
<div class="actions"><button class="primary" type="submit">Upload and review</button><span class="muted">Nothing is installed before you confirm.</span></div>
</form>`)

export interface ReviewView {
  readonly node: string
  readonly csrf: string
  readonly token: string
  readonly pkg: string
  readonly filename: string
  readonly requested: ReadonlyArray<RequestedCapability>
  readonly replaces: boolean
}

export const reviewPage = (v: ReviewView): string => {
  const caps = v.requested.map((r, i) =>
    `<li><label class="cap"><input type="checkbox" name="cap" value="${i}" checked><span class="granted">grant</span><span class="withheld">withhold</span>
<span><code>${esc(r.process)}</code> may ${capLine(v.node, r.capability)}</span></label></li>`
  )
  return layout(v.node, `Install ${v.pkg}`, `<h1>Install ${esc(v.pkg)}</h1>
<p class="muted">From <span class="mono">${esc(v.filename)}</span>.${v.replaces ? " A version of this package is installed: it will be replaced." : ""}</p>
<form method="post" action="/install/confirm">${hidden("csrf", v.csrf)}${hidden("upload", v.token)}
<section><h2>Capabilities it asks for</h2>${
    caps.length === 0
      ? `<p>This package asks for no capabilities.</p>`
      : `<p>Uncheck what you do not want to give: those capabilities are withheld and its processes start without them.</p><ul class="plain">${caps.join("")}</ul>`
  }<p class="muted">Each process also gets its package's own files (read and write) and may message itself.</p></section>
<div class="actions"><button class="primary" type="submit">Install</button></div></form>
<form method="post" action="/install/cancel">${hidden("csrf", v.csrf)}${hidden("upload", v.token)}<div class="actions"><button type="submit">Cancel</button></div></form>`)
}

export const installedPage = (
  node: string,
  installed: Installed,
  statusOf: (id: string) => Pick<ProcessInfo, "status" | "stoppedBecause"> | undefined
): string => {
  const procs = installed.processes.map((id) => {
    const s = statusOf(id)
    return `<li><code>${esc(id)}</code> ${s === undefined ? `<span class="muted">gone</span>` : status(s)}</li>`
  })
  const withheld = installed.withheld.map((w) => `<li><code>${esc(w.process)}</code>: ${capLine(node, w.capability)}</li>`)
  const skipped = installed.skippedGrants.map((g) =>
    `<li><code>${esc(g.process)}</code> → <code>${esc(g.grantee)}</code> <code>${esc(g.params)}</code></li>`
  )
  return layout(node, `Installed ${installed.package}`, `<h1>Installed ${esc(installed.package)}</h1>
<p class="note" role="status">${esc(installed.processes.length)} process${installed.processes.length === 1 ? "" : "es"} started.</p>
<section><h2>Processes</h2><ul class="plain">${procs.join("")}</ul></section>
<section><h2>Withheld capabilities</h2>${withheld.length === 0 ? `<p class="muted">None: every requested capability was granted.</p>` : `<ul>${withheld.join("")}</ul>`}</section>
${skipped.length === 0 ? "" : `<section><h2>Grants skipped</h2><p class="muted">These processes do not exist, so the package's grants to them were not made.</p><ul>${skipped.join("")}</ul></section>`}
<p class="muted">Version hash (SHA-256 of the zip): <span class="mono">${esc(installed.hash)}</span></p>
<p><a href="/">Back to the homepage</a></p>`)
}

// ---- uninstall ----------------------------------------------------------------------

export const uninstallConfirmPage = (
  node: string,
  csrf: string,
  pkg: string,
  processes: ReadonlyArray<Pick<ProcessInfo, "id" | "status" | "stoppedBecause">>
): string =>
  layout(node, `Uninstall ${pkg}`, `<h1>Uninstall ${esc(pkg)}?</h1>
<p>Its processes stop and lose their capabilities, capabilities they gave others are revoked, and its package files
(<code>/${esc(pkg)}/pkg</code>) are removed. Its other data (state, other drives, databases) is kept.</p>
<ul class="plain">${processes.map((p) => `<li><code>${esc(p.id)}</code> ${status(p)}</li>`).join("")}</ul>
<form method="post" action="/uninstall">${hidden("csrf", csrf)}${hidden("package", pkg)}${hidden("confirm", "yes")}
<div class="actions"><button class="danger" type="submit">Uninstall ${esc(pkg)}</button><a href="/">Cancel</a></div></form>`)

export const uninstalledPage = (node: string, pkg: string, stopped: ReadonlyArray<string>): string =>
  layout(node, `Uninstalled ${pkg}`, `<h1>Uninstalled ${esc(pkg)}</h1>
<p class="note" role="status">${stopped.length === 0 ? "No process was running." : `Stopped: ${stopped.map((s) => `<code>${esc(s)}</code>`).join(", ")}.`}</p>
<p><a href="/">Back to the homepage</a></p>`)

// ---- errors -------------------------------------------------------------------------

export const errorPage = (node: string, title: string, message: string, back: { readonly href: string; readonly text: string }): string =>
  layout(node, title, `<h1>${esc(title)}</h1><p class="note error" role="alert">${esc(message)}</p><p><a href="${esc(back.href)}">${esc(back.text)}</a></p>`)

