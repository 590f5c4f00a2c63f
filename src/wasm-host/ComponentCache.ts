/**
 * Turns component bytes into something cheap to instantiate many times.
 *
 * - jco transpiles the component once per distinct bytes (SHA-256) into core
 *   modules plus JS glue (`Transpile.ts`, here or in another process: the
 *   `transpile` option), written under the cache directory so a restart of
 *   the node does not transpile again.
 * - Every core module is instrumented for preemption once ever (`Metering.ts`):
 *   the result is kept under `meteredDir` by the raw module's SHA-256 and the
 *   instrumentation version, so neither a restart nor another home with the same
 *   app pays it again (a 12 MB componentize-js module takes seconds).
 * - Core modules are compiled once per node run and memory cap and kept in
 *   memory, so a new process from known bytes costs only instantiation. The cap
 *   is the declared maximum of the module's memory (`capMemory`). Compiled
 *   modules are kept by content, not by component: every componentize-qjs app
 *   carries the same 1.3 MB QuickJS runtime module, compiled once per node for
 *   all of them (bench/toolchains/README.md, "Sharing compiled engine code").
 * - The glue is loaded with `import()` from the cache directory, once per
 *   content: components of one world and toolchain get the same 0.66 MB of glue
 *   (all componentize-qjs apps do), imported once for all of them. Each process
 *   gets its own instance through the glue's `instantiate(getCoreModule,
 *   imports)` (instantiation mode `async`: the module holds no instance state),
 *   so imports are per process.
 */
import { Context, Effect, FileSystem, Layer, Path } from "effect"
import type { ComponentShape } from "./ComponentShape.ts"
import { capMemory, loadBinaryen, METERING_VERSION, meterCoreModule, pagesOf } from "./Metering.ts"
import { GuestScheduler, type GuestMeter } from "./Preemption.ts"
import { stripDebugLog, type Transpiled, transpileComponent } from "./Transpile.ts"
import { ComponentLoadError } from "./WasmErrors.ts"

export { stripDebugLog, type Transpiled, transpileComponent, TRANSPILE_OPTIONS } from "./Transpile.ts"

/** Host functions by unversioned interface name, as the glue looks them up. */
export type ImportObject = Record<string, Record<string, unknown>>

/** The exports of one instance of a `kinode:process` component. */
export interface ComponentInstance {
  readonly init: (our: string) => Promise<void> | void
}

/**
 * The toolchain that built a component, where it matters to the host:
 * `componentize-js` keeps what it lowers for an import call until its export
 * returns (see `Reclaimed` in FastAbi.ts).
 */
export type GuestToolchain = "componentize-js" | "other"

/**
 * componentize-js (StarlingMonkey) core modules export its engine's entry points
 * beside `cabi_realloc`; no other toolchain exports these names.
 */
export const guestToolchainOf = (modules: Iterable<WebAssembly.Module>): GuestToolchain => {
  for (const m of modules) {
    const names = new Set(WebAssembly.Module.exports(m).map((e) => e.name))
    if (names.has("cabi_realloc_adapter") && names.has("check_init") && names.has("wizer.resume")) return "componentize-js"
  }
  return "other"
}

/** A component's core modules, compiled, by the names the glue asks for. */
export type CoreModules = ReadonlyMap<string, WebAssembly.Module>

export interface InstantiateOptions {
  /** The core modules to use (default: those compiled with the cache's memory cap). */
  readonly modules?: CoreModules
  /** The instance's meter (metered components): links the preempt imports in. */
  readonly meter?: GuestMeter
}

/** A component ready to instantiate. */
export interface LoadedComponent {
  readonly hash: string
  readonly shape: ComponentShape
  readonly toolchain: GuestToolchain
  /** Whether its core modules carry preemption checks (they need a `GuestMeter`). */
  readonly metered: boolean
  /** Memory cap (pages) of the default modules. */
  readonly memoryPages: number
  /** The core modules with each linear memory capped at `pages` (compiled once per cap). */
  readonly compiled: (pages: number) => Effect.Effect<CoreModules, ComponentLoadError>
  readonly instantiate: (imports: ImportObject, options?: InstantiateOptions) => Promise<ComponentInstance>
}

/** Default linear-memory cap of a process: 256 MiB. */
export const DEFAULT_MEMORY_CAP = 256 * 1024 * 1024

/**
 * Bumped whenever transpile options or the post-transform change, so stale
 * cached glue is never loaded.
 */
export const GLUE_VERSION = "g1"

const WASM_MAGIC = [0x00, 0x61, 0x73, 0x6d]

/** Checks the 8-byte Wasm preamble: magic, then version+layer (component = 0x0d 0x00 0x01 0x00). */
const checkPreamble = (bytes: Uint8Array, hash: string): ComponentLoadError | undefined => {
  if (bytes.length < 8 || WASM_MAGIC.some((b, i) => bytes[i] !== b)) {
    return new ComponentLoadError({ hash, reason: "NotWasm", detail: "missing the \\0asm preamble" })
  }
  const layer = bytes[6]! | (bytes[7]! << 8)
  if (layer === 0 && bytes[4] === 1) {
    return new ComponentLoadError({
      hash,
      reason: "CoreModule",
      detail: "this is a core Wasm module; Kinode processes must be components (wasm-tools component new)"
    })
  }
  if (layer !== 1) {
    return new ComponentLoadError({ hash, reason: "UnknownWasmVersion", detail: `layer ${layer}, version ${bytes[4]}` })
  }
  return undefined
}

const hex = (buf: ArrayBuffer): string =>
  Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("")

export const sha256 = (bytes: Uint8Array): Effect.Effect<string> =>
  Effect.promise(() => crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>)).pipe(Effect.map(hex))

interface GlueModule {
  readonly instantiate: (
    getCoreModule: (name: string) => WebAssembly.Module,
    imports: ImportObject,
    instantiateCore?: GuestMeter["instantiateCore"]
  ) => Promise<ComponentInstance>
}

/** A core module ready to compile, and the key of its content (`prepareCoreModule`). */
interface Prepared {
  readonly key: string
  readonly bytes: Uint8Array
}

interface CacheMeta {
  readonly glue: string
  readonly modules: ReadonlyArray<string>
  readonly shape: ComponentShape
}

const errorText = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

export interface ComponentCacheOptions {
  /** Directory for transpiled output; created if missing. */
  readonly cacheDir: string
  /** Instrument core modules for preemption (default true). Off: a guest can hold the event loop. */
  readonly preemption?: boolean
  /**
   * Where instrumented core modules are kept, by content (default `<cacheDir>/metered`);
   * several homes may share one.
   */
  readonly meteredDir?: string
  /** More such directories, only read (the bundled apps' modules, instrumented at build). */
  readonly readOnlyMeteredDirs?: ReadonlyArray<string>
  /** Linear-memory cap of each process, in bytes (default 256 MiB). */
  readonly memoryCap?: number
  /**
   * Instruments one core module (`meterCoreModule`'s result); default: binaryen on this
   * thread. A node passes a worker's, so seconds of binaryen do not stall its loop.
   */
  readonly meter?: (bytes: Uint8Array) => Promise<Uint8Array>
  /**
   * Transpiles one component (`transpileComponent`'s result); default: jco on this
   * thread, where it then stays resident (~100 MB) for the process's life. A node
   * passes another process's, so the transpiler's memory leaves with that process. A
   * rejection (that process died) is a `TranspileFailed` with the rejection's message.
   */
  readonly transpile?: (bytes: Uint8Array) => Promise<Transpiled>
}

export class ComponentCache extends Context.Service<ComponentCache, {
  /** Transpiles (or finds in the cache), compiles and loads the component. */
  readonly load: (bytes: Uint8Array) => Effect.Effect<LoadedComponent, ComponentLoadError>
  /**
   * The same, for a component whose SHA-256 the caller already knows (a file digest
   * kept across boots): `bytes` runs only if the hash is not in the cache yet, so a
   * boot need not read and hash every app again.
   */
  readonly loadKnown: <E>(
    hash: string,
    bytes: Effect.Effect<Uint8Array, E>
  ) => Effect.Effect<LoadedComponent, ComponentLoadError | E>
  /** Resumes preempted guests of this node, one per event-loop turn. */
  readonly scheduler: GuestScheduler
}>()("wasm-host/ComponentCache") {
  static readonly layer = (options: ComponentCacheOptions) => Layer.effect(ComponentCache, make(options))
}

const make = Effect.fnUntraced(function*(options: ComponentCacheOptions) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const root = path.resolve(options.cacheDir)
  const preemption = options.preemption ?? true
  const meteredDir = path.resolve(options.meteredDir ?? path.join(root, "metered"))
  const defaultPages = pagesOf(options.memoryCap ?? DEFAULT_MEMORY_CAP)
  const scheduler = new GuestScheduler()
  /** In-memory: one memoised load per hash, shared by concurrent callers. */
  /** Loads in flight or done, by hash; the error type is the caller's (a failed load is dropped). */
  const loaded = new Map<string, Effect.Effect<LoadedComponent, unknown>>()
  /**
   * Compiled core modules by `<prepared content key>/<memory cap>`, shared by
   * every component holding the same module (a failed compile is dropped).
   */
  const compiledByContent = new Map<string, Effect.Effect<WebAssembly.Module, ComponentLoadError>>()
  /** Imported glue modules by the SHA-256 of their text. */
  const glueByContent = new Map<string, Promise<GlueModule>>()

  const io = (hash: string) => (cause: unknown) =>
    new ComponentLoadError({ hash, reason: "CacheIo", detail: errorText(cause) })

  const transpileWith = options.transpile ?? transpileComponent

  /** Transpiles and writes `<root>/<hash>-<GLUE_VERSION>/`; returns its metadata. */
  const transpileToDisk = Effect.fnUntraced(function*(bytes: Uint8Array, hash: string, dir: string) {
    const out = yield* Effect.tryPromise({
      try: () => transpileWith(bytes),
      catch: (cause) => new ComponentLoadError({ hash, reason: "TranspileFailed", detail: errorText(cause) })
    })
    if (out._tag === "Refused") return yield* new ComponentLoadError({ hash, reason: out.reason, detail: out.detail })
    const { shape } = out
    const tmp = `${dir}.tmp-${crypto.randomUUID()}`
    yield* fs.makeDirectory(tmp, { recursive: true }).pipe(Effect.mapError(io(hash)))
    const modules: Array<string> = []
    let glue = ""
    for (const { name, content } of out.files) {
      if (name.endsWith(".wasm")) {
        modules.push(name)
        yield* fs.writeFile(path.join(tmp, name), content).pipe(Effect.mapError(io(hash)))
      } else if (name.endsWith(".js")) {
        glue = "component.mjs"
        const js = stripDebugLog(new TextDecoder().decode(content))
        yield* fs.writeFileString(path.join(tmp, glue), js).pipe(Effect.mapError(io(hash)))
      }
    }
    const meta: CacheMeta = { glue, modules, shape }
    yield* fs.writeFileString(path.join(tmp, "meta.json"), JSON.stringify(meta)).pipe(Effect.mapError(io(hash)))
    // Rename last, so a crash mid-write never leaves a half cache entry behind.
    yield* fs.rename(tmp, dir).pipe(
      Effect.catch(() => fs.remove(tmp, { recursive: true }).pipe(Effect.ignore))
    )
    return meta
  })

  /**
   * Every core module passes through here before it is compiled: with preemption on,
   * it is instrumented (`Metering.ts`), once ever per content and instrumentation
   * version; a module that cannot be instrumented is refused (fail closed). `key` names
   * the prepared bytes' content (the raw module's SHA-256, and the instrumentation
   * version when instrumented), so compiles are shared without hashing them again.
   */
  const prepareCoreModule = Effect.fnUntraced(function*(raw: Uint8Array, hash: string, name: string) {
    const rawHash = yield* sha256(raw)
    if (!preemption) return { key: rawHash, bytes: raw }
    const key = `${rawHash}-${METERING_VERSION}`
    const file = path.join(meteredDir, `${key}.wasm`)
    for (const dir of [meteredDir, ...(options.readOnlyMeteredDirs ?? [])]) {
      const known = path.join(dir, `${key}.wasm`)
      if (yield* fs.exists(known).pipe(Effect.orElseSucceed(() => false))) {
        return { key, bytes: yield* fs.readFile(known).pipe(Effect.mapError(io(hash))) }
      }
    }
    const refused = (cause: unknown) =>
      new ComponentLoadError({ hash, reason: "MeteringFailed", detail: `${name}: ${errorText(cause)}` })
    const meter = options.meter
    const binary = meter !== undefined
      ? yield* Effect.tryPromise({ try: () => meter(raw), catch: refused })
      : yield* Effect.flatMap(
        Effect.promise(loadBinaryen),
        (binaryen) => Effect.try({ try: () => meterCoreModule(binaryen, raw).binary, catch: refused })
      )
    const tmp = `${file}.tmp-${crypto.randomUUID()}`
    yield* fs.makeDirectory(meteredDir, { recursive: true }).pipe(Effect.mapError(io(hash)))
    yield* fs.writeFile(tmp, binary).pipe(Effect.mapError(io(hash)))
    // Rename last: a reader (another node on the same directory) never sees half a file.
    yield* fs.rename(tmp, file).pipe(Effect.catch(() => fs.remove(tmp).pipe(Effect.ignore)))
    return { key, bytes: binary }
  })

  const loadUncached = Effect.fnUntraced(function*<E>(bytes: Effect.Effect<Uint8Array, E>, hash: string) {
    const dir = path.join(root, `${hash}-${GLUE_VERSION}`)
    const metaPath = path.join(dir, "meta.json")
    const cached = yield* fs.exists(metaPath).pipe(Effect.orElseSucceed(() => false))
    const transpile = Effect.gen(function*() {
      const b = yield* bytes
      const bad = checkPreamble(b, hash)
      if (bad !== undefined) return yield* bad
      return yield* transpileToDisk(b, hash, dir)
    })
    const meta: CacheMeta = cached
      ? JSON.parse(yield* fs.readFileString(metaPath).pipe(Effect.mapError(io(hash)))) as CacheMeta
      : yield* transpile
    /** A core module as it is compiled: read and prepared (the instrumented one from the cache after the first time). */
    const preparedBytes = (name: string) =>
      Effect.flatMap(fs.readFile(path.join(dir, name)).pipe(Effect.mapError(io(hash))), (core) => prepareCoreModule(core, hash, name))
    /** One module compiled with `pages` as its memory cap, or the same content's compiled by any component. */
    const compileShared = Effect.fnUntraced(function*(name: string, prepared: Prepared, pages: number) {
      const { bytes } = prepared
      const key = `${prepared.key}/${pages}`
      let entry = compiledByContent.get(key)
      if (entry === undefined) {
        entry = yield* Effect.cached(Effect.tryPromise({
          try: () => WebAssembly.compile(capMemory(bytes, pages) as Uint8Array<ArrayBuffer>),
          catch: (cause) => new ComponentLoadError({ hash, reason: "CompileFailed", detail: `${name}: ${errorText(cause)}` })
        }))
        compiledByContent.set(key, entry)
      }
      const result = yield* Effect.exit(entry)
      if (result._tag === "Failure") compiledByContent.delete(key)
      return yield* result
    })
    const compileAll = (pages: number, ready?: ReadonlyMap<string, Prepared>) =>
      Effect.forEach(meta.modules, (name) =>
        Effect.flatMap(ready?.has(name) === true ? Effect.succeed(ready.get(name)!) : preparedBytes(name), (prepared) =>
          compileShared(name, prepared, pages)).pipe(Effect.map((m) => [name, m] as const))).pipe(
          Effect.map((pairs): CoreModules => new Map(pairs))
        )
    // Prepared first, one module at a time, so a refusal names the module before anything compiles.
    const prepared = new Map<string, Prepared>()
    for (const name of meta.modules) prepared.set(name, yield* preparedBytes(name))
    const compiled = yield* compileAll(defaultPages, prepared)
    prepared.clear()
    /** Other caps, compiled when first asked for (the bytes are read again for them). */
    const byCap = new Map<number, Effect.Effect<CoreModules, ComponentLoadError>>([[defaultPages, Effect.succeed(compiled)]])
    const compiledFor = (pages: number) =>
      Effect.gen(function*() {
        let entry = byCap.get(pages)
        if (entry === undefined) {
          entry = yield* Effect.cached(compileAll(pages))
          byCap.set(pages, entry)
        }
        return yield* entry
      })
    const gluePath = path.join(dir, meta.glue)
    const glueKey = yield* sha256(yield* fs.readFile(gluePath).pipe(Effect.mapError(io(hash))))
    let glueImport = glueByContent.get(glueKey)
    if (glueImport === undefined) {
      const url = (yield* path.toFileUrl(gluePath).pipe(Effect.mapError(io(hash)))).href
      glueImport = import(url) as Promise<GlueModule>
      glueByContent.set(glueKey, glueImport)
      // A failed import is not remembered (the next component with this glue tries again).
      glueImport.catch(() => glueByContent.delete(glueKey))
    }
    const glue = yield* Effect.tryPromise({ try: () => glueImport, catch: io(hash) })
    const coreModuleOf = (modules: CoreModules) => (name: string): WebAssembly.Module => {
      const m = modules.get(name)
      if (m === undefined) throw new Error(`component glue asked for unknown core module ${name}`)
      return m
    }
    const component: LoadedComponent = {
      hash,
      shape: meta.shape,
      toolchain: guestToolchainOf(compiled.values()),
      metered: preemption,
      memoryPages: defaultPages,
      compiled: compiledFor,
      instantiate: (imports, run = {}) =>
        glue.instantiate(coreModuleOf(run.modules ?? compiled), imports, run.meter?.instantiateCore)
    }
    return component
  })

  const loadKnown = Effect.fnUntraced(function*<E>(hash: string, bytes: Effect.Effect<Uint8Array, E>) {
    let entry = loaded.get(hash)
    if (entry === undefined) {
      entry = yield* Effect.cached(loadUncached(bytes, hash))
      loaded.set(hash, entry)
    }
    const result = yield* Effect.exit(entry as Effect.Effect<LoadedComponent, ComponentLoadError | E>)
    // A failed load is not remembered: the next attempt tries again (the cause may be transient I/O).
    if (result._tag === "Failure") loaded.delete(hash)
    return yield* result
  })

  const load = Effect.fnUntraced(function*(bytes: Uint8Array) {
    const hash = yield* sha256(bytes)
    const bad = checkPreamble(bytes, hash)
    if (bad !== undefined) return yield* bad
    return yield* loadKnown(hash, Effect.succeed(bytes))
  })

  return ComponentCache.of({ load, loadKnown, scheduler })
})
