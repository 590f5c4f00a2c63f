/**
 * What tests run on: the real kernel over real LMDB in a fresh temp dir, a real
 * (ephemeral) Ed25519 key, printouts kept in memory. Nothing is mocked.
 */
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Home } from "../src/Home.ts"
import type { Identity } from "../src/Identity.ts"
import type { Net } from "../src/Net.ts"
import { KernelConfig, type KernelSettings } from "../src/Kernel.ts"
import type { NativeProgram } from "../src/ProcessApi.ts"
import { Printout } from "../src/Printout.ts"
import { NativePrograms } from "../src/ProgramLoader.ts"
import { EphemeralIdentity } from "../services/identity/index.ts"
import { KernelStoreLmdb } from "../services/kernel-store/index.ts"
import { Lmdb } from "../services/lmdb/index.ts"
import { NetModule, NetOfflineModule, NetOfflinePort, type NetStatus } from "../services/net/index.ts"
import { echo, ProgramLoaderFs } from "../services/program-loader/index.ts"
import { VfsDriveAccess } from "../services/vfs/index.ts"
import { KernelLive } from "./KernelLive.ts"

/** A temp dir removed when the scope closes. */
export const TempHome = Layer.effect(
  Home,
  Effect.acquireRelease(
    Effect.sync(() => ({ path: fs.mkdtempSync(path.join(os.tmpdir(), "kinode-ts-")) })),
    (home) => Effect.sync(() => fs.rmSync(home.path, { recursive: true, force: true }))
  )
)

export interface TestNodeOptions {
  readonly node?: string
  /** Who the node is (default: a fresh key named `node`). */
  readonly identity?: Layer.Layer<Identity>
  /** The network (`NetLibp2p(...)`); default: offline. */
  readonly net?: Layer.Layer<Net | NetStatus, unknown, Identity | Printout>
  readonly mailboxCapacity?: number
  /** Kernel limits and safe mode beyond the mailbox count (defaults: `KernelConfig.defaults`). */
  readonly kernel?: Partial<KernelSettings>
  readonly programs?: Record<string, NativeProgram>
  /** Use this home instead of a fresh temp dir (restart tests). */
  readonly home?: string
}

/** The kernel on real LMDB over a `Home` from the context; exposes Kernel, ModuleHost, Printout (memory), Identity. */
export const kernelOverHome = (options: Omit<TestNodeOptions, "home"> = {}) => {
  const printout = Printout.memory()
  const net = options.net
  const netModule = net === undefined ? NetOfflineModule : NetModule
  const netPort = net === undefined ? NetOfflinePort : net
  const layer = netModule.pipe(
    Layer.provideMerge(KernelLive),
    Layer.provideMerge(Layer.mergeAll(netPort, VfsDriveAccess)),
    Layer.provide(ProgramLoaderFs),
    Layer.provide(NativePrograms.make({ echo, ...options.programs })),
    Layer.provide(KernelStoreLmdb),
    Layer.provide(Lmdb.layer),
    Layer.provideMerge(options.identity ?? EphemeralIdentity(options.node ?? "test.dev")),
    Layer.provideMerge(KernelConfig.layer({
      ...options.kernel,
      ...(options.mailboxCapacity === undefined ? {} : { mailboxCapacity: options.mailboxCapacity })
    })),
    Layer.provideMerge(printout.layer)
  )
  return { layer, lines: printout.lines }
}

/** The kernel on real LMDB; exposes Kernel, ModuleHost, Printout (memory), Identity, Home. */
export const testKernel = (options: TestNodeOptions = {}) => {
  const { layer, lines } = kernelOverHome(options)
  const home = options.home === undefined ? TempHome : Layer.succeed(Home, { path: options.home })
  return { layer: layer.pipe(Layer.provideMerge(home)), lines }
}
