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

/**
 * Prepared programs, so a spawn from an unchanged file neither reads nor hashes
 * it again (apps are ~12 MB): keyed by the file's identity and change time, or
 * by the very bytes an InitializeProcess carried (and, either way, the package's tmp drive).
 */
const MEMO_LIMIT = 256

const make = Effect.gen(function*() {
  const home = yield* Home
  const natives = yield* NativePrograms
  const cache = yield* ComponentCache
  const vfsRoot = path.join(home.path, "vfs")
  const byFile = new Map<string, NativeProgram>()
  /** Per carried byte array, its programs by tmp dir (a program is bound to its package's tmp drive). */
  const byBytes = new WeakMap<Uint8Array, Map<string, NativeProgram>>()

  const prepare = (handle: string, bytes: Uint8Array, tmp: string) =>
    Effect.gen(function*() {
      yield* Effect.sync(() => fs.mkdirSync(tmp, { recursive: true }))
      const program = yield* loadWasmProgram(bytes, { tempDir: { hostPath: tmp, guestPath: tmp, fs } }).pipe(
        Effect.provideService(ComponentCache, cache),
        Effect.mapError((e) => new ProgramLoadFailed({ handle, reason: e.message }))
      )
      return program as NativeProgram
    })

  const fromFile = (handle: string, tmp: string) =>
    Effect.gen(function*() {
      const { file, key } = yield* Effect.try({
        try: () => {
          const file = path.resolve(vfsRoot, `.${handle}`)
          if (!file.startsWith(`${vfsRoot}${path.sep}`)) throw new Error("handle escapes the vfs root")
          const st = fs.statSync(file)
          return { file, key: `${file}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}\0${tmp}` }
        },
        catch: (e) => new ProgramLoadFailed({ handle, reason: e instanceof Error ? e.message : String(e) })
      })
      const known = byFile.get(key)
      if (known !== undefined) return known
      const bytes = yield* Effect.try({
        try: () => new Uint8Array(fs.readFileSync(file)),
        catch: (e) => new ProgramLoadFailed({ handle, reason: e instanceof Error ? e.message : String(e) })
      })
      const program = yield* prepare(handle, bytes, tmp)
      if (byFile.size >= MEMO_LIMIT) byFile.clear()
      byFile.set(key, program)
      return program
    })

  const fromBytes = (handle: string, bytes: Uint8Array, tmp: string) =>
    Effect.gen(function*() {
      let programs = byBytes.get(bytes)
      const known = programs?.get(tmp)
      if (known !== undefined) return known
      const program = yield* prepare(handle, bytes, tmp)
      if (programs === undefined) byBytes.set(bytes, programs = new Map())
      programs.set(tmp, program)
      return program
    })

  return ProgramLoader.of({
    load: (req) =>
      Effect.gen(function*() {
        if (req.handle.startsWith(NATIVE_PREFIX)) {
          const program = natives.get(req.handle.slice(NATIVE_PREFIX.length))
          if (program === undefined) return yield* new ProgramLoadFailed({ handle: req.handle, reason: "no such built-in program" })
          return program
        }
        const tmp = path.join(vfsRoot, packageDir(req.id), "tmp")
        return yield* (req.bytes === undefined ? fromFile(req.handle, tmp) : fromBytes(req.handle, req.bytes, tmp))
      })
  })
})

export const ProgramLoaderLive = Layer.effect(ProgramLoader, make).pipe(
  Layer.provide(Layer.unwrap(Effect.map(Home, (home) =>
    ComponentCache.layer({ cacheDir: path.join(home.path, ".cache", "wasm") })))),
  Layer.provide(NodeServices.layer)
)
