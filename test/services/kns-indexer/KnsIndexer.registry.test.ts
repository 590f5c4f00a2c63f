/**
 * The indexer against the real registry of `services/chain` (Kimap at its production
 * address, TBAs, Multicall3, zone minters) on its own anvil: direct and indirect
 * registrations through the TBA write path and a note update are indexed as Kinode would.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { Anvil, freePort, KIMAP_ADDRESS, Registry } from "../../../services/chain/index.ts"
import { memoryCheckpoint } from "../../../services/kns-indexer/Checkpoint.ts"
import { KnsIndexer } from "../../../services/kns-indexer/KnsIndexer.ts"
import { eventually, testIdentity } from "./support.ts"

const KEY_A = "c3".repeat(32)
const KEY_B = "d4".repeat(32)

const ChainLive = Layer.unwrap(Effect.map(freePort, (port) => Anvil.layer({ port, install: true })))
const Live = Registry.layerAnvil({ mineExtraBlock: false }).pipe(Layer.provideMerge(ChainLive))

describe("kns-indexer on the real registry", () => {
  layer(Live, { timeout: 120_000, excludeTestServices: true })((it) => {
    it.effect("direct and indirect registrations and a note update reach the identity port", () =>
      Effect.gen(function*() {
        const chain = yield* Anvil
        const registry = yield* Registry
        yield* registry.registerDirect({ name: "alice.os", netKey: KEY_A, ip: "127.0.0.1", tcpPort: 9100, wsPort: 9000 })
        yield* registry.registerIndirect({ name: "bob.dev", netKey: KEY_B, routers: ["alice.os"] })

        const id = testIdentity()
        const scope = yield* Scope.make()
        const ctx = yield* Layer.buildWithScope(
          KnsIndexer.layerWith({
            rpcUrl: chain.url,
            contract: KIMAP_ADDRESS,
            chainId: chain.chainId,
            firstBlock: 0,
            confirmations: 1,
            pollInterval: "100 millis"
          }, memoryCheckpoint()).pipe(Layer.provide(id.layer)),
          scope
        )
        const indexer = ctx.mapUnsafe.get(KnsIndexer.key) as KnsIndexer["Service"]
        yield* eventually("alice and bob", () => id.records.has("alice.os") && id.records.has("bob.dev"))
        const alice = id.records.get("alice.os")!
        assert.strictEqual(alice.publicKey, KEY_A)
        assert.deepStrictEqual(alice.ips, ["127.0.0.1"])
        assert.deepStrictEqual(alice.ports, { tcp: 9100, ws: 9000 })
        assert.deepStrictEqual(id.records.get("bob.dev")!.routers, ["alice.os"])
        // zones come from Kimap's own Mint events (no seeding needed)
        assert.strictEqual(indexer.state().nameOf("0xdeeac81ae11b64e7cab86d089c306e5d223552a630f02633ce170d2786ff1bbd"), "os")

        yield* registry.updateNotes({ name: "alice.os", notes: [{ label: "~ip", data: Uint8Array.of(10, 1, 2, 3) }] })
        yield* eventually("alice's new ip", () => id.records.get("alice.os")!.ips[0] === "10.1.2.3", 5_000)
        yield* Scope.close(scope, Exit.void)
      }))
  })
})
