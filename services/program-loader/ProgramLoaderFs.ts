/**
 * The node's program loader: `native:<name>` handles run built-in TypeScript programs;
 * anything else is a Wasm component, from the bytes InitializeProcess carried or from
 * `<home>/vfs/<handle>`, transpiled once per content hash into `<home>/.cache/wasm`.
 * Each Wasm process's only filesystem is its package's `tmp` drive.
 *
 * Components are transpiled by jco in a child process (`TranspileProcess.ts`), so the
 * transpiler does not stay resident in the node after a first boot. Core modules are
 * instrumented for preemption in a worker thread (`MeteringWorker.ts`) and kept under
 * `<home>/.cache/wasm/metered` (the bundled apps' come instrumented in
 * `apps/dist/metered`), or in the directory `KINODE_TS_METERED_CACHE` names
 * (content-addressed, so homes may share one: the tests do, so a 12 MB app is
 * instrumented once, not at every boot).
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Context, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Home } from "../../src/Home.ts"
import type { NativeProgram } from "../../src/ProcessApi.ts"
import { ProcessLimits } from "../../src/ProcessLimits.ts"
import { NATIVE_PREFIX, NativePrograms, ProgramLoader, ProgramLoadFailed } from "../../src/ProgramLoader.ts"
import { ComponentCache } from "../../src/wasm-host/ComponentCache.ts"
import { ComponentLoadError } from "../../src/wasm-host/WasmErrors.ts"
import { type KnownComponent, loadWasmProgram } from "../../src/wasm-host/WasmProgram.ts"
import { makeFileDigests } from "./FileDigests.ts"
import { meterInWorker } from "./MeteringWorker.ts"
import { startTranspileProcess } from "./TranspileProcess.ts"

const packageDir = (id: string) => {
  const [, pkg, publisher] = id.split(":")
  return `${pkg}:${publisher}`
}

/**
 * Prepared programs, so a spawn from an unchanged file neither reads nor hashes it
 * again (apps are ~12 MB): keyed by content hash (from the file digests kept across
 * boots), or by the very bytes an InitializeProcess carried; and, either way, by the
 * package's tmp drive, which a program is bound to.
 */
const MEMO_LIMIT = 256

/**
 * How the node hosts Wasm: `preemption: false` runs components uninstrumented (a
 * process can then hold the event loop; benches compare against it).
 */
export const WasmHostOptions = Context.Reference<{ readonly preemption: boolean }>(
  "services/program-loader/WasmHostOptions",
  { defaultValue: () => ({ preemption: true }) }
)

const make = Effect.gen(function*() {
  const home = yield* Home
  const natives = yield* NativePrograms
  const cache = yield* ComponentCache
  const limits = yield* ProcessLimits
  const vfsRoot = path.join(home.path, "vfs")
  const digests = makeFileDigests(path.join(home.path, ".cache", "wasm", "file-digests.json"))
  const byHash = new Map<string, NativeProgram>()
  const byBytes = new WeakMap<Uint8Array, Map<string, NativeProgram>>()

  const prepare = (handle: string, source: Uint8Array | KnownComponent, tmp: string) =>
    Effect.gen(function*() {
      yield* Effect.sync(() => fs.mkdirSync(tmp, { recursive: true }))
      const program = yield* loadWasmProgram(source, { tempDir: { hostPath: tmp, guestPath: tmp, fs }, limits: limits.get }).pipe(
        Effect.provideService(ComponentCache, cache),
        Effect.mapError((e) => new ProgramLoadFailed({ handle, reason: e.message }))
      )
      return program as NativeProgram
    })

  const fromFile = (handle: string, tmp: string) =>
    Effect.gen(function*() {
      const { file, digest } = yield* Effect.try({
        try: () => {
          const file = path.resolve(vfsRoot, `.${handle}`)
          if (!file.startsWith(`${vfsRoot}${path.sep}`)) throw new Error("handle escapes the vfs root")
          return { file, digest: digests.of(file) }
        },
        catch: (e) => new ProgramLoadFailed({ handle, reason: e instanceof Error ? e.message : String(e) })
      })
      const key = `${digest.hash}\0${tmp}`
      const known = byHash.get(key)
      if (known !== undefined) return known
      const source: Uint8Array | KnownComponent = digest.bytes ?? {
        hash: digest.hash,
        bytes: Effect.try({
          try: () => new Uint8Array(fs.readFileSync(file)),
          catch: (e) =>
            new ComponentLoadError({ hash: digest.hash, reason: "CacheIo", detail: e instanceof Error ? e.message : String(e) })
        })
      }
      const program = yield* prepare(handle, source, tmp)
      if (byHash.size >= MEMO_LIMIT) byHash.clear()
      byHash.set(key, program)
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

/**
 * `apps/dist/metered` of this checkout (also right from `dist/`): the bundled apps' core
 * modules, instrumented by `apps/build.ts`, so a first boot does not spend seconds per app.
 */
const bundledMeteredDir = (): string => {
  const here = path.dirname(fileURLToPath(import.meta.url))
  for (const up of ["../..", "../../.."]) {
    const dir = path.resolve(here, up, "apps", "dist", "metered")
    if (fs.existsSync(dir)) return dir
  }
  return path.resolve(here, "../..", "apps", "dist", "metered")
}

/** Environment variable: a shared directory for instrumented core modules. */
export const METERED_CACHE_ENV = "KINODE_TS_METERED_CACHE"

/** The loader, and the node's per-process limits it reads (the `SetLimits` command writes them). */
export const ProgramLoaderFs = Layer.effect(ProgramLoader, make).pipe(
  Layer.provideMerge(ProcessLimits.layerMemory),
  Layer.provide(Layer.unwrap(Effect.gen(function*() {
    const home = yield* Home
    const { preemption } = yield* WasmHostOptions
    const shared = process.env[METERED_CACHE_ENV]
    return ComponentCache.layer({
      cacheDir: path.join(home.path, ".cache", "wasm"),
      preemption,
      meter: yield* meterInWorker,
      transpile: (yield* Effect.acquireRelease(Effect.sync(startTranspileProcess), (p) => Effect.promise(p.stop))).run,
      readOnlyMeteredDirs: [bundledMeteredDir()],
      ...(shared === undefined || shared === "" ? {} : { meteredDir: shared })
    })
  }))),
  Layer.provide(NodeServices.layer)
)
