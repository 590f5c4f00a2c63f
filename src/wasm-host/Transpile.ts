/**
 * jco's part of loading a component: read its world (`componentWit`), refuse it
 * without `init`, and translate it (`transpileBytes`) into core modules plus JS
 * glue. `ComponentCache` writes the result to its cache directory.
 *
 * Plain data in and out, so that it can run in another process: the transpiler (jco's
 * own Wasm, compiled, its heap and what V8 allocated compiling it) then never enters
 * the node, and leaves with that process. A refusal is a value, not an exception, so it
 * crosses a message channel unchanged; `ComponentCache` turns it into a
 * `ComponentLoadError`.
 */
import { type ComponentShape, shapeFromWit } from "./ComponentShape.ts"

/** Host functions that may wait (return a Promise): the Wasm stack suspends on them (JSPI). */
const WAITING_FUNCTIONS = [
  "receive",
  "send-and-await-response",
  "get-state",
  "set-state",
  "clear-state",
  "spawn",
  "save-capabilities",
  "drop-capabilities"
]
const ASYNC_IMPORTS = [
  ...["1.0.0", "0.7.0"].flatMap((v) => WAITING_FUNCTIONS.map((f) => `kinode:process/standard@${v}#${f}`)),
  // WASI sleeps (`subscribe-duration` + `poll`) wait for real instead of spinning.
  "wasi:io/poll#poll",
  "wasi:io/poll#[method]pollable.block"
]

/** jco's options; `apps/build.ts` transpiles with them too, to ship bundled apps' instrumented modules. */
export const TRANSPILE_OPTIONS: NonNullable<Parameters<typeof import("@bytecodealliance/jco-transpile").transpileBytes>[1]> = {
  name: "component",
  instantiation: "async",
  asyncMode: "jspi",
  importBindings: "hybrid",
  asyncImports: ASYNC_IMPORTS,
  asyncExports: ["init"],
  emitTypescriptDeclarations: false,
  base64Cutoff: 0,
  nodejsCompat: false
}

/** jco's async glue checks `process.env.JCO_DEBUG` on every host call (a getter into the C++ env). */
const DEBUG_CHECK = "if (!globalThis?.process?.env?.JCO_DEBUG) { return; }"

/**
 * Post-transform of jco 1.35's generated glue: its debug logger reads the
 * environment on every call, which halves host-call throughput. We compile it
 * out (debugging the glue then needs a fresh transpile without this). If a jco
 * update changes the text, the glue still works, only slower.
 */
export const stripDebugLog = (js: string): string => js.split(DEBUG_CHECK).join("return;")

/** One file of jco's output: a core module (`.wasm`) or the glue (`.js`). */
export interface TranspiledFile {
  readonly name: string
  readonly content: Uint8Array
}

/** What `transpileComponent` makes of a component: its shape and files, or why not. */
export type Transpiled =
  | {
    readonly _tag: "Transpiled"
    readonly shape: ComponentShape
    readonly files: ReadonlyArray<TranspiledFile>
  }
  | {
    readonly _tag: "Refused"
    /** As `ComponentLoadError`'s reason. */
    readonly reason: "TranspileFailed" | "MissingInit"
    readonly detail: string
  }

const errorText = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const refused = (reason: "TranspileFailed" | "MissingInit", detail: string): Transpiled => ({ _tag: "Refused", reason, detail })

/**
 * Transpiles component bytes (their preamble already checked) with `TRANSPILE_OPTIONS`.
 * jco is loaded on the first call. Rejects only if jco itself cannot be loaded.
 */
export const transpileComponent = async (bytes: Uint8Array): Promise<Transpiled> => {
  const [{ transpileBytes }, { componentWit }] = await Promise.all([
    import("@bytecodealliance/jco-transpile"),
    import("@bytecodealliance/jco-transpile/wasm-tools")
  ])
  let wit: string
  try {
    wit = await componentWit(bytes)
  } catch (cause) {
    return refused("TranspileFailed", errorText(cause))
  }
  const shape = shapeFromWit(wit)
  if (!shape.exports.includes("init")) {
    return refused("MissingInit", `exports ${shape.exports.join(", ") || "nothing"}; expected init: func(our: string)`)
  }
  try {
    const out = await transpileBytes(bytes, TRANSPILE_OPTIONS)
    return { _tag: "Transpiled", shape, files: Object.entries(out.files).map(([name, content]) => ({ name, content })) }
  } catch (cause) {
    return refused("TranspileFailed", errorText(cause))
  }
}
