/**
 * http-server tests' harness: a real kernel with the real http-server on 127.0.0.1 (a
 * free port), a real keyfile for logins (few PBKDF2 iterations, so a login is quick),
 * and apps as kernel sessions that bind paths and answer what arrives.
 */
import { Effect, Layer } from "effect"
import * as net from "node:net"
import { testKernel } from "../../../layers/TestLive.ts"
import { Identity } from "../../../src/Identity.ts"
import { parseAddress } from "../../../src/Ids.ts"
import * as Json from "../../../src/Json.ts"
import { Kernel, messagingCap } from "../../../src/Kernel.ts"
import { type LazyLoadBlob, request, response } from "../../../src/Message.ts"
import type { NativeApi } from "../../../src/ProcessApi.ts"
import { HTTP_SERVER, type HttpLimits, HttpServer } from "../../../services/http-server/index.ts"
import { decodeKeyfile, encodeKeyfile, generate as generateKey } from "../../../services/identity/index.ts"

export const NODE = "test.dev"
export const ITERATIONS = 1000
export const PASSWORD_HASH = `0x${"ab".repeat(32)}`
export const JWT_SECRET = new Uint8Array(32).fill(7)

/** A real keyfile for NODE sealed with PASSWORD_HASH (cheap iterations). */
export const makeKeyfile = Effect.gen(function*() {
  const key = yield* generateKey
  return yield* encodeKeyfile(
    { name: NODE, routers: [], key, jwtSecret: JWT_SECRET, fileKey: new Uint8Array(32).fill(1) },
    PASSWORD_HASH,
    { iterations: ITERATIONS }
  )
})

/** The real kernel plus http-server, with login checked against a real keyfile. */
export const httpNode = (limits: Partial<HttpLimits> = {}, bind = "127.0.0.1") => {
  const kernel = testKernel({ node: NODE })
  const server = Layer.unwrap(Effect.map(makeKeyfile, (keyfile) =>
    HttpServer.layer({
      port: 0,
      exactPort: true,
      bind,
      jwtSecret: JWT_SECRET,
      limits,
      login: (hash) =>
        Effect.runPromise(decodeKeyfile(keyfile, hash, { iterations: ITERATIONS }).pipe(
          Effect.map(() => keyfile),
          Effect.catch(() => Effect.succeed(undefined))
        ))
    })))
  return { layer: server.pipe(Layer.provideMerge(kernel.layer)), lines: kernel.lines }
}

/** Runs `effect` with a fresh node and its server; closed at the end. */
export const withHttp = <A, E>(effect: Effect.Effect<A, E, any>, limits: Partial<HttpLimits> = {}, bind?: string) =>
  Effect.scoped(Effect.provide(effect, httpNode(limits, bind).layer)) as Effect.Effect<A, E, never>

export const json = (v: unknown) => Json.toBytes(v)
export const parse = (b: Uint8Array): unknown => {
  const r = Json.parseBody(b)
  if (r._tag === "Failure") throw new Error(r.failure.reason)
  return r.success
}

const serverAddress = Effect.gen(function*() {
  const k = yield* Kernel
  const a = parseAddress(`${k.node}@${HTTP_SERVER}`)
  if (a._tag === "Failure") return yield* Effect.die(a.failure)
  return a.success
})

/** An app process (a kernel session) that may message http-server and takes its requests. */
export const app = (id: string, isPublic = true) =>
  Effect.flatMap(Kernel, (k) => k.session(id, { capabilities: [messagingCap(k.node, HTTP_SERVER)], public: isPublic }))

/** Sends an action to http-server and waits for its answer (the decoded body). */
export const action = (api: NativeApi, body: unknown, blob?: LazyLoadBlob) =>
  Effect.gen(function*() {
    const target = yield* serverAddress
    const r = yield* api.sendAndAwaitEffect(target, request({ body: json(body), expectsResponse: 5n }), blob)
    if (!("message" in r && "source" in r)) return { SendError: r.kind }
    return parse(r.message.body)
  })

/** Sends an action without waiting (fire and forget). */
export const tell = (api: NativeApi, body: unknown, blob?: LazyLoadBlob) =>
  Effect.map(serverAddress, (target) => api.sendRequest(target, request({ body: json(body) }), undefined, blob))

export interface Incoming {
  readonly body: Record<string, any>
  readonly blob: LazyLoadBlob | undefined
}

/** The next request the app receives from http-server. */
export const next = (api: NativeApi) =>
  Effect.gen(function*() {
    for (;;) {
      const r = yield* api.receiveEffect
      if (r._tag === "Message" && r.message._tag === "Request") {
        const parsed = Json.parseBody(r.message.body)
        const body = parsed._tag === "Success" ? parsed.success as Record<string, any> : { text: new TextDecoder().decode(r.message.body) }
        return { body, blob: api.getBlob() } satisfies Incoming
      }
    }
  })

/** Answers the request being handled with an HttpResponse and body. */
export const answer = (api: NativeApi, status: number, headers: Record<string, string>, body?: string | Uint8Array) =>
  api.sendResponse(
    response({ body: json({ status, headers }) }),
    body === undefined ? undefined : { mime: undefined, bytes: typeof body === "string" ? new TextEncoder().encode(body) : body }
  )

/** Serves every Http request with `handler` on a fiber of the test's scope. */
export const serveWith = (api: NativeApi, handler: (req: Incoming) => { status: number; headers?: Record<string, string>; body?: string }) =>
  Effect.forkScoped(Effect.forever(Effect.gen(function*() {
    const req = yield* next(api)
    if (!("Http" in req.body)) return
    const out = handler(req)
    answer(api, out.status, out.headers ?? {}, out.body)
  })))

export const baseUrl = Effect.map(HttpServer, (s) => s.url)

/** One raw HTTP exchange over TCP (for requests fetch will not send); the first response text. */
export const raw = (port: number, bytes: string | Buffer, host = "127.0.0.1") =>
  Effect.promise(() =>
    new Promise<string>((resolve) => {
      const socket = net.connect(port, host)
      let out = ""
      socket.on("data", (d) => {
        out += d.toString("latin1")
      })
      socket.on("error", () => resolve(out))
      socket.on("close", () => resolve(out))
      socket.on("connect", () => socket.write(bytes))
      setTimeout(() => {
        socket.destroy()
        resolve(out)
      }, 3000)
    })
  )

export const nodeName = Effect.map(Identity, (i) => i.name)
