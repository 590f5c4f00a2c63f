/**
 * `timer:distro:sys` (kinode-semantics §6.5): local processes set timers; when one pops
 * the module answers the `SetTimer` request with an empty-body Response (same id, to
 * `rsvp ?? source`), sent even if no response was expected (the requester's host then
 * drops it, as Kinode's does).
 *
 * - **Never early.** Deadlines are taken on the monotonic clock when the module reads
 *   the request; a timer fires once that clock has passed its deadline. Node's timers
 *   wake on whole milliseconds, possibly a fraction early: the last fraction is waited
 *   out on event-loop turns rather than another 1 ms timer. Kinode sleeps `ms - 1` and
 *   may answer a millisecond early [quirk].
 * - **Order.** Timers fire in deadline order; equal deadlines (the same delay set in
 *   one mailbox batch) in the order they were set. `{"SetTimer":0}` is answered at once,
 *   after any timer already due.
 * - **Bounded.** At most `maxPerProcess` active timers per setting process and
 *   `maxTotal` in all; beyond, the request is answered at once with
 *   `{"Err":{"TooManyTimers":{"limit","bound":"process"|"node"}}}` and a printout.
 * - **Local only.** Requests from other nodes are dropped unanswered with a printout
 *   (Kinode drops them in silence). Bodies that are not a `TimerAction` are printed
 *   (level 1) and dropped, as Kinode does.
 * - `"Debug"` prints the active timers (level 0), at most the first 100 in firing order.
 * - Timers live in memory only (as Kinode's).
 *
 * One fiber reads the mailbox, another fires: it sleeps until the earliest deadline and
 * is woken when a timer with an earlier one is set.
 */
import { Clock, Deferred, Duration, Effect, Layer, Result, Schema } from "effect"
import * as Json from "../../src/Json.ts"
import { type KernelMessage, request, response } from "../../src/Message.ts"
import { ModuleHost, type ServiceContext } from "../../src/ModuleHost.ts"
import { Printout } from "../../src/Printout.ts"
import { PROCESS, TimerAction, type TimerBound, type TimerRefusal } from "./Protocol.ts"
import { TimerQueue } from "./TimerQueue.ts"

export interface TimerOptions {
  /** Active timers one process may have (default 10,000). */
  readonly maxPerProcess?: number
  /** Active timers in all (default 100,000). */
  readonly maxTotal?: number
}

export const defaults: Required<TimerOptions> = { maxPerProcess: 10_000, maxTotal: 100_000 }

/** Lines of timers `Debug` prints at most. */
export const DEBUG_LINES = 100

const decodeAction = Schema.decodeUnknownResult(TimerAction)
const EMPTY = response()
/** What a stored timer keeps of its request: nothing but the addressing. */
const NO_BODY = request()

const refusal = (limit: number, bound: TimerBound) =>
  response({ body: Json.toBytes({ Err: { TooManyTimers: { limit, bound } } } satisfies TimerRefusal) })

const serve = (
  ctx: ServiceContext,
  env: { readonly node: string; readonly print: (level: number, text: string) => void; readonly limits: Required<TimerOptions> }
): Effect.Effect<void> =>
  Effect.scoped(Effect.gen(function*() {
    const { limits, print } = env
    const clock = yield* Clock.Clock
    const now = () => Number(clock.monotonicTimeNanosUnsafe()) / 1e6
    const queue = new TimerQueue()

    // --- firing ---
    let wake = Deferred.makeUnsafe<void>()
    let sleepingUntil = Infinity
    const fireDue = () => {
      const t = now()
      for (let head = queue.peek(); head !== undefined && head.deadline <= t; head = queue.peek()) {
        queue.pop()
        ctx.reply(head.request, EMPTY)
      }
    }
    const arm = (deadline: number) => {
      if (deadline < sleepingUntil) {
        sleepingUntil = deadline
        Deferred.doneUnsafe(wake, Effect.void)
      }
    }
    yield* Effect.forkScoped(Effect.gen(function*() {
      while (true) {
        fireDue()
        const head = queue.peek()
        sleepingUntil = head?.deadline ?? Infinity
        const woken = wake
        const remaining = head === undefined ? Infinity : head.deadline - now()
        if (remaining < 1) {
          // The last fraction of a millisecond: a turn of the event loop, not a timer
          // (timers round to whole milliseconds and would make the answer ~1 ms late).
          yield* Effect.yieldNow
          continue
        }
        yield* remaining === Infinity
          ? Deferred.await(woken)
          : Effect.raceFirst(Effect.sleep(Duration.millis(remaining)), Deferred.await(woken))
        if (wake === woken && (yield* Deferred.isDone(woken))) wake = Deferred.makeUnsafe<void>()
      }
    }))

    // --- requests ---
    const debug = () => {
      const t = now()
      print(0, `timer service active timers (${queue.size}):`)
      for (const timer of queue.firstInOrder(DEBUG_LINES)) {
        const r = timer.request
        print(0, `  in ${Math.max(0, Math.ceil(timer.deadline - t))} ms: answer ${r.id} to ${(r.rsvp ?? r.source).toString()}`)
      }
      if (queue.size > DEBUG_LINES) print(0, `  ... and ${queue.size - DEBUG_LINES} more`)
    }

    const setTimer = (km: KernelMessage, millis: bigint, t: number) => {
      const owner = km.source.process.toString()
      const bound: TimerBound | undefined = queue.countOf(owner) >= limits.maxPerProcess
        ? "process"
        : queue.size >= limits.maxTotal
        ? "node"
        : undefined
      if (bound !== undefined) {
        const limit = bound === "process" ? limits.maxPerProcess : limits.maxTotal
        print(1, `timer: refused a timer for ${km.source}: ${limit} active timers ${bound === "process" ? "for this process" : "on this node"} already`)
        ctx.reply(km, refusal(limit, bound))
        return
      }
      const deadline = t + Number(millis)
      queue.add(deadline, owner, { id: km.id, source: km.source, target: km.target, rsvp: km.rsvp, message: NO_BODY, blob: undefined })
      arm(deadline)
    }

    while (true) {
      const batch = yield* ctx.takeBatch
      const t = now()
      for (const km of batch) {
        if (km.message._tag !== "Request") continue
        if (km.source.node !== env.node) {
          print(1, `timer: refused a request from ${km.source}: timers are for this node's processes only`)
          continue
        }
        const parsed = Json.parseBody(km.message.body)
        const action = Result.isSuccess(parsed) ? decodeAction(parsed.success) : undefined
        if (action === undefined || Result.isFailure(action)) {
          print(1, `timer: a request from ${km.source} with an invalid body (expected "Debug" or {"SetTimer": <ms>})`)
          continue
        }
        if (action.success === "Debug") debug()
        else setTimer(km, action.success.SetTimer, t)
      }
      // `{"SetTimer":0}` is answered here, after anything already due.
      fireDue()
    }
  }))

/** The module, registered as `timer:distro:sys` (public) when the layer is built. */
export const layer = (options: TimerOptions = {}): Layer.Layer<never, never, ModuleHost | Printout> =>
  Layer.effectDiscard(Effect.gen(function*() {
    const host = yield* ModuleHost
    const printout = yield* Printout
    const limits: Required<TimerOptions> = {
      maxPerProcess: options.maxPerProcess ?? defaults.maxPerProcess,
      maxTotal: options.maxTotal ?? defaults.maxTotal
    }
    yield* host.serve(PROCESS, { public: true }, (ctx) =>
      serve(ctx, { node: host.node, print: (level, text) => printout.print(level, PROCESS, text), limits }))
  }))
