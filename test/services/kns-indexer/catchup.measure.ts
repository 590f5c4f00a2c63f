/**
 * Catch-up rate of the KNS indexer (a measurement, not a test): a fresh anvil with
 * `NAMES` direct nodes registered through `KimapLite.registerMany` (each a Mint + 4 Notes),
 * then an indexer started at block 0 until it is live with every record pushed. Then
 * `NodeInfo` through the kernel: the indexer hosted as `kns-indexer:kns-indexer:sys` on
 * a real kernel (`layerNode`), asked by a process for names it has indexed.
 *
 *   node_modules/.bin/node test/services/kns-indexer/catchup.measure.ts [names] [chunk] [names per tx]
 *
 * Prints events/s end to end (RPC + decode + apply + identity pushes), for the pure
 * `IndexerState.applyAll` on the same logs, and the lookups' p50/p99.
 */
import { Effect, Exit, Layer, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { testKernel } from "../../../layers/TestLive.ts"
import { freePort, startAnvil } from "../../../services/chain/index.ts"
import { memoryCheckpoint } from "../../../services/kns-indexer/Checkpoint.ts"
import { IndexerState } from "../../../services/kns-indexer/IndexerState.ts"
import type { KimapLog } from "../../../services/kns-indexer/IndexerState.ts"
import { KNS_INDEXER, KnsIndexer } from "../../../services/kns-indexer/KnsIndexer.ts"
import { Lmdb } from "../../../services/lmdb/Lmdb.ts"
import { Identity } from "../../../src/Identity.ts"
import { address } from "../../../src/Ids.ts"
import * as Json from "../../../src/Json.ts"
import { Kernel, messagingCap } from "../../../src/Kernel.ts"
import { request } from "../../../src/Message.ts"
import { registry, testIdentity } from "./support.ts"

const NAMES = Number(process.argv[2] ?? 3000)
const CHUNK = Number(process.argv[3] ?? 10_000)
const PER_TX = Number(process.argv[4] ?? 100)
const LOOKUPS = 2_000
const WARMUP = 200

/**
 * `NodeInfo` for indexed names, asked by a process through the kernel (router,
 * capability checks, the service shell), one at a time; microseconds per round trip.
 */
const lookups = (url: string, contract: string) =>
  Effect.gen(function*() {
    const kernel = yield* Kernel
    const identity = yield* Identity
    const indexer = yield* KnsIndexer
    const CLIENT = "client:measure:sys"
    // A private process: it needs messaging to the indexer, and (Kinode's rule, responses
    // are checked too) the indexer needs messaging to it, or every answer is refused and
    // each request only ends at its timeout.
    const client = yield* kernel.session(CLIENT, { capabilities: [messagingCap(kernel.node, KNS_INDEXER)], public: false })
    yield* kernel.grant(KNS_INDEXER, [messagingCap(kernel.node, CLIENT)])
    while (!(identity.records().length >= NAMES && indexer.status()._tag === "Live")) yield* Effect.sleep("10 millis")
    const target = address(`${kernel.node}@${KNS_INDEXER}`)
    const samples: Array<number> = []
    // The first WARMUP are not counted (JIT, first allocations).
    for (let i = -WARMUP; i < LOOKUPS; i++) {
      const name = `node-${((i + WARMUP) * 7919) % NAMES}.os`
      const body = Json.toBytes({ NodeInfo: { name, block: 0 } })
      const t = performance.now()
      const r = yield* client.sendAndAwaitEffect(target, request({ body, expectsResponse: 5n }))
      if (i >= 0) samples.push(performance.now() - t)
      if (!("source" in r)) return yield* Effect.die(new Error(`NodeInfo ${name}: ${r.kind}`))
      const answer = JSON.parse(new TextDecoder().decode(r.message.body)) as { NodeInfo?: { name?: string } | null }
      if (answer.NodeInfo?.name !== name) return yield* Effect.die(new Error(`NodeInfo ${name}: ${JSON.stringify(answer)}`))
    }
    samples.sort((a, b) => a - b)
    const at = (p: number) => Math.round(samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))]! * 1000)
    console.log(`NodeInfo through the kernel (${LOOKUPS} lookups of indexed names): p50 ${at(50)} us, p99 ${at(99)} us`)
  }).pipe(
    Effect.provide(Layer.unwrap(Effect.gen(function*() {
      // The indexer's checkpoint in an LMDB of its own: the test kernel keeps its LMDB private.
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "kns-measure-"))),
        (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
      )
      return KnsIndexer.layerNode({ rpcUrl: url, contract, chainId: 31337, firstBlock: 0, pollInterval: "20 millis" }).pipe(
        Layer.provideMerge(Lmdb.at(dir)),
        Layer.provideMerge(testKernel({ node: "measure.dev" }).layer)
      )
    }))),
    Effect.scoped
  )

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

  yield* lookups(chain.url, contract)
})

Effect.runPromise(Effect.scoped(program)).then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})
