/**
 * Builds the TypeScript apps in apps/ into Kinode packages:
 *
 *   node apps/build.ts            every app (a folder with metadata.json and src/main.ts)
 *   node apps/build.ts echo ...   just these
 *   node apps/build.ts --force    ignore the cache
 *
 * A package's Wasm files are those its `pkg/manifest.json` names (`process_wasm_path`)
 * and, for a package with terminal scripts, the keys of `pkg/scripts.json`
 * (`<name>.wasm`, kinode-semantics §8). Each Wasm file `x.wasm` is built from the
 * entry `src/x.ts` if there is one, else from `src/main.ts`; files with the same entry
 * are one component, built once. The manifest's files get the component itself; a
 * script that shares its entry with another file gets a *script link* instead: a tiny
 * Wasm module whose one custom section, `kinode-ts:script-link`, names the file with
 * the component (`scriptLink`; the terminal app follows it). A package zip is sent to
 * vfs as one message, at most 10 MB, and a componentize-js component is ~4 MB zipped,
 * so a terminal with a dozen scripts fits only this way.
 *
 * For each entry: strip the types of `src/**` and `sdk/*.ts` into `apps/.stage/<app>/`
 * (same layout, `.ts` imports rewritten to `.js`), componentize it with
 * componentize-js against `wit/kinode-process-1.0.0` (world `process-v1`) into
 * `apps/<app>/pkg/<wasm>`; then zip the `pkg/` folder to `apps/dist/<app>.zip`.
 * A component costs ~10 s and ~12 MB, so an entry is skipped when the hash of the
 * sources, the SDK, the WIT and the toolchain version is the one recorded for it in
 * `pkg/.build-hash` (and the zip when, besides, the package files are unchanged).
 *
 * Each component's core modules are also instrumented for preemption here (as the
 * node's component cache would, ~15 s per component) into `apps/dist/metered/`, which
 * nodes read, so a first boot does not pay it; `pkg/.metered` records for which builds
 * and version.
 */
import { componentize } from "@bytecodealliance/componentize-js"
import { zipSync } from "fflate"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import { stripTypeScriptTypes } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { TRANSPILE_OPTIONS } from "../src/wasm-host/ComponentCache.ts"
import { loadBinaryen, METERING_VERSION, meterCoreModule } from "../src/wasm-host/Metering.ts"

const appsDir = path.dirname(fileURLToPath(import.meta.url))
const repo = path.dirname(appsDir)
const witFile = path.join(repo, "wit", "kinode-process-1.0.0", "process.wit")
const distDir = path.join(appsDir, "dist")
const HASH_FILE = ".build-hash"
const METERED_MARK = ".metered"
const meteredDir = path.join(distDir, "metered")

/** Bumped when this script's output format changes, so old caches are not trusted. */
const BUILD_FORMAT = "3"

const toolchain = (): string => {
  const pkg = JSON.parse(fs.readFileSync(path.join(repo, "node_modules/@bytecodealliance/componentize-js/package.json"), "utf8")) as { version: string }
  return `componentize-js ${pkg.version}; format ${BUILD_FORMAT}`
}

/** `.ts` files (not `.d.ts`) of `dir`, and with `deep` of its subfolders, sorted. */
const tsFiles = (dir: string, deep = false): Array<string> => {
  if (!fs.existsSync(dir)) return []
  const out: Array<string> = []
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory() && deep) out.push(...tsFiles(p, true))
    else if (e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) out.push(p)
  }
  return out.sort()
}

export const listApps = (): Array<string> =>
  fs.readdirSync(appsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(appsDir, d.name, "metadata.json")) && fs.existsSync(path.join(appsDir, d.name, "src", "main.ts")))
    .map((d) => d.name)
    .sort()

interface ManifestEntry {
  readonly process_wasm_path: string
}

/** Package files other than build outputs (the manifest, scripts.json, ui/ ...). */
const pkgFiles = (pkgDir: string, exclude: ReadonlySet<string>): Array<string> => {
  const out: Array<string> = []
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(pkgDir, rel), { withFileTypes: true })) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`
      if (e.isDirectory()) walk(r)
      else if (e.isFile() && !exclude.has(r) && e.name !== HASH_FILE && e.name !== METERED_MARK) out.push(r)
    }
  }
  walk("")
  return out.sort()
}

/** The Wasm files of the manifest's processes. */
const manifestWasms = (app: string): Array<string> => {
  const manifest = JSON.parse(fs.readFileSync(path.join(appsDir, app, "pkg", "manifest.json"), "utf8")) as Array<ManifestEntry>
  return manifest.map((e) => e.process_wasm_path.replace(/^\//, ""))
}

/** Every Wasm file of the package: the manifest's processes, then `scripts.json`'s scripts. */
export const wasmNames = (app: string): Array<string> => {
  const scriptsPath = path.join(appsDir, app, "pkg", "scripts.json")
  const scripts = fs.existsSync(scriptsPath) ? Object.keys(JSON.parse(fs.readFileSync(scriptsPath, "utf8")) as object) : []
  return [...new Set([...manifestWasms(app), ...scripts])]
}

/** The entry (relative to the app's `src/`, without `.ts`) a Wasm file is built from. */
const entryOf = (app: string, wasm: string): string => {
  const own = path.basename(wasm).replace(/\.wasm$/, "")
  return fs.existsSync(path.join(appsDir, app, "src", `${own}.ts`)) ? own : "main"
}

const hashFiles = (h: ReturnType<typeof createHash>, files: ReadonlyArray<string>) => {
  for (const f of files) {
    h.update(path.relative(appsDir, f))
    h.update("\0")
    h.update(fs.readFileSync(f))
    h.update("\0")
  }
}

/** What a component is built from: the toolchain, the WIT, the SDK, the app's sources, its entry. */
const entryHash = (app: string, entry: string): string => {
  const h = createHash("sha256")
  h.update(`${toolchain()}\0${entry}\0`)
  hashFiles(h, [witFile, ...tsFiles(path.join(appsDir, "sdk")), ...tsFiles(path.join(appsDir, app, "src"), true)])
  return h.digest("hex")
}

/** What the zip holds besides the components: metadata and package files. */
const packageHash = (app: string, outputs: ReadonlySet<string>, entries: Record<string, string>): string => {
  const h = createHash("sha256")
  h.update(`${toolchain()}\0${JSON.stringify(entries)}\0`)
  const pkgDir = path.join(appsDir, app, "pkg")
  hashFiles(h, [path.join(appsDir, app, "metadata.json"), ...pkgFiles(pkgDir, outputs).map((f) => path.join(pkgDir, f))])
  return h.digest("hex")
}

interface BuildRecord {
  readonly package: string
  readonly entries: Record<string, string>
}

const readRecord = (file: string): BuildRecord | undefined => {
  try {
    const r = JSON.parse(fs.readFileSync(file, "utf8")) as BuildRecord
    return typeof r.package === "string" && typeof r.entries === "object" ? r : undefined
  } catch {
    return undefined
  }
}

/** `.ts` -> `.js` with types stripped; relative `.ts` specifiers rewritten. Returns the stage root. */
const stage = (app: string): string => {
  const root = path.join(appsDir, ".stage", app)
  fs.rmSync(root, { recursive: true, force: true })
  for (const [from, to] of [[path.join(appsDir, "sdk"), path.join(root, "sdk")], [path.join(appsDir, app, "src"), path.join(root, app, "src")]] as const) {
    for (const f of tsFiles(from, true)) {
      const js = stripTypeScriptTypes(fs.readFileSync(f, "utf8"), { mode: "strip" })
        .replace(/(from\s+["'](?:\.{1,2}\/)[^"']*?)\.ts(["'])/g, "$1.js$2")
      const out = path.join(to, path.relative(from, f)).replace(/\.ts$/, ".js")
      fs.mkdirSync(path.dirname(out), { recursive: true })
      fs.writeFileSync(out, js)
    }
  }
  return root
}

/** Writes the instrumented core modules of `component` to `apps/dist/metered/` (by content, as the node keys them). */
const premeter = async (component: Uint8Array): Promise<void> => {
  const { transpileBytes } = await import("@bytecodealliance/jco-transpile")
  const out = await transpileBytes(component, TRANSPILE_OPTIONS)
  const binaryen = await loadBinaryen()
  fs.mkdirSync(meteredDir, { recursive: true })
  for (const [name, content] of Object.entries(out.files)) {
    if (!name.endsWith(".wasm")) continue
    const file = path.join(meteredDir, `${createHash("sha256").update(content).digest("hex")}-${METERING_VERSION}.wasm`)
    if (fs.existsSync(file)) continue
    const tmp = `${file}.tmp-${process.pid}`
    fs.writeFileSync(tmp, meterCoreModule(binaryen, content).binary)
    fs.renameSync(tmp, file)
  }
}

/** The custom section a script link carries: the name of the file (in the same `pkg/`) with the component. */
export const SCRIPT_LINK_SECTION = "kinode-ts:script-link"

const leb128 = (n: number): Array<number> => {
  const out: Array<number> = []
  do {
    let b = n & 0x7f
    n >>>= 7
    if (n !== 0) b |= 0x80
    out.push(b)
  } while (n !== 0)
  return out
}

/** A script link to `target`: an empty Wasm core module with one custom section naming it. */
export const scriptLink = (target: string): Uint8Array => {
  const utf8 = new TextEncoder()
  const name = utf8.encode(SCRIPT_LINK_SECTION)
  const payload = [...leb128(name.length), ...name, ...utf8.encode(target)]
  return Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x00, ...leb128(payload.length), ...payload])
}

/** Writes `bytes` to each of `files`: the first gets the bytes, the others are hard links to it. */
const writeLinked = (files: ReadonlyArray<string>, bytes: Uint8Array) => {
  const [first, ...rest] = files
  if (first === undefined) return
  fs.rmSync(first, { force: true })
  fs.writeFileSync(first, bytes)
  for (const f of rest) {
    fs.rmSync(f, { force: true })
    try {
      fs.linkSync(first, f)
    } catch {
      fs.copyFileSync(first, f)
    }
  }
}

export interface BuildResult {
  readonly app: string
  readonly zip: string
  readonly built: boolean
  readonly ms: number
  /** Size of the (first) component. */
  readonly wasmBytes: number
  /** Wasm files in the package (script links included), and how many distinct components they are. */
  readonly wasmFiles: number
  readonly components: number
}

export const buildApp = async (app: string, force = false): Promise<BuildResult> => {
  const started = performance.now()
  const pkgDir = path.join(appsDir, app, "pkg")
  const wasms = wasmNames(app)
  if (wasms.length === 0) throw new Error(`${app}: the manifest names no Wasm file`)
  const outputs = new Set(wasms)
  const processFiles = new Set(manifestWasms(app))
  // entry -> the Wasm files built from it: those holding the component, and script links to the first
  const byEntry = new Map<string, { full: Array<string>; links: Array<string> }>()
  for (const w of wasms) {
    const e = entryOf(app, w)
    const group = byEntry.get(e) ?? { full: [], links: [] }
    if (processFiles.has(w) || group.full.length === 0) group.full.push(w)
    else group.links.push(w)
    byEntry.set(e, group)
  }
  const hashPath = path.join(pkgDir, HASH_FILE)
  const previous = force ? undefined : readRecord(hashPath)
  const entries: Record<string, string> = {}
  for (const e of byEntry.keys()) entries[e] = entryHash(app, e)
  const zip = path.join(distDir, `${app}.zip`)
  const pkgHash = packageHash(app, outputs, entries)

  const stale = [...byEntry].filter(([e, g]) =>
    previous?.entries[e] !== entries[e] || [...g.full, ...g.links].some((f) => !fs.existsSync(path.join(pkgDir, f)))
  )
  let root: string | undefined
  const components = new Map<string, Uint8Array>()
  await Promise.all(stale.map(async ([e, group]) => {
    root ??= stage(app)
    const entry = path.join(root, `entry-${e.replace(/[^a-zA-Z0-9_-]/g, "_")}.js`)
    fs.writeFileSync(entry, `export { init } from "./${app}/src/${e}.js";\n`)
    // componentize-js 0.23 reads `witWorld` (inline WIT source) but its types omit it.
    const options = {
      sourcePath: entry,
      witWorld: fs.readFileSync(witFile, "utf8"),
      worldName: "process-v1",
      // Apps talk to the world only through kinode:process; keep stdio for trap text.
      disableFeatures: ["http", "fetch-event"] as Array<"http" | "fetch-event">
    }
    const { component } = await (componentize as (o: typeof options) => Promise<{ component: Uint8Array }>)(options)
    writeLinked(group.full.map((f) => path.join(pkgDir, f)), component)
    for (const f of group.links) {
      fs.rmSync(path.join(pkgDir, f), { force: true })
      fs.writeFileSync(path.join(pkgDir, f), scriptLink(group.full[0]!))
    }
    components.set(e, component)
  }))
  const built = stale.length > 0 || previous?.package !== pkgHash || !fs.existsSync(zip)
  if (built) {
    const files: Record<string, Uint8Array> = {}
    for (const f of pkgFiles(pkgDir, new Set())) files[f] = new Uint8Array(fs.readFileSync(path.join(pkgDir, f)))
    fs.mkdirSync(distDir, { recursive: true })
    // Fixed mtime: the same sources give the same zip bytes (the node re-installs on a zip hash change).
    fs.writeFileSync(zip, zipSync(files, { level: 6, mtime: new Date("2024-01-01T00:00:00Z") }))
    fs.writeFileSync(hashPath, `${JSON.stringify({ package: pkgHash, entries } satisfies BuildRecord)}\n`)
  }
  const markPath = path.join(pkgDir, METERED_MARK)
  const mark = `${JSON.stringify(entries)} ${METERING_VERSION}`
  if (!(fs.existsSync(markPath) && fs.readFileSync(markPath, "utf8").trim() === mark)) {
    for (const [e, group] of byEntry) {
      await premeter(components.get(e) ?? new Uint8Array(fs.readFileSync(path.join(pkgDir, group.full[0]!))))
    }
    fs.writeFileSync(markPath, `${mark}\n`)
  }
  return {
    app,
    zip,
    built,
    ms: Math.round(performance.now() - started),
    wasmBytes: fs.statSync(path.join(pkgDir, [...byEntry.values()][0]!.full[0]!)).size,
    wasmFiles: wasms.length,
    components: byEntry.size
  }
}

if (import.meta.main) {
  const args = process.argv.slice(2)
  const force = args.includes("--force")
  const named = args.filter((a) => !a.startsWith("--"))
  const apps = named.length > 0 ? named : listApps()
  const unknown = apps.filter((a) => !listApps().includes(a))
  if (unknown.length > 0) {
    process.stderr.write(`no such app: ${unknown.join(", ")} (apps: ${listApps().join(", ")})\n`)
    process.exit(2)
  }
  // componentize-js runs its engine in this process; builds in parallel share the CPU but overlap I/O.
  const results = await Promise.all(apps.map((a) => buildApp(a, force)))
  for (const r of results) {
    const files = r.wasmFiles === 1 ? "" : ` (${r.wasmFiles} Wasm files: ${r.components} component${r.components === 1 ? "" : "s"}, the rest script links)`
    process.stdout.write(`${r.app}: ${r.built ? "built" : "up to date"} in ${r.ms} ms, ${(r.wasmBytes / 1e6).toFixed(1)} MB${files} -> ${path.relative(repo, r.zip)}\n`)
  }
}
