/**
 * The Wasm process host against real components (built from WAT in
 * test/fixtures/wasm), driven through a recording test double of the kernel.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Exit, Fiber, FileSystem, Layer } from "effect"
import * as fs from "node:fs"
import { address } from "../../src/Ids.ts"
import * as Message from "../../src/Message.ts"
import { ComponentCache } from "../../src/wasm-host/ComponentCache.ts"
import { loadWasmProgram } from "../../src/wasm-host/WasmProgram.ts"
import {
  buildComponent,
  buildCoreModule,
  buildEcho,
  buildExerciser,
  buildTrap,
  buildV07
} from "../fixtures/wasm/build.ts"
import { firstAnswer, makeRecordingApi, pid, requestFrom } from "./RecordingProcessApi.ts"

const CacheLive = Layer.unwrap(Effect.gen(function*() {
  const files = yield* FileSystem.FileSystem
  const dir = yield* files.makeTempDirectoryScoped({ prefix: "wasm-cache-" })
  return ComponentCache.layer({ cacheDir: dir })
})).pipe(Layer.provideMerge(NodeServices.layer))

const OUR = "our.os@me:pkg:pub.os"
const text = (b: unknown) => new TextDecoder().decode(b as Uint8Array)

layer(CacheLive)("wasm host", (it) => {
  it.effect("echo answers each request with its body", () =>
    Effect.gen(function*() {
      const program = yield* loadWasmProgram(yield* Effect.promise(buildEcho))
      const rec = makeRecordingApi(OUR)
      const fiber = yield* Effect.forkChild(program(rec.api))
      for (const body of ["one", "two", "three"]) rec.deliver(requestFrom("a.os@x:y:z.os", body, 5n))
      const responses = yield* Effect.promise(() => rec.waitFor("sendResponse", 3))
      assert.deepStrictEqual(responses.map((c) => text((c[1] as Message.Response).body)), ["one", "two", "three"])
      // the process is blocked in receive: suspended on a Promise, waiting for more
      rec.deliver(requestFrom("a.os@x:y:z.os", "four"))
      yield* Effect.promise(() => rec.waitFor("sendResponse", 4))
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("exercises every kinode:process@1.0.0 import", () =>
    Effect.gen(function*() {
      const program = yield* loadWasmProgram(yield* Effect.promise(buildExerciser))
      const cap = { issuer: address("other.os@a:b:c.os"), params: "\"read\"" }
      const blob = { mime: "text/plain", bytes: Message.text("blob!") }
      const rec = makeRecordingApi(OUR, {
        state: new Uint8Array([9, 8, 7]),
        spawn: pid("kid:pkg:pub.os"),
        ourCapabilities: [cap],
        blob
      })
      rec.deliver(requestFrom("a.os@x:y:z.os", "hello", 5n))
      yield* program(rec.api)
      const names = rec.calls.map((c) => c[0])
      assert.deepStrictEqual(names, [
        "printToTerminal",
        "setOnExit",
        "getOnExit",
        "getState",
        "setState",
        "clearState",
        "spawn",
        "printToTerminal",
        "saveCapabilities",
        "dropCapabilities",
        "ourCapabilities",
        "saveCapabilities",
        "hasBlob",
        "getBlob",
        "lastBlob",
        "sendResponse",
        "sendRequest",
        "sendRequest",
        "sendAndAwaitResponse",
        "printToTerminal"
      ])
      const call = (i: number) => rec.calls[i]!
      assert.deepStrictEqual(call(0), ["printToTerminal", 0, OUR])
      assert.deepStrictEqual(call(1), ["setOnExit", { _tag: "Restart" }])
      assert.deepStrictEqual([...(call(4)[1] as Uint8Array)], [9, 8, 7])
      const spawn = call(6)[1] as { name: string; wasmPath: string; public: boolean; grantCapabilities: ReadonlyArray<readonly [unknown, string]>; onExit: unknown }
      assert.strictEqual(spawn.name, "kid")
      assert.strictEqual(spawn.wasmPath, "kid.wasm")
      assert.strictEqual(spawn.public, true)
      assert.deepStrictEqual(spawn.onExit, { _tag: "None" })
      assert.strictEqual(String(spawn.grantCapabilities[0]![0]), "proc:pkg:pub.os")
      assert.strictEqual(spawn.grantCapabilities[0]![1], "{\"x\":1}")
      assert.deepStrictEqual(call(7), ["printToTerminal", 0, "kid"])
      const saved = call(8)[1] as ReadonlyArray<Message.Capability>
      assert.strictEqual(saved[0]!.issuer.toString(), "node.os@proc:pkg:pub.os")
      assert.strictEqual(saved[0]!.params, "\"messaging\"")
      const resaved = call(11)[1] as ReadonlyArray<Message.Capability>
      assert.strictEqual(resaved[0]!.issuer.toString(), "other.os@a:b:c.os")
      assert.strictEqual(resaved[0]!.params, "\"read\"")
      const [, response, responseBlob] = call(15) as [string, Message.Response, Message.LazyLoadBlob]
      assert.strictEqual(text(response.body), "hello")
      assert.strictEqual(responseBlob.mime, "text/plain")
      assert.strictEqual(text(responseBlob.bytes), "blob!")
      const [, target, request, context] = call(16) as [string, unknown, Message.Request, Uint8Array]
      assert.strictEqual(String(target), OUR)
      assert.strictEqual(request.expectsResponse, 5n)
      assert.strictEqual(text(request.body), "ping")
      assert.strictEqual(text(context), "ctx")
      assert.strictEqual(String(call(18)[1]), "node.os@proc:pkg:pub.os")
      assert.deepStrictEqual(call(19), ["printToTerminal", 0, "pong"])
    }))

  it.effect("runs a 0.7.0 component with rc-2023-11-10 WASI imports", () =>
    Effect.gen(function*() {
      const program = yield* loadWasmProgram(yield* Effect.promise(buildV07))
      const rec = makeRecordingApi(OUR, { spawn: pid("123:pkg:pub.os") })
      rec.deliver(requestFrom("a.os@x:y:z.os", "old", 5n))
      yield* program(rec.api)
      const prints = rec.calls.filter((c) => c[0] === "printToTerminal")
      assert.deepStrictEqual(prints, [
        ["printToTerminal", 1, "hello from 0.7.0"],
        ["printToTerminal", 0, "clock-and-random-ok"],
        ["printToTerminal", 0, "123"]
      ])
      const spawn = rec.calls.find((c) => c[0] === "spawn")![1] as {
        name: string | undefined
        grantCapabilities: ReadonlyArray<readonly [unknown, string]>
      }
      assert.strictEqual(spawn.name, undefined)
      assert.strictEqual(String(spawn.grantCapabilities[0]![0]), "proc:pkg:pub.os")
      assert.strictEqual(spawn.grantCapabilities[0]![1], "\"messaging\"")
      const response = rec.calls.find((c) => c[0] === "sendResponse")![1] as Message.Response
      assert.strictEqual(text(response.body), "old")
    }))

  it.effect("a trap in init is a typed failure with the stderr tail", () =>
    Effect.gen(function*() {
      const program = yield* loadWasmProgram(yield* Effect.promise(buildTrap))
      const rec = makeRecordingApi(OUR)
      const exit = yield* Effect.exit(program(rec.api))
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(program(rec.api))
      assert.strictEqual(error._tag, "WasmProcessExit")
      assert.strictEqual(error.kind, "Trap")
      assert.strictEqual(error.process, "me:pkg:pub.os")
      assert.match(error.trap, /unreachable/)
      assert.match(error.stderr, /panicked at src\/lib.rs:1: fixture failure/)
      // stderr lines are also printed (verbosity 2)
      assert.isTrue(rec.calls.some((c) => c[0] === "printToTerminal" && c[1] === 2 && String(c[2]).includes("panicked")))
    }))

  it.effect("refuses a core module and garbage with typed errors", () =>
    Effect.gen(function*() {
      const core = yield* Effect.flip(loadWasmProgram(yield* Effect.promise(buildCoreModule)))
      assert.strictEqual(core._tag, "ComponentLoadError")
      assert.strictEqual(core._tag === "ComponentLoadError" && core.reason, "CoreModule")
      const garbage = yield* Effect.flip(loadWasmProgram(new TextEncoder().encode("definitely not wasm")))
      assert.strictEqual(garbage._tag === "ComponentLoadError" && garbage.reason, "NotWasm")
      const truncated = (yield* Effect.promise(buildEcho)).slice(0, 200)
      const broken = yield* Effect.flip(loadWasmProgram(truncated))
      assert.strictEqual(broken._tag === "ComponentLoadError" && broken.reason, "TranspileFailed")
    }))

  it.effect("refuses a component importing an interface the host lacks", () =>
    Effect.gen(function*() {
      const wit = `package foo:bar@1.0.0;
interface baz { f: func(); }
world w { import baz; export init: func(our: string); }`
      const wat = `(module (import "foo:bar/baz@1.0.0" "f" (func))
        (memory (export "memory") 1)
        (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0))
        (func (export "init") (param i32 i32)))`
      const bytes = yield* Effect.promise(() => buildComponent(wat, wit, "w"))
      const error = yield* Effect.flip(loadWasmProgram(bytes))
      assert.strictEqual(error._tag, "UnsupportedImports")
      assert.deepStrictEqual(error._tag === "UnsupportedImports" && error.imports, ["foo:bar/baz@1.0.0"])
    }))

  it.effect("caches: the same bytes load once per node run, and from disk after", () =>
    Effect.gen(function*() {
      const cache = yield* ComponentCache
      const bytes = yield* Effect.promise(buildEcho)
      const first = yield* cache.load(bytes)
      const second = yield* cache.load(bytes)
      assert.strictEqual(first, second)
    }))

  it.effect("two components holding the same core module share its compiled code", () =>
    Effect.gen(function*() {
      const cache = yield* ComponentCache
      const bytes = yield* Effect.promise(buildEcho)
      // The same component with a custom section appended: another component (another
      // hash, another transpile), with byte-identical core modules.
      const name = new TextEncoder().encode("kinode-ts:test")
      const other = Uint8Array.from([...bytes, 0x00, name.length + 2, name.length, ...name, 0x01])
      const a = yield* cache.load(bytes)
      const b = yield* cache.load(other)
      assert.notStrictEqual(a.hash, b.hash)
      const modulesA = yield* a.compiled(a.memoryPages)
      const modulesB = yield* b.compiled(b.memoryPages)
      assert.isAbove(modulesA.size, 0)
      assert.deepStrictEqual([...modulesB.keys()], [...modulesA.keys()])
      for (const [n, m] of modulesA) assert.strictEqual(modulesB.get(n), m, `${n} compiled once for both`)
      // Another memory cap is another compile, shared the same way.
      const smallA = yield* a.compiled(a.memoryPages / 2)
      const smallB = yield* b.compiled(b.memoryPages / 2)
      for (const [n, m] of smallA) {
        assert.notStrictEqual(m, modulesA.get(n))
        assert.strictEqual(smallB.get(n), m)
      }
      // Both still run.
      assert.strictEqual(yield* firstAnswer(yield* loadWasmProgram(other), OUR, "shared"), "shared")
    }))
})

describe("wasm host (fresh cache directory)", () => {
  layer(NodeServices.layer)((it) => {
    it.effect("a second cache over the same directory does not transpile again", () =>
      Effect.gen(function*() {
        const files = yield* FileSystem.FileSystem
        const dir = yield* files.makeTempDirectoryScoped({ prefix: "wasm-cache-" })
        const bytes = yield* Effect.promise(buildEcho)
        const load = ComponentCache.use((c) => c.load(bytes))
        const t0 = performance.now()
        yield* load.pipe(Effect.provide(ComponentCache.layer({ cacheDir: dir })))
        const cold = performance.now() - t0
        const t1 = performance.now()
        const warm = yield* load.pipe(Effect.provide(ComponentCache.layer({ cacheDir: dir })))
        const fromDisk = performance.now() - t1
        const listing = (yield* files.readDirectory(dir)).filter((f) => f !== "metered")
        assert.strictEqual(listing.length, 1)
        assert.match(listing[0]!, new RegExp(`^${warm.hash}-`))
        // the instrumented core modules are kept too, by content
        assert.isTrue((yield* files.readDirectory(`${dir}/metered`)).some((f) => f.endsWith(".wasm")))
        assert.isTrue(fromDisk < cold, `from disk ${fromDisk} ms vs cold ${cold} ms`)
        assert.isTrue(fs.existsSync(`${dir}/${listing[0]}/component.mjs`))
      }))
  })
})
