/**
 * Builds the TypeScript apps in apps/ into Kinode packages:
 *
 *   node apps/build.ts            every app (a folder with metadata.json and src/main.ts)
 *   node apps/build.ts echo ...   just these
 *   node apps/build.ts --force    ignore the cache
 *
 * For each app: strip the types of `src/*.ts` and `sdk/*.ts` into `apps/.stage/<app>/`
 * (same layout, `.ts` imports rewritten to `.js`), componentize it with
 * componentize-js against `wit/kinode-process-1.0.0` (world `process-v1`) into
 * `apps/<app>/pkg/<wasm>`, and zip the `pkg/` folder to `apps/dist/<app>.zip`.
 * A build costs ~20 s and ~12 MB per app, so it is skipped when the hash of the
 * sources, the SDK, the WIT, the package files and the toolchain version is the one
 * recorded in `pkg/.build-hash`.
 *
 * Each app's core modules are also instrumented for preemption here (as the node's
 * component cache would, ~10 s per app) into `apps/dist/metered/`, which nodes read, so
 * a first boot does not pay it; `pkg/.metered` records for which build and version.
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
const BUILD_FORMAT = "1"

const toolchain = (): string => {
  const pkg = JSON.parse(fs.readFileSync(path.join(repo, "node_modules/@bytecodealliance/componentize-js/package.json"), "utf8")) as { version: string }
  return `componentize-js ${pkg.version}; format ${BUILD_FORMAT}`
}

const tsFiles = (dir: string): Array<string> =>
  fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")).sort().map((f) => path.join(dir, f)) : []

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

const wasmNames = (app: string): Array<string> => {
  const manifest = JSON.parse(fs.readFileSync(path.join(appsDir, app, "pkg", "manifest.json"), "utf8")) as Array<ManifestEntry>
  return [...new Set(manifest.map((e) => e.process_wasm_path.replace(/^\//, "")))]
}

const sourceHash = (app: string, outputs: ReadonlySet<string>): string => {
  const h = createHash("sha256")
  h.update(toolchain())
  const files = [
    witFile,
    ...tsFiles(path.join(appsDir, "sdk")),
    ...tsFiles(path.join(appsDir, app, "src")),
    path.join(appsDir, app, "metadata.json"),
    ...pkgFiles(path.join(appsDir, app, "pkg"), outputs).map((f) => path.join(appsDir, app, "pkg", f))
  ]
  for (const f of files) {
    h.update(path.relative(appsDir, f))
    h.update("\0")
    h.update(fs.readFileSync(f))
    h.update("\0")
  }
  return h.digest("hex")
}

/** `.ts` -> `.js` with types stripped; relative `.ts` specifiers rewritten. */
const stage = (app: string): string => {
  const root = path.join(appsDir, ".stage", app)
  fs.rmSync(root, { recursive: true, force: true })
  for (const [from, to] of [[path.join(appsDir, "sdk"), path.join(root, "sdk")], [path.join(appsDir, app, "src"), path.join(root, app, "src")]] as const) {
    fs.mkdirSync(to, { recursive: true })
    for (const f of tsFiles(from)) {
      const js = stripTypeScriptTypes(fs.readFileSync(f, "utf8"), { mode: "strip" })
        .replace(/(from\s+["'](?:\.{1,2}\/)[^"']*?)\.ts(["'])/g, "$1.js$2")
      fs.writeFileSync(path.join(to, path.basename(f).replace(/\.ts$/, ".js")), js)
    }
  }
  const entry = path.join(root, "entry.js")
  fs.writeFileSync(entry, `export { init } from "./${app}/src/main.js";\n`)
  return entry
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

export interface BuildResult {
  readonly app: string
  readonly zip: string
  readonly built: boolean
  readonly ms: number
  readonly wasmBytes: number
}

export const buildApp = async (app: string, force = false): Promise<BuildResult> => {
  const started = performance.now()
  const pkgDir = path.join(appsDir, app, "pkg")
  const wasms = wasmNames(app)
  if (wasms.length !== 1) throw new Error(`${app}: one Wasm file per app is supported, manifest names ${wasms.join(", ")}`)
  const wasm = wasms[0]!
  const outputs = new Set(wasms)
  const hash = sourceHash(app, outputs)
  const zip = path.join(distDir, `${app}.zip`)
  const wasmPath = path.join(pkgDir, wasm)
  const hashPath = path.join(pkgDir, HASH_FILE)
  const cached = !force && fs.existsSync(zip) && fs.existsSync(wasmPath) && fs.existsSync(hashPath) &&
    fs.readFileSync(hashPath, "utf8").trim() === hash
  if (!cached) {
    // componentize-js 0.23 reads `witWorld` (inline WIT source) but its types omit it.
    const options = {
      sourcePath: stage(app),
      witWorld: fs.readFileSync(witFile, "utf8"),
      worldName: "process-v1",
      // Apps talk to the world only through kinode:process; keep stdio for trap text.
      disableFeatures: ["http", "fetch-event"] as Array<"http" | "fetch-event">
    }
    const { component } = await (componentize as (o: typeof options) => Promise<{ component: Uint8Array }>)(options)
    fs.writeFileSync(wasmPath, component)
    const files: Record<string, Uint8Array> = {}
    for (const f of pkgFiles(pkgDir, new Set())) files[f] = new Uint8Array(fs.readFileSync(path.join(pkgDir, f)))
    fs.mkdirSync(distDir, { recursive: true })
    // Fixed mtime: the same sources give the same zip bytes (the node re-installs on a zip hash change).
    fs.writeFileSync(zip, zipSync(files, { level: 6, mtime: new Date("2024-01-01T00:00:00Z") }))
    fs.writeFileSync(hashPath, `${hash}\n`)
  }
  const markPath = path.join(pkgDir, METERED_MARK)
  const mark = `${hash} ${METERING_VERSION}`
  if (!(fs.existsSync(markPath) && fs.readFileSync(markPath, "utf8").trim() === mark)) {
    await premeter(new Uint8Array(fs.readFileSync(wasmPath)))
    fs.writeFileSync(markPath, `${mark}\n`)
  }
  return { app, zip, built: !cached, ms: Math.round(performance.now() - started), wasmBytes: fs.statSync(wasmPath).size }
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
    process.stdout.write(`${r.app}: ${r.built ? "built" : "up to date"} in ${r.ms} ms, ${(r.wasmBytes / 1e6).toFixed(1)} MB -> ${path.relative(repo, r.zip)}\n`)
  }
}
