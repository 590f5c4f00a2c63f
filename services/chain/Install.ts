/**
 * Installs the registry on an anvil chain at the production addresses:
 * runtime code via `anvil_setCode` (constructors do not run, so the contracts
 * keep no constructor state), then `Kimap.init` from anvil account #0, which
 * creates the root entry (Zero event) and mints the zones `os` and `dev`
 * (minter accounts: anyone may register `x.os` / `x.dev`).
 */
import { Effect } from "effect"
import { type Hex, type PublicClient, createTestClient, http, parseAbi, stringToHex, zeroAddress } from "viem"
import { privateKeyToAccount } from "viem/accounts"
import { type ArtifactsUnavailable, type CompileFailed, loadArtifacts } from "./Artifacts.ts"
import type { ChainUnavailable, Reverted } from "./ChainError.ts"
import { chainFor, publicClientFor } from "./internal/clients.ts"
import { type RpcPolicy, defaultPolicy, rpcRead } from "./internal/rpc.ts"
import { sendTx } from "./internal/tx.ts"
import { KIMAP_ADDRESS, KINO_ACCOUNT_IMPLEMENTATION, MULTICALL_ADDRESS, kimapAbi, namehash } from "./Kimap.ts"

/** Anvil's (and Kinode fakenet's) account #0. @category constants */
export const ANVIL_ACCOUNT_0_KEY: Hex = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
/** Anvil account #1 (tests use it as "someone else"). @category constants */
export const ANVIL_ACCOUNT_1_KEY: Hex = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
/** Where the zone minter account implementation is installed (our choice). @category constants */
export const KINO_MINTER_IMPLEMENTATION = "0x000000000000000000000000000000006b696e6f" as const
/** Zones minted under the root at initialisation. @category constants */
export const ZONES = ["os", "dev"] as const

const initAbi = parseAbi([
  "function init(address admin, address accountImpl, address zoneImpl, bytes[] zones)",
  "error AlreadyInitialized()"
])

/** Whether the registry answers: code at Kimap and the `os` zone minted. @category install */
export const isInstalled = (client: PublicClient, url: string, policy: RpcPolicy = defaultPolicy) =>
  Effect.gen(function*() {
    const code = yield* rpcRead(url, "eth_getCode", policy, () => client.getCode({ address: KIMAP_ADDRESS }))
    if (code === undefined || code === "0x") return false
    const [tba] = yield* rpcRead(url, "Kimap.get(os)", policy, () =>
      client.readContract({ address: KIMAP_ADDRESS, abi: kimapAbi, functionName: "get", args: [namehash("os")] }))
    return tba !== zeroAddress
  })

/**
 * Installs the registry unless it is already there. Returns whether this
 * call installed it. Safe against a concurrent installer: a lost `init` race
 * (AlreadyInitialized) counts as installed once `os` exists.
 * @category install
 */
export const ensureRegistry = Effect.fn("Install.ensureRegistry")(function*(
  url: string,
  chainId: number,
  policy: RpcPolicy = defaultPolicy
): Effect.fn.Return<boolean, ChainUnavailable | Reverted | CompileFailed | ArtifactsUnavailable> {
  const client = publicClientFor(url, policy, chainFor(chainId, url))
  if (yield* isInstalled(client, url, policy)) return false
  const artifacts = yield* loadArtifacts()
  const test = createTestClient({ mode: "anvil", transport: http(url, { retryCount: 0 }) })
  const codes: ReadonlyArray<readonly [Hex, Hex]> = [
    [KIMAP_ADDRESS, artifacts.contracts.Kimap.deployedBytecode],
    [MULTICALL_ADDRESS, artifacts.contracts.Multicall3.deployedBytecode],
    [KINO_ACCOUNT_IMPLEMENTATION, artifacts.contracts.KinoAccount.deployedBytecode],
    [KINO_MINTER_IMPLEMENTATION, artifacts.contracts.KinoMinterAccount.deployedBytecode]
  ]
  for (const [address, bytecode] of codes) {
    yield* rpcRead(url, "anvil_setCode", policy, () => test.setCode({ address, bytecode }))
  }
  const account = privateKeyToAccount(ANVIL_ACCOUNT_0_KEY)
  yield* sendTx({ url, client, account, policy, receiptTimeout: "30 seconds" }, {
    op: "Kimap.init",
    abi: initAbi,
    address: KIMAP_ADDRESS,
    functionName: "init",
    args: [account.address, KINO_ACCOUNT_IMPLEMENTATION, KINO_MINTER_IMPLEMENTATION, ZONES.map((z) => stringToHex(z))]
  }).pipe(
    Effect.catchIf((e) => e._tag === "Reverted" && e.error === "AlreadyInitialized", () => Effect.void),
    // Two nodes booting at once on a fresh chain both install: their init transactions
    // race for account #0's nonce, and the loser's may fail although the winner's
    // installed the registry. Installed is what matters.
    Effect.catch((e) =>
      Effect.gen(function*() {
        for (let i = 0; i < 20; i++) {
          if (yield* isInstalled(client, url, policy)) return
          yield* Effect.sleep("250 millis")
        }
        return yield* e
      })
    )
  )
  return true
})
