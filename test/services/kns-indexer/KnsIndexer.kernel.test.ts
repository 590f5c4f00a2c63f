/**
 * The indexer hosted as `kns-indexer:kns-indexer:sys` on the real kernel (service shell,
 * router, capabilities) and filling the node's real identity port (`EphemeralIdentity`'s
 * PKI): an app asks it over messages, exactly as a Kinode app would.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Layer, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { testKernel } from "../../../layers/TestLive.ts"
import { KNS_INDEXER, KnsIndexer } from "../../../services/kns-indexer/index.ts"
import { Lmdb } from "../../../services/lmdb/Lmdb.ts"
import { Identity } from "../../../src/Identity.ts"
import { Address, pid } from "../../../src/Ids.ts"
import * as Json from "../../../src/Json.ts"
import { Kernel, messagingCap } from "../../../src/Kernel.ts"
import { request } from "../../../src/Message.ts"
import { eventually, registryChain } from "./support.ts"

const NODE = "test.dev"
const KEY = "f6".repeat(32)

describe("kns-indexer on the kernel", () => {
  it.live("an app asks the hosted indexer; records reach the node's identity port", () =>
    Effect.gen(function*() {
      const { chain, reg, contract } = yield* registryChain
      yield* Effect.promise(() => reg.register("alice.os", { key: KEY, ip: "127.0.0.1", tcp: 9100 }))

      // exactly what a node adds (its own LMDB dir here: the test kernel keeps its LMDB private)
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kns-kernel-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const indexer = KnsIndexer.layerNode({
        rpcUrl: chain.url,
        contract,
        chainId: 31337,
        firstBlock: 0,
        confirmations: 1,
        pollInterval: "100 millis"
      })
      const node = indexer.pipe(Layer.provideMerge(Lmdb.at(dir)), Layer.provideMerge(testKernel({ node: NODE }).layer))
      const ctx = yield* Layer.build(node)
      const kernel = ctx.mapUnsafe.get(Kernel.key) as Kernel["Service"]
      const identity = ctx.mapUnsafe.get(Identity.key) as Identity["Service"]
      yield* eventually("alice in the PKI", () => identity.lookup("alice.os") !== undefined)
      assert.deepStrictEqual(identity.lookup("alice.os")!.ips, ["127.0.0.1"])

      // an app with the messaging capability asks over the router
      const APP = "app:app:pub.os"
      const scope = yield* Effect.scope
      const api = yield* kernel.session(APP, { capabilities: [], public: true }).pipe(Scope.provide(scope))
      yield* kernel.grant(APP, [messagingCap(NODE, KNS_INDEXER)])
      const target = new Address({ node: NODE, process: pid(KNS_INDEXER) }, { disableChecks: true })
      const answers = new Map<string, Deferred.Deferred<unknown>>()
      yield* Effect.forkScoped(Effect.forever(Effect.flatMap(api.receiveEffect, (item) =>
        Effect.sync(() => {
          if (item._tag !== "Message" || item.message._tag !== "Response" || item.message.context === undefined) return
          const d = answers.get(new TextDecoder().decode(item.message.context))
          if (d !== undefined) Deferred.doneUnsafe(d, Effect.succeed(JSON.parse(new TextDecoder().decode(item.message.body))))
        }))))
      let n = 0
      const ask = (body: unknown) =>
        Effect.gen(function*() {
          const key = String(n++)
          const d = yield* Deferred.make<unknown>()
          answers.set(key, d)
          api.sendRequest(target, request({ body: Json.toBytes(body), expectsResponse: 5n }), new TextEncoder().encode(key), undefined)
          return yield* Deferred.await(d)
        })
      assert.deepStrictEqual(yield* ask({ NodeInfo: { name: "alice.os", block: 0 } }), {
        NodeInfo: { name: "alice.os", public_key: KEY, ips: ["127.0.0.1"], ports: [["tcp", 9100]], routers: [] }
      })
      const bad = (yield* ask({ Nope: true })) as { Err: { BadRequest: unknown } }
      assert.isString(bad.Err.BadRequest)
      // Reset: refused to an app without the root capability
      assert.deepStrictEqual(yield* ask("Reset"), { Reset: { Err: "NoRootCap" } })
      yield* kernel.grant(APP, [{ issuer: target, params: JSON.stringify({ root: true }) }])
      assert.deepStrictEqual(yield* ask("Reset"), { Reset: "Success" })
      yield* eventually("re-indexed after Reset", () => {
        const k = ctx.mapUnsafe.get(KnsIndexer.key) as KnsIndexer["Service"]
        return k.state().node("alice.os") !== undefined && k.status()._tag === "Live"
      })
    }), { timeout: 60_000 })
})
