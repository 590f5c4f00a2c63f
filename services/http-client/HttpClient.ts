/**
 * `http-client:distro:sys`: outgoing HTTP requests and WebSocket client channels for
 * local processes (kinode-semantics §6.6). The module itself, as a runtime process:
 * which requests it takes, how it dispatches them, what it answers and when.
 *
 * - Only requests from this node are served. Kinode serves any node (it holds
 *   `network`), so a remote node could make ours fetch for it [quirk]; ours drops such
 *   requests unanswered, with a printout.
 * - Which local processes may use it is the kernel's messaging check: the module is not
 *   public, apps ask for messaging to it in their manifest.
 * - `Http` requests run concurrently (at most `maxInFlightPerProcess` per process and
 *   `maxInFlight` in all; beyond, `ExecuteRequestFailed`). Each is bounded by the
 *   caller's `expects_response` (aborted a little before it, so the caller reads why
 *   rather than its own timeout) or, sent without one, by `defaultTimeout`.
 * - WebSocket actions of one owner run one at a time in arrival order (an open
 *   completes before the push after it); owners do not wait for each other.
 * - Replies, as Kinode's: `Http` success always (its body as blob, even when no response
 *   was expected: it may be on its way to an `rsvp`), `Http` and malformed-request errors
 *   only when a response was expected, WebSocket actions always.
 */
import { Duration, Effect, Layer, Result, Schema, Semaphore } from "effect"
import type { Address } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { type KernelMessage, MAX_MESSAGE_BYTES, response } from "../../src/Message.ts"
import { ModuleHost, type ServiceContext } from "../../src/ModuleHost.ts"
import { Printout } from "../../src/Printout.ts"
import * as AllowList from "./AllowList.ts"
import * as Headers from "./Headers.ts"
import * as Outgoing from "./Outgoing.ts"
import {
  type HeaderMap,
  HttpClientAction,
  type HttpClientError,
  HttpClientFailure,
  type HttpClientReply,
  type OutgoingHttpRequest,
  PROCESS,
  type WebSocketOpen
} from "./Protocol.ts"
import * as WsChannels from "./WsChannels.ts"

export interface HttpClientOptions {
  /**
   * Restricted mode: only these `host[:port]` entries may be reached (see
   * `AllowList.ts`); absent, every host. A bad entry is a defect when the layer is
   * built: validate flags with `AllowList.parse` first.
   */
  readonly allow?: ReadonlyArray<string>
  /** The bound of a request sent without `expects_response` (default 60 s). */
  readonly defaultTimeout?: Duration.Input
  /** WebSocket channels one process may hold open (default 128). */
  readonly maxChannelsPerProcess?: number
  /** WebSocket channels in all (default 4,096). */
  readonly maxChannels?: number
  /** `Http` requests of one process in flight at once (default 64). */
  readonly maxInFlightPerProcess?: number
  /** `Http` requests in flight at once in all (default 1,024). */
  readonly maxInFlight?: number
  /** How often channels of processes that are gone are looked for (default 30 s). */
  readonly sweepInterval?: Duration.Input
}

type Settings = { readonly [K in Exclude<keyof HttpClientOptions, "allow">]-?: Exclude<HttpClientOptions[K], undefined> }

export const defaults: Settings = {
  defaultTimeout: "60 seconds",
  maxChannelsPerProcess: 128,
  maxChannels: 4096,
  maxInFlightPerProcess: 64,
  maxInFlight: 1024,
  sweepInterval: "30 seconds"
}

/** A caller's timeout beyond this many seconds is taken as this (Node timers stop at 2^31 ms). */
const MAX_TIMEOUT_SECONDS = 2_000_000n
/** How long before the caller's own timer the module gives up: min(500 ms, a tenth). */
const MARGIN_MILLIS = 500

const decodeAction = Schema.decodeUnknownResult(HttpClientAction)

const replyBytes = (reply: HttpClientReply): Uint8Array => Json.toBytes(reply)
const okHttp = (status: number, headers: HeaderMap) => replyBytes({ Ok: { Http: { status, headers } } })
const ACK = replyBytes({ Ok: "WebSocketAck" })

/** How long the module works on a request: the caller's timeout, else the default. */
const boundOf = (km: KernelMessage, defaultMillis: number): { readonly millis: number; readonly describe: string } => {
  const s = km.message._tag === "Request" ? km.message.expectsResponse : undefined
  if (s === undefined) return { millis: defaultMillis, describe: `${defaultMillis / 1000} s (the bound of a request that expects no response)` }
  const total = Number(s > MAX_TIMEOUT_SECONDS ? MAX_TIMEOUT_SECONDS : s) * 1000
  return { millis: total - Math.min(MARGIN_MILLIS, total / 10), describe: `${s} s (the caller's timeout)` }
}

const expectsResponse = (km: KernelMessage) => km.message._tag === "Request" && km.message.expectsResponse !== undefined

/** The serve loop of the module, over its context. */
const serve = (
  ctx: ServiceContext,
  env: {
    readonly node: string
    readonly processExists: (id: string) => boolean
    readonly print: (level: number, text: string) => void
    readonly pools: Outgoing.Pools
    readonly allow: AllowList.AllowList | undefined
    readonly settings: Settings
  }
): Effect.Effect<void> =>
  Effect.scoped(Effect.gen(function*() {
    const { allow, pools, print, settings } = env
    const defaultMillis = Duration.toMillis(Duration.fromInputUnsafe(settings.defaultTimeout))
    const channels = yield* WsChannels.make({
      ctx,
      node: env.node,
      processExists: env.processExists,
      print,
      limits: { maxPerOwner: settings.maxChannelsPerProcess, maxTotal: settings.maxChannels }
    })
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(settings.sweepInterval), channels.sweep)))

    const answer = (km: KernelMessage, body: Uint8Array, blob?: Uint8Array) => {
      ctx.reply(km, response({ body }), blob === undefined ? undefined : { mime: undefined, bytes: blob })
    }
    const answerError = (km: KernelMessage, error: HttpClientError) => answer(km, replyBytes({ Err: error }))

    // --- Http: concurrent, bounded per process and in all ---
    const inFlight = new Map<string, number>()
    let inFlightTotal = 0

    const http = (km: KernelMessage, req: OutgoingHttpRequest) => {
      const source = km.source.process.toString()
      const mine = inFlight.get(source) ?? 0
      if (mine >= settings.maxInFlightPerProcess || inFlightTotal >= settings.maxInFlight) {
        if (expectsResponse(km)) {
          answerError(km, {
            ExecuteRequestFailed: mine >= settings.maxInFlightPerProcess
              ? `too many requests in flight from ${source} (limit ${settings.maxInFlightPerProcess})`
              : `too many requests in flight (limit ${settings.maxInFlight})`
          })
        }
        return Effect.void
      }
      inFlight.set(source, mine + 1)
      inFlightTotal++
      const bound = boundOf(km, defaultMillis)
      const work = Effect.gen(function*() {
        const prepared = yield* Outgoing.prepare(req, km.blob?.bytes, allow)
        print(2, `${prepared.method} request to ${prepared.url.href} for ${km.source}`)
        const got = yield* Outgoing.perform(pools, allow, prepared, (status, headers) => MAX_MESSAGE_BYTES - okHttp(status, headers).byteLength)
        answer(km, okHttp(got.status, got.headers), got.body)
      }).pipe(
        Effect.timeoutOrElse({
          duration: Duration.millis(Math.max(0, bound.millis)),
          orElse: () =>
            Effect.fail(new HttpClientFailure({ error: { ExecuteRequestFailed: `timed out after ${bound.describe}; request aborted` } }))
        }),
        Effect.catch((e) =>
          Effect.sync(() => {
            print(2, `request for ${km.source} failed: ${Json.stringify(e.error)}`)
            if (expectsResponse(km)) answerError(km, e.error)
          })
        ),
        Effect.ensuring(Effect.sync(() => {
          inFlightTotal--
          const left = (inFlight.get(source) ?? 1) - 1
          if (left === 0) inFlight.delete(source)
          else inFlight.set(source, left)
        }))
      )
      return Effect.forkChild(work, { startImmediately: true })
    }

    // --- WebSocket actions: one owner's in order ---
    const lanes = new Map<string, { readonly lock: Semaphore.Semaphore; users: number }>()
    const inLane = (owner: string, work: Effect.Effect<void>) => {
      let lane = lanes.get(owner)
      if (lane === undefined) lanes.set(owner, lane = { lock: Semaphore.makeUnsafe(1), users: 0 })
      const l = lane
      l.users++
      return Effect.forkChild(
        l.lock.withPermits(1)(work).pipe(Effect.ensuring(Effect.sync(() => {
          if (--l.users === 0) lanes.delete(owner)
        }))),
        { startImmediately: true }
      )
    }

    const openChannel = (km: KernelMessage, owner: Address, open: WebSocketOpen) => {
      let url: URL
      try {
        url = new URL(open.url)
      } catch {
        return Effect.fail(new HttpClientFailure({ error: { BadUrl: { url: open.url } } }))
      }
      if (url.protocol !== "ws:" && url.protocol !== "wss:") {
        print(1, `WebSocket open of ${url.href} for ${owner} refused: not a ws: or wss: URL`)
        return Effect.fail(new HttpClientFailure({ error: { WsOpenFailed: { url: url.href } } }))
      }
      const refused = AllowList.refusal(allow, url)
      if (refused !== undefined) return Effect.fail(new HttpClientFailure({ error: { BuildRequestFailed: refused } }))
      print(2, `WebSocket open of ${url.href} (channel ${open.channel_id}) for ${owner}`)
      return channels.open(owner, open.channel_id, url, Headers.outgoing(open.headers), boundOf(km, defaultMillis).millis)
    }

    const webSocket = (km: KernelMessage, action: Exclude<HttpClientAction, { readonly Http: unknown }>) => {
      // Frames go where the open request's answer goes: `rsvp ?? source` (as Kinode).
      const owner = km.rsvp ?? km.source
      const work = "WebSocketOpen" in action
        ? openChannel(km, owner, action.WebSocketOpen)
        : "WebSocketPush" in action
        ? channels.push(owner, action.WebSocketPush.channel_id, action.WebSocketPush.message_type, km.blob, boundOf(km, defaultMillis).millis)
        : channels.close(owner, action.WebSocketClose.channel_id)
      return inLane(
        owner.toString(),
        work.pipe(
          Effect.match({
            onSuccess: () => answer(km, ACK),
            onFailure: (e) => answerError(km, e.error)
          })
        )
      )
    }

    while (true) {
      const batch = yield* ctx.takeBatch
      for (const km of batch) {
        if (km.message._tag !== "Request") continue
        if (km.source.node !== env.node) {
          print(1, `refused a request from ${km.source}: http-client serves this node's processes only`)
          continue
        }
        const json = Json.parseBody(km.message.body)
        const action = Result.isSuccess(json) ? decodeAction(json.success) : undefined
        if (action === undefined || Result.isFailure(action)) {
          if (expectsResponse(km)) answerError(km, "MalformedRequest")
          continue
        }
        const a = action.success
        yield* "Http" in a ? http(km, a.Http) : webSocket(km, a)
      }
    }
  }))

/**
 * The module, registered as `http-client:distro:sys` when the layer is built. The
 * connection pools and every socket are closed with the layer.
 */
export const layer = (options: HttpClientOptions = {}): Layer.Layer<never, never, ModuleHost | Printout> =>
  Layer.effectDiscard(Effect.gen(function*() {
    let allow: AllowList.AllowList | undefined
    if (options.allow !== undefined) {
      const parsed = AllowList.parse(options.allow)
      if (Result.isFailure(parsed)) return yield* Effect.die(new Error(`http-client allow-list: ${parsed.failure}`))
      allow = parsed.success
    }
    const host = yield* ModuleHost
    const printout = yield* Printout
    const pools = yield* Outgoing.pools
    const settings: Settings = {
      defaultTimeout: options.defaultTimeout ?? defaults.defaultTimeout,
      maxChannelsPerProcess: options.maxChannelsPerProcess ?? defaults.maxChannelsPerProcess,
      maxChannels: options.maxChannels ?? defaults.maxChannels,
      maxInFlightPerProcess: options.maxInFlightPerProcess ?? defaults.maxInFlightPerProcess,
      maxInFlight: options.maxInFlight ?? defaults.maxInFlight,
      sweepInterval: options.sweepInterval ?? defaults.sweepInterval
    }
    yield* host.serve(PROCESS, { public: false }, (ctx) =>
      serve(ctx, {
        node: host.node,
        processExists: (id) => host.processExists(id),
        print: (level, text) => printout.print(level, PROCESS, text),
        pools,
        allow,
        settings
      }))
  }))
