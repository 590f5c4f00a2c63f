/**
 * A whole node on real parts: home directory, LMDB, identity, kernel, the storage
 * modules, the net seam, packages (the installer, the app store module, the terminal's
 * package commands), the terminal. `layers/Cli.ts` runs it.
 */
import { Effect, Layer } from "effect"
import { Home } from "../src/Home.ts"
import { Eth } from "../services/eth/index.ts"
import { Homepage } from "../services/homepage/index.ts"
import { HttpClient } from "../services/http-client/index.ts"
import { HttpServer, type HttpServerOptions } from "../services/http-server/index.ts"
import { KernelConfig, type KnsContract } from "../src/Kernel.ts"
import type { Identity } from "../src/Identity.ts"
import type { ModuleHost } from "../src/ModuleHost.ts"
import { prepareHomeDir } from "../services/home/index.ts"
import { KernelStoreLmdb } from "../services/kernel-store/KernelStoreLmdb.ts"
import { Lmdb } from "../services/lmdb/Lmdb.ts"
import { NetLibp2p, NetModule, NetOfflineModule, NetOfflinePort, type NetOptions } from "../services/net/index.ts"
import { AppStore, Packages } from "../services/packages/index.ts"
import { BuiltinPrograms, ProgramLoaderFs } from "../services/program-loader/index.ts"
import { Timer } from "../services/timer/index.ts"
import { Terminal, TerminalPrintout } from "../services/terminal/index.ts"
import { PackageCommands } from "../services/terminal/PackageCommands.ts"
import { VfsDriveAccess } from "../services/vfs/index.ts"
import { KernelLive } from "./KernelLive.ts"
import { StorageLive } from "./Storage.ts"

export interface NodeOptions {
  readonly home: string
  readonly verbosity: number
  /** Who the node is: `ChainIdentity` after login, `EphemeralIdentity` for throwaway nodes. */
  readonly identity: Layer.Layer<Identity>
  /** The KNS indexer process (`KnsIndexer.layerNode`), when the node follows a chain. */
  readonly indexer?: Layer.Layer<never, never, ModuleHost | Lmdb | Identity> | undefined
  /** The network over libp2p; without it the node is offline (every other node `Offline`). */
  readonly net?: NetOptions | undefined
  /** Boot with userspace processes registered but not started (`--safe-mode`). */
  readonly safeMode?: boolean | undefined
  /** The registry the node follows, sent at boot to an installed KNS indexer package (as Kinode's kernel did). */
  readonly knsContract?: KnsContract | undefined
  /** HTTP in (`http-server`: port, bind, login) and out (`http-client`: the allow-list). */
  /** `eth:distro:sys`: providers given at boot (`--rpc` or the embedded chain), before the saved ones. */
  readonly eth?: Eth.EthOptions | undefined
  readonly http: {
    readonly server: HttpServerOptions
    readonly client?: HttpClient.HttpClientOptions | undefined
  }
}

/** The home, created if missing (never by `mkdir -p`, which can spin: services/home). */
export const HomeDir = (dir: string) => Layer.effect(Home, Effect.map(prepareHomeDir(dir), (path) => ({ path })))

export const NodeLive = (options: NodeOptions) => {
  const net = options.net === undefined
    ? { port: NetOfflinePort, module: NetOfflineModule }
    : { port: NetLibp2p(options.net), module: NetModule }
  return Layer.mergeAll(Homepage.layer, AppStore.layer, PackageCommands.layer).pipe(
    Layer.provideMerge(Layer.mergeAll(Packages.layer, Terminal.layer, options.indexer ?? Layer.empty)),
    Layer.provideMerge(Layer.mergeAll(
      net.module,
      StorageLive,
      HttpServer.layer(options.http.server),
      HttpClient.layer(options.http.client),
      Timer.layer(),
      Eth.layer(options.eth ?? {})
    )),
    Layer.provideMerge(KernelLive),
    Layer.provideMerge(Layer.mergeAll(net.port, VfsDriveAccess)),
    Layer.provide(ProgramLoaderFs),
    Layer.provide(BuiltinPrograms),
    Layer.provide(KernelStoreLmdb),
    Layer.provideMerge(Lmdb.layer),
    Layer.provideMerge(KernelConfig.layer({ mailboxCapacity: 1024, safeMode: options.safeMode === true, knsContract: options.knsContract })),
    Layer.provideMerge(options.identity),
    Layer.provideMerge(TerminalPrintout(options.verbosity)),
    Layer.provideMerge(HomeDir(options.home))
  )
}
