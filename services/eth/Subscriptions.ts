/**
 * `SubscribeLogs` / `UnsubscribeLogs`: one fiber per subscription, keyed by (subscriber
 * address, `sub_id`) as Kinode keys them.
 *
 * - **Establish**: the chain's URL providers are tried in order until one takes
 *   `eth_subscribe` (over its socket), within the caller's bound. The subscriber is
 *   answered `"Ok"` or the error (`NoRpcForChain`, `RpcTimeout`, `{"RpcError":…}`,
 *   `RpcMalformedResponse`), to `rsvp ?? source`.
 * - **Events**: each notification is pushed to the subscriber (the request's source) as
 *   a Request `{"Ok":{"id":<sub_id>,"result":…}}`, never before its `"Ok"` answer.
 * - **Provider lost** (socket closed, garbage, a heartbeat unanswered): the fiber
 *   re-subscribes, on the same provider when it comes back or on another of the chain,
 *   retrying with a doubling delay (`resubscribe.initialMillis` up to `maxMillis`)
 *   for as long as the subscription lives. The subscriber sees no error, only a gap:
 *   events of the outage are not replayed. Kinode ends the subscription with an
 *   `{"Err":{id, error}}` push instead.
 * - **End**: `UnsubscribeLogs`, the same `sub_id` subscribed again (the old one is
 *   replaced), the subscriber gone (a push refused as `NoSuchProcess`, or the periodic
 *   sweep), a remote subscriber's push refused, or the module closing. The provider is
 *   sent `eth_unsubscribe` (best effort).
 */
import { Deferred, Effect, Fiber, type Scope } from "effect"
import type { Address } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { type KernelMessage, request, response } from "../../src/Message.ts"
import type { ServiceContext } from "../../src/ModuleHost.ts"
import type { EthError, EthResponse, SubscriptionKind } from "./Protocol.ts"
import type { ProviderTable, UrlProvider } from "./Providers.ts"
import { type AttemptError, describe, toEthError } from "./RpcErrors.ts"
import * as SocketRpc from "./SocketRpc.ts"

export interface SubscribeLogs {
  readonly sub_id: bigint
  readonly chain_id: bigint
  readonly kind: SubscriptionKind
  readonly params: unknown
}

interface Active {
  readonly provider: UrlProvider
  readonly connection: SocketRpc.Connection
  readonly id: string
}

interface Sub {
  readonly subscriber: Address
  readonly action: SubscribeLogs
  /** Completes when the subscriber is gone. */
  readonly gone: Deferred.Deferred<void>
  active: Active | undefined
  /** Events held back until the subscriber has its `"Ok"`. */
  held: Array<unknown> | undefined
  /** Unsubscribed or replaced: late events are dropped. */
  ended: boolean
  dropped: number
  fiber: Fiber.Fiber<void> | undefined
}

export interface SubscriptionDeps {
  readonly ctx: ServiceContext
  readonly node: string
  readonly table: ProviderTable
  readonly print: (level: number, text: string) => void
  readonly processExists: (id: string) => boolean
  readonly now: () => number
  readonly resubscribe: { readonly initialMillis: number; readonly maxMillis: number }
  readonly connectMillis: number
  readonly scope: Scope.Scope
}

const answer = (ctx: ServiceContext, km: KernelMessage, body: EthResponse) => {
  ctx.reply(km, response({ body: Json.toBytes(body) }))
}

export const make = (deps: SubscriptionDeps) => {
  const { ctx, print, table } = deps
  /** subscriber address → sub id → subscription */
  const subs = new Map<string, Map<string, Sub>>()
  let total = 0

  const forget = (sub: Sub) => {
    const key = sub.subscriber.toString()
    const mine = subs.get(key)
    if (mine?.get(sub.action.sub_id.toString()) !== sub) return
    mine.delete(sub.action.sub_id.toString())
    total--
    if (mine.size === 0) subs.delete(key)
  }

  const push = (sub: Sub, result: unknown) => {
    if (sub.ended) return
    if (sub.held !== undefined) {
      sub.held.push(result)
      return
    }
    const sent = ctx.send(sub.subscriber, request({ body: Json.toBytes({ Ok: { id: sub.action.sub_id, result } }) }))
    if (typeof sent === "bigint") return
    if (sent.reason === "NoSuchProcess" || sub.subscriber.node !== deps.node) {
      print(1, `eth: subscription ${sub.action.sub_id} of ${sub.subscriber} ended: its event was refused (${sent.reason})`)
      Deferred.doneUnsafe(sub.gone, Effect.void)
      return
    }
    if (sub.dropped++ === 0) print(1, `eth: subscription ${sub.action.sub_id} of ${sub.subscriber}: an event was refused (${sent.reason}) and dropped`)
  }

  /** Subscribes on the first provider of the chain that takes it, within `timeoutMillis`. */
  const establish = (sub: Sub, timeoutMillis: number, quiet = false): Effect.Effect<Active, EthError> =>
    Effect.gen(function*() {
      const { chain_id, kind, params } = sub.action
      const deadline = deps.now() + timeoutMillis
      const urls = table.urlsFor(chain_id)
      if (urls === undefined || urls.length === 0) return yield* Effect.fail<EthError>("NoRpcForChain")
      let worst: EthError = "NoRpcForChain"
      for (const provider of [...urls]) {
        const link = provider.socket
        if (link === undefined) continue
        const left = deadline - deps.now()
        if (left <= 0) return yield* Effect.fail<EthError>("RpcTimeout")
        const attempt = Effect.gen(function*() {
          const connection = yield* link.connection(left)
          const rpcParams = params === null || params === undefined ? [kind] : [kind, params]
          const id = yield* SocketRpc.subscribe(link.url, connection, rpcParams, (result) => push(sub, result), deadline - deps.now())
          return { provider, connection, id } satisfies Active
        })
        const r = yield* Effect.result(attempt as Effect.Effect<Active, AttemptError>)
        if (r._tag === "Success") {
          table.promote(chain_id, provider)
          return r.success
        }
        const e = r.failure
        if (!quiet) print(2, `eth: subscribe for ${sub.subscriber}: ${describe(e)}`)
        if (e._tag === "RpcErrorPayload" || e._tag === "RpcTimedOut") return yield* Effect.fail(toEthError(e))
        if (e._tag === "RpcMalformed") worst = "RpcMalformedResponse"
        table.demote(chain_id, provider)
      }
      return yield* Effect.fail(worst)
    })

  const subscriberExists = (sub: Sub) => sub.subscriber.node !== deps.node || deps.processExists(sub.subscriber.process.toString())

  /** Re-subscribes until it works (undefined: the subscriber went away meanwhile). */
  const reestablish = (sub: Sub): Effect.Effect<Active | undefined> =>
    Effect.gen(function*() {
      let delay = deps.resubscribe.initialMillis
      let said = false
      while (true) {
        if (!subscriberExists(sub) || (yield* Deferred.isDone(sub.gone))) return undefined
        const r = yield* Effect.result(establish(sub, deps.connectMillis, said))
        if (r._tag === "Success") return r.success
        if (!said) {
          said = true
          print(1, `eth: subscription ${sub.action.sub_id} of ${sub.subscriber}: no provider takes it yet (${Json.stringify(r.failure)}); retrying`)
        }
        const woke = yield* Effect.raceFirst(Effect.as(Effect.sleep(delay), "slept" as const), Effect.as(Deferred.await(sub.gone), "gone" as const))
        if (woke === "gone") return undefined
        delay = Math.min(delay * 2, deps.resubscribe.maxMillis)
      }
    })

  const run = (sub: Sub, km: KernelMessage, timeoutMillis: number): Effect.Effect<void> =>
    Effect.gen(function*() {
      const first = yield* Effect.result(establish(sub, timeoutMillis).pipe(
        Effect.timeoutOrElse({ duration: Math.max(0, timeoutMillis), orElse: () => Effect.fail<EthError>("RpcTimeout") })
      ))
      if (first._tag === "Failure") {
        answer(ctx, km, { Err: first.failure })
        return
      }
      sub.active = first.success
      answer(ctx, km, "Ok")
      const held = sub.held ?? []
      sub.held = undefined
      for (const result of held) push(sub, result)
      print(2, `eth: subscription ${sub.action.sub_id} of ${sub.subscriber} via ${first.success.provider.url}`)
      while (true) {
        const active: Active = sub.active
        const why = yield* Effect.raceFirst(
          Effect.as(active.connection.lost, "lost" as const),
          Effect.as(Deferred.await(sub.gone), "gone" as const)
        )
        if (why === "gone") return
        print(1, `eth: subscription ${sub.action.sub_id} of ${sub.subscriber}: lost ${active.provider.url} (${active.connection.lostBecause() ?? "?"}); re-subscribing`)
        sub.active = undefined
        const again = yield* reestablish(sub)
        if (again === undefined) return
        sub.active = again
        print(1, `eth: subscription ${sub.action.sub_id} of ${sub.subscriber} re-subscribed via ${again.provider.url}`)
      }
    }).pipe(Effect.ensuring(Effect.sync(() => {
      forget(sub)
      if (sub.active !== undefined) SocketRpc.unsubscribe(sub.active.connection, sub.active.id)
    })))

  return {
    /** Subscriptions of one subscriber. */
    countOf: (subscriber: Address): number => subs.get(subscriber.toString())?.size ?? 0,
    size: (): number => total,
    has: (subscriber: Address, subId: bigint): boolean => subs.get(subscriber.toString())?.has(subId.toString()) === true,

    /** Starts (or replaces) the subscription; the subscriber is answered by its fiber. */
    start: (km: KernelMessage, action: SubscribeLogs, timeoutMillis: number): Effect.Effect<void> =>
      Effect.gen(function*() {
        const key = km.source.toString()
        const previous = subs.get(key)?.get(action.sub_id.toString())
        if (previous?.fiber !== undefined) yield* Effect.forkIn(interruptOf(previous), deps.scope)
        const sub: Sub = {
          subscriber: km.source,
          action,
          gone: Deferred.makeUnsafe<void>(),
          active: undefined,
          held: [],
          ended: false,
          dropped: 0,
          fiber: undefined
        }
        let mine = subs.get(key)
        if (mine === undefined) subs.set(key, mine = new Map())
        if (previous === undefined) total++
        mine.set(action.sub_id.toString(), sub)
        sub.fiber = yield* Effect.forkIn(run(sub, km, timeoutMillis), deps.scope, { startImmediately: true })
      }),

    /** Ends a subscription; false when there was none. */
    stop: (subscriber: Address, subId: bigint): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        const sub = subs.get(subscriber.toString())?.get(subId.toString())
        if (sub === undefined) return Effect.succeed(false)
        forget(sub)
        return Effect.as(interruptOf(sub), true)
      }),

    /** Ends the subscriptions of local subscribers that no longer exist. */
    sweep: Effect.sync(() => {
      for (const mine of subs.values()) {
        for (const sub of mine.values()) if (!subscriberExists(sub)) Deferred.doneUnsafe(sub.gone, Effect.void)
      }
    }),

    /** `GetState`'s `active_subscriptions`: every sub is ours (no node providers), so `null`. */
    state: (): Record<string, Record<string, null>> => {
      const out: Record<string, Record<string, null>> = {}
      for (const [key, mine] of subs) out[key] = Object.fromEntries([...mine.keys()].map((id) => [id, null]))
      return out
    }
  }
}

const interruptOf = (sub: Sub): Effect.Effect<void> => {
  sub.ended = true
  Deferred.doneUnsafe(sub.gone, Effect.void)
  return sub.fiber === undefined ? Effect.void : Fiber.interrupt(sub.fiber)
}

export type Subscriptions = ReturnType<typeof make>
