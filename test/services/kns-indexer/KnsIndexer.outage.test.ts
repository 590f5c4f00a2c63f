/**
 * RPC failures never stop the indexer: an endpoint that hangs, one that answers garbage,
 * and a real anvil killed mid-run then restarted from its state file. Each time the
 * status says `Unreachable`, requests are still answered from memory, and the indexer
 * recovers by itself once the chain answers again.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { freePort, startAnvil } from "../../../services/chain/index.ts"
import { memoryCheckpoint } from "../../../services/kns-indexer/Checkpoint.ts"
import type { KnsIndexerConfig } from "../../../services/kns-indexer/KnsIndexer.ts"
import { KnsIndexer } from "../../../services/kns-indexer/KnsIndexer.ts"
import { address } from "../../../src/Ids.ts"
import * as Json from "../../../src/Json.ts"
import { eventually, registry, testIdentity } from "./support.ts"

const APP = address("test.os@app:app:pub.os")
const KEY = "e5".repeat(32)

const config = (rpcUrl: string, extra: Partial<KnsIndexerConfig> = {}): KnsIndexerConfig => ({
  rpcUrl,
  contract: "0x000000000033e5CCbC52Ec7BDa87dB768f9aA93F",
  chainId: 31337,
  firstBlock: 0,
  confirmations: 1,
  pollInterval: "100 millis",
  rpcTimeout: "300 millis",
  maxBackoff: "300 millis",
  ...extra
})

const startIndexer = <E>(layer: Layer.Layer<KnsIndexer, E>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const ctx = yield* Layer.buildWithScope(layer, scope).pipe(Effect.orDie)
    const indexer = ctx.mapUnsafe.get(KnsIndexer.key) as KnsIndexer["Service"]
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    return indexer
  })

/** A local server for the test's life. */
const serve = <S extends net.Server>(server: S) =>
  Effect.acquireRelease(
    Effect.callback<number>((resume) => {
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed((server.address() as net.AddressInfo).port)))
    }),
    () =>
      Effect.callback<void>((resume) => {
        ;(server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.()
        server.close(() => resume(Effect.void))
      })
  )

const askJson = (indexer: KnsIndexer["Service"], body: unknown) =>
  Effect.map(indexer.handle(APP, Json.toBytes(body), undefined), (reply) => JSON.parse(new TextDecoder().decode(reply.body)) as unknown)

/** The API still answers from memory, and `"Status"` says the chain is unreachable. */
const stillAnswers = (indexer: KnsIndexer["Service"]) =>
  Effect.gen(function*() {
    const r = (yield* askJson(indexer, { GetState: { block: 0 } })) as { GetState?: { chain_id: number } }
    assert.strictEqual(r.GetState?.chain_id, 31337)
    const s = (yield* askJson(indexer, "Status")) as { Status: { status: string; failures: number; error: string } }
    assert.strictEqual(s.Status.status, "Unreachable")
    assert.isAtLeast(s.Status.failures, 1)
    assert.isString(s.Status.error)
  })

describe("kns-indexer when the RPC fails", () => {
  it.live("an RPC that hangs: unreachable after the timeout, answers go on", () =>
    Effect.gen(function*() {
      const sockets: Array<net.Socket> = []
      const port = yield* serve(net.createServer((s) => void sockets.push(s)))
      yield* Effect.addFinalizer(() => Effect.sync(() => sockets.forEach((s) => s.destroy())))
      const indexer = yield* startIndexer(
        KnsIndexer.layerWith(config(`http://127.0.0.1:${port}`), memoryCheckpoint()).pipe(Layer.provide(testIdentity().layer))
      )
      yield* eventually("unreachable", () => indexer.status()._tag === "Unreachable", 5_000)
      const s = indexer.status()
      assert.isTrue(s._tag === "Unreachable" && /no answer/.test(s.error), JSON.stringify(s))
      yield* stillAnswers(indexer)
    }))

  it.live("an RPC that answers garbage: unreachable, answers go on", () =>
    Effect.gen(function*() {
      const server = http.createServer((req, res) => {
        let body = ""
        req.on("data", (d) => body += d)
        req.on("end", () => {
          const id = (() => {
            try {
              return (JSON.parse(body) as { id: number }).id
            } catch {
              return 1
            }
          })()
          res.setHeader("content-type", "application/json")
          res.end(JSON.stringify({ jsonrpc: "2.0", id, result: { number: "not a number", hash: 42 } }))
        })
      })
      const port = yield* serve(server)
      const indexer = yield* startIndexer(
        KnsIndexer.layerWith(config(`http://127.0.0.1:${port}`), memoryCheckpoint()).pipe(Layer.provide(testIdentity().layer))
      )
      yield* eventually("unreachable", () => indexer.status()._tag === "Unreachable", 5_000)
      const s = indexer.status()
      assert.isTrue(s._tag === "Unreachable" && /unexpected answer/.test(s.error), JSON.stringify(s))
      yield* stillAnswers(indexer)
    }))

  it.live("anvil killed mid-run: unreachable, the node keeps running, recovery after anvil restarts", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kns-outage-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const stateFile = path.join(dir, "anvil.json")
      const runAnvil = Effect.gen(function*() {
        const scope = yield* Scope.make()
        const chain = yield* startAnvil({ port, install: false, stateFile }).pipe(Scope.provide(scope), Effect.orDie)
        return { chain, stop: Scope.close(scope, Exit.void) }
      })

      const first = yield* runAnvil
      const reg = registry(first.chain.url)
      const contract = yield* Effect.promise(() => reg.deploy())
      yield* Effect.promise(() => reg.mint("os"))
      yield* Effect.promise(() => reg.register("alice.os", { key: KEY, ip: "127.0.0.1", tcp: 9100 }))
      const id = testIdentity()
      const indexer = yield* startIndexer(
        KnsIndexer.layerWith(config(first.chain.url, { contract }), memoryCheckpoint()).pipe(Layer.provide(id.layer))
      )
      yield* eventually("alice", () => id.records.has("alice.os"))

      yield* first.stop // SIGTERM: anvil dumps its state and exits
      yield* eventually("unreachable", () => indexer.status()._tag === "Unreachable", 5_000)
      yield* Effect.sleep("1 second") // several failed rounds with back-off
      assert.strictEqual(indexer.status()._tag, "Unreachable")
      yield* stillAnswers(indexer)
      assert.isTrue(id.records.has("alice.os"))

      const second = yield* runAnvil
      yield* Effect.addFinalizer(() => second.stop)
      yield* Effect.promise(() => reg.register("bob.os", { key: KEY, ip: "127.0.0.2", tcp: 9200 }))
      yield* eventually("bob after the restart", () => id.records.has("bob.os"), 10_000)
      assert.strictEqual(indexer.status()._tag, "Live")
      assert.isTrue(id.records.has("alice.os"))
    }), { timeout: 60_000 })

  it.live("a chain reset below the final block (anvil restarted empty): records retracted, re-indexed", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const runAnvil = Effect.gen(function*() {
        const scope = yield* Scope.make()
        const chain = yield* startAnvil({ port, install: false }).pipe(Scope.provide(scope), Effect.orDie)
        return { chain, stop: Scope.close(scope, Exit.void) }
      })
      const first = yield* runAnvil
      const reg = registry(first.chain.url)
      const contract = yield* Effect.promise(() => reg.deploy())
      yield* Effect.promise(() => reg.mint("os"))
      yield* Effect.promise(() => reg.register("alice.os", { key: KEY, ip: "127.0.0.1", tcp: 9100 }))
      yield* Effect.promise(() => reg.mine(5))
      const id = testIdentity()
      const indexer = yield* startIndexer(
        KnsIndexer.layerWith(config(first.chain.url, { contract }), memoryCheckpoint()).pipe(Layer.provide(id.layer))
      )
      yield* eventually("alice", () => id.records.has("alice.os") && indexer.state().lastFinalBlock > 3)
      yield* first.stop
      const second = yield* runAnvil
      yield* Effect.addFinalizer(() => second.stop)
      // same deployer nonce: the contract lands at the same address on the new chain
      assert.strictEqual(yield* Effect.promise(() => reg.deploy()), contract)
      yield* Effect.promise(() => reg.mint("os"))
      yield* Effect.promise(() => reg.register("carol.os", { key: KEY, ip: "127.0.0.3", tcp: 9300 }))
      yield* eventually("carol, and alice gone", () => id.records.has("carol.os") && !id.records.has("alice.os"), 10_000)
      assert.isAtLeast(indexer.stats().reorgs, 1)
    }), { timeout: 60_000 })

  it.live("a provider that caps getLogs ranges: ranges are halved once and kept under the cap", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const scope = yield* Effect.scope
      const chain = yield* startAnvil({ port, install: false }).pipe(Scope.provide(scope), Effect.orDie)
      const reg = registry(chain.url)
      const contract = yield* Effect.promise(() => reg.deploy())
      yield* Effect.promise(() => reg.mint("os"))
      for (let i = 0; i < 4; i++) yield* Effect.promise(() => reg.register(`c${i}.os`, { key: KEY, ip: "10.0.0.1", tcp: 9000 + i }))
      yield* Effect.promise(() => reg.mine(40))
      // a proxy answering "range too large" for eth_getLogs over more than 5 blocks
      let refused = 0
      const proxy = http.createServer((req, res) => {
        let body = ""
        req.on("data", (d) => body += d)
        req.on("end", () => {
          const msg = JSON.parse(body) as { id: number; method: string; params: Array<{ fromBlock: string; toBlock: string }> }
          res.setHeader("content-type", "application/json")
          if (msg.method === "eth_getLogs" && Number(msg.params[0]!.toBlock) - Number(msg.params[0]!.fromBlock) + 1 > 5) {
            refused++
            res.end(JSON.stringify({ jsonrpc: "2.0", id: msg.id, error: { code: -32005, message: "query exceeds max block range 5" } }))
            return
          }
          fetch(chain.url, { method: "POST", headers: { "content-type": "application/json" }, body }).then(
            (r) => r.text().then((t) => res.end(t)),
            () => res.destroy()
          )
        })
      })
      const proxyPort = yield* serve(proxy)
      const id = testIdentity()
      const indexer = yield* startIndexer(
        KnsIndexer.layerWith(config(`http://127.0.0.1:${proxyPort}`, { contract, rpcTimeout: "2 seconds" }), memoryCheckpoint())
          .pipe(Layer.provide(id.layer))
      )
      yield* eventually("four nodes, live", () => id.records.size === 4 && indexer.status()._tag === "Live", 15_000)
      // the whole chain (~50 blocks) → 25 → 12 → 6 → 3: at most 4 refused rounds (Mint + Note
      // each), then every range stays under the cap
      assert.isAtMost(refused, 8)
      assert.isAtLeast(indexer.stats().ranges, 10)
    }), { timeout: 60_000 })
})
