/**
 * viem clients for one RPC URL. Retries and timeouts are done by `rpc.ts`
 * (viem's own retry is off; its HTTP timeout is the policy's, so a hung
 * request is aborted too).
 * @internal
 */
import { Duration } from "effect"
import { type Chain, type PublicClient, createPublicClient, defineChain, http } from "viem"
import { MULTICALL_ADDRESS } from "../Kimap.ts"
import type { RpcPolicy } from "./rpc.ts"

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
export const publicClientFor = (url: string, policy: RpcPolicy, chain?: Chain): PublicClient =>
  createPublicClient({
    ...(chain === undefined ? {} : { chain }),
    pollingInterval: 100,
    transport: http(url, { retryCount: 0, timeout: Duration.toMillis(policy.timeout) })
  }) as PublicClient
