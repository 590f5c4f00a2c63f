/**
 * Per-process containment limits, as a port: CPU budgets (per message and in total)
 * and the linear-memory cap of a Wasm process. The Wasm host reads them each time a
 * process starts (or restarts); the `SetLimits` kernel command writes them. Unset
 * fields keep the host's defaults (60 s of CPU per message, no total budget, 256 MiB).
 *
 * The node's registry (`ProcessLimits.layerMemory`) lives as long as the node runs:
 * limits are set again by whoever set them (a package's install, a user) after a boot.
 */
import { Context, Layer } from "effect"

export interface Limits {
  /** CPU for one message, from one `receive` to the next (ms). */
  readonly cpuPerMessageMs?: number
  /** CPU over one run of the process, from its start or restart (ms). */
  readonly cpuTotalMs?: number
  /** Linear-memory cap (bytes). */
  readonly memoryBytes?: number
}

/** A change of limits: a field set to `undefined` restores the default. */
export type LimitsChange = { readonly [K in keyof Limits]?: number | undefined }

export class ProcessLimits extends Context.Service<ProcessLimits, {
  readonly get: (process: string) => Limits | undefined
  /** Merges `limits` into the process's (an `undefined` field clears that one). */
  readonly set: (process: string, change: LimitsChange) => Limits
}>()("kernel/ProcessLimits") {
  static readonly layerMemory = Layer.sync(ProcessLimits, () => {
    const byProcess = new Map<string, Limits>()
    return ProcessLimits.of({
      get: (process) => byProcess.get(process),
      set: (process, change) => {
        const merged: Record<string, number> = {}
        for (const [k, v] of Object.entries({ ...byProcess.get(process), ...change })) if (v !== undefined) merged[k] = v
        byProcess.set(process, merged)
        return merged
      }
    })
  })
}
