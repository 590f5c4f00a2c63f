/**
 * `http-server:distro:sys` (kinode-semantics §6.7): the node's HTTP front door. Apps bind
 * paths and WebSockets by message; browsers and local tools reach them through Node's
 * own `http` server. Node's server is the fastest HTTP/1.1 server the runtime has and
 * already guards the protocol (malformed requests 400, header limit 431, slow headers
 * 408); routing is find-my-way (Bindings.ts) and WebSockets are `ws`. An Effect HTTP
 * framework would add a fiber per request on the cached-static path, which must stay
 * within 0.8x of a bare server.
 *
 * Parts: Bindings.ts (path table), Requests.ts (one HTTP request), WebSockets.ts
 * (channels), Actions.ts (what apps ask), Rpc.ts (local tools), Auth.ts (the cookie),
 * LoginPage.ts. The layer serves the module's mailbox (actions, and answers to the
 * requests it forwarded), listens, and closes everything when its scope closes.
 */
import { Context, Deferred, Effect, Layer, Schema } from "effect"
import * as http from "node:http"
import { ModuleHost, type ServiceContext } from "../../src/ModuleHost.ts"
import { Printout } from "../../src/Printout.ts"
import { makeActions } from "./Actions.ts"
import { makeAuth } from "./Auth.ts"
import { type HttpBinding, makeBindings, type WsBinding } from "./Bindings.ts"
import { defaultLimits, type Gateway, type HttpLimits } from "./Gateway.ts"
import { makePending } from "./Pending.ts"
import { makeRequestHandler } from "./Requests.ts"
import { makeWebSockets } from "./WebSockets.ts"

export const HTTP_SERVER = "http-server:distro:sys"

/**
 * Node's server options http-server runs with: 16 KiB of headers (431 past it), slow
 * headers or bodies cut (408), idle keep-alive closed after 5 s, no Nagle delay. The
 * http bench's bare baseline runs with the same ones.
 */
export const SERVER_OPTIONS: http.ServerOptions = {
  maxHeaderSize: 16 * 1024,
  headersTimeout: 20_000,
  requestTimeout: 120_000,
  keepAliveTimeout: 5_000,
  connectionsCheckingInterval: 2_000,
  noDelay: true
}

export class HttpListenFailed extends Schema.TaggedError<HttpListenFailed>()("HttpListenFailed", {
  bind: Schema.String,
  port: Schema.Number,
  reason: Schema.String
}) {}

export interface HttpServerOptions {
  /** First port to try (Kinode: 8080). */
  readonly port: number
  /** Address to listen on (default loopback). */
  readonly bind?: string
  /** Only `port` itself; otherwise the next free port is taken when it is busy. */
  readonly exactPort?: boolean
  /** The keyfile's `jwt_secret` (signs login cookies). */
  readonly jwtSecret: Uint8Array
  /** The keyfile when the password hash opens it (a correct password), else undefined. */
  readonly login: (passwordHash: string) => Promise<Uint8Array | undefined>
  readonly limits?: Partial<HttpLimits>
}

export class HttpServer extends Context.Service<HttpServer, {
  /** `http://<bind>:<port>`. */
  readonly url: string
  readonly port: number
  readonly httpBindings: () => ReadonlyArray<HttpBinding>
  readonly wsBindings: () => ReadonlyArray<WsBinding>
  /** A login cookie for this node (`name=value`), for the node's own tools and tests. */
  readonly cookie: (subdomain?: string) => string
}>()("services/http-server/HttpServer") {
  static readonly layer = (options: HttpServerOptions) => Layer.effect(HttpServer, make(options))
}

/** Listens on `port`, or the next free one when allowed; the bound port. */
const listen = (server: http.Server, bind: string, port: number, exact: boolean) =>
  Effect.callback<number, HttpListenFailed>((resume) => {
    const attempt = (p: number) => {
      const onError = (e: NodeJS.ErrnoException) => {
        server.off("listening", onListening)
        if (e.code === "EADDRINUSE" && !exact && p < Math.min(port + 100, 65535)) return attempt(p + 1)
        resume(Effect.fail(new HttpListenFailed({ bind, port: p, reason: e.code ?? e.message })))
      }
      const onListening = () => {
        server.off("error", onError)
        const a = server.address()
        resume(Effect.succeed(typeof a === "object" && a !== null ? a.port : p))
      }
      server.once("error", onError)
      server.once("listening", onListening)
      server.listen(p, bind)
    }
    attempt(port)
  })

const make = (options: HttpServerOptions) =>
  Effect.gen(function*() {
    const host = yield* ModuleHost
    const printout = yield* Printout
    const bind = options.bind ?? "127.0.0.1"
    const limits = { ...defaultLimits, ...options.limits }
    const print = (level: number, text: string) => printout.print(level, HTTP_SERVER, text)
    const bindings = makeBindings()
    const auth = makeAuth(host.node, options.jwtSecret)
    const pending = makePending()

    // The module's context exists once the kernel runs it; the server listens after.
    const ready = yield* Deferred.make<ServiceContext>()
    const loop = yield* Deferred.make<(ctx: ServiceContext) => Effect.Effect<void>>()
    yield* host.serve(HTTP_SERVER, { public: false }, (ctx) =>
      Effect.andThen(Deferred.succeed(ready, ctx), Effect.flatMap(Deferred.await(loop), (serve) => serve(ctx))))
    const ctx = yield* Deferred.await(ready)

    const gateway: Gateway = { node: host.node, ctx, bindings, auth, pending, limits, login: options.login, print }
    const sockets = makeWebSockets(gateway)
    const actions = makeActions(gateway, sockets)
    yield* Deferred.succeed(loop, (c) =>
      Effect.forever(Effect.flatMap(c.takeBatch, (batch) =>
        Effect.sync(() => {
          for (const km of batch) {
            if (km.message._tag === "Response") pending.settle(km)
            else actions.onRequest(km)
          }
        }))))

    const server = http.createServer(SERVER_OPTIONS, makeRequestHandler(gateway))
    server.maxConnections = 4096
    server.on("upgrade", sockets.upgrade)
    // Registered before listening, so a failed listen still closes cleanly.
    yield* Effect.addFinalizer(() =>
      Effect.callback<void>((resume) => {
        sockets.closeAll()
        pending.expireAll()
        server.closeAllConnections()
        if (!server.listening) return resume(Effect.void)
        server.close(() => resume(Effect.void))
      }))
    const port = yield* listen(server, bind, options.port, options.exactPort === true)
    const shown = bind === "0.0.0.0" || bind === "::" ? "localhost" : bind.includes(":") ? `[${bind}]` : bind
    return HttpServer.of({
      url: `http://${shown}:${port}`,
      port,
      httpBindings: bindings.http.all,
      wsBindings: bindings.ws.all,
      cookie: (subdomain) => auth.setCookie(subdomain ?? null).split(";")[0]!
    })
  })
