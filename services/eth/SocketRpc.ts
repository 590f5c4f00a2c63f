/**
 * A provider's WebSocket: JSON-RPC requests and `eth_subscribe` over one socket opened
 * here (Node's WebSocket, bounded open, BigInt-safe JSON both ways).
 *
 * - `Request`s (the hot path) are written on the socket directly and paired with their
 *   answers here: ids from 2^40 up (viem's own ids count up from 0 and never get
 *   there), the answer handed to a callback. viem's `requestAsync` (a promise, an async
 *   wrapper, an `AbortController`, a timer and a spread per call) cost more than the
 *   rest of the exchange on our side. Their bounds share one timer per connection,
 *   armed for the earliest deadline: a timer set and cleared per request was ~3% of
 *   the round trip.
 * - Subscriptions (`eth_subscribe`, notification routing), `eth_unsubscribe` and the
 *   heartbeat go through viem's socket RPC client on the same socket: every frame that
 *   is not the answer to a direct request is handed to it.
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
import { Deferred, Effect } from "effect"
import { SocketClosedError, TimeoutError } from "viem"
import { type GetSocketParameters, getSocketRpcClient, type Socket, type SocketRpcClient } from "viem/utils"
import * as Json from "../../src/Json.ts"
import { type Attempt, type AttemptError, ProviderDown, readAnswer, RpcMalformed, RpcTimedOut } from "./RpcErrors.ts"
import { stringifyFast } from "./Wire.ts"

/** A frame that is not a JSON object. */
class MalformedFrame extends Error {}

export interface SocketOptions {
  readonly connectMillis: number
  readonly heartbeatMillis: number
  readonly heartbeatTimeoutMillis: number
}

/** Sends `method(params)` within `timeoutMillis`; `done` gets the outcome once. Returns a cancel. */
export type Send = (method: string, params: unknown, timeoutMillis: number, done: (r: Attempt) => void) => () => void

/** The socket as viem's client holds it, plus raw text out for direct requests. */
type DirectSocket = { readonly sendText: (text: string) => void }

export interface Connection {
  readonly client: SocketRpcClient<DirectSocket>
  /** A direct request on this connection (see the header); fails at once if it is lost. */
  readonly call: Send
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
  /** `method(params)` over the connection (opened first if needed), within `timeoutMillis`. */
  readonly send: Send
  /** Closes the socket for good; later uses fail with `ProviderDown`. */
  readonly close: () => void
}

let serial = 0

const reasonOf = (cause: unknown): string =>
  cause instanceof Error ? cause.message : typeof cause === "object" && cause !== null && "type" in cause ? `socket ${String((cause as { type: unknown }).type)}` : String(cause)

/**
 * Opens a WebSocket to `url`, resolving once it is open; `signal` aborts a pending open.
 * Each JSON object frame goes to `direct` first, and to viem's client unless it took it.
 */
const openSocket = (
  url: string,
  signal: AbortSignal,
  h: GetSocketParameters,
  direct: (frame: Record<string, unknown>) => boolean
): Promise<Socket<DirectSocket>> =>
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
        request: ({ body }) => ws.send(Json.stringify(body)),
        sendText: (text) => ws.send(text)
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
      if (!direct(value as Record<string, unknown>)) h.onResponse(value as never)
    })
  })

const classify = (url: string, e: unknown): AttemptError => {
  if (e instanceof MalformedFrame) return new RpcMalformed({ url, reason: e.message })
  if (e instanceof TimeoutError) return new RpcTimedOut({ url })
  if (e instanceof SocketClosedError) return new ProviderDown({ url, reason: "the socket closed" })
  return new ProviderDown({ url, reason: reasonOf(e) })
}

/** The first id of direct requests: viem's ids count up from 0 and never reach it. */
const DIRECT_IDS = 2 ** 40
let nextDirectId = DIRECT_IDS

interface Pending {
  readonly done: (r: Attempt) => void
  /** `performance.now()` past which it is `RpcTimedOut`. */
  readonly deadline: number
}

const noop = () => {}

export const make = (url: string, options: SocketOptions): SocketLink => {
  let current: Connection | undefined
  let opening: Promise<Connection> | undefined
  let closed = false
  const closing = new AbortController()

  const open = async (): Promise<Connection> => {
    const lost = Deferred.makeUnsafe<void>()
    let because: string | undefined
    let heartbeat: ReturnType<typeof setInterval> | undefined
    let client: SocketRpcClient<DirectSocket> | undefined
    let made: Connection | undefined
    /** Direct requests awaiting their answer, by id. */
    const pending = new Map<number, Pending>()
    /** What a direct request sees once the connection is lost. */
    let lostError: AttemptError | undefined
    /** The timer for the earliest deadline of `pending` (it may be early: answered requests stay counted). */
    let expiry: ReturnType<typeof setTimeout> | undefined
    let expiryAt = Infinity
    const expireBy = (at: number) => {
      if (expiry !== undefined) {
        if (expiryAt <= at) return
        clearTimeout(expiry)
      }
      expiryAt = at
      expiry = setTimeout(expire, Math.max(1, Math.ceil(at - performance.now())))
    }
    /** Times out what is past its deadline; re-arms for the rest. */
    const expire = () => {
      expiry = undefined
      expiryAt = Infinity
      const t = performance.now()
      let earliest = Infinity
      for (const [id, p] of pending) {
        if (p.deadline <= t) {
          pending.delete(id)
          p.done({ ok: false, error: new RpcTimedOut({ url }) })
        } else if (p.deadline < earliest) {
          earliest = p.deadline
        }
      }
      if (earliest !== Infinity) expireBy(earliest)
    }
    const markLost = (reason: string, error: AttemptError = new ProviderDown({ url, reason })) => {
      if (because !== undefined) return
      because = reason
      lostError = error
      if (heartbeat !== undefined) clearInterval(heartbeat)
      if (expiry !== undefined) clearTimeout(expiry)
      expiry = undefined
      Deferred.doneUnsafe(lost, Effect.void)
      if (made !== undefined && current === made) current = undefined
      const waiting = [...pending.values()]
      pending.clear()
      for (const p of waiting) p.done({ ok: false, error })
      client?.close()
    }
    const direct = (frame: Record<string, unknown>): boolean => {
      const id = frame["id"]
      if (typeof id !== "number" || id < DIRECT_IDS) return false
      const p = pending.get(id)
      // A late answer to a request that timed out: dropped, as viem drops one.
      if (p === undefined) return true
      pending.delete(id)
      p.done(readAnswer(url, frame))
      return true
    }
    const call: Send = (method, params, timeoutMillis, done) => {
      if (lostError !== undefined || client === undefined) {
        done({ ok: false, error: lostError ?? new ProviderDown({ url, reason: "not connected" }) })
        return noop
      }
      const id = nextDirectId++
      const text = `{"jsonrpc":"2.0","id":${id},"method":${JSON.stringify(method)},"params":${stringifyFast(params)}}`
      const deadline = performance.now() + Math.max(1, timeoutMillis)
      pending.set(id, { done, deadline })
      try {
        client.socket.sendText(text)
      } catch (e) {
        pending.delete(id)
        done({ ok: false, error: classify(url, e) })
        return noop
      }
      expireBy(deadline)
      return () => {
        pending.delete(id)
      }
    }
    const signal = AbortSignal.any([closing.signal, AbortSignal.timeout(options.connectMillis)])
    client = await getSocketRpcClient<DirectSocket>({
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
            markLost(
              e instanceof MalformedFrame ? `the provider sent ${e.message}` : reasonOf(e),
              classify(url, e)
            )
          }
        }, direct)
    })
    const c = client
    const connection: Connection = {
      client: c,
      call,
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

  /** The connection being opened, opening one if none is. */
  const opened = (): Promise<Connection> => {
    if (opening === undefined) {
      const attempt = open()
      opening = attempt
      const clear = () => {
        if (opening === attempt) opening = undefined
      }
      attempt.then(clear, clear)
    }
    return opening
  }
  const openFailure = (e: unknown): ProviderDown =>
    e instanceof DOMException && e.name === "TimeoutError"
      ? new ProviderDown({ url, reason: `no connection within ${options.connectMillis} ms` })
      : new ProviderDown({ url, reason: reasonOf(e) })

  const connection = (timeoutMillis: number): Effect.Effect<Connection, ProviderDown | RpcTimedOut> =>
    Effect.suspend(() => {
      if (closed) return Effect.fail(new ProviderDown({ url, reason: "the provider was removed" }))
      if (current !== undefined && !current.isLost()) return Effect.succeed(current)
      const attempt = opened()
      return Effect.tryPromise({ try: () => attempt, catch: openFailure }).pipe(Effect.timeoutOrElse({
        duration: Math.max(0, timeoutMillis),
        orElse: () => Effect.fail(new RpcTimedOut({ url }))
      }))
    })

  /**
   * A request: straight onto the open connection (the hot path: no promise, no fiber);
   * else once one is open, the open bounded by `timeoutMillis` as `connection`'s is.
   */
  const send: Send = (method, params, timeoutMillis, done) => {
    if (closed) {
      done({ ok: false, error: new ProviderDown({ url, reason: "the provider was removed" }) })
      return noop
    }
    const c = current
    if (c !== undefined && !c.isLost()) return c.call(method, params, timeoutMillis, done)
    const started = performance.now()
    let settled = false
    let cancelCall: (() => void) | undefined
    const timer = setTimeout(() => {
      if (settled) return
      settled = true
      done({ ok: false, error: new RpcTimedOut({ url }) })
    }, Math.max(0, timeoutMillis))
    opened().then(
      (c) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        cancelCall = c.call(method, params, timeoutMillis - (performance.now() - started), done)
      },
      (e) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        done({ ok: false, error: openFailure(e) })
      }
    )
    return () => {
      if (cancelCall !== undefined) return cancelCall()
      settled = true
      clearTimeout(timer)
    }
  }

  return {
    url,
    connection,
    send,
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
