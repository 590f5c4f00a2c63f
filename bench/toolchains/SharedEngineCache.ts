/**
 * A prototype of "compile the engine once for every app": a stand-in for
 * `src/wasm-host/ComponentCache.ts` (same service, same `LoadedComponent`), used by the
 * toolchain study only. It differs from the real cache in two ways:
 *
 * 1. Compiled core modules are kept by the SHA-256 of their (instrumented, capped)
 *    bytes, not per component, so identical modules of different components are
 *    compiled once; the same for jco's JS glue (by the SHA-256 of its text).
 * 2. A core module that defines and exports its memory and initialises it with active
 *    data segments at constant offsets (the Wizer snapshot: a componentize-js engine
 *    module is the same code for every app of a world and differs only in its ~3 MB
 *    data section) is split into an *engine* (the module without its data and
 *    data-count sections, memory minimum 0) and a *snapshot* (the segments and the
 *    original memory minimum). At instantiation the memory is grown to the minimum and
 *    the segments copied in before jco's glue calls anything: what active segments do
 *    at instantiation, so the guest sees the same state. A module whose code uses
 *    `memory.init`/`data.drop` fails to compile without its data and is kept whole.
 *
 * Transpiled output is kept on disk under `<cacheDir>/<hash>-s2/` (the engine and the
 * snapshot already split), so a measuring process never loads jco's transpiler.
 */
import { Effect, Layer } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { shapeFromWit } from "../../src/wasm-host/ComponentShape.ts"
import {
  ComponentCache,
  type ComponentInstance,
  type CoreModules,
  DEFAULT_MEMORY_CAP,
  guestToolchainOf,
  type ImportObject,
  type LoadedComponent,
  stripDebugLog,
  TRANSPILE_OPTIONS
} from "../../src/wasm-host/ComponentCache.ts"
import { capMemory, loadBinaryen, METERING_VERSION, meterCoreModule, pagesOf } from "../../src/wasm-host/Metering.ts"
import { GuestScheduler } from "../../src/wasm-host/Preemption.ts"
import { ComponentLoadError } from "../../src/wasm-host/WasmErrors.ts"

const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex")

const readLeb = (b: Uint8Array, p: number): [number, number] => {
  let r = 0
  let s = 1
  for (;;) {
    const x = b[p++]!
    r += (x & 0x7f) * s
    if ((x & 0x80) === 0) return [r, p]
    s *= 128
  }
}
const leb = (n: number): Array<number> => {
  const out: Array<number> = []
  do {
    let b = n & 0x7f
    n = Math.floor(n / 128)
    if (n !== 0) b |= 0x80
    out.push(b)
  } while (n !== 0)
  return out
}

export interface Snapshot {
  /** The memory's minimum (pages) in the original module. */
  readonly minPages: number
  /** Segments: offset and length into `bytes`, in order. */
  readonly segments: ReadonlyArray<readonly [offset: number, start: number, length: number]>
  readonly bytes: Uint8Array
}

/**
 * Splits a core module into its engine and its snapshot (see the module comment), or
 * undefined when it does not have that shape.
 */
export const splitSnapshot = (bytes: Uint8Array): { readonly engine: Uint8Array; readonly snapshot: Snapshot } | undefined => {
  const parts: Array<Uint8Array> = [bytes.subarray(0, 8)]
  let p = 8
  let memory: { min: number; hasMax: boolean; max: number } | undefined
  let memoryExported = false
  let importsMemory = false
  let data: Uint8Array | undefined
  const sections: Array<{ id: number; body: Uint8Array; raw: Uint8Array }> = []
  while (p < bytes.length) {
    const id = bytes[p]!
    const [size, q] = readLeb(bytes, p + 1)
    sections.push({ id, body: bytes.subarray(q, q + size), raw: bytes.subarray(p, q + size) })
    p = q + size
  }
  for (const s of sections) {
    if (s.id === 2) {
      // imports: refuse modules importing a memory (index 0 would be that one)
      let [n, r] = readLeb(s.body, 0)
      for (; n > 0; n--) {
        for (let k = 0; k < 2; k++) {
          const [len, r2] = readLeb(s.body, r)
          r = r2 + len
        }
        const kind = s.body[r++]!
        if (kind === 0) r = readLeb(s.body, r)[1]
        else if (kind === 1) {
          r++ // reftype
          const flag = s.body[r++]!
          r = readLeb(s.body, r)[1]
          if (flag & 1) r = readLeb(s.body, r)[1]
        } else if (kind === 2) {
          importsMemory = true
          break
        } else if (kind === 3) r += 2
        else if (kind === 4) r = readLeb(s.body, r + 1)[1]
        else return undefined
      }
    } else if (s.id === 5) {
      const [n, r] = readLeb(s.body, 0)
      if (n !== 1) return undefined
      const flag = s.body[r]!
      if (flag !== 0 && flag !== 1) return undefined // shared or 64-bit: not handled
      const [min, r2] = readLeb(s.body, r + 1)
      const max = flag === 1 ? readLeb(s.body, r2)[0] : 0
      memory = { min, hasMax: flag === 1, max }
    } else if (s.id === 7) {
      let [n, r] = readLeb(s.body, 0)
      for (; n > 0; n--) {
        const [len, r2] = readLeb(s.body, r)
        const kind = s.body[r2 + len]!
        const [idx, r3] = readLeb(s.body, r2 + len + 1)
        if (kind === 2 && idx === 0) memoryExported = true
        r = r3
      }
    } else if (s.id === 11) data = s.body
  }
  if (memory === undefined || !memoryExported || importsMemory || data === undefined) return undefined
  const segments: Array<readonly [number, number, number]> = []
  const chunks: Array<Uint8Array> = []
  let total = 0
  let [n, r] = readLeb(data, 0)
  for (; n > 0; n--) {
    const flag = data[r++]!
    if (flag === 2) {
      const [mem, r2] = readLeb(data, r)
      if (mem !== 0) return undefined
      r = r2
    } else if (flag !== 0) return undefined // passive segments are for memory.init
    if (data[r++] !== 0x41) return undefined // i32.const
    // signed LEB of the offset (non-negative in practice)
    let offset = 0
    let scale = 1
    let x: number
    do {
      x = data[r++]!
      offset += (x & 0x7f) * scale
      scale *= 128
    } while (x & 0x80)
    if (x & 0x40) return undefined
    if (data[r++] !== 0x0b) return undefined
    const [len, r3] = readLeb(data, r)
    chunks.push(data.subarray(r3, r3 + len))
    segments.push([offset, total, len])
    total += len
    r = r3 + len
  }
  const snapshotBytes = new Uint8Array(total)
  let at = 0
  for (const c of chunks) {
    snapshotBytes.set(c, at)
    at += c.length
  }
  for (const s of sections) {
    if (s.id === 11 || s.id === 12) continue
    if (s.id === 5) {
      const body = [1, memory.hasMax ? 1 : 0, ...leb(0), ...(memory.hasMax ? leb(memory.max) : [])]
      parts.push(Uint8Array.from([5, ...leb(body.length), ...body]))
    } else parts.push(s.raw)
  }
  const engine = new Uint8Array(parts.reduce((a, b) => a + b.length, 0))
  at = 0
  for (const part of parts) {
    engine.set(part, at)
    at += part.length
  }
  return { engine, snapshot: { minPages: memory.min, segments, bytes: snapshotBytes } }
}

interface Meta {
  readonly glue: string
  readonly modules: ReadonlyArray<{
    readonly name: string
    readonly file: string
    /** SHA-256 of `file`: the key its compiled form is shared by. */
    readonly sha: string
    readonly snapshot?: string
    readonly minPages?: number
    readonly segments?: Snapshot["segments"]
  }>
  readonly wit: string
}

export interface SharedEngineOptions {
  readonly cacheDir: string
  readonly meteredDir: string
  readonly preemption?: boolean
  /** Split snapshots out of engine modules (default true); off: only the by-content compile cache. */
  readonly split?: boolean
}

/** Writes the transpiled, split component under `dir` (jco is loaded only here). */
const transpileToDisk = async (bytes: Uint8Array, dir: string, split: boolean): Promise<Meta> => {
  const [{ transpileBytes }, { componentWit }] = await Promise.all([
    import("@bytecodealliance/jco-transpile"),
    import("@bytecodealliance/jco-transpile/wasm-tools")
  ])
  const wit = await componentWit(bytes)
  const out = await transpileBytes(bytes, TRANSPILE_OPTIONS)
  const tmp = `${dir}.tmp-${process.pid}`
  fs.mkdirSync(tmp, { recursive: true })
  let glue = ""
  const modules: Array<Meta["modules"][number]> = []
  for (const [name, content] of Object.entries(out.files)) {
    if (name.endsWith(".js")) {
      const js = stripDebugLog(new TextDecoder().decode(content as Uint8Array))
      glue = `glue-${sha(js)}.mjs`
      fs.writeFileSync(path.join(path.dirname(dir), glue), js)
    } else if (name.endsWith(".wasm")) {
      const raw = content as Uint8Array
      const parts = split ? splitSnapshot(raw) : undefined
      if (parts !== undefined) {
        // keep it whole if the engine does not compile without its data (memory.init users)
        try {
          await WebAssembly.compile(parts.engine as Uint8Array<ArrayBuffer>)
        } catch {
          fs.writeFileSync(path.join(tmp, name), raw)
          modules.push({ name, file: name, sha: sha(raw) })
          continue
        }
        fs.writeFileSync(path.join(tmp, `${name}.engine`), parts.engine)
        fs.writeFileSync(path.join(tmp, `${name}.snapshot`), parts.snapshot.bytes)
        modules.push({
          name,
          file: `${name}.engine`,
          sha: sha(parts.engine),
          snapshot: `${name}.snapshot`,
          minPages: parts.snapshot.minPages,
          segments: parts.snapshot.segments
        })
      } else {
        fs.writeFileSync(path.join(tmp, name), raw)
        modules.push({ name, file: name, sha: sha(raw) })
      }
    }
  }
  const meta: Meta = { glue, modules, wit }
  fs.writeFileSync(path.join(tmp, "meta.json"), JSON.stringify(meta))
  fs.rmSync(dir, { recursive: true, force: true })
  fs.renameSync(tmp, dir)
  return meta
}

const make = (options: SharedEngineOptions) =>
  Effect.sync(() => {
    const preemption = options.preemption ?? true
    const split = options.split ?? true
    const defaultPages = pagesOf(DEFAULT_MEMORY_CAP)
    const scheduler = new GuestScheduler()
    /** Compiled modules by the SHA-256 of what was compiled. */
    const compiledByContent = new Map<string, Promise<WebAssembly.Module>>()
    const glues = new Map<string, Promise<{ instantiate: Function }>>()
    const components = new Map<string, Promise<LoadedComponent>>()

    const prepared = async (raw: Uint8Array): Promise<Uint8Array> => {
      if (!preemption) return raw
      const file = path.join(options.meteredDir, `${sha(raw)}-${METERING_VERSION}.wasm`)
      if (fs.existsSync(file)) return new Uint8Array(fs.readFileSync(file))
      const binary = meterCoreModule(await loadBinaryen(), raw).binary
      fs.mkdirSync(options.meteredDir, { recursive: true })
      fs.writeFileSync(`${file}.tmp-${process.pid}`, binary)
      fs.renameSync(`${file}.tmp-${process.pid}`, file)
      return binary
    }
    /** A module compiled once per content, instrumentation and cap: the file is read only the first time. */
    const compile = (file: string, contentSha: string, pages: number): Promise<WebAssembly.Module> => {
      const key = `${contentSha}-${preemption ? METERING_VERSION : "raw"}-${pages}`
      let m = compiledByContent.get(key)
      if (m === undefined) {
        m = prepared(new Uint8Array(fs.readFileSync(file))).then((b) => WebAssembly.compile(capMemory(b, pages) as Uint8Array<ArrayBuffer>))
        compiledByContent.set(key, m)
      }
      return m
    }
    const loadNew = async (bytes: Uint8Array, hash: string): Promise<LoadedComponent> => {
      const dir = path.join(options.cacheDir, `${hash}-s2${split ? "" : "n"}`)
      const metaFile = path.join(dir, "meta.json")
      const meta: Meta = fs.existsSync(metaFile)
        ? JSON.parse(fs.readFileSync(metaFile, "utf8")) as Meta
        : await transpileToDisk(bytes, dir, split)
      const shape = shapeFromWit(meta.wit)
      const snapshots = new Map<string, { minPages: number; segments: Snapshot["segments"]; bytes: Uint8Array }>()
      for (const m of meta.modules) {
        if (m.snapshot !== undefined) {
          snapshots.set(m.name, { minPages: m.minPages!, segments: m.segments!, bytes: new Uint8Array(fs.readFileSync(path.join(dir, m.snapshot))) })
        }
      }
      const byCap = new Map<number, Promise<CoreModules>>()
      const compiledFor = (pages: number) => {
        let c = byCap.get(pages)
        if (c === undefined) {
          c = Promise.all(meta.modules.map(async (m) => [m.name, await compile(path.join(dir, m.file), m.sha, pages)] as const))
            .then((pairs) => new Map(pairs))
          byCap.set(pages, c)
        }
        return c
      }
      const compiled = await compiledFor(defaultPages)
      let glue = glues.get(meta.glue)
      if (glue === undefined) {
        glue = import(pathToFileURL(path.join(options.cacheDir, meta.glue)).href) as Promise<{ instantiate: Function }>
        glues.set(meta.glue, glue)
      }
      const glueModule = await glue
      // Which snapshot a compiled module gets, for this component (modules are shared).
      const snapshotOf = (modules: CoreModules) => {
        const m = new Map<WebAssembly.Module, NonNullable<ReturnType<typeof snapshots.get>>>()
        for (const [name, s] of snapshots) m.set(modules.get(name)!, s)
        return m
      }
      const defaultSnapshots = snapshotOf(compiled)
      return {
        hash,
        shape,
        toolchain: guestToolchainOf(compiled.values()),
        metered: preemption,
        memoryPages: defaultPages,
        compiled: (pages) =>
          Effect.tryPromise({
            try: () => compiledFor(pages),
            catch: (e) => new ComponentLoadError({ hash, reason: "CompileFailed", detail: String(e) })
          }),
        instantiate: (imports: ImportObject, run = {}) => {
          const modules = run.modules ?? compiled
          const snaps = run.modules === undefined ? defaultSnapshots : snapshotOf(modules)
          const base = run.meter?.instantiateCore ??
            ((module: WebAssembly.Module, imps?: ImportObject) => new WebAssembly.Instance(module, imps as WebAssembly.Imports))
          const instantiateCore = (module: WebAssembly.Module, imps?: ImportObject) => {
            const instance = base(module, imps)
            const snap = snaps.get(module)
            if (snap !== undefined) {
              const memory = Object.values(instance.exports).find((e) => e instanceof WebAssembly.Memory) as WebAssembly.Memory
              const pages = memory.buffer.byteLength / 65536
              if (snap.minPages > pages) memory.grow(snap.minPages - pages)
              const view = new Uint8Array(memory.buffer)
              for (const [offset, start, length] of snap.segments) view.set(snap.bytes.subarray(start, start + length), offset)
            }
            return instance
          }
          return glueModule.instantiate((name: string) => modules.get(name)!, imports, instantiateCore) as Promise<ComponentInstance>
        }
      }
    }

    const loadKnown = <E>(hash: string, bytes: Effect.Effect<Uint8Array, E>) =>
      Effect.flatMap(bytes, (b) => {
        let c = components.get(hash)
        if (c === undefined) {
          c = loadNew(b, hash)
          components.set(hash, c)
        }
        const p = c
        return Effect.tryPromise({
          try: () => p,
          catch: (e) => new ComponentLoadError({ hash, reason: "CompileFailed", detail: e instanceof Error ? e.message : String(e) })
        })
      })
    const load = (bytes: Uint8Array) => loadKnown(sha(bytes), Effect.succeed(bytes))
    return ComponentCache.of({ load, loadKnown, scheduler })
  })

export const sharedEngineCacheLayer = (options: SharedEngineOptions) => Layer.effect(ComponentCache, make(options))
