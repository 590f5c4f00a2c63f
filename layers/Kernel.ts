/**
 * The kernel with its ports open: router, process table, kernel commands, timers.
 * Needs KernelConfig, KernelStore, NodeKey, Printout, ProgramLoader.
 */
import { Layer } from "effect"
import { makeKernelLayer } from "../src/Kernel.ts"
import { KernelCommandsLive } from "../src/KernelCommands.ts"
import { Timeouts } from "../src/Timeouts.ts"

export const KernelLive = KernelCommandsLive.pipe(
  Layer.provideMerge(makeKernelLayer),
  Layer.provide(Timeouts.layer)
)
