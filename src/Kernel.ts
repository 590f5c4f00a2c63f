/**
 * The kernel: passes messages between processes and starts and stops them. This file
 * is its face and its assembly; each job has a room of its own:
 *
 *   Router.ts          the only path between processes (capability checks, routing)
 *   ProcessTable.ts    processes, their supervising fibers, spawn, boot, shutdown
 *   GrantStore.ts      who holds which capability: signed, persisted, revoked
 *   KernelCalls.ts     requests the kernel itself sends and waits on
 *   StateClient.ts     get/set/clear-state as typed calls to `state:distro:sys`
 *   ModuleHosting.ts   runtime modules (vfs, kv, net ...) as processes
 *   KernelCommandHandler.ts   `kernel:distro:sys`'s commands
 *
 * Ports it requires: `Identity` (name, key), `Net` (other nodes), `KernelStore`
 * (durable process map), `ProgramLoader` (code handles), `DriveAccess` (vfs's read
 * rule), `Printout`, `Timeouts`. Every fiber it starts is owned by the kernel layer's
 * scope: closing it stops processes, modules and background work.
 */
import { Cause, Context, Deferred, Effect, FiberSet, Layer, type Scope } from "effect"
import { messagingCap, networkCap } from "./Capabilities.ts"
import { DriveAccess } from "./DriveAccess.ts"
import { makeGrantStore } from "./GrantStore.ts"
import { Identity } from "./Identity.ts"
import { type Address, localAddress, type ProcessId } from "./Ids.ts"
import { type CallFailed, makeKernelCalls } from "./KernelCalls.ts"
import { failedText, KERNEL_EVENTS_LEVEL, type RouteTrace, routedText } from "./KernelEvents.ts"
import { KernelStore } from "./KernelStore.ts"
import { DEFAULT_MAILBOX_BYTES, DEFAULT_MAILBOX_CAPACITY, DEFAULT_QUEUED_BYTES, inBatch, QueuedBytes } from "./Mailbox.ts"
import {
  type Capability,
  type KernelMessage,
  type LazyLoadBlob,
  MAX_MESSAGE_BYTES,
  type OnExit,
  type Request,
  request,
  type SignedCapability,
  text
} from "./Message.ts"
import { makeModuleHost } from "./ModuleHosting.ts"
import { ModuleHost } from "./ModuleHost.ts"
import { Net, type NetInbound } from "./Net.ts"
import type { NativeApi, RefusalReason, SpawnFailed, SpawnOptions, StateUnavailable } from "./ProcessApi.ts"
import type { HostKernel } from "./ProcessHost.ts"
import {
  DEFAULT_RESTART_INTENSITY,
  DEFAULT_SPAWN_LIMITS,
  type InitializeFailed,
  type InitSpec,
  makeProcessTable,
  type NoSuchProcess,
  type ProcessInfo,
  type ProcessTable,
  type RestartIntensity,
  type RunFailed,
  type SpawnLimits
} from "./ProcessTable.ts"
import { Printout } from "./Printout.ts"
import { ProgramLoader } from "./ProgramLoader.ts"
import { RouterCore } from "./Router.ts"
import { makeStateClient } from "./StateClient.ts"
import { Timeouts } from "./Timeouts.ts"

export { messagingCap, networkCap }
export { InitializeFailed, NoSuchProcess, RunFailed } from "./ProcessTable.ts"
export type { InitSpec, ProcessInfo, ProcessStatus, RestartIntensity, SpawnLimits } from "./ProcessTable.ts"

/** The kernel's settings: the limits that keep one process from starving the node, and safe mode. */
export interface KernelSettings {
  /** Messages one process mailbox may hold. */
  readonly mailboxCapacity: number
  /** Bytes (bodies, blobs, metadata) one process mailbox may hold; at least one message of the size limit. */
  readonly mailboxBytes: number
  /** Bytes all process mailboxes may hold together. */
  readonly queuedBytes: number
  /** Spawn limits: live children per process, live processes per package, spawns per package per second. */
  readonly spawn: SpawnLimits
  /** A `Restart` process that exits more than this often within the window is stopped (status `stopped`). */
  readonly restartIntensity: RestartIntensity
  /** Boot with userspace processes registered but not started (status `paused`). */
  readonly safeMode: boolean
  /**
   * The name registry the node follows, sent at boot to an installed KNS indexer
   * package as Kinode's kernel did (`bootMessages`); none: nothing is sent.
   */
  readonly knsContract?: KnsContract | undefined
}

/** A chain id and the registry contract's address on it (`0x` hex). */
export interface KnsContract {
  readonly chainId: number
  readonly address: string
}

/**
 * The KNS indexer package that waits for the kernel's `[chain_id, "0x<contract>"]`:
 * Kinode 0.5-0.6's `kns_indexer` (built for kinode:process@0.7.0) indexes nothing until
 * it arrives; Kinode 0.7's prints "got invalid message" for it and goes on. Kinode 1.0's
 * `kns-indexer` has the address built in and stops on a body it cannot parse, so it is
 * not sent one (Kinode 1.0's kernel sends none either).
 */
export const KNS_INDEXER_PACKAGE = "kns_indexer:kns_indexer:sys"

/**
 * `NetAction::KnsBatchUpdate(vec![])` as rmp-serde writes it: a one-entry map (fixmap
 * 0x81), the variant name (fixstr of 14 bytes, 0xae) and an empty array (0x90).
 */
export const EMPTY_KNS_BATCH_UPDATE = Uint8Array.from([0x81, 0xae, ...new TextEncoder().encode("KnsBatchUpdate"), 0x90])

export class KernelConfig extends Context.Service<KernelConfig, KernelSettings>()("kernel/KernelConfig") {
  static readonly defaults: KernelSettings = {
    mailboxCapacity: DEFAULT_MAILBOX_CAPACITY,
    mailboxBytes: DEFAULT_MAILBOX_BYTES,
    queuedBytes: DEFAULT_QUEUED_BYTES,
    spawn: DEFAULT_SPAWN_LIMITS,
    restartIntensity: DEFAULT_RESTART_INTENSITY,
    safeMode: false
  }
  static readonly layer = (settings: Partial<KernelSettings> = {}) =>
    Layer.succeed(KernelConfig, { ...KernelConfig.defaults, ...settings })
}

export interface KernelApi {
  readonly node: string
  /**
   * Kinode's boot (§5.5 step 6): loads the stored process map, registers and loads every
   * process, then sends the boot messages (`bootMessages`) and returns once `Booted` has
   * started them.
   */
  readonly boot: Effect.Effect<void>
  /** The `Booted` command: starts every userspace process registered and not yet run. */
  readonly booted: Effect.Effect<void>
  readonly initialize: (spec: InitSpec) => Effect.Effect<void, InitializeFailed>
  readonly run: (id: string) => Effect.Effect<void, RunFailed>
  /** Stops a process at once (no on-exit), forgets it, and unless `revoke` is false revokes what it issued. */
  readonly kill: (id: string, revoke?: boolean) => Effect.Effect<boolean>
  /** Signs and grants caps; durable when it returns. Grants to unknown processes are ignored. */
  readonly grant: (holder: string, caps: ReadonlyArray<Capability>) => Effect.Effect<void>
  readonly drop: (holder: string, caps: ReadonlyArray<Capability>) => Effect.Effect<void>
  readonly setOnExit: (id: string, onExit: OnExit) => Effect.Effect<void, NoSuchProcess>
  readonly hasCapability: (holder: string, cap: Capability) => boolean
  readonly capabilities: (holder: string) => ReadonlyArray<SignedCapability>
  readonly info: (id: string) => ProcessInfo | undefined
  readonly processes: () => ReadonlyArray<ProcessInfo>
  /**
   * Registers a process with no program of its own (the terminal, test drivers) and
   * returns its API; removed when the scope closes.
   */
  readonly session: (
    id: string,
    options: { readonly capabilities: ReadonlyArray<Capability>; readonly public: boolean }
  ) => Effect.Effect<NativeApi, never, Scope.Scope>
  /** Sends a request as the kernel and waits for the answer (state, vfs). */
  readonly call: (target: Address, request: Request, blob?: LazyLoadBlob) => Effect.Effect<KernelMessage, CallFailed>
  readonly spawn: (parent: Address, options: SpawnOptions) => Effect.Effect<ProcessId, SpawnFailed>
  /**
   * Routes one message with every check of a local send: the way in for messages that
   * do not come from a process's own API (another node's, through `Net`; test drivers).
   */
  readonly route: (message: KernelMessage) => RefusalReason | undefined
  /**
   * Stops every process for good (nothing starts again); `None` processes are forgotten,
   * as at Kinode's shutdown. Idempotent.
   */
  readonly shutdown: Effect.Effect<void>
  /**
   * Completes when a process asked the kernel to `Shutdown` (Kinode's kernel then stops
   * and the node with it); the node's runner waits on it beside the terminal.
   */
  readonly shutdownRequested: Effect.Effect<void>
  /** The `Shutdown` command: stops every process and completes `shutdownRequested`. */
  readonly requestShutdown: Effect.Effect<void>
  readonly signCapability: (cap: Capability) => SignedCapability
}

export class Kernel extends Context.Service<Kernel, KernelApi>()("kernel/Kernel") {}

/** Lets the kernel command module hand responses to the kernel's own pending calls. */
export class KernelCalls extends Context.Service<KernelCalls, {
  readonly settle: (km: KernelMessage) => boolean
}>()("kernel/KernelCalls") {}

const U64_MASK = (1n << 64n) - 1n

const trapOnFailure = (call: string, pid: ProcessId, effect: Effect.Effect<void, StateUnavailable>) =>
  Effect.catchTag(effect, "StateUnavailable", (e) => Effect.die(new Error(`${call} failed for ${pid}: ${e.reason}`)))

const makeKernel = Effect.gen(function*() {
  const config = yield* KernelConfig
  const identity = yield* Identity
  const net = yield* Net
  const store = yield* KernelStore
  const printout = yield* Printout
  const timeouts = yield* Timeouts
  const loader = yield* ProgramLoader
  const driveAccess = yield* DriveAccess
  const node = identity.name
  const print = (level: number, source: string, text: string) => printout.print(level, source, text)
  /** Whether kernel events are printed now (verbosity 3): read per message, so only a comparison. */
  const events = () => printout.verbosity() >= KERNEL_EVENTS_LEVEL

  let idCounter = BigInt.asUintN(64, BigInt(Math.floor(Math.random() * 2 ** 53)) << 11n)
  const nextId = () => (idCounter = (idCounter + 1n) & U64_MASK)

  // Background work (spawn persistence, the Wasm host's waiting calls) runs on fibers
  // of this set, which the kernel layer's scope owns.
  const background = yield* FiberSet.make()
  const runFork = yield* FiberSet.runtime(background)<never>()
  const runPromise = yield* FiberSet.runtimePromise(background)<never>()

  // The grant store persists through the process table, which holds it: tied by a reference.
  const tableRef: { current?: ProcessTable } = {}
  const grants = makeGrantStore({
    node,
    sign: identity.sign,
    exists: (id) => tableRef.current!.exists(id),
    persist: (ids) => tableRef.current!.persistHolders(ids),
    print
  })
  const trace: RouteTrace = {
    on: events,
    routed: (km, refused) => print(KERNEL_EVENTS_LEVEL, "kernel", routedText(node, km, refused)),
    failed: (to, id, error, delivered) => print(KERNEL_EVENTS_LEVEL, "kernel", failedText(node, to, id, error, delivered))
  }
  const router = new RouterCore(node, grants.table, net.send, trace)
  const kernelAddress = localAddress(node, "kernel:distro:sys")
  const calls = makeKernelCalls({ router, timeouts, nextId, kernelAddress })
  const state = makeStateClient({ state: localAddress(node, "state:distro:sys"), call: calls.call })

  const hostKernel: HostKernel = {
    sign: identity.sign,
    schedule: (seconds, fire) => timeouts.schedule(seconds, fire),
    print,
    nextId,
    getState: (pid) => runPromise(state.get(pid)),
    // A failed set/clear traps the process (Kinode panics it): the reason goes with it.
    setState: (pid, bytes) => runPromise(trapOnFailure("set-state", pid, state.set(pid, bytes))),
    clearState: (pid) => runPromise(trapOnFailure("clear-state", pid, state.clear(pid))),
    // The Wasm ABI's spawn returns its error as a value.
    spawn: (parent, options) =>
      runPromise(tableRef.current!.spawn(parent, options).pipe(Effect.catchTag("SpawnFailed", (e) => Effect.succeed(e)))),
    saveCapabilities: (holder, caps, received) => runPromise(grants.save(holder.toString(), caps, received)),
    dropCapabilities: (holder, caps) => runPromise(grants.drop(holder.toString(), caps)),
    setOnExit: (pid, onExit) => {
      runFork(tableRef.current!.setOnExit(pid.toString(), onExit).pipe(
        Effect.catchCause((cause) => Effect.sync(() => print(0, pid.toString(), `set-on-exit not saved: ${Cause.pretty(cause)}`)))
      ))
    }
  }

  const processes = yield* makeProcessTable({
    node,
    mailboxCapacity: config.mailboxCapacity,
    mailboxBytes: Math.max(config.mailboxBytes, MAX_MESSAGE_BYTES),
    queuedBytes: new QueuedBytes(Math.max(config.queuedBytes, MAX_MESSAGE_BYTES)),
    spawnLimits: config.spawn,
    restartIntensity: config.restartIntensity,
    safeMode: config.safeMode,
    router,
    grants,
    store,
    loader,
    hostKernel,
    mayRead: (caller, path) => driveAccess.mayRead(caller, path, (cap) => grants.has(caller.process.toString(), cap)),
    print,
    events,
    nextId,
    runFork: (effect) => void runFork(effect)
  })
  tableRef.current = processes

  // Messages from other nodes enter here, with the same checks as local ones.
  const fromNet = (items: ReadonlyArray<NetInbound>) =>
    Effect.sync(() => inBatch(() => {
      for (const item of items) {
        const km = item.message
        if (item._tag === "Undelivered") {
          router.fail(km.source, km.id, { kind: item.kind, target: km.target, message: km.message, blob: km.blob })
          continue
        }
        const refused = router.deliver(km)
        if (refused !== undefined) print(2, "kernel", `message from ${km.source} to ${km.target} refused: ${refused}`)
      }
    }))
  yield* Effect.forkScoped(Effect.forever(Effect.flatMap(net.inbound, fromNet)))

  yield* Effect.addFinalizer(() => processes.shutdown)

  const fromKernel = (target: string, body: Uint8Array, inherit = false): KernelMessage => ({
    id: nextId(),
    source: kernelAddress,
    target: localAddress(node, target),
    rsvp: null,
    message: request({ inherit, body }),
    blob: undefined
  })
  const send = (target: string, body: Uint8Array, inherit = false) => {
    const refused = router.deliver(fromKernel(target, body, inherit))
    if (refused !== undefined) print(2, "kernel", `boot message to ${target} refused: ${refused}`)
    return refused
  }

  /** Completed by the first `Booted`: `boot` returns once its processes were started. */
  const bootRan = yield* Deferred.make<void>()
  const booted = Effect.andThen(processes.runWaiting, Deferred.succeed(bootRan, undefined))

  /**
   * What Kinode's kernel sends once the process map is loaded: `Booted` to itself (its
   * command starts every process, `booted`), the node providers of its eth config to
   * `net` as `KnsBatchUpdate` (kinode-ts's eth has no node providers, only RPC URLs, so
   * the batch is empty, as on a Kinode with its default providers), and, as Kinode
   * 0.5-0.6 did, `[chain_id, "0x<contract>"]` (JSON) to an installed `kns_indexer`
   * package, which waits for it before indexing (`KNS_INDEXER_PACKAGE`). The node's own
   * indexer, `kns-indexer:kns-indexer:sys`, is a runtime module configured at start.
   */
  const bootMessages = Effect.gen(function*() {
    if (send("kernel:distro:sys", text(JSON.stringify("Booted")), true) !== undefined) yield* booted
    yield* Deferred.await(bootRan)
    send("net:distro:sys", EMPTY_KNS_BATCH_UPDATE)
    const contract = config.knsContract
    const status = processes.info(KNS_INDEXER_PACKAGE)?.status
    if (contract === undefined || status === undefined || status === "runtime") return
    send(KNS_INDEXER_PACKAGE, text(JSON.stringify([contract.chainId, contract.address.toLowerCase()])))
  })

  const shutdownAsked = yield* Deferred.make<void>()

  const kernel: KernelApi = {
    node,
    boot: Effect.andThen(processes.boot, bootMessages),
    booted,
    initialize: processes.initialize,
    run: processes.run,
    kill: processes.kill,
    grant: grants.grant,
    drop: grants.drop,
    setOnExit: processes.setOnExit,
    hasCapability: grants.has,
    capabilities: grants.list,
    info: processes.info,
    processes: () => processes.ids().map((id) => processes.info(id)!),
    session: processes.session,
    call: calls.call,
    spawn: processes.spawn,
    route: (km) => router.deliver(km),
    shutdown: processes.shutdown,
    shutdownRequested: Deferred.await(shutdownAsked),
    requestShutdown: Effect.andThen(processes.shutdown, Deferred.succeed(shutdownAsked, undefined)),
    signCapability: grants.sign
  }
  const moduleHost = makeModuleHost({ node, router, grants, table: processes, nextId, print })
  return { kernel, moduleHost, settle: calls.settle }
})

/** The kernel, the `ModuleHost` view services use, and `KernelCalls` for the command module. */
export const kernelLayer = Layer.effectContext(
  Effect.gen(function*() {
    const { kernel, moduleHost, settle } = yield* makeKernel
    return Context.make(Kernel, kernel).pipe(Context.add(ModuleHost, moduleHost), Context.add(KernelCalls, { settle }))
  })
)
