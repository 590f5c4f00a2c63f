/**
 * A `Request` action against the chain's URL providers, within the caller's bound:
 * - tried in order; the first answer wins and its provider moves to the front;
 * - a provider's JSON-RPC error object is the answer (`{"RpcError":…}`): other providers
 *   would say the same (Kinode also returns it at once);
 * - a provider that answers garbage, or cannot be reached, moves to the back and the
 *   next one is tried; when none is left the caller gets `RpcMalformedResponse` if one
 *   answered garbage, else `NoRpcForChain` (Kinode answers `NoRpcForChain` to both);
 * - no answer before the bound: `RpcTimeout`, whatever the provider is doing. Each
 *   attempt gets the time left and is bounded by its adapter's own timer (viem's request
 *   timeout, which aborts the HTTP exchange; the socket request's; the socket open's),
 *   so no provider can hold a request past it. (An Effect-level race around the whole
 *   cost 13 µs a request for no additional guarantee.)
 *
 * Plain callbacks, no fiber: this is the hot path of the module (a fiber per request,
 * `Effect.gen` and `Effect.result` per attempt cost about a tenth of a WebSocket
 * round trip to a local anvil). `done` is called exactly once, unless the request is
 * cancelled first (the module closing), after which it is never called.
 */
import type { EthError } from "./Protocol.ts"
import type { ProviderTable, UrlProvider } from "./Providers.ts"
import { type Attempt, describe, toEthError } from "./RpcErrors.ts"

export interface RequestDeps {
  readonly table: ProviderTable
  readonly print: (level: number, text: string) => void
  /** Monotonic milliseconds. */
  readonly now: () => number
}

export type Outcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: EthError }

/** Stops a request: the attempt in progress is dropped (an HTTP exchange aborted), `done` is not called. */
export type Cancel = () => void

const failed = (error: EthError): Outcome => ({ ok: false, error })

export const fulfil = (
  deps: RequestDeps,
  chainId: bigint,
  method: string,
  params: unknown,
  timeoutMillis: number,
  done: (outcome: Outcome) => void
): Cancel => {
  const { print, table } = deps
  const deadline = deps.now() + timeoutMillis
  const urls = table.urlsFor(chainId)
  if (urls === undefined || urls.length === 0) {
    done(failed("NoRpcForChain"))
    return () => {}
  }
  // JSON-RPC wants params as an array or an object; Kinode's `()` params arrive as null.
  const rpcParams = params === null || params === undefined ? [] : params
  const providers = urls.slice()
  let next = 0
  let worst: EthError = "NoRpcForChain"
  /** Attempts started; the cancel kept is the latest's (an attempt may end before `send` returns). */
  let tries = 0
  let cancelAttempt: Cancel | undefined
  let over = false

  const finish = (outcome: Outcome) => {
    over = true
    done(outcome)
  }
  const onAttempt = (tried: UrlProvider, r: Attempt): void => {
    if (over) return
    if (r.ok) {
      table.promote(chainId, tried)
      return finish(r)
    }
    const e = r.error
    print(2, `eth: ${method} on chain ${chainId}: ${describe(e)}`)
    switch (e._tag) {
      case "RpcErrorPayload":
        return finish(failed(toEthError(e)))
      case "RpcTimedOut":
        table.demote(chainId, tried)
        return finish(failed("RpcTimeout"))
      case "RpcMalformed":
        worst = "RpcMalformedResponse"
        table.demote(chainId, tried)
        return attempt()
      case "ProviderDown":
        table.demote(chainId, tried)
        return attempt()
    }
  }
  /** The next provider, or the end. */
  const attempt = (): void => {
    const left = deadline - deps.now()
    if (left > 0 && next < providers.length) {
      const provider = providers[next++]!
      const mine = ++tries
      const cancel = provider.send(method, rpcParams, left, (r) => onAttempt(provider, r))
      if (tries === mine) cancelAttempt = cancel
      return
    }
    finish(failed(left <= 0 ? "RpcTimeout" : worst))
  }
  attempt()
  return () => {
    if (over) return
    over = true
    cancelAttempt?.()
  }
}
