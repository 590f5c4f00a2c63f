/**
 * A Wasm component as a kernel program: `loadWasmProgram(bytes)` checks and
 * prepares the component once; the returned function runs one process of it
 * against that process's `ProcessApi` (fresh instance, fresh imports), calling
 * `init(our)` and completing when `init` returns.
 *
 * A trap, a host-side trap (`HostTrap`) or a failing WASI `exit` becomes a
 * typed `WasmProcessExit` carrying the trap text and the tail of stderr; it
 * never escapes as a defect, so a bad process cannot take the node down.
 *
 * Containment (issue #11): each instance runs under a `GuestMeter` (Preemption.ts)
 * that preempts it every slice, stops it past its CPU budgets (`CpuBudget`), and
 * never resumes it once its fiber is interrupted (kill, shutdown); its linear memory
 * is capped (`ProcessLimits.memoryBytes`, default 256 MiB), so growing past the cap
 * fails inside the guest.
 */
import { Effect } from "effect"
import type { ProcessApi } from "../ProcessApi.ts"
import type { Limits } from "../ProcessLimits.ts"
import { ComponentCache, type CoreModules, type GuestToolchain, type LoadedComponent } from "./ComponentCache.ts"
import { type KinodeVersion, kinodeVersionOf, splitVersion } from "./ComponentShape.ts"
import { addFastPaths } from "./FastAbi.ts"
import { HostTrap, makeKinodeImports } from "./KinodeImports.ts"
import { pagesOf } from "./Metering.ts"
import { type CpuLimits, defaultCpuLimits, GuestMeter, type GuestScheduler, GuestStopped } from "./Preemption.ts"
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
  /** A process's limits, read at each start (and restart); unset fields keep the defaults. */
  readonly limits?: (process: string) => Limits | undefined
  /** CPU slice and budgets of every process before its own limits (default `defaultCpuLimits`). */
  readonly cpu?: Partial<CpuLimits>
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
  return (api: ProcessApi) => runProcess(component, version, options, cache.scheduler, api)
})

/**
 * `api` as the metered guest sees it: calls that may wait (return a Promise) take the
 * guest off the CPU, each `receive` starts a new message. A plain object of its own
 * (wrapping through the prototype chain cost a fifth of an echo's round trip).
 */
const meteredApi = (api: ProcessApi, meter: GuestMeter): ProcessApi => ({
  our: api.our,
  printToTerminal: api.printToTerminal.bind(api),
  getOnExit: api.getOnExit.bind(api),
  setOnExit: api.setOnExit.bind(api),
  getState: () => meter.waiting(api.getState()),
  setState: (bytes) => meter.waiting(api.setState(bytes)),
  clearState: () => meter.waiting(api.clearState()),
  spawn: (options) => meter.waiting(api.spawn(options)),
  saveCapabilities: (caps) => meter.waiting(api.saveCapabilities(caps)),
  dropCapabilities: (caps) => meter.waiting(api.dropCapabilities(caps)),
  ourCapabilities: api.ourCapabilities.bind(api),
  tryReceive: () => {
    meter.nextMessage()
    return api.tryReceive()
  },
  receive: () => {
    meter.nextMessage()
    return meter.waiting(api.receive())
  },
  hasBlob: api.hasBlob.bind(api),
  getBlob: api.getBlob.bind(api),
  lastBlob: api.lastBlob.bind(api),
  sendRequest: api.sendRequest.bind(api),
  sendResponse: api.sendResponse.bind(api),
  sendAndAwaitResponse: (target, request, blob) => meter.waiting(api.sendAndAwaitResponse(target, request, blob))
})

const runProcess = (
  component: LoadedComponent,
  version: KinodeVersion,
  options: WasmProgramOptions,
  scheduler: GuestScheduler,
  api: ProcessApi
): Effect.Effect<void, WasmProcessExit> => {
  const process = api.our.process.toString()
  const stdoutVerbosity = options.stdoutVerbosity ?? 1
  const stderrVerbosity = options.stderrVerbosity ?? 2
  const limits = options.limits?.(process)
  const pages = limits?.memoryBytes === undefined ? component.memoryPages : pagesOf(limits.memoryBytes)
  const modules: Effect.Effect<CoreModules | undefined, WasmProcessExit> = pages === component.memoryPages
    ? Effect.succeed(undefined)
    : component.compiled(pages).pipe(
      Effect.mapError((e) => new WasmProcessExit({ process, kind: "Instantiate", trap: e.message, stderr: "" }))
    )
  return Effect.flatMap(modules, (modules) =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        const meter = component.metered
          ? new GuestMeter({
            limits: {
              ...defaultCpuLimits,
              ...options.cpu,
              ...(limits?.cpuPerMessageMs === undefined ? {} : { perMessageMs: limits.cpuPerMessageMs }),
              ...(limits?.cpuTotalMs === undefined ? {} : { totalMs: limits.cpuTotalMs })
            },
            scheduler
          })
          : undefined
        const wasi = makeWasi({
          preopen: options.tempDir,
          stdout: (line) => api.printToTerminal(stdoutVerbosity, line),
          stderr: (line) => api.printToTerminal(stderrVerbosity, line),
          ...(meter === undefined ? {} : { waiting: <A>(wait: Promise<A>) => meter.waiting(wait) })
        })
        return { meter, wasi }
      }),
      ({ meter, wasi }) => {
        const exit = (kind: WasmProcessExit["kind"], e: unknown) =>
          new WasmProcessExit({ process, kind, trap: describe(e), stderr: wasi.stderrTail() })
        /** The end of `init`: a clean WASI exit(0) is a normal return. */
        const ended = (e: unknown): Effect.Effect<void, WasmProcessExit> =>
          e instanceof WasiExit
            ? e.code === 0 ? Effect.void : Effect.fail(exit("ExitError", e))
            : e instanceof GuestStopped
            ? Effect.fail(exit("CpuBudget", e))
            : Effect.fail(exit("Trap", e instanceof HostTrap ? e.message : e))
        let started = false
        const guestApi = meter === undefined ? api : meteredApi(api, meter)
        return Effect.tryPromise({
          try: async (signal) => {
            // Interrupted (kill, shutdown): the guest is never resumed again.
            if (meter !== undefined) signal.addEventListener("abort", () => meter.kill(), { once: true })
            const instance = await component.instantiate({
              ...wasi.imports,
              "kinode:process/standard": kinodeImports(guestApi, version, options.fastAbi ?? true, component.toolchain)
            }, { ...(modules === undefined ? {} : { modules }), ...(meter === undefined ? {} : { meter }) })
            started = true
            const run = Promise.resolve(instance.init(api.our.toString()))
            if (meter === undefined) return await run
            // A guest stopped by its meter never settles `run`: the meter's outcome ends it.
            run.catch(() => {})
            try {
              await Promise.race([run, meter.outcome])
            } finally {
              meter.leave()
            }
          },
          catch: (e) => e
        }).pipe(
          Effect.catch((e) => {
            // Stopped by its meter (also in a start function): say why, not how it unwound.
            const stopped = meter?.stoppedBy
            if (stopped !== undefined) return Effect.fail(exit("CpuBudget", stopped))
            return started || e instanceof WasiExit ? ended(e) : Effect.fail(exit("Instantiate", e))
          })
        )
      },
      ({ wasi }) => Effect.sync(() => wasi.close())
    ))
}
