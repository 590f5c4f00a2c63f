/**
 * `homepage:homepage:sys`: the node's web homepage, as a runtime module. Like any app,
 * it binds its paths by messaging `http-server:distro:sys` (its paths are the only ones
 * stored without a process prefix, so it owns `/`), and answers the `{"Http": ...}`
 * requests http-server forwards (Site.ts). Apps message it Kinode's `HomepageRequest`
 * (Protocol.ts) to put a tile on the page (Entries.ts).
 *
 * The module's loop takes each message in turn: app requests and the answers to its
 * binds are handled in place; each HTTP request runs on a fiber of its own (a page may
 * wait on vfs, an install on many steps), owned by the layer's scope.
 *
 * The layer is built once the binds are acknowledged (or after `BIND_WAIT`, printed),
 * so the pages answer as soon as it is up.
 */
import { Context, Deferred, Effect, FiberSet, Layer, Option, Result, Schema, Semaphore } from "effect"
import { randomBytes } from "node:crypto"
import { capabilityKey } from "../../src/Capabilities.ts"
import { Identity } from "../../src/Identity.ts"
import { localAddress } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { Kernel } from "../../src/Kernel.ts"
import { type KernelMessage, type LazyLoadBlob, request, response } from "../../src/Message.ts"
import { ModuleHost, type ServiceContext, wantsReply } from "../../src/ModuleHost.ts"
import { Printout } from "../../src/Printout.ts"
import { HTTP_SERVER, HttpServer } from "../http-server/index.ts"
import { NetStatus } from "../net/index.ts"
import { Packages } from "../packages/index.ts"
import { makeEntries } from "./Entries.ts"
import { makeUploads } from "./Install.ts"
import {
  type App, HOMEPAGE_PROCESS, type HomepageError, HomepageRequest, IncomingHttp, REMOVE_OTHER, SET_STYLESHEET
} from "./Protocol.ts"
import { makeSite } from "./Site.ts"

/** How long the layer waits for http-server to acknowledge the binds. */
const BIND_WAIT = "10 seconds"
const STYLESHEET_BYTES = 256 * 1024

/** The stylesheet at `/kinode.css` until an app with `SetStylesheet` replaces it (apps' UIs link it). */
const DEFAULT_STYLESHEET = `:root{color-scheme:light dark;--orange:#dd6c39;--off-white:#f4f1ea;--off-black:#1d1d1b;--text:light-dark(var(--off-black),var(--off-white));--font-family-main:system-ui,sans-serif}
body{font-family:var(--font-family-main);background:light-dark(var(--off-white),var(--off-black));color:var(--text)}
a{color:var(--orange)}
`

const decodeRequest = Schema.decodeUnknownResult(HomepageRequest)
const decodeHttp = Schema.decodeUnknownResult(IncomingHttp)
const utf8 = new TextEncoder()

interface Bind {
  readonly path: string
  readonly authenticated: boolean
  readonly cache?: LazyLoadBlob
}

export class Homepage extends Context.Service<Homepage, {
  /** The tiles apps added, as Kinode's `GetApps` lists them. */
  readonly apps: () => ReadonlyArray<App>
}>()("services/homepage/Homepage") {
  /** The module; NetStatus is used when present (else the page says "offline"), Printout too. */
  static readonly layer: Layer.Layer<Homepage, never, ModuleHost | Kernel | Packages | Identity | HttpServer> = Layer.effect(
    Homepage,
    Effect.suspend(() => make)
  )
}

const make = Effect.gen(function*() {
  const host = yield* ModuleHost
  const kernel = yield* Kernel
  const packages = yield* Packages
  const identity = yield* Identity
  const server = yield* HttpServer
  const net = yield* Effect.serviceOption(NetStatus)
  const printout = yield* Effect.serviceOption(Printout)
  const node = host.node
  const our = localAddress(node, HOMEPAGE_PROCESS)
  const httpServer = localAddress(node, HTTP_SERVER)
  const print = (level: number, text: string) =>
    Option.isSome(printout) ? printout.value.print(level, HOMEPAGE_PROCESS, text) : undefined

  const entries = makeEntries()
  const exists = (id: string) => kernel.info(id) !== undefined
  const site = makeSite({
    node,
    kernel,
    packages,
    identity,
    server,
    net,
    entries,
    uploads: makeUploads(),
    csrf: randomBytes(24).toString("base64url"),
    lock: yield* Semaphore.make(1)
  })
  const requests = yield* FiberSet.make<void>()
  const bound = yield* Deferred.make<void>()

  const page = (path: string): Bind => ({ path, authenticated: true })
  const file = (path: string, mime: string, body: string): Bind => ({ path, authenticated: false, cache: { mime, bytes: utf8.encode(body) } })
  const binds: ReadonlyArray<Bind> = [
    page("/"),
    page("/processes"),
    page("/install"),
    page("/install/confirm"),
    page("/install/cancel"),
    page("/uninstall"),
    page("/widget"),
    page("/apps"),
    // Kinode's homepage serves these without login (apps on subdomains use them).
    file("/our", "text/plain", node),
    file("/our.js", "application/javascript", `window.our = {}; window.our.node = ${JSON.stringify(node)};`),
    file("/amionline", "text/plain", "yes"),
    file("/kinode.css", "text/css", DEFAULT_STYLESHEET)
  ]

  const bind = (ctx: ServiceContext, b: Bind, expects: boolean): bigint | undefined => {
    const body = Json.toBytes({ Bind: { path: b.path, authenticated: b.authenticated, local_only: false, cache: b.cache !== undefined } })
    const sent = ctx.send(httpServer, request({ body, expectsResponse: expects ? 5n : undefined }), b.cache)
    if (typeof sent === "bigint") return sent
    print(0, `cannot bind ${b.path}: ${sent.reason}`)
    return undefined
  }

  const answer = (ctx: ServiceContext, km: KernelMessage, body: unknown) => {
    if (wantsReply(km)) ctx.reply(km, response({ body: Json.toBytes(body) }))
  }
  const done = (ctx: ServiceContext, km: KernelMessage, error: HomepageError | undefined) =>
    answer(ctx, km, error === undefined ? { Ok: null } : { Err: error })

  /** Whether the request carries, or its sender holds, the homepage capability `params`. */
  const authorized = (km: KernelMessage, params: string) => {
    const key = capabilityKey(our, params)
    return km.message.capabilities.some((c) => capabilityKey(c.issuer, c.params) === key) ||
      host.hasCapability(km.source.process, { issuer: our, params })
  }

  /** A `HomepageRequest` from a process of this node. */
  const onAppRequest = (ctx: ServiceContext, km: KernelMessage) => {
    const parsed = Json.parseBody(km.message.body)
    const decoded = Result.isSuccess(parsed) ? decodeRequest(parsed.success) : undefined
    if (decoded === undefined || Result.isFailure(decoded)) return done(ctx, km, "MalformedRequest")
    const req = decoded.success
    const source = km.source.process.toString()
    if (req === "Remove") {
      entries.remove(source)
      return done(ctx, km, undefined)
    }
    if (req === "GetApps") return answer(ctx, km, { GetApps: entries.apps(exists) })
    if ("Add" in req) {
      const error = entries.add(source, req.Add)
      if (error !== undefined) print(1, `refused the homepage tile of ${source}: ${error}`)
      return done(ctx, km, error)
    }
    if ("RemoveOther" in req) {
      if (!authorized(km, REMOVE_OTHER)) return done(ctx, km, "NoCapability")
      entries.remove(req.RemoveOther)
      return done(ctx, km, undefined)
    }
    if (!authorized(km, SET_STYLESHEET)) return done(ctx, km, "NoCapability")
    if (req.SetStylesheet.length > STYLESHEET_BYTES) return done(ctx, km, "TooLarge")
    bind(ctx, file("/kinode.css", "text/css", req.SetStylesheet), false)
    print(1, "updated kinode.css")
    return done(ctx, km, undefined)
  }

  /** An HTTP request from http-server: answered from a fiber of its own. */
  const onHttp = (ctx: ServiceContext, km: KernelMessage) => {
    const parsed = Json.parseBody(km.message.body)
    const decoded = Result.isSuccess(parsed) ? decodeHttp(parsed.success) : undefined
    // WebSocket events and anything else: the homepage binds no socket.
    if (decoded === undefined || Result.isFailure(decoded)) return Effect.void
    const reply = site.handle(decoded.success.Http, km.blob?.bytes).pipe(
      Effect.catchCause((cause) =>
        Effect.sync(() => {
          print(0, `a page failed: ${String(cause)}`)
          return { status: 500, headers: { "content-type": "text/plain" }, body: utf8.encode("the homepage failed to answer") }
        })
      ),
      Effect.flatMap((r) =>
        Effect.sync(() => {
          ctx.reply(km, response({ body: Json.toBytes({ status: r.status, headers: r.headers }) }), { mime: r.headers["content-type"], bytes: r.body })
        })
      )
    )
    return Effect.asVoid(FiberSet.run(requests, reply))
  }

  const program = (ctx: ServiceContext) =>
    Effect.gen(function*() {
      const waiting = new Set<bigint>()
      for (const b of binds) {
        const id = bind(ctx, b, true)
        if (id !== undefined) waiting.add(id)
      }
      if (waiting.size === 0) yield* Deferred.succeed(bound, undefined)

      const onMessage = (km: KernelMessage): Effect.Effect<void> => {
        if (km.message._tag === "Response") {
          if (!waiting.delete(km.id)) return Effect.void
          const body = Json.parseBody(km.message.body)
          if (Result.isSuccess(body) && typeof body.success === "object" && body.success !== null && "Err" in body.success) {
            print(0, `http-server refused a bind: ${JSON.stringify(body.success)}`)
          }
          return waiting.size === 0 ? Deferred.succeed(bound, undefined) : Effect.void
        }
        if (km.source.node !== node) {
          print(1, `ignored a request from another node (${km.source.toString()})`)
          return Effect.void
        }
        if (km.source.process.toString() === HTTP_SERVER) return onHttp(ctx, km)
        return Effect.sync(() => onAppRequest(ctx, km))
      }
      return yield* Effect.forever(Effect.flatMap(ctx.takeBatch, (batch) => Effect.forEach(batch, onMessage, { discard: true })))
    })

  yield* host.serve(HOMEPAGE_PROCESS, { public: false }, program)
  const acknowledged = yield* Deferred.await(bound).pipe(Effect.timeoutOption(BIND_WAIT))
  if (Option.isNone(acknowledged)) print(0, `http-server did not acknowledge the homepage's binds within ${BIND_WAIT}`)

  return Homepage.of({ apps: () => entries.apps(exists) })
})
