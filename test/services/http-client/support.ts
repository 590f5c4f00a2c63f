/**
 * What the http-client tests run on: the real kernel (real LMDB in a temp dir) with the
 * module, real HTTP/1.1, h2c and WebSocket servers on loopback, and processes played by
 * native sessions that send requests and read answers and pushes as an app would.
 */
import { Context, Deferred, Duration, Effect, Layer, Queue, Result, type Scope } from "effect"
import * as http from "node:http"
import * as http2 from "node:http2"
import type { AddressInfo } from "node:net"
import { WebSocketServer } from "ws"
import { testKernel } from "../../../layers/TestLive.ts"
import { Address, address } from "../../../src/Ids.ts"
import * as Json from "../../../src/Json.ts"
import { Kernel, messagingCap } from "../../../src/Kernel.ts"
import type { LazyLoadBlob } from "../../../src/Message.ts"
import { MAX_MESSAGE_BYTES, request } from "../../../src/Message.ts"
import type { Printed } from "../../../src/Printout.ts"
import { HttpClient } from "../../../services/http-client/index.ts"

export const NODE = "client-test.os"
export const HTTP_CLIENT = "http-client:distro:sys"
export const enc = (s: string) => new TextEncoder().encode(s)
export const dec = (b: Uint8Array | undefined) => new TextDecoder().decode(b)

// --- servers ---

export interface Hit {
  readonly method: string
  readonly url: string
  readonly httpVersion: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

export interface HttpServer {
  readonly port: number
  readonly host: string
  readonly hits: Array<Hit>
  /** Requests to `/hang` whose connection has closed (aborted by the client). */
  readonly hangsClosed: Array<string>
  readonly base: string
}

export interface WsConnection {
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly received: Array<{ readonly data: string; readonly isBinary: boolean }>
  closed: { readonly code: number } | undefined
}

export interface WsServer {
  readonly port: number
  readonly host: string
  readonly connections: Array<WsConnection>
  readonly base: string
}

const readAll = (req: http.IncomingMessage | http2.Http2ServerRequest): Promise<string> =>
  new Promise((resolve) => {
    const chunks: Array<Buffer> = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    req.on("error", () => resolve(""))
  })

const listen = (server: http.Server | http2.Http2Server | WebSocketServer, host: string) =>
  Effect.callback<number>((resume) => {
    const s = server as http.Server
    s.listen(0, host, () => resume(Effect.succeed((s.address() as AddressInfo).port)))
  })

/** An HTTP/1.1 test server with the routes the tests use; closed with the scope. */
export const httpServer = (host = "127.0.0.1"): Effect.Effect<HttpServer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const hits: Array<Hit> = []
    const hangsClosed: Array<string> = []
    let base = ""
    const server = http.createServer((req, res) => {
      res.on("error", () => {})
      const url = new URL(req.url ?? "/", "http://x")
      if (url.pathname === "/hang") {
        hits.push({ method: req.method ?? "", url: req.url ?? "", httpVersion: req.httpVersion, headers: req.headers, body: "" })
        res.on("close", () => hangsClosed.push(req.url ?? ""))
        return
      }
      void readAll(req).then((body) => {
        hits.push({ method: req.method ?? "", url: req.url ?? "", httpVersion: req.httpVersion, headers: req.headers, body })
        const n = Number(url.searchParams.get("n") ?? "0")
        switch (url.pathname) {
          case "/echo":
            res.setHeader("x-custom-thing", "yes")
            res.setHeader("content-type", "application/json")
            res.setHeader("set-cookie", ["a=1", "b=2"])
            res.setHeader("x-latin", Buffer.from("caf\xe9", "latin1").toString("latin1"))
            return res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body, httpVersion: req.httpVersion }))
          case "/status":
            res.statusCode = n
            return res.end(`status ${n}`)
          case "/big":
            // Declared: refused from the header, before the body is read.
            res.setHeader("content-length", String(MAX_MESSAGE_BYTES + 1))
            return res.end(Buffer.alloc(MAX_MESSAGE_BYTES + 1, 7))
          case "/big-chunked": {
            // Undeclared: cut off while reading.
            const chunk = Buffer.alloc(1024 * 1024, 7)
            for (let i = 0; i < 11; i++) res.write(chunk)
            return res.end()
          }
          case "/fits": {
            res.setHeader("content-type", "application/octet-stream")
            return res.end(Buffer.alloc(n, 9))
          }
          case "/huge-header":
            res.setHeader("x-huge", "h".repeat(100_000))
            return res.end("x")
          case "/redirect":
            res.statusCode = Number(url.searchParams.get("code") ?? "302")
            res.setHeader("location", n > 0 ? `/redirect?n=${n - 1}&code=${res.statusCode}` : "/echo")
            return res.end()
          case "/loop":
            res.statusCode = 302
            res.setHeader("location", "/loop")
            return res.end()
          case "/away":
            res.statusCode = 302
            res.setHeader("location", url.searchParams.get("to") ?? "/echo")
            return res.end()
          default:
            res.statusCode = 404
            return res.end("no such route")
        }
      })
    })
    yield* Effect.acquireRelease(Effect.void, () =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      }))
    const port = yield* listen(server, host)
    base = `http://${host}:${port}`
    return { port, host, hits, hangsClosed, base }
  })

/** An h2c (HTTP/2 over plain TCP, prior knowledge) server answering with the version it saw. */
export const h2cServer: Effect.Effect<{ readonly port: number }, never, Scope.Scope> = Effect.gen(function*() {
  const server = http2.createServer((req, res) => {
    void readAll(req).then((body) => {
      res.setHeader("x-h2", "yes")
      res.end(JSON.stringify({ httpVersion: req.httpVersion, method: req.method, body }))
    })
  })
  yield* Effect.acquireRelease(Effect.void, () => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void))))
  return { port: yield* listen(server, "127.0.0.1") }
})

/**
 * A WebSocket server: `/echo` echoes (and obeys `ping-me`, `close-me`, `flood:<n>`),
 * `/flood?n=` floods at once, `/tick` sends every 50 ms, `/silent` sends nothing, `/big`
 * sends one frame too large for a message.
 */
export const wsServer = (host = "127.0.0.1"): Effect.Effect<WsServer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const connections: Array<WsConnection> = []
    const wss = new WebSocketServer({ noServer: true })
    const server = http.createServer()
    server.on("upgrade", (req, socket, head) => {
      wss.handleUpgrade(req, socket, head, (ws) => {
        const url = new URL(req.url ?? "/", "http://x")
        const conn: WsConnection = { url: req.url ?? "", headers: req.headers, received: [], closed: undefined }
        connections.push(conn)
        ws.on("error", () => {})
        ws.on("close", (code) => {
          conn.closed = { code }
        })
        ws.on("message", (data, isBinary) => {
          const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)
          const text = bytes.toString("utf8")
          conn.received.push({ data: isBinary ? bytes.toString("hex") : text, isBinary })
          if (url.pathname !== "/echo") return
          if (!isBinary && text === "ping-me") return ws.ping()
          if (!isBinary && text === "close-me") return ws.close(4000, "bye")
          if (!isBinary && text.startsWith("flood:")) {
            for (let i = 0; i < Number(text.slice(6)); i++) ws.send(String(i))
            return
          }
          ws.send(bytes, { binary: isBinary })
        })
        if (url.pathname === "/flood") {
          const n = Number(url.searchParams.get("n") ?? "100")
          for (let i = 0; i < n; i++) ws.send(String(i))
        }
        if (url.pathname === "/tick") {
          const timer = setInterval(() => ws.readyState === ws.OPEN && ws.send("tick"), 50)
          ws.on("close", () => clearInterval(timer))
        }
        if (url.pathname === "/big") ws.send(Buffer.alloc(MAX_MESSAGE_BYTES, 1))
      })
    })
    yield* Effect.acquireRelease(Effect.void, () =>
      Effect.callback<void>((resume) => {
        for (const c of wss.clients) c.terminate()
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      }))
    const port = yield* listen(server, host)
    return { port, host, connections, base: `ws://${host}:${port}` }
  })

/** A port nothing listens on (a server bound, then closed). */
export const deadPort: Effect.Effect<number> = Effect.scoped(Effect.map(httpServer(), (s) => s.port))

export class Servers extends Context.Service<Servers, {
  readonly http: HttpServer
  /** A second host (127.0.0.2) for allow-list and redirect tests. */
  readonly other: HttpServer
  readonly h2c: { readonly port: number }
  readonly ws: WsServer
  readonly otherWs: WsServer
  readonly deadPort: number
}>()("test/http-client/Servers") {
  static readonly layer = Layer.effect(
    Servers,
    Effect.gen(function*() {
      return Servers.of({
        http: yield* httpServer(),
        other: yield* httpServer("127.0.0.2"),
        h2c: yield* h2cServer,
        ws: yield* wsServer(),
        otherWs: yield* wsServer("127.0.0.2"),
        deadPort: yield* deadPort
      })
    })
  )
}

/**
 * The kernel with the module (options may read the servers' ports), the servers, and
 * the kernel's printouts (`lines`).
 */
export const clientNode = (options: (s: Servers["Service"]) => HttpClient.HttpClientOptions = () => ({})) => {
  const kernel = testKernel({ node: NODE })
  const module = Layer.unwrap(Effect.map(Servers, (s) => HttpClient.layer(options(s))))
  return {
    layer: module.pipe(Layer.provideMerge(kernel.layer), Layer.provideMerge(Servers.layer)),
    lines: kernel.lines as ReadonlyArray<Printed>
  }
}

// --- processes ---

export interface Answer {
  readonly body: unknown
  readonly raw: Uint8Array
  readonly blob: LazyLoadBlob | undefined
}

export interface Push {
  readonly body: unknown
  readonly blob: LazyLoadBlob | undefined
}

export interface Proc {
  readonly id: string
  /** Sends an action expecting a response within `timeout` s; the answer or `SendError:<kind>`. */
  readonly call: (action: unknown, options?: { readonly blob?: Uint8Array; readonly timeout?: number }) => Effect.Effect<Answer | `SendError:${string}`>
  /** Sends without expecting a response. */
  readonly send: (action: unknown, blob?: Uint8Array) => Effect.Effect<void>
  /** The next request the module sent this process (a WebSocket push or close). */
  readonly nextPush: (timeout?: Duration.Input) => Effect.Effect<Push | undefined>
  /** Pushes waiting, without waiting. */
  readonly pendingPushes: () => number
  /** Stops reading (messages stay in the kernel mailbox) until `resume`. */
  readonly pause: () => void
  readonly resume: () => void
}

/** A local process (a native session) that may message http-client; gone when the scope closes. */
export const proc = (id: string): Effect.Effect<Proc, never, Kernel | Scope.Scope> =>
  Effect.gen(function*() {
    const kernel = yield* Kernel
    const api = yield* kernel.session(id, { capabilities: [messagingCap(kernel.node, HTTP_CLIENT)], public: true })
    const target = address(`${kernel.node}@${HTTP_CLIENT}`)
    const pending = new Map<string, Deferred.Deferred<Answer | `SendError:${string}`>>()
    const pushes = yield* Queue.unbounded<Push>()
    let next = 0
    let gate = yield* Deferred.make<void>()
    yield* Deferred.succeed(gate, undefined)
    yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
      yield* Deferred.await(gate)
      const item = yield* api.receiveEffect
      if (item._tag === "SendError") {
        const key = dec(item.context)
        const d = pending.get(key)
        pending.delete(key)
        if (d !== undefined) Deferred.doneUnsafe(d, Effect.succeed(`SendError:${item.error.kind}` as const))
        return
      }
      const parsed = Json.parseBytes(item.message.body)
      const body = Result.isSuccess(parsed) ? parsed.success : dec(item.message.body)
      if (item.message._tag === "Response") {
        const key = dec(item.message.context)
        const d = pending.get(key)
        pending.delete(key)
        if (d !== undefined) Deferred.doneUnsafe(d, Effect.succeed({ body, raw: item.message.body, blob: api.getBlob() }))
        return
      }
      Queue.offerUnsafe(pushes, { body, blob: api.getBlob() })
    })))
    return {
      id,
      call: (action, options = {}) =>
        Effect.gen(function*() {
          const key = String(next++)
          const d = yield* Deferred.make<Answer | `SendError:${string}`>()
          pending.set(key, d)
          const body = action instanceof Uint8Array ? action : Json.toBytes(action)
          const refused = api.sendRequest(
            target,
            request({ body, expectsResponse: BigInt(options.timeout ?? 5) }),
            enc(key),
            options.blob === undefined ? undefined : { mime: undefined, bytes: options.blob }
          )
          if (refused !== undefined) return yield* Effect.die(refused)
          return yield* Deferred.await(d)
        }),
      send: (action, blob) =>
        Effect.sync(() => {
          api.sendRequest(target, request({ body: Json.toBytes(action) }), undefined, blob === undefined ? undefined : { mime: undefined, bytes: blob })
        }),
      nextPush: (timeout = "3 seconds") => Queue.take(pushes).pipe(Effect.timeoutOption(timeout), Effect.map((o) => o._tag === "Some" ? o.value : undefined)),
      pendingPushes: () => Queue.sizeUnsafe(pushes),
      pause: () => {
        gate = Deferred.makeUnsafe<void>()
      },
      resume: () => {
        Deferred.doneUnsafe(gate, Effect.void)
      }
    } satisfies Proc
  })

/** The answer's body (fails the test on a SendError). */
export const bodyOf = (a: Answer | `SendError:${string}`): unknown => typeof a === "string" ? a : a.body

/** Waits until `check` holds, polling every 20 ms, at most `within`. */
export const eventually = (check: () => boolean, within: Duration.Input = "3 seconds") =>
  Effect.gen(function*() {
    const deadline = Duration.toMillis(Duration.fromInputUnsafe(within))
    for (let waited = 0; waited < deadline; waited += 20) {
      if (check()) return true
      yield* Effect.sleep("20 millis")
    }
    return check()
  })

/** The module's own address, as remote senders name it. */
export const moduleAddress = new Address({ node: NODE, process: address(`${NODE}@${HTTP_CLIENT}`).process }, { disableChecks: true })
