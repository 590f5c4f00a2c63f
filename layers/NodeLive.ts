/**
 * A whole node on real parts: home directory, LMDB, node key file, kernel, net seam,
 * terminal printouts. `layers/Cli.ts` runs it.
 */
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import { Home } from "../src/Home.ts"
import { KernelConfig } from "../src/Kernel.ts"
import { NodeKey } from "../src/NodeKey.ts"
import { NodeKeyFile } from "../services/identity/NodeKeyFile.ts"
import { KernelStoreLmdb } from "../services/kernel-store/KernelStoreLmdb.ts"
import { Lmdb } from "../services/lmdb/Lmdb.ts"
import { NetOffline } from "../services/net/NetOffline.ts"
import { TerminalPrintout } from "../services/terminal/TerminalPrintout.ts"
import { KernelLive } from "./Kernel.ts"
import { ProgramLoaderLive } from "./ProgramLoaderLive.ts"
import { PackagesLive } from "./Packages.ts"
import { StorageLive } from "./Storage.ts"
import { BuiltinPrograms } from "./NativePrograms.ts"

export interface NodeOptions {
  readonly home: string
  /** Node name; by default derived from the node key. */
  readonly name: string | undefined
  readonly verbosity: number
}

/** Until the identity issue, an unregistered node is named after its key. */
const nodeName = Layer.effect(
  KernelConfig,
  Effect.map(NodeKey, (key) => ({
    node: `node-${Buffer.from(key.publicKey).toString("hex").slice(0, 12)}.local`,
    mailboxCapacity: 1024
  }))
)

export const HomeDir = (dir: string) =>
  Layer.effect(Home, Effect.sync(() => {
    fs.mkdirSync(dir, { recursive: true })
    return { path: fs.realpathSync(dir) }
  }))

export const NodeLive = (options: NodeOptions) => {
  const config = options.name === undefined ? nodeName : KernelConfig.layer(options.name)
  return PackagesLive.pipe(
    Layer.provideMerge(Layer.mergeAll(NetOffline, StorageLive)),
    Layer.provideMerge(KernelLive),
    Layer.provide(ProgramLoaderLive),
    Layer.provide(BuiltinPrograms),
    Layer.provide(KernelStoreLmdb),
    Layer.provideMerge(Lmdb.layer),
    Layer.provideMerge(config),
    Layer.provideMerge(NodeKeyFile),
    Layer.provideMerge(TerminalPrintout(options.verbosity)),
    Layer.provideMerge(HomeDir(options.home))
  )
}
