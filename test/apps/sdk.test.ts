/**
 * The SDK's failures as an app meets them, inside a componentize-qjs component on a real
 * kernel (test/fixtures/apps/sdk-probe, built with apps/build.ts through `kinode-ts/sdk`):
 * `spawn`, `call`, `callJson`, `send` and `address` throw (or, for `send`, deliver) the
 * errors docs/apps.md documents, as the tagged classes with their data, and the process
 * survives every one (a trap would restart it: its start count stays 1).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll } from "vitest"
import { buildPackage } from "../../apps/build.ts"
import { Packages } from "../../services/packages/index.ts"
import { Kernel } from "../../src/Kernel.ts"
import { appNode, askJson, driver } from "./support/AppNode.ts"

const PROBE = "sdk-probe:sdk-probe:test.dev"
let zip: Uint8Array

beforeAll(async () => {
  // Cached in the fixture's pkg/.build-hash: ~20-40 s the first time, milliseconds after.
  const built = await buildPackage(path.resolve(import.meta.dirname, "../fixtures/apps/sdk-probe"))
  zip = new Uint8Array(fs.readFileSync(built.zip))
}, 180_000)

describe("the SDK's errors, from inside a component", () => {
  it.live("spawn, call, callJson, send and address fail with their documented errors; the process lives on", () =>
    Effect.gen(function*() {
      const packages = yield* Packages
      yield* packages.install({ package: "sdk-probe", publisher: "test.dev" }, zip)
      const kernel = yield* Kernel
      const node = kernel.node
      const api = yield* driver([PROBE])
      const probe = (what: string) => askJson(api, PROBE, what, 15n) as Effect.Effect<{ threw?: Record<string, unknown>; returned?: unknown }>
      const wasm = "/sdk-probe:test.dev/pkg"

      assert.deepStrictEqual((yield* probe("spawn-missing")).threw, {
        _tag: "SpawnFailed",
        reason: "no-file-at-path",
        wasmPath: `${wasm}/nope.wasm`,
        processName: "kid"
      })
      assert.deepStrictEqual((yield* probe("spawn-taken")).threw, {
        _tag: "SpawnFailed",
        reason: "name-taken",
        wasmPath: `${wasm}/sdk-probe.wasm`,
        processName: "sdk-probe"
      })
      // The node traps a process asking for a name that is not Kimap-safe; the SDK refuses first.
      assert.deepStrictEqual((yield* probe("spawn-bad-name")).threw, {
        _tag: "SpawnFailed",
        reason: "bad-name",
        wasmPath: `${wasm}/sdk-probe.wasm`,
        processName: "Bad Name"
      })
      const missing = `${node}@nope:nope:sys`
      const t0 = Date.now()
      assert.deepStrictEqual((yield* probe("call-missing")).threw, { _tag: "SendFailed", kind: "timeout", target: missing })
      assert.isBelow(Date.now() - t0, 1500, "a refused call fails at once, not after its 2 s timeout")
      assert.deepStrictEqual((yield* probe("call-self")).threw, { _tag: "CallToSelf", target: `${node}@${PROBE}` })
      assert.deepStrictEqual((yield* probe("call-json-missing")).threw, {
        _tag: "SendFailed",
        kind: "timeout",
        target: `${node}@nope:sdk-probe:test.dev`
      })
      assert.deepStrictEqual(yield* probe("send-plain"), { returned: null })
      assert.deepStrictEqual((yield* probe("send-missing")).returned, {
        error: { _tag: "SendFailed", kind: "timeout", target: missing },
        context: "ctx"
      })
      const bad = (yield* probe("bad-address")).threw
      assert.strictEqual(bad?.["_tag"], "BadAddress")
      assert.strictEqual(bad?.["text"], "not an address")
      const kernelAddress = { node, process: { processName: "kernel", packageName: "distro", publisherNode: "sys" } }
      assert.deepStrictEqual((yield* probe("local")).returned, [kernelAddress, kernelAddress])
      assert.deepStrictEqual(yield* probe("starts"), { returned: 1 }, "the process never trapped")
      assert.strictEqual(kernel.info(PROBE)?.status, "running")

      // UTF-8 both ways, surrogate pairs included (QuickJS has no TextEncoder of its own).
      assert.deepStrictEqual((yield* probe("utf8")).returned, {
        bytes: [...new TextEncoder().encode("h\u00e9llo \u20ac \ud834\udd1e")],
        back: true
      })
      // Math.random is seeded per process start, not frozen in the build's snapshot:
      // another instance of the same component draws other numbers.
      const [a1, a2] = (yield* probe("random")).returned as [number, number]
      assert.notStrictEqual(a1, a2)
      for (const x of [a1, a2]) assert.isTrue(x >= 0 && x < 1, String(x))
      yield* packages.install({ package: "sdk-probe", publisher: "other.dev" }, zip)
      const other = "sdk-probe:sdk-probe:other.dev"
      const api2 = yield* driver([other])
      const [b1] = (yield* askJson(api2, other, "random", 15n) as Effect.Effect<{ returned: [number, number] }>).returned
      assert.notStrictEqual(b1, a1)
    }).pipe(Effect.provide(appNode().layer), Effect.scoped), 120_000)
})
