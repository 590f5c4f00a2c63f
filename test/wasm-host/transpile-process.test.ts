/**
 * jco's transpile step in a child process (services/program-loader/TranspileProcess.ts),
 * as the node runs it: the component it makes loads and runs, and what jco refuses comes
 * back as the same typed `ComponentLoadError`, reason and detail, as on the node's own
 * thread. A process that dies fails the load with a typed error instead of leaving it
 * waiting, and the next load forks another.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, FileSystem, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { type JobProcessOptions, startJobProcess } from "../../services/program-loader/JobProcess.ts"
import { startTranspileProcess } from "../../services/program-loader/TranspileProcess.ts"
import { ComponentCache, type ComponentCacheOptions, type Transpiled } from "../../src/wasm-host/ComponentCache.ts"
import { ComponentLoadError } from "../../src/wasm-host/WasmErrors.ts"
import { loadWasmProgram } from "../../src/wasm-host/WasmProgram.ts"
import { buildEcho, buildNoInit, buildWrongInit } from "../fixtures/wasm/build.ts"
import { firstAnswer } from "./RecordingProcessApi.ts"

const OUR = "our.os@me:pkg:pub.os"

/** A job process, stopped with the scope. */
const scoped = <I, O>(start: () => { readonly run: (input: I) => Promise<O>; readonly stop: () => Promise<void> }) =>
  Effect.acquireRelease(Effect.sync(start), (p) => Effect.promise(p.stop))

/** A cache in a fresh directory; `transpile` as given (default: jco on this thread). */
const cacheIn = (transpile?: ComponentCacheOptions["transpile"]) =>
  Effect.gen(function*() {
    const dir = yield* (yield* FileSystem.FileSystem).makeTempDirectoryScoped({ prefix: "wasm-cache-" })
    const built = yield* Layer.build(ComponentCache.layer({ cacheDir: dir, ...(transpile === undefined ? {} : { transpile }) }))
    return { dir, cache: Context.get(built, ComponentCache) }
  })

/** `load`'s typed failure. */
const refusal = (cache: ComponentCache["Service"], bytes: Uint8Array) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(cache.load(bytes))
    assert.instanceOf(error, ComponentLoadError)
    return error
  })

describe("transpiling in a child process", () => {
  layer(NodeServices.layer)((it) => {
    it.effect("the process's component loads, is cached on disk and answers", () =>
      Effect.gen(function*() {
        const transpiler = yield* scoped(startTranspileProcess)
        let jobs = 0
        const { cache, dir } = yield* cacheIn((bytes) => (jobs++, transpiler.run(bytes)))
        const bytes = yield* Effect.promise(buildEcho)
        const loaded = yield* cache.load(bytes)
        assert.strictEqual(jobs, 1)
        const entry = path.join(dir, fs.readdirSync(dir).find((f) => f.startsWith(`${loaded.hash}-`))!)
        const meta = JSON.parse(fs.readFileSync(path.join(entry, "meta.json"), "utf8")) as { glue: string; modules: Array<string> }
        assert.strictEqual(meta.glue, "component.mjs")
        assert.isAbove(meta.modules.length, 0)
        for (const m of meta.modules) assert.isTrue(fs.existsSync(path.join(entry, m)), m)
        assert.include(loaded.shape.exports, "init")
        // No temporary directory left beside the entry (renamed last).
        assert.deepStrictEqual(fs.readdirSync(dir).filter((f) => f.includes(".tmp-")), [])
        const program = yield* loadWasmProgram(bytes).pipe(Effect.provideService(ComponentCache, cache))
        assert.strictEqual(yield* firstAnswer(program, OUR, "through the process"), "through the process")
      }))

    it.effect("refusals come back typed, as on the node's thread: no init, the wrong init, a broken component", () =>
      Effect.gen(function*() {
        const inProcess = (yield* cacheIn((yield* scoped(startTranspileProcess)).run)).cache
        const inThread = (yield* cacheIn()).cache
        const echo = yield* Effect.promise(buildEcho)
        const cases = [
          ["MissingInit", yield* Effect.promise(buildNoInit)],
          ["MissingInit", yield* Effect.promise(buildWrongInit)],
          // The preamble passes; jco cannot read the rest.
          ["TranspileFailed", echo.slice(0, 200)]
        ] as const
        for (const [reason, bytes] of cases) {
          const there = yield* refusal(inProcess, bytes)
          const here = yield* refusal(inThread, bytes)
          assert.strictEqual(there.reason, reason)
          assert.deepStrictEqual({ reason: there.reason, detail: there.detail }, { reason: here.reason, detail: here.detail })
        }
        // It still serves after refusing.
        assert.include((yield* inProcess.load(echo)).shape.exports, "init")
      }))

    it.effect("a process that dies fails the load with TranspileFailed, and the next load forks another", () =>
      Effect.gen(function*() {
        const file = path.join(import.meta.dirname, "FailingJobProcess.ts")
        const echo = yield* Effect.promise(buildEcho)
        const deaths = [
          ["exit", "the exit process exited (code 3)"],
          ["throw", "the throw process exited (code 1)"],
          ["kill", "the kill process was killed (SIGKILL)"]
        ] as const
        for (const [name, detail] of deaths) {
          const options: JobProcessOptions = { name, file, idleMs: 0 }
          const { cache } = yield* cacheIn((yield* scoped(() => startJobProcess<Uint8Array, Transpiled>(options))).run)
          for (let i = 0; i < 2; i++) {
            const error = yield* refusal(cache, echo)
            assert.strictEqual(error.reason, "TranspileFailed")
            assert.strictEqual(error.detail, detail)
          }
        }
      }))

    it.effect("stop fails a job in flight; the next job forks another process", () =>
      Effect.gen(function*() {
        const transpiler = yield* scoped(startTranspileProcess)
        const echo = yield* Effect.promise(buildEcho)
        const stopped = yield* Effect.promise(() => {
          const job = transpiler.run(echo).then(() => "answered", (e: Error) => e.message)
          return transpiler.stop().then(() => job)
        })
        assert.strictEqual(stopped, "the transpile process stopped")
        const { cache } = yield* cacheIn(transpiler.run)
        assert.include((yield* cache.load(echo)).shape.exports, "init")
      }))
  })
})
