/**
 * The kernel with its ports open: router, process table, kernel commands, timers.
 * Needs KernelConfig, Identity, Net, KernelStore, DriveAccess, Printout, ProgramLoader.
 */
import { Layer } from "effect"
import { kernelLayer } from "../src/Kernel.ts"
import { KernelCommandHandler } from "../src/KernelCommandHandler.ts"
import { Timeouts } from "../src/Timeouts.ts"

export const KernelLive = KernelCommandHandler.pipe(
  Layer.provideMerge(kernelLayer),
  Layer.provide(Timeouts.layer)
)
