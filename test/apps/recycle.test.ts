/**
 * componentize-js keeps every buffer it lowers for an import call until `init`
 * returns (never, for a Kinode process); the host lowers later results into them so
 * the guest frees them (FastAbi.ts, `Reclaimed`). Recycled buffers must never
 * corrupt what the guest reads, whatever the sizes; only componentize-js guests
 * get it. Our apps are built with componentize-qjs; the guest here is a componentize-js
 * echo (test/fixtures/componentize-js), as an app's author may build one.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, FileSystem, Layer } from "effect"
import { zipSync } from "fflate"
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll } from "vitest"
import { buildApp } from "../../apps/build.ts"
import { Packages } from "../../services/packages/index.ts"
import { ComponentCache } from "../../src/wasm-host/ComponentCache.ts"
import { Reclaimed } from "../../src/wasm-host/FastAbi.ts"
import { buildComponentizeJsEcho } from "../fixtures/componentize-js/build.ts"
import { buildEcho } from "../fixtures/wasm/build.ts"
import { appNode, ask, driver, entry } from "./support/AppNode.ts"

const repo = path.resolve(import.meta.dirname, "..", "..")
let cjsEcho: Uint8Array

beforeAll(async () => {
  const [component] = await Promise.all([buildComponentizeJsEcho(), buildApp("echo")])
  cjsEcho = component
}, 180_000)

describe("Reclaimed", () => {
  it("hands out the smallest buffer that fits and is aligned, each once", () => {
    const r = new Reclaimed()
    r.add(1000, 64)
    r.add(2001, 8)
    r.add(3000, 16)
    assert.strictEqual(r.take(9, 1), 3000)
    assert.strictEqual(r.take(8, 4), 1000) // 2001 is not 4-aligned
    assert.strictEqual(r.take(8, 1), 2001)
    assert.strictEqual(r.take(1, 1), undefined)
  })

  it("when full, drops its smallest buffer for a bigger one", () => {
    const r = new Reclaimed()
    for (let i = 0; i < 256; i++) r.add(8 * (i + 1), 4 + i)
    r.add(100_000, 1) // smaller than everything kept: not taken
    assert.strictEqual(r.size, 256)
    r.add(200_000, 1000)
    assert.strictEqual(r.size, 256)
    assert.strictEqual(r.take(4, 1), 16) // 8 (size 4) was dropped
    assert.strictEqual(r.take(999, 1), 200_000)
  })
})

describe("componentize-js echo through the kernel", () => {
  it.live("answers bodies of changing sizes and text, many times over", () =>
    Effect.gen(function*() {
      const zip = zipSync({ "manifest.json": new TextEncoder().encode(JSON.stringify([entry()])), "echo.wasm": cjsEcho })
      yield* Effect.flatMap(Packages, (p) => p.install({ package: "echo", publisher: "sys" }, zip))
      const api = yield* driver(["echo:echo:sys"])
      const sizes = [1, 3, 0, 40, 7, 70_000, 2, 5000, 12, 0, 300, 1]
      for (let round = 0; round < 40; round++) {
        for (const [i, n] of sizes.entries()) {
          const body = `${round}/${i} ${"é€x".repeat(n)}`.slice(0, Math.max(1, n))
          const answer = yield* ask(api, "echo:echo:sys", body)
          assert.strictEqual(new TextDecoder().decode(answer), body)
        }
      }
    }).pipe(Effect.provide(appNode().layer), Effect.scoped), 120_000)
})

describe("guest toolchain", () => {
  const cache = Layer.unwrap(Effect.gen(function*() {
    const files = yield* FileSystem.FileSystem
    const dir = yield* files.makeTempDirectoryScoped({ prefix: "wasm-cache-" })
    // the instrumented app comes from the tests' shared cache (vitest.config.ts)
    const shared = process.env["KINODE_TS_METERED_CACHE"]
    return ComponentCache.layer({ cacheDir: dir, ...(shared === undefined ? {} : { meteredDir: shared }) })
  }))
  layer(cache.pipe(Layer.provideMerge(NodeServices.layer)))((it) => {
    it.effect("componentize-js apps are recognised, hand-written components are not", () =>
      Effect.gen(function*() {
        const c = yield* ComponentCache
        const app = yield* c.load(cjsEcho)
        assert.strictEqual(app.toolchain, "componentize-js")
        // Our apps (componentize-qjs) free what they lower themselves.
        const ours = yield* c.load(new Uint8Array(fs.readFileSync(path.join(repo, "apps", "echo", "pkg", "echo.wasm"))))
        assert.strictEqual(ours.toolchain, "other")
        const wat = yield* c.load(yield* Effect.promise(buildEcho))
        assert.strictEqual(wat.toolchain, "other")
      }), 120_000)
  })
})
