/**
 * The WAT echo component as a real process of the real kernel (testKernel:
 * LMDB, router, capability checks). The kernel's test node loads `native:`
 * programs only, so the loaded Wasm program is registered under a native name.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { testKernel } from "../../layers/TestLive.ts"
import { Kernel, messagingCap } from "../../src/Kernel.ts"
import { bodyText, request, text } from "../../src/Message.ts"
import type { NativeProgram } from "../../src/ProcessApi.ts"
import { ComponentCache } from "../../src/wasm-host/ComponentCache.ts"
import { loadWasmProgram } from "../../src/wasm-host/WasmProgram.ts"
import { buildEcho } from "../fixtures/wasm/build.ts"
import { at, startNative } from "../src/helpers.ts"

const loadEcho = Effect.promise(buildEcho).pipe(
  Effect.flatMap((bytes) => loadWasmProgram(bytes)),
  Effect.provide(ComponentCache.layer({ cacheDir: fs.mkdtempSync(path.join(os.tmpdir(), "wasm-cache-")) })),
  Effect.provide(NodeServices.layer)
)

describe("wasm process in the kernel", () => {
  it.live("a Wasm echo answers requests routed by the kernel", () =>
    Effect.gen(function*() {
      const wasmEcho = (yield* loadEcho) as NativeProgram
      const node = testKernel({ programs: { "wasm-echo": wasmEcho } })
      yield* Effect.gen(function*() {
        yield* startNative("echo:wasm:sys", "wasm-echo")
        const k = yield* Kernel
        const api = yield* k.session("driver:wasm:sys", {
          capabilities: [messagingCap(k.node, "echo:wasm:sys")],
          public: true
        })
        const r = yield* api.sendAndAwaitEffect(at("echo:wasm:sys"), request({ body: text("hi wasm"), expectsResponse: 5n }))
        assert.isTrue("message" in r && bodyText(r.message) === "hi wasm")
        // sequential round trips through router + mailbox + Wasm, for a figure
        const n = 20_000
        const t = performance.now()
        for (let i = 0; i < n; i++) {
          const x = yield* api.sendAndAwaitEffect(at("echo:wasm:sys"), request({ body: text("x"), expectsResponse: 5n }))
          if (!("message" in x)) assert.fail("no answer")
        }
        const rate = Math.round(n / ((performance.now() - t) / 1000))
        console.log(`wasm echo through the kernel: ${rate} sequential round trips/s`)
      }).pipe(Effect.provide(node.layer), Effect.scoped)
    }), 60_000)
})
