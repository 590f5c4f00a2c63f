/**
 * `timer:distro:sys` wire protocol (kinode-semantics §6.5): Kinode's serde JSON
 * `TimerAction`. A timer's answer is a Response with an **empty body**; the only other
 * answer is the refusal of a timer beyond the bounds, `{"Err":{"TooManyTimers":…}}`
 * (Kinode has no bound and no error answer).
 */
import { Schema } from "effect"
import { U64 } from "../../src/Json.ts"

/** `TimerAction`: `"Debug"` or `{"SetTimer": <milliseconds, u64>}`. */
export const TimerAction = Schema.Union([
  Schema.Literal("Debug"),
  Schema.Struct({ SetTimer: U64 })
])
export type TimerAction = typeof TimerAction.Type

/** Which bound a refused timer hit: the setter's own, or the node's. */
export const TimerBound = Schema.Literals(["process", "node"])
export type TimerBound = typeof TimerBound.Type

/**
 * The answer to a `SetTimer` beyond a bound, sent at once instead of the timer (same
 * id, to `rsvp ?? source`, as the timer's own answer would be):
 * `{"Err":{"TooManyTimers":{"limit":10000,"bound":"process"}}}`.
 */
export const TimerRefusal = Schema.Struct({
  Err: Schema.Struct({ TooManyTimers: Schema.Struct({ limit: Schema.Int, bound: TimerBound }) })
})
export type TimerRefusal = typeof TimerRefusal.Type

/** The process id the module runs under. */
export const PROCESS = "timer:distro:sys"
