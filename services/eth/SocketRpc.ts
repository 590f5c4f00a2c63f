/**
 * A provider's WebSocket: JSON-RPC requests and `eth_subscribe` over one socket, through
 * viem's socket RPC client (request/response pairing, subscription routing) on a socket
 * opened here (Node's WebSocket, bounded open, BigInt-safe JSON both ways).
 *
 * - One connection at a time, opened on first use; callers arriving while it opens share
 *   the attempt. Each open is bounded by `connectMillis` whatever the callers' own
 *   deadlines.
 * - A connection is **lost** when the socket closes or errors, when a frame is not a
 *   JSON object (the provider is talking garbage), or when a heartbeat (`eth_chainId`
 *   every `heartbeatMillis`) goes unanswered for `heartbeatTimeoutMillis` (a half-open
 *   TCP connection never closes by itself). Pending requests then fail at once;
 *   `lost` completes, which is how subscriptions learn to re-subscribe. The next use
 *   opens a new connection. viem's own reconnect is off: reconnecting and
 *   re-subscribing is the module's job, without a cap on attempts.
 * - Each connection is its own viem client (a unique cache key): viem keys clients by
 *   URL otherwise, so two modules (or two layers in one process) would share a socket
 *   and close it under each other.
 */
import { Clock, Deferred, Effect } from "effect"
import { SocketClosedError, TimeoutError } from "viem"
import { type GetSocketParameters, getSocketRpcClient, type Socket, type SocketRpcClient } from "viem/utils"
import * as Json from "../../src/Json.ts"
import { type AttemptError, ProviderDown, readAnswer, RpcMalformed, RpcTimedOut } from "./RpcErrors.ts"

/** A frame that is not a JSON object. */
class MalformedFrame extends Error {}

export interface SocketOptions {
  readonly connectMillis: number
  readonly heartbeatMillis: number
  readonly heartbeatTimeoutMillis: number
}

export interface Connection {
  readonly client: SocketRpcClient<{}>
  /** Completes when this connection is lost (never fails). */
  readonly lost: Effect.Effect<void>
  readonly isLost: () => boolean
  /** Why it was lost, once it is. */
  readonly lostBecause: () => string | undefined
  /** Closes it now, as lost for `reason`. */
  readonly drop: (reason: string) => void
}

export interface SocketLink {
  readonly url: string
  /** The open connection, opening one first if needed, within `timeoutMillis`. */
  readonly connection: (timeoutMillis: number) => Effect.Effect<Connection, ProviderDown | RpcTimedOut>
  /** `method(params)` over the connection, within `timeoutMillis`. */
  readonly request: (method: string, params: unknown, timeoutMillis: number) => Effect.Effect<unknown, AttemptError>
  /** Closes the socket for good; later uses fail with `ProviderDown`. */
  readonly close: () => void
}

let serial = 0

const reasonOf = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "object" && cause !== null && "type" in cause ? `socket ${String((cause as { type: unknown }).type)}` : String(cause)

/** Opens a WebSocket to `url`, resolving once it is open; `signal` aborts a pending open. */
const openSocket = (url: string, signal: AbortSignal, h: GetSocketParameters): Promise<Socket<{}>> =>
  new Promise((resolve, reject) => {
    let ws: WebSocket
    try {
      ws = new WebSocket(url)
    } catch (e) {
      reject(e)
      return
    }
    let state: "opening" | "open" | "failed" = "opening"
    const refuse = (reason: unknown) => {
      if (state !== "opening") return
      state = "failed"
      signal.removeEventListener("abort", onAbort)
      try {
        ws.close()
      } catch {
        // not open yet: closing is best effort
      }
      reject(reason)
    }
    const onAbort = () => refuse(signal.reason ?? new Error("aborted"))
    if (signal.aborted) return onAbort()
    signal.addEventListener("abort", onAbort, { once: true })
    ws.addEventListener("open", () => {
      if (state !== "opening") return
      state = "open"
      signal.removeEventListener("abort", onAbort)
      h.onOpen()
      resolve({
        close: () => ws.close(),
        request: ({ body }) => ws.send(Json.stringify(body))
      })
    })
    ws.addEventListener("error", () => {
      if (state === "open") h.onError(new Error("socket error"))
      else refuse(new Error("could not connect"))
    })
    ws.addEventListener("close", (event) => {
      if (state === "open") h.onClose()
      else refuse(new Error(`closed while connecting (code ${event.code})`))
    })
    ws.addEventListener("message", (event) => {
      if (state !== "open") return
      if (typeof event.data !== "string") return h.onError(new MalformedFrame("a binary frame"))
      const parsed = Json.parse(event.data)
      if (parsed._tag === "Failure") return h.onError(new MalformedFrame("a frame that is not JSON"))
      const value = parsed.success
      if (typeof value !== "object" || value === null || Array.isArray(value)) return h.onError(new MalformedFrame("a frame that is not a JSON object"))
      h.onResponse(value as never)
    })
  })

const classify = (url: string, e: unknown): AttemptError => {
  if (e instanceof MalformedFrame) return new RpcMalformed({ url, reason: e.message })
  if (e instanceof TimeoutError) return new RpcTimedOut({ url })
  if (e instanceof SocketClosedError) return new ProviderDown({ url, reason: "the socket closed" })
  return new ProviderDown({ url, reason: reasonOf(e) })
}

export const make = (url: string, options: SocketOptions): SocketLink => {
  let current: Connection | undefined
  let opening: Promise<Connection> | undefined
  let closed = false
  const closing = new AbortController()

  const open = async (): Promise<Connection> => {
    const lost = Deferred.makeUnsafe<void>()
    let because: string | undefined
    let heartbeat: ReturnType<typeof setInterval> | undefined
    let client: SocketRpcClient<{}> | undefined
    let made: Connection | undefined
    const markLost = (reason: string) => {
      if (because !== undefined) return
      because = reason
      if (heartbeat !== undefined) clearInterval(heartbeat)
      Deferred.doneUnsafe(lost, Effect.void)
      if (made !== undefined && current === made) current = undefined
      client?.close()
    }
    const signal = AbortSignal.any([closing.signal, AbortSignal.timeout(options.connectMillis)])
    client = await getSocketRpcClient<{}>({
      key: `eth-${++serial}`,
      url,
      reconnect: false,
      keepAlive: false,
      getSocket: (h) =>
        openSocket(url, signal, {
          onOpen: h.onOpen,
          onResponse: h.onResponse,
          onClose: () => {
            h.onClose()
            markLost("the socket closed")
          },
          onError: (e) => {
            h.onError(e)
            markLost(e instanceof MalformedFrame ? `the provider sent ${e.message}` : reasonOf(e))
          }
        })
    })
    const c = client
    const connection: Connection = {
      client: c,
      lost: Deferred.await(lost),
      isLost: () => because !== undefined,
      lostBecause: () => because,
      drop: markLost
    }
    made = connection
    if (closed) markLost("the provider was removed")
    if (because !== undefined) throw new Error(because)
    heartbeat = setInterval(() => {
      c.requestAsync({ body: { method: "eth_chainId" }, timeout: options.heartbeatTimeoutMillis }).catch(() =>
        markLost(`no answer to a heartbeat within ${options.heartbeatTimeoutMillis} ms`)
      )
    }, options.heartbeatMillis)
    heartbeat.unref()
    current = connection
    return connection
  }

  const connection = (timeoutMillis: number): Effect.Effect<Connection, ProviderDown | RpcTimedOut> =>
    Effect.suspend(() => {
      if (closed) return Effect.fail(new ProviderDown({ url, reason: "the provider was removed" }))
      if (current !== undefined && !current.isLost()) return Effect.succeed(current)
      if (opening === undefined) {
        const attempt = open()
        opening = attempt
        const clear = () => {
          if (opening === attempt) opening = undefined
        }
        attempt.then(clear, clear)
      }
      const attempt = opening
      return Effect.tryPromise({
        try: () => attempt,
        catch: (e) =>
          e instanceof DOMException && e.name === "TimeoutError"
            ? new ProviderDown({ url, reason: `no connection within ${options.connectMillis} ms` })
            : new ProviderDown({ url, reason: reasonOf(e) })
      }).pipe(Effect.timeoutOrElse({
        duration: Math.max(0, timeoutMillis),
        orElse: () => Effect.fail(new RpcTimedOut({ url }))
      }))
    })

  /** One exchange on an open connection (no Effect machinery beyond one callback: the hot path). */
  const exchange = (c: Connection, method: string, params: unknown, timeoutMillis: number): Effect.Effect<unknown, AttemptError> =>
    Effect.callback<unknown, AttemptError>((resume) => {
      c.client.requestAsync({ body: { method, params }, timeout: Math.max(1, Math.floor(timeoutMillis)) }).then(
        (answer) => {
          const read = readAnswer(url, answer)
          resume(read.ok ? Effect.succeed(read.value) : Effect.fail(read.error))
        },
        (e) => resume(Effect.fail(classify(url, e)))
      )
    })

  const request = (method: string, params: unknown, timeoutMillis: number): Effect.Effect<unknown, AttemptError> => {
    if (current !== undefined && !current.isLost() && !closed) return exchange(current, method, params, timeoutMillis)
    return Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      const c = yield* connection(timeoutMillis)
      return yield* exchange(c, method, params, timeoutMillis - ((yield* Clock.currentTimeMillis) - started))
    })
  }

  return {
    url,
    connection,
    request,
    close: () => {
      if (closed) return
      closed = true
      closing.abort(new Error("the provider was removed"))
      current?.drop("the provider was removed")
      current = undefined
    }
  }
}

/**
 * `eth_subscribe` with `params` on `c`: the provider's subscription id. `onEvent` gets
 * each notification's `result` from then on, until the connection is lost.
 */
export const subscribe = (
  url: string,
  c: Connection,
  params: ReadonlyArray<unknown>,
  onEvent: (result: unknown) => void,
  timeoutMillis: number
): Effect.Effect<string, AttemptError> =>
  Effect.callback<string, AttemptError>((resume) => {
    let settled = false
    c.client.request({
      body: { method: "eth_subscribe", params },
      onError: (e) => {
        if (settled) return
        settled = true
        resume(Effect.fail(classify(url, e)))
      },
      onResponse: (answer) => {
        if (!settled) {
          settled = true
          const read = readAnswer(url, answer)
          if (!read.ok) return resume(Effect.fail(read.error))
          if (typeof read.value !== "string") {
            return resume(Effect.fail(new RpcMalformed({ url, reason: "eth_subscribe answered no subscription id" })))
          }
          return resume(Effect.succeed(read.value))
        }
        const note = answer as { method?: unknown; params?: { result?: unknown } }
        if (note.method === "eth_subscription" && note.params !== undefined) onEvent(note.params.result)
      }
    })
  }).pipe(Effect.timeoutOrElse({ duration: Math.max(0, timeoutMillis), orElse: () => Effect.fail(new RpcTimedOut({ url })) }))

/** `eth_unsubscribe`, best effort (nothing waits for the answer). */
export const unsubscribe = (c: Connection, id: string): void => {
  if (c.isLost()) return
  try {
    c.client.request({ body: { method: "eth_unsubscribe", params: [id] }, onResponse: () => {}, onError: () => {} })
  } catch {
    // the socket went away meanwhile
  }
}
