/**
 * A runtime module whose answer the router refuses says so (Kinode prints a refused
 * capability at level 0): a private process that may message kv, but that kv may not
 * answer, sees its request time out, and the printout says why.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { address } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { Kernel, messagingCap } from "../../src/Kernel.ts"
import { request } from "../../src/Message.ts"
import { testKernel } from "../../layers/TestLive.ts"
import { Kv } from "../../services/kv/index.ts"
import { Lmdb } from "../../services/lmdb/Lmdb.ts"

describe("runtime module answers", () => {
  it.live("a refused answer is printed, not silently dropped", () =>
    Effect.gen(function*() {
      const k = testKernel()
      const ctx = yield* Layer.build(Kv.layer.pipe(Layer.provide(Lmdb.layer), Layer.provideMerge(k.layer)))
      const kernel = ctx.mapUnsafe.get(Kernel.key) as Kernel["Service"]
      const api = yield* kernel.session("private:test:pub.os", { capabilities: [messagingCap(kernel.node, "kv:distro:sys")], public: false })
      const r = yield* api.sendAndAwaitEffect(
        address(`${kernel.node}@kv:distro:sys`),
        request({ body: Json.toBytes({ package_id: "test:pub.os", db: "x", action: "Open" }), expectsResponse: 1n })
      )
      assert.isTrue("kind" in r, "the answer never reached the private process")
      assert.isTrue(
        k.lines.some((l) => l.level === 0 && /answer to .*private:test:pub\.os refused: CapabilityDenied/.test(l.text)),
        k.lines.map((l) => l.text).join("\n")
      )
    }), { timeout: 20_000 })
})
