/**
 * What the eth tests run on: the real kernel (real LMDB in a temp dir or a given home)
 * with the module; real anvils from npm on free ports (stoppable and restartable on the
 * same port); a TCP server that accepts and never answers; an HTTP server that answers
 * garbage; a WebSocket server that opens and answers only some methods; processes
 * played by native sessions, as an app would.
 */
import { Deferred, Duration, Effect, Exit, Layer, Queue, Result, Scope } from "effect"
import * as crypto from "node:crypto"
import * as http from "node:http"
import * as net from "node:net"
import type { AddressInfo } from "node:net"
import { testKernel } from "../../../layers/TestLive.ts"
import { address } from "../../../src/Ids.ts"
import * as Json from "../../../src/Json.ts"
import { Kernel, messagingCap } from "../../../src/Kernel.ts"
import { type Capability, request } from "../../../src/Message.ts"
import type { Printed } from "../../../src/Printout.ts"
import { freePort, startAnvil } from "../../../services/chain/index.ts"
import { Eth, PROCESS } from "../../../services/eth/index.ts"

export const NODE = "eth-test.os"
export const CHAIN_ID = 31337
export const enc = (s: string) => new TextEncoder().encode(s)
export const dec = (b: Uint8Array | undefined) => new TextDecoder().decode(b)

// --- anvil ---

export interface TestAnvil {
  readonly port: number
  readonly url: string
  readonly wsUrl: string
  /** Stops it (the port goes quiet). */
  readonly stop: Effect.Effect<void>
  /** Starts it again on the same port (a fresh chain). */
  readonly start: Effect.Effect<void>
}

/** An anvil on a free port, attached, stopped with the scope. */
export const testAnvil: Effect.Effect<TestAnvil, never, Scope.Scope> = Effect.gen(function*() {
  const port = yield* freePort
  let running: Scope.Closeable | undefined
  const stop = Effect.suspend(() => {
    const s = running
    running = undefined
    return s === undefined ? Effect.void : Scope.close(s, Exit.void)
  })
  const start = Effect.gen(function*() {
    yield* stop
    const s = yield* Scope.make()
    yield* startAnvil({ port, install: false, chainId: CHAIN_ID }).pipe(Scope.provide(s), Effect.orDie)
    running = s
  })
  yield* Effect.addFinalizer(() => stop)
  yield* start
  return { port, url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}`, stop, start }
})

/** A JSON-RPC call straight to anvil (mining, funding), over viem-free fetch. */
export const anvilRpc = (url: string, method: string, params: ReadonlyArray<unknown> = []) =>
  Effect.promise(async () => {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params })
    })
    return ((await res.json()) as { result: unknown }).result
  })

// --- misbehaving providers ---

const listening = (server: net.Server | http.Server) =>
  Effect.callback<number>((resume) => {
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as AddressInfo).port)))
  })

/** A TCP server that accepts connections and never sends a byte. */
export const silentServer: Effect.Effect<{ readonly port: number; readonly accepted: () => number }, never, Scope.Scope> =
  Effect.gen(function*() {
    const sockets = new Set<net.Socket>()
    let accepted = 0
    const server = net.createServer((socket) => {
      accepted++
      sockets.add(socket)
      socket.on("error", () => {})
      socket.on("close", () => sockets.delete(socket))
    })
    yield* Effect.addFinalizer(() =>
      Effect.callback<void>((resume) => {
        for (const s of sockets) s.destroy()
        server.close(() => resume(Effect.void))
      })
    )
    return { port: yield* listening(server), accepted: () => accepted }
  })

/** An HTTP server answering every POST with `body` (status 200, JSON content type when asked). */
export const garbageServer = (body: string, contentType = "text/plain"): Effect.Effect<{ readonly port: number }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const server = http.createServer((req, res) => {
      req.resume()
      req.on("end", () => {
        res.setHeader("content-type", contentType)
        res.end(body)
      })
    })
    yield* Effect.addFinalizer(() =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
    )
    return { port: yield* listening(server) }
  })

/**
 * A WebSocket server (the handshake and text frames written out here) that opens and
 * then answers by method: `answers[method]` is `[delay in ms, result]`; any other
 * method is never answered. Every request it reads is kept in `received`.
 */
export const selectiveSocketServer = (
  answers: Record<string, readonly [number, unknown]>
): Effect.Effect<{ readonly port: number; readonly received: () => ReadonlyArray<{ id: unknown; method: unknown }> }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const received: Array<{ id: unknown; method: unknown }> = []
    const sockets = new Set<net.Socket>()
    const timers = new Set<ReturnType<typeof setTimeout>>()
    const server = http.createServer((_req, res) => {
      res.statusCode = 426
      res.end()
    })
    server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket) => {
      sockets.add(socket)
      socket.on("error", () => {})
      socket.on("close", () => sockets.delete(socket))
      const accept = crypto.createHash("sha1").update(`${req.headers["sec-websocket-key"]}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64")
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
      const sendText = (text: string) => {
        const payload = Buffer.from(text)
        const header = payload.length < 126
          ? Buffer.from([0x81, payload.length])
          : Buffer.from([0x81, 126, payload.length >> 8, payload.length & 0xff])
        if (!socket.destroyed) socket.write(Buffer.concat([header, payload]))
      }
      const onText = (text: string) => {
        const msg = JSON.parse(text) as { id: unknown; method: unknown }
        received.push({ id: msg.id, method: msg.method })
        const answer = typeof msg.method === "string" ? answers[msg.method] : undefined
        if (answer === undefined) return
        const reply = () => sendText(JSON.stringify({ jsonrpc: "2.0", id: msg.id, result: answer[1] }))
        if (answer[0] === 0) return reply()
        const t = setTimeout(() => {
          timers.delete(t)
          reply()
        }, answer[0])
        timers.add(t)
      }
      let buf = Buffer.alloc(0)
      socket.on("data", (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk])
        while (buf.length >= 2) {
          const op = buf[0]! & 0x0f
          let len = buf[1]! & 0x7f
          let off = 2
          if (len === 126) {
            if (buf.length < 4) return
            len = buf.readUInt16BE(2)
            off = 4
          } else if (len === 127) {
            if (buf.length < 10) return
            len = Number(buf.readBigUInt64BE(2))
            off = 10
          }
          const masked = (buf[1]! & 0x80) !== 0
          const end = off + (masked ? 4 : 0) + len
          if (buf.length < end) return
          const payload = Buffer.from(buf.subarray(end - len, end))
          if (masked) for (let i = 0; i < len; i++) payload[i] = payload[i]! ^ buf[off + (i & 3)]!
          buf = buf.subarray(end)
          if (op === 1) onText(payload.toString("utf8"))
        }
      })
    })
    yield* Effect.addFinalizer(() =>
      Effect.callback<void>((resume) => {
        for (const t of timers) clearTimeout(t)
        for (const s of sockets) s.destroy()
        server.close(() => resume(Effect.void))
      })
    )
    return { port: yield* listening(server), received: () => received }
  })

// --- the node ---

/** The kernel with the module over `home` (a fresh temp dir when undefined), and its printouts. */
export const ethNode = (options: Eth.EthOptions, home?: string) => {
  const kernel = testKernel({ node: NODE, ...(home === undefined ? {} : { home }) })
  return {
    layer: Eth.layer(options).pipe(Layer.provideMerge(kernel.layer)),
    lines: kernel.lines as ReadonlyArray<Printed>
  }
}

// --- processes ---

export interface Push {
  readonly body: unknown
}

export interface Proc {
  readonly id: string
  /** Sends an action expecting a response within `timeout` s (default 10); the parsed answer or `SendError:<kind>`. */
  readonly call: (action: unknown, options?: { readonly timeout?: number }) => Effect.Effect<unknown>
  /** Sends without expecting a response. */
  readonly send: (action: unknown) => Effect.Effect<void>
  /** The next request the module sent this process (a subscription event). */
  readonly nextPush: (timeout?: Duration.Input) => Effect.Effect<Push | undefined>
  readonly drainPushes: () => Array<Push>
}

/** A local process that may message eth, holding `caps` too; gone when the scope closes. */
export const proc = (id: string, caps: ReadonlyArray<Capability> = []): Effect.Effect<Proc, never, Kernel | Scope.Scope> =>
  Effect.gen(function*() {
    const kernel = yield* Kernel
    const api = yield* kernel.session(id, { capabilities: [messagingCap(kernel.node, PROCESS)], public: true })
    if (caps.length > 0) yield* kernel.grant(id, caps)
    const target = address(`${kernel.node}@${PROCESS}`)
    const pending = new Map<string, Deferred.Deferred<unknown>>()
    const pushes = yield* Queue.unbounded<Push>()
    let next = 0
    yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
      const item = yield* api.receiveEffect
      if (item._tag === "SendError") {
        const key = dec(item.context)
        const d = pending.get(key)
        pending.delete(key)
        if (d !== undefined) Deferred.doneUnsafe(d, Effect.succeed(`SendError:${item.error.kind}`))
        return
      }
      const parsed = Json.parseBytes(item.message.body)
      const body = Result.isSuccess(parsed) ? parsed.success : dec(item.message.body)
      if (item.message._tag === "Response") {
        const key = dec(item.message.context)
        const d = pending.get(key)
        pending.delete(key)
        if (d !== undefined) Deferred.doneUnsafe(d, Effect.succeed(body))
        return
      }
      Queue.offerUnsafe(pushes, { body })
    })))
    return {
      id,
      call: (action, options = {}) =>
        Effect.gen(function*() {
          const key = String(next++)
          const d = yield* Deferred.make<unknown>()
          pending.set(key, d)
          const body = action instanceof Uint8Array ? action : Json.toBytes(action)
          const refused = api.sendRequest(target, request({ body, expectsResponse: BigInt(options.timeout ?? 10) }), enc(key), undefined)
          if (refused !== undefined) return yield* Effect.die(refused)
          return yield* Deferred.await(d)
        }),
      send: (action) =>
        Effect.sync(() => {
          api.sendRequest(target, request({ body: Json.toBytes(action) }), undefined, undefined)
        }),
      nextPush: (timeout = "5 seconds") =>
        Queue.take(pushes).pipe(Effect.timeoutOption(timeout), Effect.map((o) => (o._tag === "Some" ? o.value : undefined))),
      drainPushes: () => {
        const out: Array<Push> = []
        for (let e = Queue.takeUnsafe(pushes); e !== undefined && e._tag === "Success"; e = Queue.takeUnsafe(pushes)) out.push(e.value)
        return out
      }
    } satisfies Proc
  })

/** `{"Request":{chain_id, method, params}}`. */
export const rpc = (method: string, params: unknown = [], chainId: number = CHAIN_ID) => ({ Request: { chain_id: chainId, method, params } })

/** The value of a `{"Response":{"value":…}}` answer (fails the test otherwise). */
export const valueOf = (answer: unknown): unknown => {
  const a = answer as { Response?: { value: unknown } }
  if (a.Response === undefined) throw new Error(`expected a Response, got ${Json.stringify(answer)}`)
  return a.Response.value
}

/** Waits until `check` holds, polling every 20 ms, at most `within`. */
export const eventually = (check: () => boolean, within: Duration.Input = "5 seconds") =>
  Effect.gen(function*() {
    const deadline = Duration.toMillis(Duration.fromInputUnsafe(within))
    for (let waited = 0; waited < deadline; waited += 20) {
      if (check()) return true
      yield* Effect.sleep("20 millis")
    }
    return check()
  })
