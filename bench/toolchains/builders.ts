/**
 * The toolchains under study, each building the same TypeScript app (by default
 * `apps/echo` with `apps/sdk`, types stripped as `apps/build.ts` does) into a
 * `kinode:process` component (world `process-v1` of `wit/kinode-process-1.0.0`).
 *
 * Outputs are kept in `bench/toolchains/.out/<variant>/<app>.wasm`, rebuilt when the
 * sources, the variant or the toolchain's version change.
 *
 * componentize-qjs (QuickJS) names its own start-up export `init` (its Wizer entry,
 * `init: func(shim, script, entry-path, disable-gc)`, left in the component), which
 * collides with Kinode's `init`: it refuses to link a world exporting `init`. So the
 * app is built against the same WIT with Kinode's export spelled `inix`, and the
 * component's top-level export names are then swapped (`init` -> `qjsi`, `inix` ->
 * `init`; same lengths, so only those bytes of the export section change).
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import { stripTypeScriptTypes } from "node:module"
import * as path from "node:path"
import { renameComponentExports } from "../../apps/ComponentNames.ts"

export const here = import.meta.dirname
export const repo = path.resolve(here, "..", "..")
export const outDir = path.join(here, ".out")
const witFile = path.join(repo, "wit", "kinode-process-1.0.0", "process.wit")

const version = (pkg: string): string =>
  (JSON.parse(fs.readFileSync(path.join(repo, "node_modules", pkg, "package.json"), "utf8")) as { version: string }).version

/** An app to build: its folder under `apps/`, and optional extra source (synthetic distinct apps). */
export interface AppSource {
  readonly name: string
  readonly app: string
  /** Extra JS module `extra.js` imported by the entry (so apps differ in code and snapshot). */
  readonly extra?: string
  /** A JS file used as the app's `src/main.js` instead of the staged one. */
  readonly main?: string
}

export const ECHO: AppSource = { name: "echo", app: "echo" }
/** The echo written against the WIT bindings directly (lean-echo.js). */
export const LEAN_ECHO: AppSource = { name: "lean-echo", app: "echo", main: path.join(here, "lean-echo.js") }
/** The lean echo doing some ordinary JS work per request (compute-echo.js). */
export const COMPUTE_ECHO: AppSource = { name: "compute-echo", app: "echo", main: path.join(here, "compute-echo.js") }

/**
 * Distinct apps over the same SDK: the echo plus `k` generated functions and a table,
 * so each has code and a heap snapshot of its own, as different apps would.
 */
export const syntheticApp = (k: number): AppSource => {
  const fns = Array.from({ length: 20 * k }, (_, i) =>
    `export function f${i}(x) { return (x * ${i + 1} + ${k}) % ${997 + i} + "app${k}-${i}".length }`)
  const table = `export const table = [${Array.from({ length: 300 * k }, (_, i) => `"app${k} entry ${i} ${"x".repeat(i % 40)}"`).join(",")}]`
  return { name: `app${k}`, app: "echo", extra: `${fns.join("\n")}\n${table}\n` }
}

type Toolchain = "componentize-js" | "componentize-js-0.19.3" | "componentize-qjs" | "wat"

export interface Variant {
  readonly id: string
  readonly toolchain: Toolchain
  /** What the row means, for the table. */
  readonly label: string
  readonly options: Record<string, unknown>
  /** The app it builds (default: the SDK echo). */
  readonly app?: AppSource
}

const CJS_FEATURES_OFF = ["http", "fetch-event"]

export const VARIANTS: ReadonlyArray<Variant> = [
  { id: "wat", toolchain: "wat", label: "WAT echo (reference, test/fixtures/wasm/echo.wat)", options: {} },
  {
    id: "cjs",
    toolchain: "componentize-js",
    label: "componentize-js 0.23 release engine, http+fetch-event off (today's apps/build.ts)",
    options: { disableFeatures: CJS_FEATURES_OFF }
  },
  {
    id: "cjs-allfeat",
    toolchain: "componentize-js",
    label: "componentize-js 0.23, default features (all on)",
    options: {}
  },
  {
    id: "cjs-nofeat",
    toolchain: "componentize-js",
    label: "componentize-js 0.23, every feature off (stdio, random, clocks too)",
    options: { disableFeatures: ["stdio", "random", "clocks", "http", "fetch-event"] }
  },
  {
    id: "cjs-debug",
    toolchain: "componentize-js",
    label: "componentize-js 0.23, StarlingMonkey debug engine",
    options: { disableFeatures: CJS_FEATURES_OFF, debugBuild: true }
  },
  {
    id: "cjs-aot",
    toolchain: "componentize-js",
    label: "componentize-js 0.23, enableAot (weval)",
    options: { disableFeatures: CJS_FEATURES_OFF, enableAot: true }
  },
  {
    id: "cjs-0.19",
    toolchain: "componentize-js-0.19.3",
    label: "componentize-js 0.19.3 (older StarlingMonkey; jco's fallback copy)",
    options: { disableFeatures: CJS_FEATURES_OFF }
  },
  {
    id: "cjs-cmdadapter",
    toolchain: "componentize-js",
    label: "componentize-js 0.23, jco's preview1 *command* adapter instead of the reactor one",
    options: { disableFeatures: CJS_FEATURES_OFF, preview2Adapter: "command" }
  },
  { id: "qjs", toolchain: "componentize-qjs", label: "componentize-qjs 0.4.5, sync runtime", options: { sync: true } },
  {
    id: "qjs-size",
    toolchain: "componentize-qjs",
    label: "componentize-qjs, sync runtime optimized for size",
    options: { sync: true, optSize: true }
  },
  {
    id: "qjs-async",
    toolchain: "componentize-qjs",
    label: "componentize-qjs, default (component-model async) runtime",
    options: {}
  },
  {
    id: "qjs-async-size",
    toolchain: "componentize-qjs",
    label: "componentize-qjs, async runtime optimized for size",
    options: { optSize: true }
  },
  {
    id: "cjs-lean",
    toolchain: "componentize-js",
    label: "as cjs, the echo without the SDK (lean-echo.js): what the toolchain itself allows",
    options: { disableFeatures: CJS_FEATURES_OFF },
    app: LEAN_ECHO
  },
  { id: "qjs-lean", toolchain: "componentize-qjs", label: "as qjs, the echo without the SDK (lean-echo.js)", options: { sync: true }, app: LEAN_ECHO },
  {
    id: "qjs-async-lean",
    toolchain: "componentize-qjs",
    label: "as qjs-async, the echo without the SDK (lean-echo.js)",
    options: {},
    app: LEAN_ECHO
  },
  {
    id: "cjs-compute",
    toolchain: "componentize-js",
    label: "as cjs, the lean echo doing some JS work per request (compute-echo.js)",
    options: { disableFeatures: CJS_FEATURES_OFF },
    app: COMPUTE_ECHO
  },
  {
    id: "qjs-compute",
    toolchain: "componentize-qjs",
    label: "as qjs, the lean echo doing some JS work per request (compute-echo.js)",
    options: { sync: true },
    app: COMPUTE_ECHO
  },
  {
    id: "qjs-stubwasi",
    toolchain: "componentize-qjs",
    label: "componentize-qjs, sync, every WASI import stubbed (traps)",
    options: { sync: true, stubWasi: true }
  }
]

export const variant = (id: string): Variant => {
  const v = VARIANTS.find((x) => x.id === id)
  if (v === undefined) throw new Error(`no variant ${id} (${VARIANTS.map((x) => x.id).join(", ")})`)
  return v
}

const tsFiles = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) return tsFiles(p)
    return e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [p] : []
  }).sort()

/** `apps/sdk` and `apps/<app>/src` with types stripped into `root` (as apps/build.ts stages them). */
const stage = (app: AppSource, root: string, exportName: string, polyfill = false): string => {
  fs.rmSync(root, { recursive: true, force: true })
  const appsDir = path.join(repo, "apps")
  for (const [from, to] of [[path.join(appsDir, "sdk"), path.join(root, "sdk")], [path.join(appsDir, app.app, "src"), path.join(root, app.app, "src")]] as const) {
    for (const f of tsFiles(from)) {
      const js = stripTypeScriptTypes(fs.readFileSync(f, "utf8"), { mode: "strip" })
        .replace(/(from\s+["'](?:\.{1,2}\/)[^"']*?)\.ts(["'])/g, "$1.js$2")
      const out = path.join(to, path.relative(from, f)).replace(/\.ts$/, ".js")
      fs.mkdirSync(path.dirname(out), { recursive: true })
      fs.writeFileSync(out, js)
    }
  }
  if (app.main !== undefined) fs.copyFileSync(app.main, path.join(root, app.app, "src", "main.js"))
  const entry = path.join(root, "entry.js")
  let src = ""
  if (polyfill) {
    fs.copyFileSync(path.join(here, "textcodec.js"), path.join(root, "textcodec.js"))
    src += `import "./textcodec.js";\n`
  }
  src += `export { init as ${exportName} } from "./${app.app}/src/main.js";\n`
  if (app.extra !== undefined) {
    fs.writeFileSync(path.join(root, "extra.js"), app.extra)
    src += `import * as extra from "./extra.js";\nglobalThis.__extra = extra;\n`
  }
  fs.writeFileSync(entry, src)
  return entry
}

const toolchainVersion = (t: Toolchain): string =>
  t === "componentize-js"
    ? version("@bytecodealliance/componentize-js")
    : t === "componentize-js-0.19.3"
    ? version("@bytecodealliance/componentize-js-0-19-3")
    : t === "componentize-qjs"
    ? version("componentize-qjs")
    : version("@bytecodealliance/jco-transpile")

const sourceHash = (v: Variant, app: AppSource): string => {
  const h = createHash("sha256")
  h.update(JSON.stringify({ v, app: app.app, extra: app.extra ?? "", t: toolchainVersion(v.toolchain), format: 4 }))
  if (app.main !== undefined) h.update(fs.readFileSync(app.main))
  h.update(fs.readFileSync(witFile))
  for (const f of [...tsFiles(path.join(repo, "apps", "sdk")), ...tsFiles(path.join(repo, "apps", app.app, "src"))]) {
    h.update(f)
    h.update(fs.readFileSync(f))
  }
  return h.digest("hex")
}

export interface Built {
  readonly file: string
  readonly buildMs: number | undefined
}

/** Builds `app` with `v` (or finds it built); throws with the toolchain's reason when it cannot. */
export const build = async (v: Variant, app: AppSource = ECHO): Promise<Built> => {
  const dir = path.join(outDir, v.id)
  const file = path.join(dir, `${app.name}.wasm`)
  const hashFile = `${file}.hash`
  const hash = sourceHash(v, app)
  if (fs.existsSync(file) && fs.existsSync(hashFile) && fs.readFileSync(hashFile, "utf8") === hash) return { file, buildMs: undefined }
  fs.mkdirSync(dir, { recursive: true })
  const t = performance.now()
  let component: Uint8Array
  if (v.toolchain === "wat") {
    const { buildEcho } = await import("../../test/fixtures/wasm/build.ts")
    component = await buildEcho()
  } else if (v.toolchain === "componentize-qjs") {
    const root = path.join(outDir, "stage", `${v.id}-${app.name}`)
    const entry = stage(app, root, "inix", true)
    const wit = fs.readFileSync(witFile, "utf8").replace("export init: func(our: string);", "export inix: func(our: string);")
    const witPath = path.join(root, "process.wit")
    fs.writeFileSync(witPath, wit)
    const { componentize } = await import("componentize-qjs")
    const out = await componentize({
      witPath,
      world: "process-v1",
      jsSource: fs.readFileSync(entry, "utf8"),
      jsPath: entry,
      moduleRoot: root,
      ...v.options
    })
    component = renameComponentExports(new Uint8Array(out.component), [["init", "qjsi"], ["inix", "init"]])
  } else {
    const root = path.join(outDir, "stage", `${v.id}-${app.name}`)
    const entry = stage(app, root, "init")
    const mod = v.toolchain === "componentize-js"
      ? await import("@bytecodealliance/componentize-js")
      : await import("@bytecodealliance/componentize-js-0-19-3" as string)
    const componentize = (mod as { componentize: (o: object) => Promise<{ component: Uint8Array }> }).componentize
    const options = { ...v.options }
    if (options.preview2Adapter === "command") {
      const { preview1AdapterCommandPath } = await import("@bytecodealliance/jco")
      options.preview2Adapter = preview1AdapterCommandPath()
    }
    const out = await componentize({
      sourcePath: entry,
      witWorld: fs.readFileSync(witFile, "utf8"),
      worldName: "process-v1",
      ...options
    }).catch((e: unknown) => {
      const why = e instanceof Error ? e.message : String(e)
      throw new Error(options.enableAot === true && /fetch/.test(why)
        ? `weval is not on npm: @bytecodealliance/weval downloads its binary from GitHub releases at first use (${why})`
        : why)
    })
    component = out.component
  }
  fs.writeFileSync(file, component)
  fs.writeFileSync(hashFile, hash)
  return { file, buildMs: performance.now() - t }
}
