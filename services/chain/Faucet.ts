/**
 * Funds an account on a development chain (anvil's `anvil_setBalance`), so each node
 * can own its name with a wallet of its own instead of sharing anvil's account #0.
 */
import { Effect } from "effect"
import { ChainUnavailable } from "./ChainError.ts"

/** Sets `address`'s balance to 100 ether on the anvil at `url`. */
export const fundOnAnvil = (url: string) => (address: string) =>
  Effect.tryPromise({
    try: async () => {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "anvil_setBalance", params: [address, "0x56bc75e2d63100000"] }),
        signal: AbortSignal.timeout(5000)
      })
      const body = (await res.json()) as { error?: { message?: string } }
      if (body.error !== undefined) throw new Error(body.error.message ?? "anvil_setBalance refused")
    },
    catch: (cause) => new ChainUnavailable({ url, reason: `cannot fund ${address}: ${cause instanceof Error ? cause.message : String(cause)}` })
  })
