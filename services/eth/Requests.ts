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
 */
import { Effect } from "effect"
import type { EthError } from "./Protocol.ts"
import type { ProviderTable } from "./Providers.ts"
import { describe, toEthError } from "./RpcErrors.ts"

export interface RequestDeps {
  readonly table: ProviderTable
  readonly print: (level: number, text: string) => void
  /** Monotonic milliseconds. */
  readonly now: () => number
}

export const fulfil = (
  deps: RequestDeps,
  chainId: bigint,
  method: string,
  params: unknown,
  timeoutMillis: number
): Effect.Effect<unknown, EthError> =>
  Effect.gen(function*() {
    const { print, table } = deps
    const deadline = deps.now() + timeoutMillis
    const urls = table.urlsFor(chainId)
    if (urls === undefined || urls.length === 0) return yield* Effect.fail<EthError>("NoRpcForChain")
    // JSON-RPC wants params as an array or an object; Kinode's `()` params arrive as null.
    const rpcParams = params === null || params === undefined ? [] : params
    let worst: EthError = "NoRpcForChain"
    for (const provider of [...urls]) {
      const left = deadline - deps.now()
      if (left <= 0) break
      const r = yield* Effect.result(provider.request(method, rpcParams, left))
      if (r._tag === "Success") {
        table.promote(chainId, provider)
        return r.success
      }
      const e = r.failure
      print(2, `eth: ${method} on chain ${chainId}: ${describe(e)}`)
      switch (e._tag) {
        case "RpcErrorPayload":
          return yield* Effect.fail(toEthError(e))
        case "RpcTimedOut":
          table.demote(chainId, provider)
          return yield* Effect.fail<EthError>("RpcTimeout")
        case "RpcMalformed":
          worst = "RpcMalformedResponse"
          table.demote(chainId, provider)
          break
        case "ProviderDown":
          table.demote(chainId, provider)
          break
      }
    }
    if (deadline - deps.now() <= 0) return yield* Effect.fail<EthError>("RpcTimeout")
    return yield* Effect.fail(worst)
  })
