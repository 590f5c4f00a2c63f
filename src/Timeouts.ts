/**
 * Deadlines for requests that expect a response.
 *
 * Timeouts are whole seconds, so most outstanding requests share a handful of
 * durations; entries for one duration are created in deadline order. One FIFO per
 * duration and a single sleeping fiber make scheduling and cancelling O(1)
 * (cancelled entries are skipped when they reach the front), which matters when a
 * process has a thousand requests in flight. The fiber sleeps on the Effect `Clock`,
 * so `TestClock` drives it in tests.
 */
import { Clock, Context, Deferred, Effect, Fiber, Layer } from "effect"

export class TimeoutHandle {
  cancelled = false
  readonly deadline: number
  private callback: (() => void) | undefined
  constructor(deadline: number, callback: () => void) {
    this.deadline = deadline
    this.callback = callback
  }
  /**
   * Settles the handle without firing. The callback is dropped at once: it holds the
   * request (body, blob), which must not stay alive until the deadline passes.
   */
  cancel(): void {
    this.cancelled = true
    this.callback = undefined
  }
  /** Fires once, unless cancelled. */
  fire(): void {
    const callback = this.callback
    this.cancel()
    callback?.()
  }
}

export class Timeouts extends Context.Service<Timeouts, {
  /** Calls `fire` after `seconds` unless the handle is cancelled first. */
  readonly schedule: (seconds: number, fire: () => void) => TimeoutHandle
}>()("kernel/Timeouts") {
  static readonly layer = Layer.effect(
    Timeouts,
    Effect.gen(function*() {
      const clock = yield* Clock.Clock
      /** One FIFO per duration; `head` skips settled entries without shifting the array. */
      interface Lane {
        items: Array<TimeoutHandle>
        head: number
      }
      const lanes = new Map<number, Lane>()
      const compact = (lane: Lane) => {
        if (lane.head > 1024 && lane.head * 2 > lane.items.length) {
          lane.items = lane.items.slice(lane.head)
          lane.head = 0
        }
      }
      let wake = yield* Deferred.make<void>()
      let sleepingUntil = Infinity

      const earliest = (): number => {
        let min = Infinity
        for (const [seconds, lane] of lanes) {
          while (lane.head < lane.items.length && lane.items[lane.head]!.cancelled) lane.head++
          if (lane.head === lane.items.length) lanes.delete(seconds)
          else {
            compact(lane)
            if (lane.items[lane.head]!.deadline < min) min = lane.items[lane.head]!.deadline
          }
        }
        return min
      }

      const fireDue = (now: number) => {
        for (const [seconds, lane] of lanes) {
          while (lane.head < lane.items.length && lane.items[lane.head]!.deadline <= now) {
            const h = lane.items[lane.head]!
            lane.head++
            if (!h.cancelled) h.fire()
          }
          if (lane.head === lane.items.length) lanes.delete(seconds)
          else compact(lane)
        }
      }

      const loop = Effect.gen(function*() {
        while (true) {
          fireDue(clock.currentTimeMillisUnsafe())
          const next = earliest()
          sleepingUntil = next
          const now = clock.currentTimeMillisUnsafe()
          const wait = next === Infinity ? Deferred.await(wake) : Effect.raceFirst(
            Effect.sleep(Math.max(0, next - now)),
            Deferred.await(wake)
          )
          yield* wait
          if (yield* Deferred.isDone(wake)) wake = yield* Deferred.make<void>()
        }
      })
      const fiber = yield* Effect.forkScoped(loop)
      yield* Effect.addFinalizer(() => Fiber.interrupt(fiber))

      return Timeouts.of({
        schedule: (seconds, fire) => {
          const ms = Math.max(0, seconds * 1000)
          const handle = new TimeoutHandle(clock.currentTimeMillisUnsafe() + ms, fire)
          let lane = lanes.get(ms)
          if (lane === undefined) {
            lane = { items: [], head: 0 }
            lanes.set(ms, lane)
          }
          lane.items.push(handle)
          if (handle.deadline < sleepingUntil) {
            sleepingUntil = handle.deadline
            Deferred.doneUnsafe(wake, Effect.void)
          }
          return handle
        }
      })
    })
  )
}
