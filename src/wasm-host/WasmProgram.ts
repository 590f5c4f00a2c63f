/**
 * A Wasm component as a kernel program: `loadWasmProgram(bytes)` checks and
 * prepares the component once; the returned function runs one process of it
 * against that process's `ProcessApi` (fresh instance, fresh imports), calling
 * `init(our)` and completing when `init` returns.
 *
 * A trap, a host-side trap (`HostTrap`) or a failing WASI `exit` becomes a
 * typed `WasmProcessExit` carrying the trap text and the tail of stderr; it
 * never escapes as a defect, so a bad process cannot take the node down.
 */
import { Effect } from "effect"
import type { ProcessApi } from "../ProcessApi.ts"
import { ComponentCache, type GuestToolchain, type LoadedComponent } from "./ComponentCache.ts"
import { type KinodeVersion, kinodeVersionOf, splitVersion } from "./ComponentShape.ts"
import { addFastPaths } from "./FastAbi.ts"
import { HostTrap, makeKinodeImports } from "./KinodeImports.ts"
import { isSupportedWasiVersion, makeWasi, REFUSED_PREFIXES, type SyncFs, WASI_INTERFACES, WasiExit } from "./Wasi.ts"
import { type ComponentLoadError, UnsupportedImports, WasmProcessExit } from "./WasmErrors.ts"
import { makeIdCodec } from "./WitValues.ts"

export interface WasmProgramOptions {
  /**
   * The process's temporary directory: the only filesystem it sees, under
   * `guestPath`. Omitted: no filesystem at all.
   */
  readonly tempDir?: { readonly hostPath: string; readonly guestPath: string; readonly fs: SyncFs }
  /** Verbosity for stdout lines (default 1) and stderr lines (default 2); see WasiOutput.ts. */
  readonly stdoutVerbosity?: number
  readonly stderrVerbosity?: number
  /** Link hand-written canonical-ABI bindings for the hot calls (default true); see FastAbi.ts. */
  readonly fastAbi?: boolean
}

export type WasmProgram = (api: ProcessApi) => Effect.Effect<void, WasmProcessExit>

/** Imports this host cannot satisfy, by their versioned names. */
export const unsupportedImports = (component: LoadedComponent): ReadonlyArray<string> =>
  component.shape.imports.filter((full) => {
    const { name, version } = splitVersion(full)
    if (name === "kinode:process/standard") return version !== "1.0.0" && version !== "0.7.0"
    if (name.startsWith("wasi:")) {
      if (!isSupportedWasiVersion(version)) return true
      return !WASI_INTERFACES.has(name) && !REFUSED_PREFIXES.some((p) => name.startsWith(p))
    }
    return true
  })

const kinodeImports = (api: ProcessApi, version: KinodeVersion, fast: boolean, toolchain: GuestToolchain) => {
  const ids = makeIdCodec()
  const generic = makeKinodeImports(api, ids, version)
  return fast ? addFastPaths(generic, api, ids, version, toolchain === "componentize-js") : generic
}

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/**
 * A component known by its SHA-256; `bytes` reads it, and runs only when the hash is
 * not in the component cache yet.
 */
export interface KnownComponent {
  readonly hash: string
  readonly bytes: Effect.Effect<Uint8Array, ComponentLoadError>
}

/** Prepares a component (its bytes, or a known one) to run as Kinode processes. */
export const loadWasmProgram = Effect.fn("WasmProgram.load")(function*(
  source: Uint8Array | KnownComponent,
  options: WasmProgramOptions = {}
): Effect.fn.Return<WasmProgram, ComponentLoadError | UnsupportedImports, ComponentCache> {
  const cache = yield* ComponentCache
  const component = yield* (source instanceof Uint8Array ? cache.load(source) : cache.loadKnown(source.hash, source.bytes))
  const missing = unsupportedImports(component)
  if (missing.length > 0) return yield* new UnsupportedImports({ hash: component.hash, imports: missing })
  // A component that does not import kinode:process at all still runs (it just cannot message).
  const version: KinodeVersion = kinodeVersionOf(component.shape) ?? "1.0.0"
  return (api: ProcessApi) => runProcess(component, version, options, api)
})

const runProcess = (
  component: LoadedComponent,
  version: KinodeVersion,
  options: WasmProgramOptions,
  api: ProcessApi
): Effect.Effect<void, WasmProcessExit> => {
  const process = api.our.process.toString()
  const stdoutVerbosity = options.stdoutVerbosity ?? 1
  const stderrVerbosity = options.stderrVerbosity ?? 2
  return Effect.acquireUseRelease(
    Effect.sync(() =>
      makeWasi({
        preopen: options.tempDir,
        stdout: (line) => api.printToTerminal(stdoutVerbosity, line),
        stderr: (line) => api.printToTerminal(stderrVerbosity, line)
      })
    ),
    (wasi) => {
      const exit = (kind: WasmProcessExit["kind"], e: unknown) =>
        new WasmProcessExit({ process, kind, trap: describe(e), stderr: wasi.stderrTail() })
      /** The end of `init`: a clean WASI exit(0) is a normal return. */
      const ended = (e: unknown): Effect.Effect<void, WasmProcessExit> =>
        e instanceof WasiExit
          ? e.code === 0 ? Effect.void : Effect.fail(exit("ExitError", e))
          : Effect.fail(exit("Trap", e instanceof HostTrap ? e.message : e))
      let started = false
      return Effect.tryPromise({
        try: async () => {
          const instance = await component.instantiate({
            ...wasi.imports,
            "kinode:process/standard": kinodeImports(api, version, options.fastAbi ?? true, component.toolchain)
          })
          started = true
          await instance.init(api.our.toString())
        },
        catch: (e) => e
      }).pipe(
        Effect.catch((e) => (started || e instanceof WasiExit ? ended(e) : Effect.fail(exit("Instantiate", e))))
      )
    },
    (wasi) => Effect.sync(() => wasi.close())
  )
}
