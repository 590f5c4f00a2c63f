/**
 * How vfs and sqlite serve their mailboxes: requests from one process are handled
 * one at a time in arrival order (so a process that pipelines sees its writes applied
 * in order), requests from different processes run concurrently, and at most
 * `maxInFlight` run at once. Kinode spawns a task per request, so its replies may be
 * reordered [quirk]; this keeps per-source order without serialising everyone.
 * Requests from other nodes are ignored (these modules are local only).
 */
import { Effect, Semaphore } from "effect"
import type { Address } from "./Ids.ts"
import { type LazyLoadBlob, response } from "./Message.ts"
import { type ServiceContext, wantsReply } from "./Runtime.ts"

export interface LaneReply {
  readonly body: Uint8Array
  readonly blob?: LazyLoadBlob | undefined
}

export const serveInLanes = (
  ctx: ServiceContext,
  node: string,
  maxInFlight: number,
  handle: (source: Address, body: Uint8Array, blob: LazyLoadBlob | undefined) => Effect.Effect<LaneReply>
): Effect.Effect<never> =>
  Effect.gen(function*() {
    const lanes = new Map<string, { readonly lock: Semaphore.Semaphore; users: number }>()
    const inFlight = yield* Semaphore.make(maxInFlight)
    while (true) {
      const batch = yield* ctx.takeBatch
      for (const km of batch) {
        if (km.message._tag !== "Request" || km.source.node !== node) continue
        const key = km.source.process.toString()
        let lane = lanes.get(key)
        if (lane === undefined) {
          lane = { lock: Semaphore.makeUnsafe(1), users: 0 }
          lanes.set(key, lane)
        }
        const l = lane
        l.users++
        yield* inFlight.take(1)
        yield* Effect.forkChild(
          l.lock.withPermits(1)(handle(km.source, km.message.body, km.blob)).pipe(
            Effect.tap((r) =>
              Effect.sync(() => {
                if (wantsReply(km)) ctx.reply(km, response({ body: r.body }), r.blob)
              })
            ),
            Effect.ensuring(Effect.andThen(
              inFlight.release(1),
              Effect.sync(() => {
                if (--l.users === 0) lanes.delete(key)
              })
            ))
          ),
          { startImmediately: true }
        )
      }
    }
  })
