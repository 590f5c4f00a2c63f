/**
 * Kinode's restart back-off for a process whose on-exit is `Restart`, as an Effect
 * `Schedule`: the first restart is immediate; another one within a second of the
 * last waits until that second is over, then 1, 2, 4, 8 ... seconds more for a tight
 * crash loop (unbounded, as in Kinode); a process that ran quietly past its window
 * starts again from 0. Each supervised process steps its own copy
 * (`Schedule.toStep`), with the clock's `now` as the step's time.
 */
import { Duration, Effect, Schedule } from "effect"

/** Output: how many back-to-back restarts preceded this one. */
export const restartSchedule: Schedule.Schedule<number, unknown> = Schedule.fromStep(Effect.sync(() => {
  let nextSoonest = Number.NEGATIVE_INFINITY
  let attempts = 0
  return (now: number, _input: unknown) => {
    if (now >= nextSoonest) {
      nextSoonest = now + 1000
      attempts = 0
      return Effect.succeed([0, Duration.zero] as [number, Duration.Duration])
    }
    const wait = nextSoonest - now
    nextSoonest += 2 ** attempts * 1000
    attempts += 1
    return Effect.succeed([attempts, Duration.millis(wait)] as [number, Duration.Duration])
  }
}))

/** A process's own stepper: milliseconds to wait before restarting it at `now`. */
export const restartDelays = Effect.map(
  Schedule.toStep(restartSchedule),
  (step) => (now: number) => Effect.map(step(now, undefined), ([, delay]) => Duration.toMillis(delay))
)
