/**
 * The node's program loader: `native:<name>` handles run built-in TypeScript programs;
 * anything else is a Wasm component, from the bytes InitializeProcess carried or from
 * `<home>/vfs/<handle>`, transpiled once per content hash into `<home>/.cache/wasm`.
 * Each Wasm process's only filesystem is its package's `tmp` drive.
 */
import { NodeServices } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Home } from "../src/Home.ts"
import type { NativeProgram } from "../src/ProcessApi.ts"
import { NATIVE_PREFIX, NativePrograms, ProgramLoader, ProgramLoadFailed } from "../src/ProgramLoader.ts"
import { ComponentCache } from "../src/wasm-host/ComponentCache.ts"
import { loadWasmProgram } from "../src/wasm-host/WasmProgram.ts"

const packageDir = (id: string) => {
  const [, pkg, publisher] = id.split(":")
  return `${pkg}:${publisher}`
}

const make = Effect.gen(function*() {
  const home = yield* Home
  const natives = yield* NativePrograms
  const cache = yield* ComponentCache
  const vfsRoot = path.join(home.path, "vfs")
  return ProgramLoader.of({
    load: (req) =>
      Effect.gen(function*() {
        if (req.handle.startsWith(NATIVE_PREFIX)) {
          const program = natives.get(req.handle.slice(NATIVE_PREFIX.length))
          if (program === undefined) return yield* new ProgramLoadFailed({ handle: req.handle, reason: "no such built-in program" })
          return program
        }
        const bytes = req.bytes ?? (yield* Effect.try({
          try: () => {
            const file = path.resolve(vfsRoot, `.${req.handle}`)
            if (!file.startsWith(`${vfsRoot}${path.sep}`)) throw new Error("handle escapes the vfs root")
            return new Uint8Array(fs.readFileSync(file))
          },
          catch: (e) => new ProgramLoadFailed({ handle: req.handle, reason: e instanceof Error ? e.message : String(e) })
        }))
        const tmp = path.join(vfsRoot, packageDir(req.id), "tmp")
        yield* Effect.sync(() => fs.mkdirSync(tmp, { recursive: true }))
        const program = yield* loadWasmProgram(bytes, { tempDir: { hostPath: tmp, guestPath: tmp, fs } }).pipe(
          Effect.provideService(ComponentCache, cache),
          Effect.mapError((e) => new ProgramLoadFailed({ handle: req.handle, reason: e.message }))
        )
        return program as NativeProgram
      })
  })
})

export const ProgramLoaderLive = Layer.effect(ProgramLoader, make).pipe(
  Layer.provide(Layer.unwrap(Effect.map(Home, (home) =>
    ComponentCache.layer({ cacheDir: path.join(home.path, ".cache", "wasm") })))),
  Layer.provide(NodeServices.layer)
)
