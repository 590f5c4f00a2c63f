/**
 * The homepage's HTTP side: what each bound path answers. http-server has already
 * checked the login cookie (every page is bound `authenticated`); a POST must also carry
 * the page's form token and, when the browser says where it comes from (`Origin`), come
 * from this node's own origin, so no other site or local port can submit these forms.
 *
 * | path | method | answer |
 * |---|---|---|
 * | `/` | GET | the homepage: node, key, tiles, widgets, packages, peers |
 * | `/processes` | GET | every process with its status and capabilities |
 * | `/install` | GET, POST | the upload form; an upload → the capabilities to approve |
 * | `/install/confirm` | POST | installs with the approved capabilities → the result |
 * | `/install/cancel` | POST | forgets an upload → 303 `/` |
 * | `/uninstall` | POST | the confirm step; with `confirm=yes` uninstalls → the result |
 * | `/widget?process=<id>` | GET | an app's widget, as a sandboxed document |
 * | `/apps` | GET | Kinode's `GET /apps`: the tiles as JSON |
 */
import { Clock, Effect, Option, Result, type Semaphore } from "effect"
import { timingSafeEqual } from "node:crypto"
import type { Identity } from "../../src/Identity.ts"
import * as Json from "../../src/Json.ts"
import type { Kernel, ProcessInfo } from "../../src/Kernel.ts"
import type { HttpServer } from "../http-server/index.ts"
import type { NetStatus } from "../net/index.ts"
import { INIT_WATCH_MS, type PackageId, packageText, type Packages } from "../packages/index.ts"
import type { Entries } from "./Entries.ts"
import {
  describeError, FormUnreadable, packageIdOf, parseMultipart, parsePackageText, parseUrlEncoded, UploadGone, type Uploads
} from "./Install.ts"
import {
  errorPage, homePage, installedPage, installPage, type PackageRow, type PeersView, processesPage, reviewPage, uninstallConfirmPage,
  uninstalledPage
} from "./Pages.ts"
import type { IncomingHttp } from "./Protocol.ts"

export interface HttpReply {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: Uint8Array
}

export type HttpIn = IncomingHttp["Http"]

type Handler = (req: HttpIn, body: Uint8Array) => Effect.Effect<HttpReply>

/** Pages run no script, frame only the node's own widgets, and are never framed. */
const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "content-security-policy":
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin"
}

/** A widget runs in an opaque origin (no cookie, no same-origin requests), framed by the homepage only. */
const WIDGET_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "content-security-policy": "sandbox allow-scripts; frame-ancestors 'self'",
  "x-content-type-options": "nosniff"
}

const utf8 = new TextEncoder()
const EMPTY = new Uint8Array(0)

const page = (status: number, html: string): HttpReply => ({ status, headers: PAGE_HEADERS, body: utf8.encode(html) })
const text = (status: number, body: string, headers: Record<string, string> = {}): HttpReply => ({
  status,
  headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  body: utf8.encode(body)
})

/** Other nodes of the PKI listed by name under the connected peers. */
const KNOWN_PEERS_SHOWN = 20

export interface SiteDeps {
  readonly node: string
  readonly kernel: Kernel["Service"]
  readonly packages: Packages["Service"]
  readonly identity: Identity["Service"]
  readonly server: HttpServer["Service"]
  readonly net: Option.Option<NetStatus["Service"]>
  readonly entries: Entries
  readonly uploads: Uploads
  /** The token every form carries (random per boot). */
  readonly csrf: string
  /** One install or uninstall at a time. */
  readonly lock: Semaphore.Semaphore
}

export const makeSite = (d: SiteDeps) => {
  const { node, kernel, packages, entries, uploads } = d
  const csrfBytes = Buffer.from(d.csrf)
  const exists = (id: string) => kernel.info(id) !== undefined

  /** Whether `package:publisher` is installed. */
  const isInstalled = (pkg: string) => Effect.map(packages.installed(), (list) => list.some((p) => p.package === pkg))

  /** The processes of a package (not runtime modules or sessions), by `package:publisher`. */
  const byPackage = (): Map<string, Array<ProcessInfo>> => {
    const out = new Map<string, Array<ProcessInfo>>()
    for (const p of kernel.processes()) {
      if (p.status === "runtime") continue
      const parts = p.id.split(":")
      if (parts.length !== 3) continue
      const pkg = `${parts[1]}:${parts[2]}`
      const list = out.get(pkg)
      if (list === undefined) out.set(pkg, [p])
      else list.push(p)
    }
    return out
  }

  const peers = (): PeersView => {
    if (Option.isNone(d.net)) return { _tag: "Offline" }
    const connected = [...d.net.value.peers()].sort((a, b) => a.name.localeCompare(b.name))
    const names = new Set(connected.map((p) => p.name))
    const others = d.identity.records().map((r) => r.name).filter((n) => n !== node && !names.has(n)).sort()
    return { _tag: "Online", connected, known: others.slice(0, KNOWN_PEERS_SHOWN), moreKnown: Math.max(0, others.length - KNOWN_PEERS_SHOWN) }
  }

  const home = Effect.gen(function*() {
    const tiles = entries.list(exists)
    const installed = yield* packages.installed()
    // A process's UI root: the path it bound as "/" (stored as `/<process id>`).
    const roots = new Set(d.server.httpBindings().filter((b) => b.path === `/${b.process}`).map((b) => b.process))
    const rows: Array<PackageRow> = installed.map((pkg) => {
      const processes = pkg.processes.flatMap((id) => kernel.info(id) ?? [])
      const ids = new Set(pkg.processes)
      const tilePath = tiles.find((t) => ids.has(t.id) && t.path !== undefined)?.path
      const root = processes.find((p) => roots.has(p.id))
      return { id: pkg.package, processes, ui: tilePath ?? (root === undefined ? undefined : `/${root.id}`) }
    })
    return page(200, homePage({
      node,
      key: `0x${Buffer.from(d.identity.publicKey).toString("hex")}`,
      processCount: kernel.processes().length,
      tiles,
      packages: rows,
      peers: peers(),
      csrf: d.csrf
    }))
  })

  const processes = Effect.sync(() =>
    page(200, processesPage(node, [...kernel.processes()].sort((a, b) => a.id.localeCompare(b.id))))
  )

  /**
   * A POST from this node's own pages: it carries the form token, and its `Origin`, when
   * the browser sends one, is this host (or the host a proxy says it forwarded).
   */
  const trusted = (req: HttpIn, token: string | null | undefined): boolean => {
    const origin = req.headers["origin"]
    if (origin !== undefined) {
      // "null" (sandboxed frames, widgets among them) does not parse.
      const host = URL.canParse(origin) ? new URL(origin).host : undefined
      if (host === undefined || (host !== req.headers["host"] && host !== req.headers["x-forwarded-host"])) return false
    }
    if (token === null || token === undefined) return false
    const given = Buffer.from(token)
    return given.length === csrfBytes.length && timingSafeEqual(given, csrfBytes)
  }
  const stale = page(403, errorPage(node, "Form expired", "This form is from another session or site. Reload the page and try again.", {
    href: "/",
    text: "Back to the homepage"
  }))

  const upload = Effect.fn("Homepage.upload")(
    function*(req: HttpIn, body: Uint8Array) {
      const form = parseMultipart(req.headers["content-type"], body)
      if (Result.isFailure(form)) return yield* form.failure
      if (!trusted(req, form.success.fields.get("csrf"))) return stale
      const file = form.success.files.get("package")
      if (file === undefined) return yield* new FormUnreadable({ reason: "no-file" })
      if (file.bytes.length === 0) return yield* new FormUnreadable({ reason: "empty-file" })
      const pkg = yield* packageIdOf(file.bytes, form.success.fields.get("package_id"))
      const requested = yield* packages.requested(pkg, file.bytes)
      const replaces = yield* isInstalled(packageText(pkg))
      const now = yield* Clock.currentTimeMillis
      const u = uploads.put({ pkg, filename: file.filename, zip: file.bytes, requested, replaces }, now)
      return page(200, reviewPage({ node, csrf: d.csrf, token: u.token, pkg: packageText(pkg), filename: u.filename, requested, replaces }))
    },
    Effect.catch((e) => Effect.succeed(page(400, installPage(node, d.csrf, describeError(e)))))
  )

  const confirm = Effect.fn("Homepage.install")(
    function*(req: HttpIn, body: Uint8Array) {
      const form = parseUrlEncoded(body)
      if (!trusted(req, form.get("csrf"))) return stale
      const token = form.get("upload") ?? ""
      const u = uploads.get(token, yield* Clock.currentTimeMillis)
      if (u === undefined) return yield* new UploadGone()
      uploads.drop(token)
      const chosen = new Set(form.getAll("cap").map(Number))
      const approved = u.requested.filter((_, i) => chosen.has(i))
      const installed = yield* d.lock.withPermits(1)(packages.install(u.pkg, u.zip, { approved, watchMs: INIT_WATCH_MS }))
      return page(200, installedPage(node, installed, kernel.info))
    },
    Effect.catch((e) =>
      Effect.succeed(page(
        e._tag === "VfsFailed" ? 500 : e._tag === "UploadGone" ? 410 : 400,
        errorPage(node, "Not installed", describeError(e), { href: "/install", text: "Install a package" })
      ))
    )
  )

  const cancel = (req: HttpIn, body: Uint8Array) =>
    Effect.sync(() => {
      const form = parseUrlEncoded(body)
      if (!trusted(req, form.get("csrf"))) return stale
      uploads.drop(form.get("upload") ?? "")
      return { status: 303, headers: { location: "/", "cache-control": "no-store" }, body: EMPTY }
    })

  const uninstall = Effect.fn("Homepage.uninstall")(
    function*(req: HttpIn, body: Uint8Array) {
      const form = parseUrlEncoded(body)
      if (!trusted(req, form.get("csrf"))) return stale
      const given = form.get("package") ?? ""
      const pkg: PackageId | undefined = parsePackageText(given)
      const back = { href: "/", text: "Back to the homepage" }
      if (pkg === undefined) return page(400, errorPage(node, "Not uninstalled", `"${given}" is not a package id.`, back))
      const id = packageText(pkg)
      if (form.get("confirm") !== "yes") {
        if (!(yield* isInstalled(id))) return page(404, errorPage(node, "Not uninstalled", `${id} is not installed.`, back))
        return page(200, uninstallConfirmPage(node, d.csrf, id, byPackage().get(id) ?? []))
      }
      const stopped = yield* d.lock.withPermits(1)(packages.uninstall(pkg))
      entries.removePackage(id)
      return page(200, uninstalledPage(node, id, stopped))
    },
    Effect.catch((e) =>
      Effect.succeed(page(e._tag === "NotInstalled" ? 404 : 500, errorPage(node, "Not uninstalled", describeError(e), { href: "/", text: "Back to the homepage" })))
    )
  )

  const widget = (req: HttpIn): HttpReply => {
    const id = req.query_params["process"]
    const entry = id === undefined ? undefined : entries.get(id)
    if (entry?.widget === undefined || !exists(entry.id)) return text(404, "no such widget")
    return { status: 200, headers: WIDGET_HEADERS, body: utf8.encode(entry.widget) }
  }

  const apps = (): HttpReply => ({
    status: 200,
    headers: { "content-type": "application/json", "cache-control": "no-store" },
    body: Json.toBytes(entries.apps(exists))
  })

  const routes: Record<string, { readonly GET?: Handler; readonly POST?: Handler }> = {
    "/": { GET: () => home },
    "/processes": { GET: () => processes },
    "/install": { GET: () => Effect.sync(() => page(200, installPage(node, d.csrf))), POST: upload },
    "/install/confirm": { POST: confirm },
    "/install/cancel": { POST: cancel },
    "/uninstall": { POST: uninstall },
    "/widget": { GET: (req) => Effect.sync(() => widget(req)) },
    "/apps": { GET: () => Effect.sync(apps) }
  }

  /** The answer to one HTTP request http-server forwarded (the body is its blob). */
  const handle = (req: HttpIn, body: Uint8Array | undefined): Effect.Effect<HttpReply> => {
    const route = routes[req.bound_path]
    if (route === undefined) return Effect.succeed(text(404, "not found"))
    const method = req.method === "HEAD" ? "GET" : req.method
    const handler = method === "GET" || method === "POST" ? route[method] : undefined
    if (handler === undefined) return Effect.succeed(text(405, "method not allowed", { allow: Object.keys(route).join(", ") }))
    return handler(req, body ?? EMPTY)
  }

  return { handle }
}
