/**
 * Typed failures of the Wasm process host: loading a component (bad bytes,
 * transpile/compile failures, imports we cannot satisfy) and running one (a
 * trap or an explicit WASI exit).
 */
import { Schema } from "effect"

/** Why component bytes were refused before any code ran. */
export const ComponentLoadReason = Schema.Literals([
  /** Not Wasm at all. */
  "NotWasm",
  /** A core module; Kinode runs components only. */
  "CoreModule",
  /** Wasm with an unknown layer/version field. */
  "UnknownWasmVersion",
  /** jco could not translate the component. */
  "TranspileFailed",
  /** V8 refused a core module of the component. */
  "CompileFailed",
  /** The component does not export `init: func(our: string)`. */
  "MissingInit",
  /** The disk cache could not be read or written. */
  "CacheIo",
  /** A core module could not be instrumented for preemption (refused: it could hold the node). */
  "MeteringFailed"
])
export type ComponentLoadReason = typeof ComponentLoadReason.Type

export class ComponentLoadError extends Schema.TaggedError<ComponentLoadError>()("ComponentLoadError", {
  /** SHA-256 of the bytes (hex), or "" when hashing did not happen. */
  hash: Schema.String,
  reason: ComponentLoadReason,
  detail: Schema.String
}) {
  override get message(): string {
    return `cannot load Wasm component ${this.hash.slice(0, 12) || "(unhashed)"}: ${this.reason}: ${this.detail}`
  }
}

/** The component imports interfaces (or functions) the host does not provide. */
export class UnsupportedImports extends Schema.TaggedError<UnsupportedImports>()("UnsupportedImports", {
  hash: Schema.String,
  imports: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `component ${this.hash.slice(0, 12)} imports what this host does not provide: ${this.imports.join(", ")}`
  }
}

/**
 * A Wasm process ended abnormally: it trapped, or called WASI `exit` with an error.
 * `stderr` holds the last bytes it wrote to stderr (at most 5000), as Kinode's crash
 * reports do.
 */
export class WasmProcessExit extends Schema.TaggedError<WasmProcessExit>()("WasmProcessExit", {
  process: Schema.String,
  /**
   * Trap: the Wasm code trapped (or a host call trapped it); ExitError: WASI exit with a
   * failure status; Instantiate: the instance could not be created; CpuBudget: it used
   * more CPU than its budget (or held the event loop where it could not be preempted).
   */
  kind: Schema.Literals(["Trap", "ExitError", "Instantiate", "CpuBudget"]),
  trap: Schema.String,
  stderr: Schema.String
}) {
  override get message(): string {
    const what = this.kind === "Trap"
      ? "trapped"
      : this.kind === "ExitError"
      ? "exited with an error"
      : this.kind === "CpuBudget"
      ? "was stopped"
      : "failed to start"
    return `process ${this.process} ${what}: ${this.trap}${
      this.stderr.length > 0 ? `\nstderr:\n${this.stderr}` : ""
    }`
  }
}
