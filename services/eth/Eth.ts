/**
 * `eth:distro:sys` (kinode-semantics §6.9): EVM JSON-RPC for processes, over the node's
 * providers. The module as a runtime process: what it takes, how it dispatches, what it
 * answers and when.
 *
 * - A body is read as `EthAction`, else `EthConfigAction`, else `EthSubResult`, else a
 *   bare u64 (`SubKeepalive`); anything else is answered `{"Err":"MalformedRequest"}`.
 * - Every answer goes to `rsvp ?? source` whether or not a response was expected
 *   (Kinode), with the request's id.
 * - `Request`: the method must be on Kinode's list (`InvalidMethod`), the chain must have
 *   a provider (`NoRpcForChain`); then `Requests.fulfil`, bounded by the caller's
 *   `expects_response` (answered a little before it: a tenth, at most 500 ms) or
 *   `defaultTimeout` (60 s). Success is `{"Response":{"value":<result>}}`. Requests run
 *   concurrently, at most `maxInFlightPerProcess` per source and `maxInFlight` in all;
 *   beyond, `{"Err":{"RpcError":{"code":-32005,"message":"limit exceeded: …"}}}` at once
 *   (-32005 is JSON-RPC's "limit exceeded"; Kinode has no bound).
 *   The hot path: decided in the module's loop without a fiber or an Effect (read by
 *   hand, `readRequest`; sent by callback, `Requests.fulfil`), answered from the
 *   provider's callback; requests still in flight when the module closes are cancelled
 *   and never answered, as their fibers were interrupted before.
 * - `SubscribeLogs` / `UnsubscribeLogs`: `Subscriptions.ts`; bounded per subscriber and in
 *   all the same way.
 * - Config actions: a local process holding eth's `{"root":true}` only, else
 *   `"PermissionDenied"`; changes are saved to the home (`Settings.ts`).
 * - Other nodes may send `EthAction`s when the access settings let them (`Access.ts`),
 *   else `{"Err":"PermissionDenied"}`. Node providers (asking another node's eth) are
 *   not implemented: their configs are kept and listed, never used.
 */
import { Clock, Duration, Effect, Layer, Result, Schema } from "effect"
import { Home } from "../../src/Home.ts"
import { localAddress } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { type KernelMessage, request, response } from "../../src/Message.ts"
import { ModuleHost, type ServiceContext } from "../../src/ModuleHost.ts"
import { Printout } from "../../src/Printout.ts"
import { Access } from "./Access.ts"
import { isAllowed } from "./Methods.ts"
import {
  type AccessSettings,
  EthAction,
  EthConfigAction,
  type EthConfigResponse,
  type EthError,
  type EthResponse,
  EthSubResult,
  PROCESS,
  type ProviderConfig,
  ROOT_CAP_PARAMS,
  SubKeepalive
} from "./Protocol.ts"
import { ProviderTable, schemeOf } from "./Providers.ts"
import * as Requests from "./Requests.ts"
import { toBytesFast } from "./Wire.ts"
import * as Settings from "./Settings.ts"
import * as Subscriptions from "./Subscriptions.ts"

export interface EthProviderOption {
  readonly chain_id: number | bigint
  /** `http(s)://` or `ws(s)://`. */
  readonly url: string
  /** Kinode's `trusted` flag (kept, not acted on). Default true. */
  readonly trusted?: boolean
}

export interface EthOptions {
  /**
   * Providers put in front of the saved ones at every start (`--rpc`, the embedded chain),
   * first is tried first; not saved until a config action saves the providers.
   */
  readonly providers?: ReadonlyArray<EthProviderOption>
  /** The bound of a request sent without `expects_response` (default 60 s). */
  readonly defaultTimeout?: Duration.Input
  /** The bound of `SubscribeLogs` sent without `expects_response` (default 30 s, Kinode's). */
  readonly subscribeTimeout?: Duration.Input
  /** One socket open, at most (default 10 s, Kinode's). */
  readonly connectTimeout?: Duration.Input
  /** How often an open socket is checked with `eth_chainId` (default 30 s), and how long it may take (10 s). */
  readonly heartbeat?: { readonly interval: Duration.Input; readonly timeout: Duration.Input }
  /** Delay before re-subscribing after a provider is lost: first, and the cap it doubles to (250 ms, 5 s). */
  readonly resubscribe?: { readonly initial: Duration.Input; readonly max: Duration.Input }
  /** `Request`s in flight per source (default 256) and in all (4,096). */
  readonly maxInFlightPerProcess?: number
  readonly maxInFlight?: number
  /** Subscriptions per subscriber (default 256) and in all (4,096). */
  readonly maxSubscriptionsPerProcess?: number
  readonly maxSubscriptions?: number
  /** How often subscriptions of processes that are gone are looked for (default 30 s). */
  readonly sweepInterval?: Duration.Input
}

export const defaults = {
  defaultTimeout: "60 seconds",
  subscribeTimeout: "30 seconds",
  connectTimeout: "10 seconds",
  heartbeat: { interval: "30 seconds", timeout: "10 seconds" },
  resubscribe: { initial: "250 millis", max: "5 seconds" },
  maxInFlightPerProcess: 256,
  maxInFlight: 4096,
  maxSubscriptionsPerProcess: 256,
  maxSubscriptions: 4096,
  sweepInterval: "30 seconds"
} as const satisfies Required<Omit<EthOptions, "providers">>

/** A caller's timeout beyond this many seconds is taken as this (Node timers stop at 2^31 ms). */
const MAX_TIMEOUT_SECONDS = 2_000_000n
/** How long before the caller's own timer the module answers: a tenth, at most this. */
const MARGIN_MILLIS = 500

const millis = (d: Duration.Input) => Duration.toMillis(Duration.fromInputUnsafe(d))

/** How long the module works on a request: the caller's timeout less a margin, else `fallback`. */
export const boundOf = (km: KernelMessage, fallbackMillis: number): number => {
  const s = km.message._tag === "Request" ? km.message.expectsResponse : undefined
  if (s === undefined) return fallbackMillis
  const total = Number(s > MAX_TIMEOUT_SECONDS ? MAX_TIMEOUT_SECONDS : s) * 1000
  return total - Math.min(MARGIN_MILLIS, total / 10)
}

type Incoming =
  | { readonly _tag: "Action"; readonly action: EthAction }
  | { readonly _tag: "Config"; readonly action: EthConfigAction }
  | { readonly _tag: "SubResult"; readonly result: EthSubResult }
  | { readonly _tag: "Keepalive"; readonly id: bigint }
  | { readonly _tag: "Malformed"; readonly reason: string }

const decodeAction = Schema.decodeUnknownResult(EthAction)
const decodeConfig = Schema.decodeUnknownResult(EthConfigAction)
const decodeSubResult = Schema.decodeUnknownResult(EthSubResult)
const decodeKeepalive = Schema.decodeUnknownResult(SubKeepalive)

const U64_END = 2n ** 64n

/**
 * The `Request` action read by hand (the hot path: `decodeAction` is ~2.4 µs of a
 * request, this ~0.1 µs), or undefined for anything it is not sure of, which then goes
 * through the schemas as before. It accepts only what `decodeAction` accepts and gives
 * what it gives: an object (not an array) with a `Request` key and neither of the
 * union's earlier keys (`SubscribeLogs`, `UnsubscribeLogs`, which the union would try
 * first); `Request` an object (not an array) with `chain_id` a u64 (a bigint in range,
 * or a safe integer >= 0, as `U64` reads it), `method` a string and a `params` key of
 * any value. Other keys are ignored, as the schemas ignore them; the result is a new
 * `{chain_id, method, params}` with `chain_id` a bigint and `params` as it was.
 * `test/services/eth/socket.test.ts` checks it against `decodeAction`.
 */
export const readRequest = (u: unknown): EthAction | undefined => {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return undefined
  const o = u as Record<string, unknown>
  if (!("Request" in o) || "SubscribeLogs" in o || "UnsubscribeLogs" in o) return undefined
  const r = o["Request"]
  if (typeof r !== "object" || r === null || Array.isArray(r)) return undefined
  const req = r as Record<string, unknown>
  const method = req["method"]
  if (typeof method !== "string" || !("params" in req)) return undefined
  const c = req["chain_id"]
  let chain_id: bigint
  if (typeof c === "number") {
    if (!Number.isSafeInteger(c) || c < 0) return undefined
    chain_id = BigInt(c)
  } else if (typeof c === "bigint") {
    if (c < 0n || c >= U64_END) return undefined
    chain_id = c
  } else {
    return undefined
  }
  return { Request: { chain_id, method, params: req["params"] } }
}

/** Kinode's untagged `IncomingReq`: the first shape that reads wins. */
export const readIncoming = (body: Uint8Array): Incoming => {
  const json = Json.parseBody(body)
  if (Result.isFailure(json)) return { _tag: "Malformed", reason: json.failure.reason }
  const u = json.success
  const quick = readRequest(u)
  if (quick !== undefined) return { _tag: "Action", action: quick }
  const action = decodeAction(u)
  if (Result.isSuccess(action)) return { _tag: "Action", action: action.success }
  const config = decodeConfig(u)
  if (Result.isSuccess(config)) return { _tag: "Config", action: config.success }
  const sub = decodeSubResult(u)
  if (Result.isSuccess(sub)) return { _tag: "SubResult", result: sub.success }
  const keepalive = decodeKeepalive(u)
  if (Result.isSuccess(keepalive)) return { _tag: "Keepalive", id: keepalive.success }
  return { _tag: "Malformed", reason: "not an EthAction, EthConfigAction, EthSubResult or sub id" }
}

const limitExceeded = (message: string): EthError => ({ RpcError: { code: -32005, message: `limit exceeded: ${message}` } })

interface Settled {
  readonly providers: ReadonlyArray<ProviderConfig> | undefined
  readonly access: AccessSettings | undefined
}

interface Env {
  readonly node: string
  readonly home: string
  readonly print: (level: number, text: string) => void
  readonly hasRootCap: (process: string) => boolean
  readonly processExists: (id: string) => boolean
  readonly options: EthOptions
  readonly saved: Settled
}

const serve = (ctx: ServiceContext, env: Env): Effect.Effect<void> =>
  Effect.scoped(Effect.gen(function*() {
    const { node, options, print } = env
    const scope = yield* Effect.scope
    const clock = yield* Clock.Clock
    const now = () => Number(clock.monotonicTimeNanosUnsafe()) / 1e6
    const limits = {
      maxInFlightPerProcess: options.maxInFlightPerProcess ?? defaults.maxInFlightPerProcess,
      maxInFlight: options.maxInFlight ?? defaults.maxInFlight,
      maxSubscriptionsPerProcess: options.maxSubscriptionsPerProcess ?? defaults.maxSubscriptionsPerProcess,
      maxSubscriptions: options.maxSubscriptions ?? defaults.maxSubscriptions
    }
    const defaultMillis = millis(options.defaultTimeout ?? defaults.defaultTimeout)
    const subscribeMillis = millis(options.subscribeTimeout ?? defaults.subscribeTimeout)
    const connectMillis = millis(options.connectTimeout ?? defaults.connectTimeout)
    const heartbeat = options.heartbeat ?? defaults.heartbeat
    const resubscribe = options.resubscribe ?? defaults.resubscribe

    const table = new ProviderTable({
      connectMillis,
      heartbeatMillis: millis(heartbeat.interval),
      heartbeatTimeoutMillis: millis(heartbeat.timeout)
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => table.closeAll()))
    const warnUnsupported = (config: ProviderConfig) => {
      if ("RpcUrl" in config.provider && schemeOf(config.provider.RpcUrl) === undefined) {
        print(0, `eth: provider ${config.provider.RpcUrl} for chain ${config.chain_id} is not an http(s):// or ws(s):// URL; it will never answer`)
      }
    }
    if (env.saved.providers !== undefined) table.set(env.saved.providers)
    for (const p of [...(options.providers ?? [])].reverse()) {
      const config: ProviderConfig = { chain_id: BigInt(p.chain_id), trusted: p.trusted ?? true, provider: { RpcUrl: p.url } }
      table.add(config)
    }
    for (const c of table.toConfigs()) warnUnsupported(c)
    const access = new Access(env.saved.access)

    const answer = (km: KernelMessage, body: EthResponse | EthConfigResponse | EthSubResult) => {
      ctx.reply(km, response({ body: toBytesFast(body) }))
    }

    const subscriptions = Subscriptions.make({
      ctx,
      node,
      table,
      print,
      processExists: env.processExists,
      now,
      resubscribe: { initialMillis: millis(resubscribe.initial), maxMillis: millis(resubscribe.max) },
      connectMillis,
      scope
    })
    const sweepInterval = options.sweepInterval ?? defaults.sweepInterval
    yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(sweepInterval), subscriptions.sweep)))

    // --- Request: concurrent, bounded per source and in all ---
    const inFlight = new Set<{ readonly id: bigint; cancel: Requests.Cancel | undefined }>()
    const inFlightOf = new Map<string, number>()
    const requestDeps: Requests.RequestDeps = { table, print, now }
    /** Set as the module closes (before the sockets close): nothing more is answered. */
    let stopped = false
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        stopped = true
        for (const t of inFlight) t.cancel?.()
        inFlight.clear()
      })
    )

    /** Synchronous: answered now, or sent with the answer to come from the provider's callback. */
    const handleRequest = (km: KernelMessage, req: { readonly chain_id: bigint; readonly method: string; readonly params: unknown }): void => {
      if (!isAllowed(req.method)) return answer(km, { Err: { InvalidMethod: req.method } })
      const source = km.source.toString()
      const mine = inFlightOf.get(source) ?? 0
      if (mine >= limits.maxInFlightPerProcess || inFlight.size >= limits.maxInFlight) {
        const why = mine >= limits.maxInFlightPerProcess
          ? `${limits.maxInFlightPerProcess} requests in flight from ${source}`
          : `${limits.maxInFlight} requests in flight`
        print(1, `eth: refused a request from ${source}: ${why}`)
        return answer(km, { Err: limitExceeded(why) })
      }
      const token: { readonly id: bigint; cancel: Requests.Cancel | undefined } = { id: km.id, cancel: undefined }
      inFlight.add(token)
      inFlightOf.set(source, mine + 1)
      print(2, `eth: ${req.method} on chain ${req.chain_id} for ${source}`)
      const done = (outcome: Requests.Outcome) => {
        if (stopped) return
        inFlight.delete(token)
        const left = (inFlightOf.get(source) ?? 1) - 1
        if (left === 0) inFlightOf.delete(source)
        else inFlightOf.set(source, left)
        try {
          answer(km, outcome.ok ? { Response: { value: outcome.value } } : { Err: outcome.error })
        } catch (e) {
          // Called from a socket's or a fetch's callback: nothing above would catch it.
          print(0, `eth: could not answer ${req.method} for ${source}: ${e instanceof Error ? e.message : String(e)}`)
        }
      }
      token.cancel = Requests.fulfil(requestDeps, req.chain_id, req.method, req.params, boundOf(km, defaultMillis), done)
    }

    /** `undefined` when handled already (a `Request`), else the effect that handles it. */
    const handleAction = (km: KernelMessage, action: EthAction): Effect.Effect<void> | undefined => {
      if ("Request" in action) {
        handleRequest(km, action.Request)
        return undefined
      }
      if ("SubscribeLogs" in action) {
        const sub = action.SubscribeLogs
        const replacing = subscriptions.has(km.source, sub.sub_id)
        if (!replacing && (subscriptions.countOf(km.source) >= limits.maxSubscriptionsPerProcess || subscriptions.size() >= limits.maxSubscriptions)) {
          const why = subscriptions.countOf(km.source) >= limits.maxSubscriptionsPerProcess
            ? `${limits.maxSubscriptionsPerProcess} subscriptions of ${km.source}`
            : `${limits.maxSubscriptions} subscriptions`
          print(1, `eth: refused a subscription of ${km.source}: ${why}`)
          return Effect.sync(() => answer(km, { Err: limitExceeded(why) }))
        }
        print(2, `eth: subscribe ${sub.kind} on chain ${sub.chain_id} for ${km.source} (sub ${sub.sub_id})`)
        return subscriptions.start(km, sub, boundOf(km, subscribeMillis))
      }
      const id = action.UnsubscribeLogs
      return Effect.map(subscriptions.stop(km.source, id), (stopped) => {
        if (stopped) print(2, `eth: closed subscription ${id} of ${km.source}`)
        else print(2, `eth: ${km.source} unsubscribed from ${id}, which it does not have`)
        answer(km, stopped ? "Ok" : { Err: "MalformedRequest" })
      })
    }

    const saveProviders = Effect.suspend(() => Settings.saveProviders(env.home, table.toConfigs())).pipe(
      Effect.catch((e) => Effect.sync(() => print(0, `eth: could not save the providers to ${e.file}: ${e.reason}`)))
    )
    const saveAccess = Effect.suspend(() => Settings.saveAccess(env.home, access.toJson())).pipe(
      Effect.catch((e) => Effect.sync(() => print(0, `eth: could not save the access settings to ${e.file}: ${e.reason}`)))
    )

    const handleConfig = (km: KernelMessage, action: EthConfigAction): Effect.Effect<EthConfigResponse> =>
      Effect.gen(function*() {
        if (km.source.node !== node) {
          print(2, `eth: refused a config action from ${km.source}: other nodes may not configure this one`)
          return "PermissionDenied"
        }
        if (!env.hasRootCap(km.source.process.toString())) {
          print(2, `eth: refused a config action from ${km.source}: it lacks eth's {"root":true} capability`)
          return "PermissionDenied"
        }
        print(2, `eth: config action ${Json.stringify(action)} from ${km.source}`)
        if (typeof action === "string") {
          switch (action) {
            case "GetProviders":
              return { Providers: table.toConfigs() }
            case "GetAccessSettings":
              return { AccessSettings: access.toJson() }
            case "GetState":
              return {
                State: {
                  active_subscriptions: subscriptions.state(),
                  outstanding_requests: [...inFlight].map((t) => t.id)
                }
              }
            case "SetPublic":
            case "SetPrivate":
              access.isPublic = action === "SetPublic"
              yield* saveAccess
              return "Ok"
          }
        }
        if ("AddProvider" in action) {
          warnUnsupported(action.AddProvider)
          table.add(action.AddProvider)
          yield* saveProviders
        } else if ("RemoveProvider" in action) {
          if (table.remove(action.RemoveProvider[0], action.RemoveProvider[1])) yield* saveProviders
        } else if ("SetProviders" in action) {
          for (const c of action.SetProviders) warnUnsupported(c)
          table.set(action.SetProviders)
          yield* saveProviders
        } else {
          if ("AllowNode" in action) access.allow.add(action.AllowNode)
          else if ("UnallowNode" in action) access.allow.delete(action.UnallowNode)
          else if ("DenyNode" in action) access.deny.add(action.DenyNode)
          else access.deny.delete(action.UndenyNode)
          yield* saveAccess
        }
        return "Ok"
      })

    /** `undefined` when handled already, else the effect that handles it. */
    const handle = (km: KernelMessage): Effect.Effect<void> | undefined => {
      const incoming = readIncoming(km.message.body)
      const remote = km.source.node !== node
      switch (incoming._tag) {
        case "Malformed":
          print(1, `eth: a malformed request from ${km.source}: ${incoming.reason}`)
          return Effect.sync(() => answer(km, { Err: "MalformedRequest" }))
        case "Action":
          if (remote && !access.permits(km.source.node)) {
            print(2, `eth: refused ${km.source}: the access settings do not let ${km.source.node} use this node's providers`)
            return Effect.sync(() => answer(km, { Err: "PermissionDenied" }))
          }
          return handleAction(km, incoming.action)
        case "Config":
          return Effect.map(handleConfig(km, incoming.action), (r) => answer(km, r))
        case "SubResult":
          return Effect.sync(() => {
            // An update from a node provider; we use none, so tell it to stop (Kinode does).
            const id = "Ok" in incoming.result ? incoming.result.Ok.id : incoming.result.Err.id
            print(2, `eth: a subscription update from ${km.source} for ${id}, which is not ours`)
            if (remote) ctx.send(km.source, request({ body: Json.toBytes({ UnsubscribeLogs: id }) }))
          })
        case "Keepalive":
          return Effect.sync(() => {
            if (subscriptions.has(km.source, incoming.id)) return
            print(2, `eth: a keepalive from ${km.source} for ${incoming.id}, which it does not have`)
            ctx.reply(km, response({ body: Json.toBytes({ Err: { id: incoming.id, error: "Subscription not found" } }) }))
          })
      }
    }

    while (true) {
      const batch = yield* ctx.takeBatch
      for (const km of batch) {
        // Responses would come from node providers, which this module does not use.
        if (km.message._tag !== "Request") continue
        const handling = handle(km)
        if (handling !== undefined) yield* handling
      }
    }
  }))

/**
 * The module, registered as `eth:distro:sys` when the layer is built: its settings are
 * read from the home first (a file that does not read is ignored, with a printout).
 * Every socket closes with the layer.
 */
export const layer = (options: EthOptions = {}): Layer.Layer<never, never, ModuleHost | Printout | Home> =>
  Layer.effectDiscard(Effect.gen(function*() {
    const host = yield* ModuleHost
    const printout = yield* Printout
    const home = (yield* Home).path
    const print = (level: number, text: string) => printout.print(level, PROCESS, text)
    const ignored = <A>(what: Effect.Effect<A | undefined, Settings.SettingsUnreadable>) =>
      what.pipe(Effect.catch((e) =>
        Effect.sync(() => {
          print(0, `eth: ignored ${e.file}, which does not read: ${e.reason}`)
          return undefined
        })
      ))
    const saved: Settled = {
      providers: yield* ignored(Settings.loadProviders(home)),
      access: yield* ignored(Settings.loadAccess(home))
    }
    const rootCap = { issuer: localAddress(host.node, PROCESS), params: ROOT_CAP_PARAMS }
    yield* host.serve(PROCESS, { public: false }, (ctx) =>
      serve(ctx, {
        node: host.node,
        home,
        print,
        hasRootCap: (process) => host.hasCapability(process, rootCap),
        processExists: (id) => host.processExists(id),
        options,
        saved
      }))
  }))

/** The capability config actions need, for granting it (settings apps, tests). */
export const rootCapability = (node: string) => ({ issuer: localAddress(node, PROCESS), params: ROOT_CAP_PARAMS })
