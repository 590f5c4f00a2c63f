/**
 * The indexer against a real anvil (one per file, random port, stopped at teardown) and a
 * `KimapLite` registry emitting Kimap's exact events: direct and indirect nodes, a note
 * change seen within seconds, the §1.8 API, the NodeInfo chain fallback, restart from the
 * LMDB checkpoint, and a reorg (evm_snapshot / evm_revert + new blocks) rolled back.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Anvil, freePort } from "../../../services/chain/Anvil.ts"
import { namehash } from "../../../services/chain/index.ts"
import { memoryCheckpoint } from "../../../services/kns-indexer/Checkpoint.ts"
import type { KnsIndexerConfig } from "../../../services/kns-indexer/KnsIndexer.ts"
import { KnsIndexer } from "../../../services/kns-indexer/KnsIndexer.ts"
import { Lmdb } from "../../../services/lmdb/Lmdb.ts"
import { address } from "../../../src/Ids.ts"
import * as Json from "../../../src/Json.ts"
import { eventually, registry, testIdentity } from "./support.ts"

const KEY_A = "a1".repeat(32)
const KEY_B = "b2".repeat(32)
const APP = address("test.os@app:app:pub.os")
const SELF = address("test.os@kns-indexer:kns-indexer:sys")

const AnvilLive = Layer.unwrap(Effect.map(freePort, (port) => Anvil.layer({ port, install: false })))

const config = (url: string, contract: string, extra: Partial<KnsIndexerConfig> = {}): KnsIndexerConfig => ({
  rpcUrl: url,
  contract,
  chainId: 31337,
  firstBlock: 0,
  confirmations: 2,
  pollInterval: "100 millis",
  rpcTimeout: "2 seconds",
  maxBackoff: "500 millis",
  ...extra
})

/** Builds an indexer in its own scope (closed by `stop`, which also writes the checkpoint). */
const startIndexer = <E>(layer: Layer.Layer<KnsIndexer, E>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const ctx = yield* Layer.buildWithScope(layer, scope).pipe(Effect.orDie)
    const indexer = ctx.mapUnsafe.get(KnsIndexer.key) as KnsIndexer["Service"]
    return { indexer, stop: Scope.close(scope, Exit.void) }
  })

const ask = (indexer: KnsIndexer["Service"], body: unknown, source = APP) =>
  Effect.map(indexer.handle(source, Json.toBytes(body), undefined), (r) => JSON.parse(new TextDecoder().decode(r.body)) as unknown)

describe("kns-indexer on anvil", () => {
  layer(AnvilLive, { timeout: 60_000, excludeTestServices: true })((it) => {
    it.effect("indexes direct and indirect nodes, answers the API, sees a changed ~ip within seconds", () =>
      Effect.gen(function*() {
        const chain = yield* Anvil
        const reg = registry(chain.url)
        const contract = yield* Effect.promise(() => reg.deploy())
        yield* Effect.promise(() => reg.mint("os"))
        yield* Effect.promise(() => reg.register("alice.os", { key: KEY_A, ip: "127.0.0.1", tcp: 9100, ws: 9000 }))
        yield* Effect.promise(() => reg.register("bob.os", { key: KEY_B, routers: ["alice.os"] }))
        const id = testIdentity()
        const { indexer, stop } = yield* startIndexer(
          KnsIndexer.layerWith(config(chain.url, contract), memoryCheckpoint()).pipe(Layer.provide(id.layer))
        )
        yield* eventually("alice and bob", () => id.records.has("alice.os") && id.records.has("bob.os"))
        const alice = id.records.get("alice.os")!
        assert.strictEqual(alice.publicKey, KEY_A)
        assert.deepStrictEqual(alice.ips, ["127.0.0.1"])
        assert.deepStrictEqual(alice.ports, { tcp: 9100, ws: 9000 })
        assert.deepStrictEqual(id.records.get("bob.os")!.routers, ["alice.os"])
        assert.deepStrictEqual(id.records.get("bob.os")!.ips, [])

        // the API, Kinode's shapes
        assert.deepStrictEqual(yield* ask(indexer, { NamehashToName: { hash: namehash("alice.os"), block: 0 } }), {
          Name: "alice.os"
        })
        assert.deepStrictEqual(yield* ask(indexer, { NamehashToName: { hash: namehash("nobody.os"), block: 0 } }), { Name: null })
        assert.deepStrictEqual(yield* ask(indexer, { NodeInfo: { name: "alice.os", block: 0 } }), {
          NodeInfo: { name: "alice.os", public_key: KEY_A, ips: ["127.0.0.1"], ports: [["tcp", 9100], ["ws", 9000]], routers: [] }
        })
        const st = (yield* ask(indexer, { GetState: { block: 0 } })) as { GetState: Record<string, unknown> }
        assert.strictEqual(st.GetState["chain_id"], 31337)
        assert.strictEqual((st.GetState["contract_address"] as Array<number>).length, 20)
        assert.deepStrictEqual((st.GetState["names"] as Array<[string, string]>).map(([, n]) => n).sort(), ["alice.os", "bob.os", "os"])
        assert.strictEqual((st.GetState["nodes"] as Array<unknown>).length, 3)
        assert.isTrue(typeof st.GetState["last_block"] === "number")
        // malformed requests get a typed error, never a crash; Reset needs the package or root
        for (const bad of [{ Nope: 1 }, { NodeInfo: { name: 5, block: 0 } }, "Reset!", null]) {
          const r = (yield* ask(indexer, bad)) as { Err: { BadRequest: string } }
          assert.isString(r.Err.BadRequest)
        }
        const raw = yield* indexer.handle(APP, new TextEncoder().encode("{not json"), undefined)
        assert.match(new TextDecoder().decode(raw.body), /BadRequest/)
        assert.deepStrictEqual(yield* ask(indexer, "Reset"), { Reset: { Err: "NoRootCap" } })
        const status = (yield* ask(indexer, "Status")) as { Status: { status: string; last_block: number; head: number } }
        assert.strictEqual(status.Status.status, "Live")
        assert.strictEqual(status.Status.last_block, status.Status.head)

        // a changed ~ip is pushed within seconds
        const t0 = Date.now()
        yield* Effect.promise(() => reg.note("alice.os", "~ip", Uint8Array.of(10, 0, 0, 7)))
        yield* eventually("alice's new ip", () => id.records.get("alice.os")!.ips[0] === "10.0.0.7", 5_000)
        const seenAfter = Date.now() - t0
        assert.isBelow(seenAfter, 3_000)

        // malformed notes on chain are ignored; the indexer keeps going
        yield* Effect.promise(() => reg.note("alice.os", "~ip", Uint8Array.of(1, 2, 3)))
        yield* Effect.promise(() => reg.note("alice.os", "~routers", new Uint8Array(33)))
        yield* Effect.promise(() => reg.note("alice.os", "~tcp-port", Uint8Array.of(0x23, 0x29)))
        yield* eventually("alice's new tcp port", () => id.records.get("alice.os")!.ports["tcp"] === 9001, 5_000)
        assert.deepStrictEqual(id.records.get("alice.os")!.ips, ["10.0.0.7"])

        // Reset from the indexer's own package: re-indexes from the first block, same result
        assert.deepStrictEqual(yield* ask(indexer, "Reset", SELF), { Reset: "Success" })
        yield* eventually("re-indexed", () => indexer.state().node("alice.os")?.ports["tcp"] === 9001)
        assert.strictEqual(indexer.status()._tag, "Live")
        yield* stop
      }))

    it.effect("follows over WebSocket as well", () =>
      Effect.gen(function*() {
        const chain = yield* Anvil
        const reg = registry(chain.url)
        const contract = yield* Effect.promise(() => reg.deploy())
        yield* Effect.promise(() => reg.mint("os"))
        yield* Effect.promise(() => reg.register("wes.os", { key: KEY_A, ip: "127.0.0.1", ws: 9000 }))
        const id = testIdentity()
        const { stop } = yield* startIndexer(
          KnsIndexer.layerWith(config(chain.wsUrl, contract), memoryCheckpoint()).pipe(Layer.provide(id.layer))
        )
        yield* eventually("wes", () => id.records.has("wes.os"))
        yield* Effect.promise(() => reg.note("wes.os", "~ip", Uint8Array.of(10, 0, 0, 9)))
        yield* eventually("wes's new ip", () => id.records.get("wes.os")!.ips[0] === "10.0.0.9", 5_000)
        yield* stop
      }))

    it.effect("NodeInfo miss reads the name from the chain, stores and pushes it", () =>
      Effect.gen(function*() {
        const chain = yield* Anvil
        const reg = registry(chain.url)
        const contract = yield* Effect.promise(() => reg.deploy())
        yield* Effect.promise(() => reg.mint("os"))
        yield* Effect.promise(() => reg.register("carol.os", { key: KEY_A, ip: "192.168.1.9", tcp: 9200 }))
        const start = Number(yield* Effect.promise(() => reg.blockNumber())) + 1
        const id = testIdentity()
        // starts after carol's registration: only the chain read can know her
        const { indexer, stop } = yield* startIndexer(
          KnsIndexer.layerWith(config(chain.url, contract, { firstBlock: start }), memoryCheckpoint()).pipe(Layer.provide(id.layer))
        )
        yield* eventually("live", () => indexer.status()._tag === "Live")
        assert.isFalse(id.records.has("carol.os"), JSON.stringify({ start, st: indexer.state().lastBlock, pushes: id.pushes, stats: indexer.stats() }))
        assert.deepStrictEqual(yield* ask(indexer, { NodeInfo: { name: "carol.os", block: 0 } }), {
          NodeInfo: { name: "carol.os", public_key: KEY_A, ips: ["192.168.1.9"], ports: [["tcp", 9200]], routers: [] }
        })
        assert.deepStrictEqual(id.records.get("carol.os")!.ips, ["192.168.1.9"])
        assert.deepStrictEqual(yield* ask(indexer, { NamehashToName: { hash: namehash("carol.os"), block: 0 } }), { Name: "carol.os" })
        // an unregistered or invalid name is null
        assert.deepStrictEqual(yield* ask(indexer, { NodeInfo: { name: "nobody.os", block: 0 } }), { NodeInfo: null })
        assert.deepStrictEqual(yield* ask(indexer, { NodeInfo: { name: "Not Valid", block: 0 } }), { NodeInfo: null })
        yield* stop
      }))

    it.effect("a restart resumes from the LMDB checkpoint, not from block 0", () =>
      Effect.gen(function*() {
        const chain = yield* Anvil
        const reg = registry(chain.url)
        const contract = yield* Effect.promise(() => reg.deploy())
        const first = Number(yield* Effect.promise(() => reg.blockNumber()))
        yield* Effect.promise(() => reg.mint("os"))
        for (let i = 0; i < 6; i++) {
          yield* Effect.promise(() => reg.register(`n${i}.os`, { key: KEY_A, ip: `10.0.0.${i}`, tcp: 9000 + i }))
        }
        yield* Effect.promise(() => reg.mine(20))
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kns-indexer-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
        const cfg = config(chain.url, contract, { firstBlock: first, chunkSize: 4 })
        const indexerOver = (id: ReturnType<typeof testIdentity>) =>
          KnsIndexer.layer(cfg).pipe(Layer.provide(Layer.mergeAll(id.layer, Lmdb.at(dir))))

        const id1 = testIdentity()
        const run1 = yield* startIndexer(indexerOver(id1))
        yield* eventually("six nodes", () => id1.records.size === 6 && run1.indexer.status()._tag === "Live")
        const ranges1 = run1.indexer.stats().ranges
        const head = Number(yield* Effect.promise(() => reg.blockNumber()))
        assert.isAtLeast(ranges1, Math.floor((head - first) / 4))
        // a checkpoint once caught up, never past the final block (head - 2 confirmations)
        assert.isAtLeast(run1.indexer.stats().checkpoints, 1)
        assert.isAtMost(run1.indexer.stats().checkpointBlock, head - 2)
        yield* run1.stop // writes the checkpoint (final block = head - 2)

        yield* Effect.promise(() => reg.register("late.os", { key: KEY_B, ip: "10.9.9.9", tcp: 9999 }))
        const id2 = testIdentity()
        const run2 = yield* startIndexer(indexerOver(id2))
        // the saved records are pushed before any RPC round
        assert.strictEqual(id2.records.size, 6)
        assert.isAtLeast(run2.indexer.state().lastBlock, head - 2)
        yield* eventually("late.os", () => id2.records.has("late.os") && run2.indexer.status()._tag === "Live")
        // only the unfinal tail and the new block were fetched again
        assert.isAtMost(run2.indexer.stats().ranges, 2)
        yield* run2.stop

        // a corrupt checkpoint: one log line and a full re-index, never a crash
        yield* Effect.scoped(Effect.gen(function*() {
          const lmdb = yield* Layer.build(Lmdb.at(dir)).pipe(Effect.map((c) => c.mapUnsafe.get(Lmdb.key) as Lmdb["Service"]))
          yield* Effect.promise(() => lmdb.open<Buffer>("kns-indexer", "binary").put("kns-indexer:kns-indexer:sys", Buffer.from("garbage")))
        }))
        const id3 = testIdentity()
        const run3 = yield* startIndexer(indexerOver(id3))
        assert.strictEqual(id3.records.size, 0)
        yield* eventually("re-indexed 7 nodes", () => id3.records.size === 7)
        assert.isAtLeast(run3.indexer.stats().ranges, ranges1)
        yield* run3.stop
      }))

    it.effect("a reorg (evm_snapshot, evm_revert, new blocks) rolls records back", () =>
      Effect.gen(function*() {
        const chain = yield* Anvil
        const reg = registry(chain.url)
        const contract = yield* Effect.promise(() => reg.deploy())
        yield* Effect.promise(() => reg.mint("os"))
        yield* Effect.promise(() => reg.register("alice.os", { key: KEY_A, ip: "127.0.0.1", tcp: 9100 }))
        const id = testIdentity()
        const { indexer, stop } = yield* startIndexer(
          KnsIndexer.layerWith(config(chain.url, contract, { confirmations: 10 }), memoryCheckpoint()).pipe(Layer.provide(id.layer))
        )
        yield* eventually("alice", () => id.records.has("alice.os"))
        const snapshot = yield* Effect.promise(() => reg.test.snapshot())
        yield* Effect.promise(() => reg.register("eve.os", { key: KEY_B, ip: "6.6.6.6", tcp: 6666 }))
        yield* Effect.promise(() => reg.note("alice.os", "~ip", Uint8Array.of(8, 8, 8, 8)))
        yield* eventually("eve and alice's new ip", () =>
          id.records.has("eve.os") && id.records.get("alice.os")!.ips[0] === "8.8.8.8")
        yield* Effect.promise(() => reg.test.revert({ id: snapshot }))
        yield* Effect.promise(() => reg.mine(4))
        yield* eventually("rolled back", () => !id.records.has("eve.os") && id.records.get("alice.os")!.ips[0] === "127.0.0.1")
        assert.strictEqual(indexer.stats().reorgs, 1)
        assert.strictEqual(indexer.state().nameOf(namehash("eve.os")), undefined)
        // and the new fork is followed
        yield* Effect.promise(() => reg.register("frank.os", { key: KEY_B, routers: ["alice.os"] }))
        yield* eventually("frank", () => id.records.has("frank.os"))
        yield* stop
      }))
  })
})
