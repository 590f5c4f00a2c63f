/**
 * One RPC call = a viem promise wrapped with a timeout and retries with
 * exponential back-off. Transport failures, timeouts and undecodable answers
 * become `ChainUnavailable` (retried); a contract revert becomes `Reverted`
 * (deterministic, not retried).
 * @internal
 */
import { Duration, Effect, Schedule } from "effect"
import { BaseError, ContractFunctionRevertedError } from "viem"
import { ChainUnavailable, Reverted } from "../ChainError.ts"

/** @internal */
export interface RpcPolicy {
  /** Per attempt. */
  readonly timeout: Duration.Input
  /** Extra attempts after the first. */
  readonly retries: number
  /** First back-off delay; doubles per retry. */
  readonly backoff: Duration.Input
}

/** @internal */
export const defaultPolicy: RpcPolicy = { timeout: "5 seconds", retries: 3, backoff: "200 millis" }

const shortMessage = (cause: unknown): string => {
  if (cause instanceof BaseError) {
    return cause.details !== undefined && cause.details !== "" && cause.details !== cause.shortMessage
      ? `${cause.shortMessage} (${cause.details})`
      : cause.shortMessage
  }
  if (cause instanceof Error) return cause.message
  return String(cause)
}

/** The decoded revert of a viem error, if it is one. @internal */
export const revertOf = (cause: unknown): string | undefined => {
  if (!(cause instanceof BaseError)) return undefined
  const found = cause.walk((e) => e instanceof ContractFunctionRevertedError)
  if (!(found instanceof ContractFunctionRevertedError)) return undefined
  return found.data?.errorName ?? found.reason ?? found.signature ?? "unknown"
}

/** Runs `f` under the policy; `op` names the call in errors. @internal */
export const rpc = <A>(
  url: string,
  op: string,
  policy: RpcPolicy,
  f: () => Promise<A>,
  retryable: (e: ChainUnavailable) => boolean = () => true
): Effect.Effect<A, ChainUnavailable | Reverted> =>
  Effect.tryPromise({
    try: f,
    catch: (cause): ChainUnavailable | Reverted => {
      const reverted = revertOf(cause)
      return reverted !== undefined
        ? new Reverted({ operation: op, error: reverted })
        : new ChainUnavailable({ url, reason: `${op}: ${shortMessage(cause)}` })
    }
  }).pipe(
    Effect.timeoutOrElse({
      duration: policy.timeout,
      orElse: () => Effect.fail(new ChainUnavailable({ url, reason: `${op}: timed out` }))
    }),
    Effect.tapError((e) => e._tag === "ChainUnavailable" ? Effect.logDebug("rpc attempt failed", e.reason) : Effect.void),
    Effect.retry({
      while: (e: ChainUnavailable | Reverted) => e._tag === "ChainUnavailable" && retryable(e),
      schedule: Schedule.exponential(policy.backoff),
      times: policy.retries
    })
  )

/** `rpc` for calls that cannot revert (reads of state, block numbers). @internal */
export const rpcRead = <A>(url: string, op: string, policy: RpcPolicy, f: () => Promise<A>): Effect.Effect<A, ChainUnavailable> =>
  rpc(url, op, policy, f).pipe(
    Effect.catchTag("Reverted", (e) => Effect.fail(new ChainUnavailable({ url, reason: `${op}: reverted ${e.error}` })))
  )
