/**
 * Builds Kinode packages from sources: the TypeScript apps in apps/ (`npm run build:apps`)
 * and any package folder (`kit-ts build <dir>`, kit/):
 *
 *   node apps/build.ts            every app of apps/ (a folder with metadata.json and src/main.ts)
 *   node apps/build.ts echo ...   just these
 *   node apps/build.ts --force    ignore the cache
 *   (on Node 20: npm run build:apps -- echo; npm puts the bundled Node 24 first on PATH)
 *
 * A package folder holds `metadata.json`, `pkg/` (`manifest.json`, optionally
 * `scripts.json`, `ui/` ...) and `src/`. Its Wasm files are those `pkg/manifest.json`
 * names (`process_wasm_path`) and, for a package with terminal scripts, the keys of
 * `pkg/scripts.json` (`<name>.wasm`, kinode-semantics §8). Each Wasm file `x.wasm` is
 * built from the first entry of `src/x.ts`, `src/x.wat`, `src/main.ts`, `src/main.wat`:
 * TypeScript with componentize-js, WAT with wasm-tools (parse, embed the WIT, wrap into
 * a component), both against `wit/kinode-process-1.0.0` (world `process-v1`). Files with
 * the same entry are one component, built once. The manifest's files get the component
 * itself; a script that shares its entry with another file gets a *script link* instead:
 * a tiny Wasm module whose one custom section, `kinode-ts:script-link`, names the file
 * with the component (`scriptLink`; the terminal app follows it). A package zip is sent
 * to vfs as one message, at most 10 MB, and a componentize-js component is ~4 MB zipped,
 * so a terminal with a dozen scripts fits only this way.
 *
 * A TypeScript entry: the types of `src/**` and the SDK (`apps/sdk/*.ts`) are stripped
 * into a stage folder (same layout, `.ts` imports rewritten to `.js`, `kinode-ts/sdk`
 * to the staged SDK) and componentized into `pkg/<wasm>`; then `pkg/` is zipped: an app
 * of apps/ to `apps/dist/<app>.zip`, any other package to
 * `<dir>/target/<package>:<publisher>.zip` (as Kinode's kit names its zips).
 *
 * **Nothing stale is packed.** A component costs ~10 s, so an entry is skipped when the
 * hash of its sources, the SDK, the WIT and the toolchain is the one recorded for it in
 * `pkg/.build-hash` *and* that record was written for this folder *and* each of its Wasm
 * files still has the SHA-256 recorded (a folder copied with its outputs, or a Wasm file
 * replaced by hand, is rebuilt). A `.wasm` file in `pkg/` that this build does not make
 * (say `pkg/echo.wasm` after the manifest was changed to name `myapp.wasm`) stops the
 * build with `StaleOutputs` naming it, before anything is built.
 *
 * Each component's core modules are also instrumented for preemption here (as the
 * node's component cache would, ~15 s per componentize-js component) into
 * `apps/dist/metered/`, which nodes of this checkout read, so a first start does not pay
 * it; `pkg/.metered` records for which builds and version.
 */
import { zipSync } from "fflate"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import { stripTypeScriptTypes } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { METERING_VERSION } from "../src/wasm-host/Metering.ts"
import { renameComponentExports } from "./ComponentNames.ts"

const appsDir = path.dirname(fileURLToPath(import.meta.url))
const repo = path.dirname(appsDir)
/** The SDK apps import (`../../sdk/index.ts` from an app of apps/, `kinode-ts/sdk` from anywhere). */
export const sdkDir = path.join(appsDir, "sdk")
export const witFile = path.join(repo, "wit", "kinode-process-1.0.0", "process.wit")
export const WORLD = "process-v1"
const distDir = path.join(appsDir, "dist")
const HASH_FILE = ".build-hash"
const METERED_MARK = ".metered"
const meteredDir = path.join(distDir, "metered")

/** The bare specifier of the SDK in apps outside apps/ (mapped by their tsconfig, rewritten when staged). */
export const SDK_SPECIFIER = "kinode-ts/sdk"

/** Bumped when this script's output format changes, so old caches are not trusted. */
const BUILD_FORMAT = "5"

const versionOf = (pkg: string): string =>
  (JSON.parse(fs.readFileSync(path.join(repo, "node_modules", pkg, "package.json"), "utf8")) as { version: string }).version

type Language = "ts" | "wat"

const toolchain = (language: Language): string =>
  language === "ts"
    ? `componentize-qjs ${versionOf("componentize-qjs")} sync; format ${BUILD_FORMAT}`
    : `jco-transpile ${versionOf("@bytecodealliance/jco-transpile")}; format ${BUILD_FORMAT}`

/** Files of `dir` whose names end with `ext` (not `.d.ts`), and with `deep` of its subfolders, sorted. */
const filesOf = (dir: string, ext: string, deep = false): Array<string> => {
  if (!fs.existsSync(dir)) return []
  const out: Array<string> = []
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory() && deep) out.push(...filesOf(p, ext, true))
    else if (e.isFile() && e.name.endsWith(ext) && !e.name.endsWith(".d.ts")) out.push(p)
  }
  return out.sort()
}

export const listApps = (): Array<string> =>
  fs.readdirSync(appsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(appsDir, d.name, "metadata.json")) && fs.existsSync(path.join(appsDir, d.name, "src", "main.ts")))
    .map((d) => d.name)
    .sort()

/**
 * Why a package folder cannot be built as it is: not a package, a `.wasm` in `pkg/` the
 * build does not make, a Wasm file with no source, a module calling the node at its top
 * level, another componentize-js or wasm-tools failure.
 */
export type BuildRefusal = "NotAPackage" | "StaleOutputs" | "NoEntry" | "TopLevelCall" | "ComponentizeFailed" | "WatFailed"

/** A package folder that cannot be built as it is; `message` says why and what to do. */
export class BuildRefused extends Error {
  readonly _tag = "BuildRefused"
  readonly reason: BuildRefusal
  constructor(reason: BuildRefusal, message: string) {
    super(message)
    this.reason = reason
  }
}

interface ManifestEntry {
  readonly process_wasm_path: string
}

const readJson = (file: string, what: string): unknown => {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch {
    throw new BuildRefused("NotAPackage", `${what}: no ${path.basename(file)} (a package folder holds metadata.json, pkg/manifest.json and src/)`)
  }
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new BuildRefused("NotAPackage", `${what}: ${path.basename(file)} is not JSON (${e instanceof Error ? e.message : String(e)})`)
  }
}

/** `<package>:<publisher>` from `metadata.json` (Kinode's current form, or 0.5's `{package, publisher}`). */
export const packageIdOf = (dir: string): { readonly package: string; readonly publisher: string } => {
  const m = readJson(path.join(dir, "metadata.json"), dir) as {
    properties?: { package_name?: unknown; publisher?: unknown }
    package?: unknown
    publisher?: unknown
  }
  const pkg = m.properties?.package_name ?? m.package
  const publisher = m.properties?.publisher ?? m.publisher
  if (typeof pkg !== "string" || typeof publisher !== "string") {
    throw new BuildRefused("NotAPackage", `${path.join(dir, "metadata.json")}: no properties.package_name and properties.publisher`)
  }
  return { package: pkg, publisher }
}

/** The Wasm files of the manifest's processes. */
const manifestWasms = (dir: string): Array<string> => {
  const manifest = readJson(path.join(dir, "pkg", "manifest.json"), dir)
  if (!Array.isArray(manifest)) throw new BuildRefused("NotAPackage", `${path.join(dir, "pkg", "manifest.json")}: not a list of processes`)
  return (manifest as Array<ManifestEntry>).map((e) => String(e.process_wasm_path).replace(/^\//, ""))
}

/** Every Wasm file of the package folder `dir`: the manifest's processes, then `scripts.json`'s scripts. */
export const packageWasmNames = (dir: string): Array<string> => {
  const scriptsPath = path.join(dir, "pkg", "scripts.json")
  const scripts = fs.existsSync(scriptsPath) ? Object.keys(readJson(scriptsPath, dir) as object) : []
  return [...new Set([...manifestWasms(dir), ...scripts])]
}

/** Every Wasm file of the app `apps/<app>`. */
export const wasmNames = (app: string): Array<string> => packageWasmNames(path.join(appsDir, app))

/** The entry (a file of the folder's `src/`) a Wasm file is built from, or undefined. */
const entryOf = (dir: string, wasm: string): string | undefined => {
  const own = path.basename(wasm).replace(/\.wasm$/, "")
  return [`${own}.ts`, `${own}.wat`, "main.ts", "main.wat"].find((f) => fs.existsSync(path.join(dir, "src", f)))
}

const languageOf = (entry: string): Language => (entry.endsWith(".wat") ? "wat" : "ts")

/** Wasm files under `pkg/` (relative paths), outputs or not. */
const wasmFilesIn = (pkgDir: string): Array<string> =>
  filesOf(pkgDir, ".wasm", true).map((f) => path.relative(pkgDir, f).split(path.sep).join("/"))

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

const sha256 = (bytes: Uint8Array | string): string => createHash("sha256").update(bytes).digest("hex")

/**
 * Hashes files by a name that does not depend on where the folder is (`<folder name>/...`,
 * `sdk/...`; for an app of apps/ the same as its path under apps/) and by content.
 */
const hashFiles = (h: ReturnType<typeof createHash>, dir: string, files: ReadonlyArray<string>) => {
  for (const f of files) {
    const name = f === witFile
      ? "../wit/kinode-process-1.0.0/process.wit"
      : f.startsWith(sdkDir + path.sep)
      ? path.relative(appsDir, f)
      : path.join(path.basename(dir), path.relative(dir, f))
    h.update(name)
    h.update("\0")
    h.update(fs.readFileSync(f))
    h.update("\0")
  }
}

/** What a component is built from: the toolchain, the WIT, the sources (and the SDK for TypeScript), its entry. */
const entryHash = (dir: string, entry: string): string => {
  const language = languageOf(entry)
  const h = createHash("sha256")
  h.update(`${toolchain(language)}\0${entry}\0`)
  const sources = language === "ts"
    ? [witFile, ...filesOf(sdkDir, ".ts"), ...filesOf(path.join(dir, "src"), ".ts", true)]
    : [witFile, path.join(dir, "src", entry)]
  hashFiles(h, dir, sources)
  return h.digest("hex")
}

/** What the zip holds besides the components: metadata and package files. */
const packageHash = (dir: string, outputs: ReadonlySet<string>, entries: Record<string, string>): string => {
  const h = createHash("sha256")
  h.update(`${BUILD_FORMAT}\0${JSON.stringify(entries)}\0`)
  const pkgDir = path.join(dir, "pkg")
  hashFiles(h, dir, [path.join(dir, "metadata.json"), ...pkgFiles(pkgDir, outputs).map((f) => path.join(pkgDir, f))])
  return h.digest("hex")
}

/** `pkg/.build-hash`: what the outputs in `pkg/` and the zip were built from, where, and their hashes. */
interface BuildRecord {
  /** The folder built (absolute): a record copied along with a folder is not trusted. */
  readonly dir: string
  readonly package: string
  /** entry -> hash of what it is built from. */
  readonly entries: Record<string, string>
  /** Wasm file (relative to pkg/) -> SHA-256 of the bytes written. */
  readonly outputs: Record<string, string>
  readonly zip: string
}

const readRecord = (file: string): BuildRecord | undefined => {
  try {
    const r = JSON.parse(fs.readFileSync(file, "utf8")) as BuildRecord
    return typeof r.dir === "string" && typeof r.package === "string" && typeof r.entries === "object" && typeof r.outputs === "object"
      ? r
      : undefined
  } catch {
    return undefined
  }
}

/** `.ts` -> `.js` with types stripped; relative `.ts` and `kinode-ts/sdk` specifiers rewritten. */
const stageFile = (from: string, to: string, sdkFromHere: string) => {
  const js = stripTypeScriptTypes(fs.readFileSync(from, "utf8"), { mode: "strip" })
    .replace(/(from\s+["'](?:\.{1,2}\/)[^"']*?)\.ts(["'])/g, "$1.js$2")
    .replace(/(from\s+["'])kinode-ts\/sdk(["'])/g, `$1${sdkFromHere}$2`)
  fs.mkdirSync(path.dirname(to), { recursive: true })
  fs.writeFileSync(to, js)
}

/** Stages the SDK at `<root>/sdk` and `src/` at `<root>/<name>/src`; returns the folder name used. */
const stage = (dir: string, root: string): string => {
  fs.rmSync(root, { recursive: true, force: true })
  const name = path.basename(dir) === "sdk" ? "app" : path.basename(dir)
  for (const f of filesOf(sdkDir, ".ts")) stageFile(f, path.join(root, "sdk", path.relative(sdkDir, f)).replace(/\.ts$/, ".js"), "./index.js")
  const src = path.join(dir, "src")
  for (const f of filesOf(src, ".ts", true)) {
    const to = path.join(root, name, "src", path.relative(src, f)).replace(/\.ts$/, ".js")
    const sdk = path.relative(path.dirname(to), path.join(root, "sdk", "index.js")).split(path.sep).join("/")
    stageFile(f, to, sdk.startsWith(".") ? sdk : `./${sdk}`)
  }
  return name
}

/** Writes the instrumented core modules of `component` to `apps/dist/metered/` (by content, as the node keys them). */
const premeter = async (component: Uint8Array): Promise<void> => {
  // Loaded here: the node's Wasm host is heavy, and only builds need it.
  const { transpileBytes } = await import("@bytecodealliance/jco-transpile")
  const { TRANSPILE_OPTIONS } = await import("../src/wasm-host/ComponentCache.ts")
  const { loadBinaryen, meterCoreModule } = await import("../src/wasm-host/Metering.ts")
  const out = await transpileBytes(component, TRANSPILE_OPTIONS)
  const binaryen = await loadBinaryen()
  fs.mkdirSync(meteredDir, { recursive: true })
  for (const [name, content] of Object.entries(out.files)) {
    if (!name.endsWith(".wasm")) continue
    const file = path.join(meteredDir, `${sha256(content)}-${METERING_VERSION}.wasm`)
    if (fs.existsSync(file)) continue
    const tmp = `${file}.tmp-${process.pid}`
    fs.writeFileSync(tmp, withoutNameWarnings(() => meterCoreModule(binaryen, content).binary))
    fs.renameSync(tmp, file)
  }
}

/**
 * Runs `f` with binaryen's "warning: unknown name subsection" lines (a name section kind
 * it does not know, harmless: names are debug info) kept off stderr.
 */
const withoutNameWarnings = <A>(f: () => A): A => {
  const write = process.stderr.write
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: Array<unknown>) =>
    /^warning: unknown name subsection/.test(String(chunk))
      ? true
      : (write as (...a: Array<unknown>) => boolean).call(process.stderr, chunk, ...rest)) as typeof process.stderr.write
  try {
    return f()
  } finally {
    process.stderr.write = write
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
  fs.mkdirSync(path.dirname(first), { recursive: true })
  fs.rmSync(first, { force: true })
  fs.writeFileSync(first, bytes)
  for (const f of rest) {
    fs.mkdirSync(path.dirname(f), { recursive: true })
    fs.rmSync(f, { force: true })
    try {
      fs.linkSync(first, f)
    } catch {
      fs.copyFileSync(first, f)
    }
  }
}

/**
 * componentize-qjs keeps its own start-up export (its Wizer entry) under the name
 * `init`, so it refuses to link a world that exports Kinode's `init`. The app is built
 * against the same WIT with Kinode's export spelled `inix`; then the component's
 * export names are swapped (`init` -> `qjsi`, `inix` -> `init`: same lengths, so no
 * byte moves). Once componentize-qjs stops claiming `init`, the swap finds no `inix`
 * and is skipped.
 */
const STAND_IN = "inix"

/** The WIT with Kinode's `init` export spelled `inix`, written beside the stage. */
const standInWit = (stageRoot: string): string => {
  const wit = fs.readFileSync(witFile, "utf8")
  const renamed = wit.replace("export init: func(our: string);", `export ${STAND_IN}: func(our: string);`)
  if (renamed === wit) throw new BuildRefused("ComponentizeFailed", `${witFile}: no \`export init: func(our: string);\` to build against`)
  const file = path.join(stageRoot, "process.wit")
  fs.writeFileSync(file, renamed)
  return file
}

/** componentize-qjs (QuickJS, sync runtime: see bench/toolchains/README.md) on a staged entry. */
const componentizeTs = async (stageRoot: string, name: string, entry: string): Promise<Uint8Array> => {
  const file = path.join(stageRoot, `entry-${entry.replace(/[^a-zA-Z0-9_-]/g, "_")}.js`)
  // The SDK's text codec first: other modules make their encoders when they load. Then
  // the app, whose init runs once Math.random is seeded for this process (random.ts).
  const source = [
    `import "./sdk/textcodec.js";`,
    `import { seedRandom } from "./sdk/random.js";`,
    `import { init } from "./${name}/src/${entry.replace(/\.ts$/, ".js")}";`,
    `export function ${STAND_IN}(our) {`,
    `  seedRandom(our);`,
    `  return init(our);`,
    `}`,
    ``
  ].join("\n")
  fs.writeFileSync(file, source)
  const { componentize } = await import("componentize-qjs")
  let component: Uint8Array
  try {
    const out = await componentize({
      witPath: standInWit(stageRoot),
      world: WORLD,
      jsSource: source,
      jsPath: file,
      moduleRoot: stageRoot,
      sync: true
    })
    component = new Uint8Array(out.component)
  } catch (e) {
    throw componentizeRefusal(entry, e instanceof Error ? e.message : String(e))
  }
  return renameComponentExports(component, [["init", "qjsi", "optional"], [STAND_IN, "init"]])
}

/**
 * componentize-qjs runs the modules' top-level code while building (Wizer snapshots the
 * initialized engine): a module that calls the node there, or throws, fails the build.
 * Its report is a Rust/Wasm backtrace; this says what happened in the source's terms.
 */
const componentizeRefusal = (entry: string, report: string): BuildRefused => {
  const call = /unknown import: `([^`#]+)#([^`]+)` has not been defined/.exec(report)
  if (call !== null) {
    return new BuildRefused(
      "TopLevelCall",
      `src/${entry}: module code calls ${call[1]} ${call[2]} outside init: the build runs every module's top level ` +
        `(componentize-qjs snapshots it), where the node is not there; call the SDK from init (or from functions init calls)`
    )
  }
  const lines = report.replace(/^[:\s]+/, "").split("\n").filter((l) => !/^\s*\d+:\s+0x[0-9a-f]+ - /.test(l) && l.trim() !== "")
  return new BuildRefused("ComponentizeFailed", `src/${entry}: componentize-qjs could not build it:\n${lines.join("\n")}`)
}

/** A WAT core module for `process-v1`: parsed, the WIT embedded, wrapped into a component. */
export const componentizeWat = async (wat: string): Promise<Uint8Array> => {
  const { componentEmbed, componentNew, parse } = await import("@bytecodealliance/jco-transpile/wasm-tools")
  const core = await parse(wat)
  return componentNew(await componentEmbed({ binary: core, witSource: fs.readFileSync(witFile, "utf8"), world: WORLD }), [])
}

const watRefusal = (entry: string, e: unknown): BuildRefused =>
  new BuildRefused("WatFailed", `src/${entry}: ${e instanceof Error ? e.message : String(e)}`)

export interface BuildResult {
  /** The folder name (for an app of apps/, its name). */
  readonly app: string
  readonly dir: string
  readonly zip: string
  readonly zipBytes: number
  /** Whether anything was built (false: the zip was up to date). */
  readonly built: boolean
  readonly ms: number
  /** Size of the (first) component. */
  readonly wasmBytes: number
  /** Wasm files in the package (script links included), and how many distinct components they are. */
  readonly wasmFiles: number
  readonly components: number
}

/** Progress of the steps that take a while: called when one starts and when it is done. */
export type Progress = (event: { readonly step: string; readonly done: boolean; readonly ms?: number }) => void

export interface BuildOptions {
  /** Ignore the cache. */
  readonly force?: boolean
  /** The zip to write (default: an app of apps/ -> apps/dist/<app>.zip, else <dir>/target/<package>:<publisher>.zip). */
  readonly zip?: string
  readonly progress?: Progress
}

/** Where `buildPackage` writes the zip of the folder `dir`. */
export const zipPathOf = (dir: string): string => {
  const abs = path.resolve(dir)
  if (path.dirname(abs) === appsDir) return path.join(distDir, `${path.basename(abs)}.zip`)
  const id = packageIdOf(abs)
  return path.join(abs, "target", `${id.package}:${id.publisher}.zip`)
}

/** Where the stripped sources of `dir` are staged. */
const stageDirOf = (dir: string): string =>
  path.dirname(dir) === appsDir ? path.join(appsDir, ".stage", path.basename(dir)) : path.join(dir, "target", "stage")

interface Plan {
  readonly dir: string
  readonly pkgDir: string
  readonly wasms: ReadonlyArray<string>
  /** entry -> the Wasm files built from it: those holding the component, and script links to the first. */
  readonly byEntry: ReadonlyMap<string, { readonly full: Array<string>; readonly links: Array<string> }>
  readonly entries: Record<string, string>
  readonly pkgHash: string
  readonly zip: string
}

/** Reads the folder, refuses what cannot be built, hashes the inputs. Nothing is written. */
const planBuild = (dirIn: string, options: BuildOptions): Plan => {
  const dir = path.resolve(dirIn)
  const pkgDir = path.join(dir, "pkg")
  packageIdOf(dir)
  const wasms = packageWasmNames(dir)
  if (wasms.length === 0) throw new BuildRefused("NotAPackage", `${dir}: the manifest names no Wasm file`)
  const processFiles = new Set(manifestWasms(dir))
  const byEntry = new Map<string, { full: Array<string>; links: Array<string> }>()
  for (const w of wasms) {
    const e = entryOf(dir, w)
    if (e === undefined) {
      const own = path.basename(w).replace(/\.wasm$/, "")
      throw new BuildRefused("NoEntry", `${w}: nothing to build it from (src/${own}.ts, src/${own}.wat, src/main.ts or src/main.wat)`)
    }
    const group = byEntry.get(e) ?? { full: [], links: [] }
    if (processFiles.has(w) || group.full.length === 0) group.full.push(w)
    else group.links.push(w)
    byEntry.set(e, group)
  }
  const outputs = new Set(wasms)
  const strays = fs.existsSync(pkgDir) ? wasmFilesIn(pkgDir).filter((f) => !outputs.has(f)) : []
  if (strays.length > 0) {
    throw new BuildRefused(
      "StaleOutputs",
      `${strays.map((f) => path.join(pkgDir, f)).join(", ")}: not built from this package (it builds ${wasms.join(", ")}: ` +
        `pkg/manifest.json and pkg/scripts.json name them); it would be packed as it is: remove it`
    )
  }
  const entries: Record<string, string> = {}
  for (const e of byEntry.keys()) entries[e] = entryHash(dir, e)
  return { dir, pkgDir, wasms, byEntry, entries, pkgHash: packageHash(dir, outputs, entries), zip: path.resolve(options.zip ?? zipPathOf(dir)) }
}

/** The entries whose outputs cannot be trusted: sources changed, files missing, replaced or copied from elsewhere. */
const staleEntries = (plan: Plan, previous: BuildRecord | undefined) =>
  [...plan.byEntry].filter(([e, g]) =>
    previous === undefined || previous.dir !== plan.dir || previous.entries[e] !== plan.entries[e] ||
    [...g.full, ...g.links].some((f) => {
      const file = path.join(plan.pkgDir, f)
      return !fs.existsSync(file) || previous.outputs[f] !== sha256(fs.readFileSync(file))
    })
  )

/** Whether `dir`'s zip is the build of its sources as they are now (what `buildPackage` would leave alone). */
export const isUpToDate = (dir: string): boolean => {
  const plan = planBuild(dir, {})
  const previous = readRecord(path.join(plan.pkgDir, HASH_FILE))
  return previous !== undefined && staleEntries(plan, previous).length === 0 && previous.package === plan.pkgHash &&
    fs.existsSync(plan.zip) && previous.zip === sha256(fs.readFileSync(plan.zip))
}

const timed = async <A>(progress: Progress | undefined, step: string, f: () => Promise<A>): Promise<A> => {
  const t0 = performance.now()
  progress?.({ step, done: false })
  const a = await f()
  progress?.({ step, done: true, ms: Math.round(performance.now() - t0) })
  return a
}

/** Builds the package folder `dir` into its zip (see the top of this file). Throws `BuildRefused`. */
export const buildPackage = async (dirIn: string, options: BuildOptions = {}): Promise<BuildResult> => {
  const started = performance.now()
  const plan = planBuild(dirIn, options)
  const { dir, pkgDir, byEntry, entries, zip } = plan
  const hashPath = path.join(pkgDir, HASH_FILE)
  const previous = options.force === true ? undefined : readRecord(hashPath)
  const stale = staleEntries(plan, previous)
  const progress = options.progress
  let staged: { root: string; name: string } | undefined
  const components = new Map<string, Uint8Array>()
  const outputs: Record<string, string> = {}
  // Trusted entries keep their recorded hashes; stale ones get new ones below.
  if (previous !== undefined) {
    for (const [e, g] of byEntry) if (!stale.some(([s]) => s === e)) for (const f of [...g.full, ...g.links]) outputs[f] = previous.outputs[f]!
  }
  // A record that no longer describes pkg/ goes first: an interrupted build leaves no trusted outputs behind.
  if (stale.length > 0) fs.rmSync(hashPath, { force: true })
  await Promise.all(stale.map(async ([e, group]) => {
    const component = languageOf(e) === "wat"
      ? await timed(progress, `assembling src/${e} -> pkg/${group.full.join(", pkg/")}`, async () =>
        componentizeWat(fs.readFileSync(path.join(dir, "src", e), "utf8")).catch((err: unknown) => {
          throw watRefusal(e, err)
        }))
      : await timed(progress, `componentizing src/${e} -> pkg/${group.full.join(", pkg/")}`, () => {
        if (staged === undefined) {
          const root = stageDirOf(dir)
          staged = { root, name: stage(dir, root) }
        }
        return componentizeTs(staged.root, staged.name, e)
      })
    writeLinked(group.full.map((f) => path.join(pkgDir, f)), component)
    for (const f of group.full) outputs[f] = sha256(component)
    for (const f of group.links) {
      const link = scriptLink(group.full[0]!)
      fs.rmSync(path.join(pkgDir, f), { force: true })
      fs.writeFileSync(path.join(pkgDir, f), link)
      outputs[f] = sha256(link)
    }
    components.set(e, component)
  }))
  const built = stale.length > 0 || previous?.package !== plan.pkgHash || !fs.existsSync(zip) ||
    previous.zip !== sha256(fs.readFileSync(zip))
  if (built) {
    const files: Record<string, Uint8Array> = {}
    for (const f of pkgFiles(pkgDir, new Set())) files[f] = new Uint8Array(fs.readFileSync(path.join(pkgDir, f)))
    fs.mkdirSync(path.dirname(zip), { recursive: true })
    // Fixed mtime: the same sources give the same zip bytes (the node re-installs on a zip hash change).
    const bytes = zipSync(files, { level: 6, mtime: new Date("2024-01-01T00:00:00Z") })
    fs.writeFileSync(zip, bytes)
    const record: BuildRecord = { dir, package: plan.pkgHash, entries, outputs, zip: sha256(bytes) }
    fs.writeFileSync(hashPath, `${JSON.stringify(record)}\n`)
  }
  const markPath = path.join(pkgDir, METERED_MARK)
  const mark = `${JSON.stringify(entries)} ${METERING_VERSION}`
  if (!(fs.existsSync(markPath) && fs.readFileSync(markPath, "utf8").trim() === mark)) {
    await timed(progress, "instrumenting for preemption (once per build; nodes of this checkout reuse it)", async () => {
      for (const [e, group] of byEntry) {
        await premeter(components.get(e) ?? new Uint8Array(fs.readFileSync(path.join(pkgDir, group.full[0]!))))
      }
    })
    fs.writeFileSync(markPath, `${mark}\n`)
  }
  return {
    app: path.basename(dir),
    dir,
    zip,
    zipBytes: fs.statSync(zip).size,
    built,
    ms: Math.round(performance.now() - started),
    wasmBytes: fs.statSync(path.join(pkgDir, [...byEntry.values()][0]!.full[0]!)).size,
    wasmFiles: plan.wasms.length,
    components: byEntry.size
  }
}

/** Builds the app `apps/<app>` into `apps/dist/<app>.zip`. */
export const buildApp = (app: string, force = false, progress?: Progress): Promise<BuildResult> =>
  buildPackage(path.join(appsDir, app), { force, ...(progress === undefined ? {} : { progress }) })

export const describeResult = (r: BuildResult, from: string = repo): string => {
  const files = r.wasmFiles === 1 ? "" : ` (${r.wasmFiles} Wasm files: ${r.components} component${r.components === 1 ? "" : "s"}, the rest script links)`
  return `${r.app}: ${r.built ? "built" : "up to date"} in ${r.ms} ms, ${(r.wasmBytes / 1e6).toFixed(1)} MB${files} -> ${path.relative(from, r.zip)} (${(r.zipBytes / 1e6).toFixed(1)} MB)`
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
  const results = await Promise.allSettled(apps.map((a) => buildApp(a, force)))
  let failed = false
  for (const [i, r] of results.entries()) {
    if (r.status === "fulfilled") process.stdout.write(`${describeResult(r.value)}\n`)
    else {
      failed = true
      const e = r.reason as unknown
      process.stderr.write(`${apps[i]}: ${e instanceof BuildRefused ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
    }
  }
  if (failed) process.exit(1)
}
