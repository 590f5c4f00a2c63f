/**
 * Catch-up rate of the KNS indexer (a measurement, not a test): a fresh anvil with
 * `NAMES` direct nodes registered through `KimapLite.registerMany` (each a Mint + 4 Notes),
 * then an indexer started at block 0 until it is live with every record pushed.
 *
 *   node_modules/.bin/node test/services/kns-indexer/catchup.measure.ts [names] [chunk] [names per tx]
 *
 * Prints events/s end to end (RPC + decode + apply + identity pushes) and for the pure
 * `IndexerState.applyAll` on the same logs.
 */
import { Effect, Exit, Layer, Scope } from "effect"
import { freePort, startAnvil } from "../../../services/chain/index.ts"
import { memoryCheckpoint } from "../../../services/kns-indexer/Checkpoint.ts"
import { IndexerState } from "../../../services/kns-indexer/IndexerState.ts"
import type { KimapLog } from "../../../services/kns-indexer/IndexerState.ts"
import { KnsIndexer } from "../../../services/kns-indexer/KnsIndexer.ts"
import { registry, testIdentity } from "./support.ts"

const NAMES = Number(process.argv[2] ?? 3000)
const CHUNK = Number(process.argv[3] ?? 10_000)
const PER_TX = Number(process.argv[4] ?? 100)

const program = Effect.gen(function*() {
  const port = yield* freePort
  const chain = yield* startAnvil({ port, install: false })
  const reg = registry(chain.url)
  const contract = yield* Effect.promise(() => reg.deploy())
  yield* Effect.promise(() => reg.mint("os"))
  const t0 = Date.now()
  for (let i = 0; i < NAMES; i += PER_TX) {
    const labels = Array.from({ length: Math.min(PER_TX, NAMES - i) }, (_, j) => `node-${i + j}`)
    yield* Effect.promise(() => reg.registerMany("os", labels, { key: "ab".repeat(32), ip: "10.0.0.1", tcp: 9000 }))
  }
  const head = Number(yield* Effect.promise(() => reg.blockNumber()))
  console.log(`registered ${NAMES} names (${NAMES * 5 + 1} events) in ${head} blocks, ${Date.now() - t0} ms`)

  for (const confirmations of [0, 12]) {
    const id = testIdentity()
    const scope = yield* Scope.make()
    const started = Date.now()
    const ctx = yield* Layer.buildWithScope(
      KnsIndexer.layerWith({
        rpcUrl: chain.url,
        contract,
        chainId: 31337,
        firstBlock: 0,
        chunkSize: CHUNK,
        confirmations,
        pollInterval: "20 millis"
      }, memoryCheckpoint()).pipe(Layer.provide(id.layer)),
      scope
    )
    const indexer = ctx.mapUnsafe.get(KnsIndexer.key) as KnsIndexer["Service"]
    while (!(id.records.size === NAMES && indexer.status()._tag === "Live")) yield* Effect.sleep("5 millis")
    const ms = Date.now() - started
    const stats = indexer.stats()
    console.log(
      `indexer (chunk ${CHUNK}, confirmations ${confirmations}): ${stats.logs} events, ${stats.ranges} ranges, ` +
        `${stats.rpcCalls} RPC calls in ${ms} ms = ${Math.round(stats.logs / (ms / 1000))} events/s`
    )
    yield* Scope.close(scope, Exit.void)
  }

  // The pure state alone, on the same logs decoded once.
  const { decodeKimapLog } = yield* Effect.promise(() => import("../../../services/kns-indexer/KnsIndexer.ts"))
  const { MINT_TOPIC, NOTE_TOPIC } = yield* Effect.promise(() => import("../../../services/chain/index.ts"))
  const raw: Array<Parameters<typeof decodeKimapLog>[0]> = []
  for (let b = 0; b <= head; b += 4) {
    const part = yield* Effect.promise(() =>
      reg.pub.request({
        method: "eth_getLogs",
        params: [{ address: contract, fromBlock: `0x${b.toString(16)}`, toBlock: `0x${Math.min(head, b + 3).toString(16)}`, topics: [[MINT_TOPIC, NOTE_TOPIC]] }]
      })
    )
    raw.push(...(part as ReadonlyArray<Parameters<typeof decodeKimapLog>[0]>))
  }
  const logs = raw.map(decodeKimapLog).filter((l): l is KimapLog => typeof l !== "string")
  for (let round = 0; round < 3; round++) {
    const s = IndexerState.make({ chainId: 31337, contract, firstBlock: 0 })
    const t = performance.now()
    s.applyAll(logs)
    s.advance(head)
    s.finalize(head, 0)
    const ms = performance.now() - t
    console.log(`IndexerState.applyAll: ${logs.length} events in ${ms.toFixed(1)} ms = ${Math.round(logs.length / (ms / 1000))} events/s`)
  }
})

Effect.runPromise(Effect.scoped(program)).then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})
