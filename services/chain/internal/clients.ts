/**
 * viem clients for one RPC URL (http(s) or ws(s)). Retries and timeouts are
 * done by `rpc.ts` (viem's own retry is off; its request timeout is the
 * policy's, so a hung request is abandoned too).
 * @internal
 */
import { Duration, Effect, type Scope } from "effect"
import { type Chain, type PublicClient, createPublicClient, defineChain, http } from "viem"
import { MULTICALL_ADDRESS } from "../Kimap.ts"
import type { RpcPolicy } from "./rpc.ts"
import { makeWsTransport } from "./wsTransport.ts"

/** @internal */
export const chainFor = (id: number, url: string): Chain =>
  defineChain({
    id,
    name: `kimap-${id}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [url] } },
    contracts: { multicall3: { address: MULTICALL_ADDRESS } }
  })

/** @internal */
export const isWebSocketUrl = (url: string): boolean => /^wss?:\/\//i.test(url)

/** An HTTP client (no connection to close). @internal */
export const publicClientFor = (url: string, policy: RpcPolicy, chain?: Chain): PublicClient =>
  createPublicClient({
    ...(chain === undefined ? {} : { chain }),
    pollingInterval: 100,
    transport: http(url, { retryCount: 0, timeout: Duration.toMillis(policy.timeout) })
  }) as PublicClient

/**
 * A client for `url` whatever its scheme; a WebSocket (our self-healing
 * transport, see `wsTransport.ts`) is closed with the scope.
 * @internal
 */
export const scopedClientFor = (url: string, policy: RpcPolicy, chain?: Chain): Effect.Effect<PublicClient, never, Scope.Scope> => {
  if (!isWebSocketUrl(url)) return Effect.succeed(publicClientFor(url, policy, chain))
  const ws = makeWsTransport(url, Duration.toMillis(policy.timeout))
  const client = createPublicClient({ ...(chain === undefined ? {} : { chain }), pollingInterval: 100, transport: ws.transport }) as PublicClient
  return Effect.as(Effect.addFinalizer(() => Effect.sync(ws.close)), client)
}
