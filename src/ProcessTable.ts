/**
 * The process table: every process the node has, and its life.
 *
 * Each process has a bounded mailbox, a route in the router, its grants, and (while
 * it runs) one supervising fiber, kept in a `FiberMap` owned by the kernel layer's
 * scope: closing the scope stops them all, and `kill` interrupts one. The supervisor
 * runs the program and applies on-exit when it returns or fails (`None`: removed;
 * `Restart`: run again after Kinode's back-off, `RestartSchedule.ts`; `Requests`:
 * sent, then removed). A failure is printed and contained: no other process and not
 * the node are affected.
 *
 * Persistent processes are mirrored in the `KernelStore`; runtime modules and sessions
 * (`transient`) are not: they are created again at every boot.
 *
 * Containment: mailboxes are bounded in items and bytes (one node-wide budget of queued
 * bytes); `spawn` is refused past a parent's live children, its package's live
 * processes or its package's spawn rate, never queued; a `Restart` process that exits
 * more often than its restart intensity allows (OTP's MaxR in MaxT) is stopped and
 * marked `stopped` instead of looping for ever (`RunProcess` starts it again); in safe
 * mode, boot registers stored processes without starting them (`paused`).
 */
import { Cause, Clock, Effect, Exit, FiberMap, Result, Schema } from "effect"
import { messagingCap } from "./Capabilities.ts"
import { normalizeVfsPath } from "./DriveAccess.ts"
import type { GrantStore } from "./GrantStore.ts"
import { KERNEL_EVENTS_LEVEL } from "./KernelEvents.ts"
import { type Address, checkKimapSafe, checkLegacySafe, localAddress, parseProcessId, pid, type ProcessId } from "./Ids.ts"
import type { KernelStore, ProcessRecord } from "./KernelStore.ts"
import { Mailbox, type QueuedBytes } from "./Mailbox.ts"
import type { Capability, OnExit } from "./Message.ts"
import type { NativeProgram, SpawnLimit, SpawnOptions } from "./ProcessApi.ts"
import { SpawnFailed } from "./ProcessApi.ts"
import { type HostKernel, ProcessHost, type RefusalMode } from "./ProcessHost.ts"
import { NATIVE_PREFIX, type ProgramLoader } from "./ProgramLoader.ts"
import { restartDelays } from "./RestartSchedule.ts"
import { type Delivery, deliverySize, type RouterCore } from "./Router.ts"

export const InitFailure = Schema.Literals(["NameTaken", "NotKimapSafe", "NoCode", "Persist"])

export class InitializeFailed extends Schema.TaggedError<InitializeFailed>()("InitializeFailed", {
  id: Schema.String,
  reason: InitFailure
}) {}

export class RunFailed extends Schema.TaggedError<RunFailed>()("RunFailed", {
  id: Schema.String,
  reason: Schema.String
}) {}

export class NoSuchProcess extends Schema.TaggedError<NoSuchProcess>()("NoSuchProcess", {
  id: Schema.String
}) {}

export interface InitSpec {
  readonly id: ProcessId
  readonly handle: string
  readonly witVersion: number | null
  readonly onExit: OnExit
  readonly public: boolean
  readonly capabilities: ReadonlyArray<Capability>
  /** Code bytes (InitializeProcess's blob); needed for anything but `native:` handles. */
  readonly bytes: Uint8Array | undefined
  /** Accept legacy names (`_` in process and package names, `checkLegacySafe`): the package installer. */
  readonly legacyNames?: boolean | undefined
}

/** `stopped`: restarted too often, no longer run; `paused`: not started because of safe mode. */
export type ProcessStatus = "waiting" | "running" | "restarting" | "stopped" | "paused" | "exited" | "runtime"

export interface SpawnLimits {
  /** Live processes one process may have spawned. */
  readonly childrenPerProcess: number
  /** Live processes of one package, however made; spawns past it are refused. */
  readonly processesPerPackage: number
  /** Spawns per package per second (a token bucket of `burst`). */
  readonly perSecond: number
  readonly burst: number
}
export const DEFAULT_SPAWN_LIMITS: SpawnLimits = { childrenPerProcess: 128, processesPerPackage: 512, perSecond: 64, burst: 128 }

/** More than `restarts` restarts within `windowMs` stops the process (OTP's MaxR in MaxT). */
export interface RestartIntensity {
  readonly restarts: number
  readonly windowMs: number
}
export const DEFAULT_RESTART_INTENSITY: RestartIntensity = { restarts: 5, windowMs: 60_000 }

export interface ProcessInfo {
  readonly id: string
  readonly handle: string
  readonly witVersion: number | null
  readonly onExit: OnExit
  readonly public: boolean
  readonly status: ProcessStatus
  /** Why a `stopped` process was stopped. */
  readonly stoppedBecause: string | undefined
  readonly mailboxDepth: number
  readonly mailboxBytes: number
  readonly capabilities: ReadonlyArray<Capability>
}

interface Live {
  record: ProcessRecord
  readonly pid: ProcessId
  mailbox: Mailbox<Delivery>
  host: ProcessHost | undefined
  status: ProcessStatus
  readonly bytes: Uint8Array | undefined
  /** Runtime modules and sessions are not persisted: they are re-created at every boot. */
  readonly transient: boolean
  /** The process that spawned this one (while this one lives, it counts among its children). */
  readonly parent: Live | undefined
  /** Live processes this one spawned. */
  children: number
  stoppedBecause: string | undefined
  /** Its program, loaded at boot and waiting for `Booted` (or `RunProcess`) to start it. */
  program: NativeProgram | undefined
}

export interface ProcessTableDeps {
  readonly node: string
  readonly mailboxCapacity: number
  readonly mailboxBytes: number
  readonly queuedBytes: QueuedBytes
  readonly spawnLimits: SpawnLimits
  readonly restartIntensity: RestartIntensity
  readonly safeMode: boolean
  readonly router: RouterCore
  readonly grants: GrantStore
  readonly store: KernelStore["Service"]
  readonly loader: ProgramLoader["Service"]
  readonly hostKernel: HostKernel
  readonly mayRead: (caller: Address, path: string) => boolean
  readonly print: (level: number, source: string, text: string) => void
  /** Whether kernel events (starts, exits, kills) are printed now: checked before a line is built. */
  readonly events: () => boolean
  readonly nextId: () => bigint
  /** Runs an effect on a fiber the kernel owns (background persistence). */
  readonly runFork: (effect: Effect.Effect<void>) => void
}

const describeCause = (cause: Cause.Cause<unknown>): string => {
  const text = Cause.pretty(cause)
  return text.length > 5000 ? `${text.slice(0, 5000)}...` : text
}

const refusalModeOf = (handle: string): RefusalMode =>
  handle.startsWith(NATIVE_PREFIX) || handle === "" ? "typed" : "send-error"

const packageOf = (id: ProcessId) => `${id.packageName}:${id.publisherNode}`

/** Builds the table; its fibers live in the caller's scope (the kernel layer's). */
export const makeProcessTable = (deps: ProcessTableDeps) =>
  Effect.gen(function*() {
    const { node, router, grants, store, print, events } = deps
    const event = (text: string) => print(KERNEL_EVENTS_LEVEL, "kernel", text)
    const processes = new Map<string, Live>()
    const fibers = yield* FiberMap.make<string>()
    /** Set by `shutdown`: from then on nothing starts, restarts or spawns. */
    let stopping = false
    const clock = yield* Clock.Clock
    const addressOf = (id: ProcessId) => localAddress(node, id)

    const persist = (live: Live): Effect.Effect<void> => {
      if (live.transient) return Effect.void
      live.record = { ...live.record, capabilities: grants.list(live.record.id).map(grants.forStore) }
      return store.save(live.record).pipe(
        Effect.catch((e) => Effect.sync(() => print(0, "kernel", `could not persist ${live.record.id}: ${String(e.cause)}`)))
      )
    }

    /** Concurrently, so LMDB commits them in one synced transaction. */
    const persistHolders = (ids: Iterable<string>) =>
      Effect.forEach(ids, (id) => {
        const live = processes.get(id)
        return live === undefined ? Effect.void : persist(live)
      }, { discard: true, concurrency: "unbounded" })

    const newHost = (live: Live, mode: RefusalMode) =>
      new ProcessHost({
        our: addressOf(live.pid),
        onExit: live.record.onExit,
        mailbox: live.mailbox,
        router,
        grants: grants.table,
        kernel: deps.hostKernel,
        refusalMode: mode
      })

    const byteBound = { max: deps.mailboxBytes, node: deps.queuedBytes, sizeOf: deliverySize }
    const newMailbox = (capacity: number) => new Mailbox<Delivery>(capacity, byteBound)

    /** Live processes per package (transient ones aside), for the spawn limit. */
    const perPackage = new Map<string, number>()
    const countPackage = (id: ProcessId, by: 1 | -1) => {
      const key = packageOf(id)
      const n = (perPackage.get(key) ?? 0) + by
      if (n <= 0) perPackage.delete(key)
      else perPackage.set(key, n)
    }

    const newLive = (
      record: ProcessRecord,
      id: ProcessId,
      status: ProcessStatus,
      bytes: Uint8Array | undefined,
      transient: boolean,
      capacity = deps.mailboxCapacity,
      parent: Live | undefined = undefined
    ): Live => {
      const live: Live = {
        record,
        pid: id,
        mailbox: newMailbox(capacity),
        host: undefined,
        status,
        bytes,
        transient,
        parent,
        children: 0,
        stoppedBecause: undefined,
        program: undefined
      }
      processes.set(record.id, live)
      router.register(record.id, live.mailbox, record.public)
      if (!transient) countPackage(id, 1)
      if (parent !== undefined) parent.children++
      return live
    }

    /** Undoes `newLive`'s counts; the caller has taken it out of `processes`. */
    const uncount = (live: Live) => {
      if (!live.transient) countPackage(live.pid, -1)
      if (live.parent !== undefined) live.parent.children--
    }

    // ---- registration ------------------------------------------------------------

    /** Adds a process to the map, the router and the grant table; persisting is the caller's. */
    const register = (spec: InitSpec, parent?: Live) =>
      Effect.gen(function*() {
        const id = spec.id.toString()
        if (Result.isFailure((spec.legacyNames === true ? checkLegacySafe : checkKimapSafe)(spec.id))) {
          return yield* new InitializeFailed({ id, reason: "NotKimapSafe" })
        }
        if (processes.has(id)) return yield* new InitializeFailed({ id, reason: "NameTaken" })
        if (spec.bytes === undefined && spec.handle === "") return yield* new InitializeFailed({ id, reason: "NoCode" })
        const record: ProcessRecord = {
          id,
          handle: spec.handle,
          witVersion: spec.witVersion,
          onExit: spec.onExit,
          public: spec.public,
          capabilities: []
        }
        const live = newLive(record, spec.id, "waiting", spec.bytes, false, deps.mailboxCapacity, parent)
        grants.seed(id, [...spec.capabilities, messagingCap(node, id)])
        return live
      })

    const initialize = (spec: InitSpec) =>
      Effect.flatMap(register(spec), (live) => {
        if (events()) event(`process ${live.record.id} initialized from ${live.record.handle} (${live.record.public ? "public" : "private"})`)
        return persist(live)
      })

    // ---- supervision -------------------------------------------------------------

    /** The process's one fiber for its whole life: run, apply on-exit, maybe run again. */
    const supervise = (live: Live, program: NativeProgram) =>
      Effect.gen(function*() {
        const id = live.record.id
        // The back-off stepper is made at the first restart: most processes never need one.
        let nextDelay: Effect.Success<typeof restartDelays> | undefined
        // When it was restarted, within the intensity window.
        const restarts: Array<number> = []
        while (true) {
          const host = newHost(live, refusalModeOf(live.record.handle))
          live.host = host
          live.status = "running"
          if (events()) event(`process ${id} started${restarts.length === 0 ? "" : ` again (restart ${restarts.length})`}`)
          // Yield first: the caller (a spawning parent, the boot loop) goes on while the
          // program starts; instantiating a component is the larger part of a spawn.
          yield* Effect.yieldNow
          const exit = yield* Effect.exit(Effect.suspend(() => program(host)))
          if (processes.get(id) !== live || live.host !== host) return
          if (Exit.isFailure(exit)) {
            if (Cause.hasInterruptsOnly(exit.cause)) return
            print(0, id, `process ${id} crashed: ${describeCause(exit.cause)}`)
          } else {
            print(2, id, `process ${id} exited`)
          }
          const onExit = host.getOnExit()
          if (onExit._tag === "Restart") {
            live.mailbox.close()
            router.unregister(id, live.mailbox)
            const now = clock.currentTimeMillisUnsafe()
            const { restarts: most, windowMs } = deps.restartIntensity
            while (restarts.length > 0 && restarts[0]! <= now - windowMs) restarts.shift()
            if (restarts.length >= most) {
              // A crash loop: stopped and marked, never run again on its own (RunProcess does).
              live.status = "stopped"
              live.stoppedBecause = `restarted ${restarts.length} times in ${Math.round((now - restarts[0]!) / 1000)} s`
              live.host = undefined
              // Still known, not running: senders are refused NotRunning.
              router.register(id, live.mailbox, live.record.public)
              print(0, "kernel", `process ${id} stopped: it ${live.stoppedBecause} and exited again; kill it, or start it again with RunProcess`)
              return
            }
            restarts.push(now)
            live.status = "restarting"
            nextDelay ??= yield* restartDelays
            const wait = yield* nextDelay(clock.currentTimeMillisUnsafe()).pipe(Effect.orElseSucceed(() => 0))
            if (events()) event(`process ${id} restarting in ${wait} ms (on-exit Restart)`)
            if (wait > 0) yield* Effect.sleep(wait)
            if (stopping || processes.get(id) !== live || live.status !== "restarting") return
            live.mailbox = newMailbox(deps.mailboxCapacity)
            router.register(id, live.mailbox, live.record.public)
            continue
          }
          if (onExit._tag === "Requests") {
            if (events()) event(`process ${id}: sending its ${onExit.requests.length} on-exit requests`)
            for (const { target, request, blob } of onExit.requests) {
              host.sendRequest(target, { ...request, expectsResponse: undefined }, undefined, blob)
            }
          }
          return yield* remove(live, true)
        }
      }).pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.void
            : Effect.sync(() => print(0, "kernel", `supervisor of ${live.record.id} failed: ${Cause.pretty(cause)}`))
        )
      )

    const start = (live: Live, program: NativeProgram) =>
      stopping ? Effect.void : Effect.asVoid(FiberMap.run(fibers, live.record.id, supervise(live, program)))

    const load = (live: Live) =>
      deps.loader.load({ id: live.record.id, handle: live.record.handle, witVersion: live.record.witVersion, bytes: live.bytes }).pipe(
        Effect.mapError((e) => new RunFailed({ id: live.record.id, reason: e.message }))
      )

    /** Starts a registered process's program. */
    const run = (id: string) =>
      Effect.gen(function*() {
        const live = processes.get(id)
        if (live === undefined || live.transient) return yield* new RunFailed({ id, reason: "no such process" })
        if (stopping) return yield* new RunFailed({ id, reason: "the node is shutting down" })
        if (live.status === "running" || live.status === "restarting") return
        if (live.status === "stopped" || live.mailbox.isClosed) {
          // Started again by hand: a fresh mailbox, and the restart count starts over.
          live.mailbox = newMailbox(deps.mailboxCapacity)
          router.register(id, live.mailbox, live.record.public)
          live.stoppedBecause = undefined
        }
        // Loaded at boot, or now.
        const program = live.program ?? (yield* load(live))
        live.program = undefined
        yield* start(live, program)
      }).pipe(Effect.tapError((e) => Effect.sync(() => print(0, "kernel", `cannot run ${e.id}: ${e.reason}`))))

    // ---- removal -----------------------------------------------------------------

    /** Forgets a process: mailbox closed, route gone, record deleted, caps it issued revoked. */
    const remove = (live: Live, revoke: boolean) =>
      Effect.gen(function*() {
        const id = live.record.id
        if (processes.get(id) === live) {
          processes.delete(id)
          uncount(live)
        }
        live.status = "exited"
        live.mailbox.close()
        router.unregister(id, live.mailbox)
        grants.forget(id)
        if (events()) event(`process ${id} removed`)
        if (!live.transient) yield* store.remove(id).pipe(Effect.catch(() => Effect.void))
        if (revoke) yield* grants.revokeIssuedBy(id)
      })

    /** Stops a process at once (no on-exit) and forgets it; whether there was one. */
    const kill = (id: string, revoke = true) =>
      Effect.gen(function*() {
        const live = processes.get(id)
        if (live === undefined || live.status === "runtime") return false
        // Its program first: a spinning Wasm guest is never resumed from here on, so it
        // takes no slice while the records go (an LMDB commit).
        yield* FiberMap.remove(fibers, id)
        if (events()) event(`process ${id} killed`)
        yield* remove(live, revoke)
        return true
      })

    const setOnExit = (id: string, onExit: OnExit) =>
      Effect.suspend(() => {
        const live = processes.get(id)
        if (live === undefined) return Effect.fail(new NoSuchProcess({ id }))
        live.record = { ...live.record, onExit }
        return persist(live)
      })

    // ---- spawn -------------------------------------------------------------------

    /** Spawn rate per package: token buckets refilled by the clock. */
    const buckets = new Map<string, { tokens: number; at: number }>()
    const takeToken = (pkg: string, now: number): boolean => {
      const { perSecond, burst } = deps.spawnLimits
      const bucket = buckets.get(pkg) ?? { tokens: burst, at: now }
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond)
      bucket.at = now
      buckets.set(pkg, bucket)
      if (bucket.tokens < 1) return false
      bucket.tokens -= 1
      return true
    }
    /** When each package's last refusal was printed at level 0 (a spawn bomb would flood the terminal). */
    const refusalPrinted = new Map<string, number>()

    /** The limit a spawn by `parent` (of package `pkg`) would pass, if any; takes a rate token otherwise. */
    const spawnLimitHit = (parent: Live | undefined, pkg: string): SpawnLimit | undefined => {
      const limits = deps.spawnLimits
      if (parent !== undefined && parent.children >= limits.childrenPerProcess) return "children"
      if ((perPackage.get(pkg) ?? 0) >= limits.processesPerPackage) return "package"
      return takeToken(pkg, clock.currentTimeMillisUnsafe()) ? undefined : "rate"
    }

    const describeLimit = (limit: SpawnLimit, parentKey: string, pkg: string) => {
      const l = deps.spawnLimits
      return limit === "children"
        ? `${parentKey} has ${l.childrenPerProcess} live children`
        : limit === "package"
        ? `package ${pkg} has ${l.processesPerPackage} live processes`
        : `package ${pkg} spawns more than ${l.perSecond} processes a second (bursts of ${l.burst})`
    }

    const spawn = (parent: Address, options: SpawnOptions) =>
      Effect.gen(function*() {
        const parentId = parent.process
        const name = options.name ?? BigInt.asUintN(64, deps.nextId() * 0x9e3779b97f4a7c15n).toString()
        const child = pid(`${name}:${parentId.packageName}:${parentId.publisherNode}`)
        const childId = child.toString()
        if (stopping) return yield* new SpawnFailed({ reason: "no-file-at-path" })
        if (processes.has(childId)) return yield* new SpawnFailed({ reason: "name-taken" })
        const parentKey = parentId.toString()
        const parentLive = processes.get(parentKey)
        const pkg = packageOf(parentId)
        const limit = spawnLimitHit(parentLive, pkg)
        if (limit !== undefined) {
          const now = clock.currentTimeMillisUnsafe()
          const loud = now - (refusalPrinted.get(pkg) ?? Number.NEGATIVE_INFINITY) >= 5000
          if (loud) refusalPrinted.set(pkg, now)
          print(loud ? 0 : 2, parentKey, `spawn refused: ${describeLimit(limit, parentKey, pkg)}`)
          return yield* new SpawnFailed({ reason: "no-file-at-path", limit })
        }
        // Counted at once, so spawns under way count against the limits too (released below).
        if (parentLive !== undefined) parentLive.children++
        countPackage(parentId, 1)
        return yield* spawnChecked(parent, parentLive, child, options).pipe(Effect.ensuring(Effect.sync(() => {
          if (parentLive !== undefined) parentLive.children--
          countPackage(parentId, -1)
        })))
      })

    const spawnChecked = (parent: Address, parentLive: Live | undefined, child: ProcessId, options: SpawnOptions) =>
      Effect.gen(function*() {
        const parentId = parent.process
        const childId = child.toString()
        const native = options.wasmPath.startsWith(NATIVE_PREFIX)
        // Normalized first, so the access check and the loader see the same file.
        const handle = native ? options.wasmPath : normalizeVfsPath(options.wasmPath)
        if (handle === undefined || (!native && !deps.mayRead(parent, handle))) {
          return yield* new SpawnFailed({ reason: "no-file-at-path" })
        }
        // Loading first is the file check: a missing or broken file leaves no trace.
        const program = yield* Effect.result(deps.loader.load({ id: childId, handle, witVersion: 1, bytes: undefined }))
        if (Result.isFailure(program)) {
          print(0, parentId.toString(), `spawn of ${handle}: ${program.failure.message}`)
          return yield* new SpawnFailed({ reason: "no-file-at-path" })
        }
        const parentKey = parentId.toString()
        // Held by the parent, or issued by it on this node (not `other.os@<parent>`).
        const requested = options.requestCapabilities.filter((c) =>
          (c.issuer.node === node && c.issuer.process.toString() === parentKey) || grants.has(parentKey, c)
        )
        const registered = yield* Effect.result(register({
          id: child,
          handle,
          witVersion: 1,
          onExit: options.onExit,
          public: options.public,
          capabilities: [...requested, messagingCap(node, parentKey)],
          // The loader reads the component from the drive itself: apps can be larger than
          // a message (componentize-js output is ~12 MB, the limit is 10 MiB).
          bytes: undefined,
          // A process of a legacy-named package (installed as such) spawns under the same rule.
          legacyNames: Result.isFailure(checkKimapSafe(parentId))
        }, parentLive))
        if (Result.isFailure(registered)) {
          if (registered.failure.reason === "NotKimapSafe") {
            return yield* Effect.die(new Error(`spawn: ${childId} is not a Kimap-safe process id`))
          }
          return yield* new SpawnFailed({ reason: "name-taken" })
        }
        const touched = new Set([childId, parentKey])
        for (const [grantee, params] of options.grantCapabilities) {
          const holder = grantee.toString()
          if (grants.addUnpersisted(holder, [{ issuer: addressOf(child), params }])) touched.add(holder)
        }
        grants.addUnpersisted(parentKey, [messagingCap(node, childId)])
        // Every record the spawn changed goes into LMDB's ordered write queue now, before
        // the child runs; the one synced commit for them follows in the background
        // (~1 ms of fsync, several times the rest of a spawn). Crash-consistent rather
        // than acknowledged-durable: LMDB commits in order, so any write acknowledged
        // after this point (the child's or the parent's state or kv, a later
        // InitializeProcess) proves the spawn is on disk too, and a crash before one loses
        // the spawn as a whole, never half of it. Kernel commands stay synced.
        deps.runFork(persistHolders(touched))
        if (events()) event(`process ${childId} spawned by ${parentKey} from ${handle} (${options.public ? "public" : "private"})`)
        yield* start(registered.success, program.success)
        return child
      })

    // ---- transient processes (sessions, runtime modules) -------------------------

    const registerTransient = (id: string, isPublic: boolean, capacity: number) => {
      if (events()) event(`process ${id} registered (runtime)`)
      return newLive(
        { id, handle: "", witVersion: null, onExit: { _tag: "None" }, public: isPublic, capabilities: [] },
        pid(id),
        "runtime",
        undefined,
        true,
        capacity
      )
    }

    const unregisterTransient = (live: Live) =>
      Effect.sync(() => {
        if (processes.get(live.record.id) === live) processes.delete(live.record.id)
        live.mailbox.close()
        router.unregister(live.record.id, live.mailbox)
        grants.forget(live.record.id)
        if (events()) event(`process ${live.record.id} unregistered (runtime)`)
      })

    /** A process with no program of its own (the terminal, test drivers); removed when the scope closes. */
    const session = (id: string, options: { readonly capabilities: ReadonlyArray<Capability>; readonly public: boolean }) =>
      Effect.gen(function*() {
        const live = registerTransient(id, options.public, deps.mailboxCapacity)
        grants.seed(id, [...options.capabilities, messagingCap(node, id)])
        live.host = newHost(live, "typed")
        yield* Effect.addFinalizer(() => unregisterTransient(live))
        return live.host
      })

    // ---- boot and shutdown -------------------------------------------------------

    /**
     * Kinode's boot (§5.5 step 6), up to `Booted`: loads the stored process map,
     * registers every process (its mailbox takes messages from now on, buffered until it
     * runs), loads each program, and re-fires persisted on-exit requests. Nothing runs yet:
     * `runWaiting` (the `Booted` command) starts them all. A program that cannot be loaded
     * is printed and its process is `stopped` (Kinode drops the entry; here `RunProcess`
     * can try again, and `KillProcess` removes it).
     */
    const boot = Effect.gen(function*() {
      const loaded = yield* store.load.pipe(Effect.catch((e) =>
        Effect.sync(() => {
          print(0, "kernel", `cannot read the process map: ${String(e.cause)}`)
          return { records: [], corrupt: [] }
        })
      ))
      for (const reason of loaded.corrupt) print(0, "kernel", `skipping a corrupt process record: ${reason}`)
      const stored: Array<Live> = []
      for (const record of loaded.records) {
        const parsed = parseProcessId(record.id)
        // Legacy names could only have been stored by the package installer.
        if (Result.isFailure(parsed) || Result.isFailure(checkLegacySafe(parsed.success)) || processes.has(record.id)) {
          print(0, "kernel", `skipping stored process ${record.id}`)
          continue
        }
        stored.push(newLive(record, parsed.success, "waiting", undefined, false))
        grants.restore(record.id, record.capabilities)
      }
      if (deps.safeMode) {
        // Safe mode: nothing of userspace runs (no on-exit requests either) until asked.
        for (const live of stored) live.status = "paused"
        if (stored.length > 0) {
          print(0, "kernel", `safe mode: ${stored.length} processes not started (status paused); top lists them, KillProcess removes one, RunProcess starts one`)
        }
        return
      }
      // A home from before the spawn limits (a spawn bomb's) starts no more of a package than they allow.
      const perPackageStarted = new Map<string, number>()
      const notStarted = new Map<string, number>()
      for (const live of stored) {
        const id = live.record.id
        const pkg = packageOf(live.pid)
        const nth = (perPackageStarted.get(pkg) ?? 0) + 1
        perPackageStarted.set(pkg, nth)
        if (nth > deps.spawnLimits.processesPerPackage) {
          live.status = "paused"
          notStarted.set(pkg, (notStarted.get(pkg) ?? 0) + 1)
          continue
        }
        if (live.record.onExit._tag === "Requests") {
          // Kinode re-fires persisted on-exit requests at boot, to targets it may message.
          for (const { target, request, blob } of live.record.onExit.requests) {
            if (!grants.has(id, { issuer: target, params: "\"messaging\"" }) && processes.get(target.process.toString())?.record.public !== true) continue
            router.deliver({ id: deps.nextId(), source: addressOf(live.pid), target, rsvp: null, message: { ...request, expectsResponse: undefined }, blob })
          }
        }
        const program = yield* Effect.result(load(live))
        if (Result.isSuccess(program)) live.program = program.success
        else {
          live.status = "stopped"
          live.stoppedBecause = `its code could not be loaded: ${program.failure.reason}`
          print(0, "kernel", `couldn't reboot process ${id}: ${program.failure.reason}; RunProcess tries again, KillProcess removes it`)
        }
      }
      for (const [pkg, n] of notStarted) {
        print(0, "kernel", `package ${pkg} has more stored processes than its limit of ${deps.spawnLimits.processesPerPackage}: ${n} not started (status paused)`)
      }
    })

    /**
     * Kinode's `Booted`: `run` to every userspace process waiting for it (registered and
     * not started: stored ones after `boot`, initialized ones not yet run). Running
     * processes are left alone (Kinode's Wasm would receive a second `run` [quirk fixed]).
     */
    const runWaiting = Effect.suspend(() => {
      const waiting = Array.from(processes.values()).filter((l) => !l.transient && l.status === "waiting")
      return Effect.forEach(waiting, (live) => Effect.ignore(run(live.record.id)), { discard: true })
    })

    /** How long `shutdown` waits for processes to stop before it persists anyway. */
    const STOP_WAIT = "1 second"

    /**
     * Stops every process (Kinode's `Shutdown`): nothing starts, restarts or spawns any
     * more; every program is interrupted at once, all together (a guest in a busy loop is
     * never resumed, one awaiting a response stops waiting, a restart back-off ends); then
     * `None` processes are forgotten, in one LMDB commit (one synced commit each made 500
     * idle processes take 2.5 s). Idempotent.
     */
    const shutdown = Effect.suspend(() => {
      if (stopping) return Effect.void
      stopping = true
      const all = Array.from(processes.values()).filter((l) => !l.transient)
      for (const live of all) {
        live.status = "exited"
        live.mailbox.close()
      }
      return FiberMap.clear(fibers).pipe(
        Effect.timeoutOption(STOP_WAIT),
        Effect.flatMap((stopped) =>
          stopped._tag === "Some" ? Effect.void : Effect.flatMap(FiberMap.size(fibers), (n) =>
            Effect.sync(() => print(0, "kernel", `shutdown: ${n} processes did not stop within ${STOP_WAIT}; persisting anyway`)))
        ),
        Effect.andThen(Effect.forEach(all.filter((l) => l.record.onExit._tag === "None"), (live) =>
          store.remove(live.record.id).pipe(Effect.catch(() => Effect.void)), { discard: true, concurrency: "unbounded" }))
      )
    })

    const info = (id: string): ProcessInfo | undefined => {
      const live = processes.get(id)
      if (live === undefined) return undefined
      return {
        id,
        handle: live.record.handle,
        witVersion: live.record.witVersion,
        onExit: live.host?.getOnExit() ?? live.record.onExit,
        public: live.record.public,
        status: live.status,
        stoppedBecause: live.stoppedBecause,
        mailboxDepth: live.host?.mailboxDepth ?? live.mailbox.size,
        mailboxBytes: live.mailbox.queuedBytes,
        capabilities: grants.list(id)
      }
    }

    return {
      exists: (id: string) => processes.has(id),
      persistHolders,
      initialize,
      run,
      kill,
      setOnExit,
      spawn,
      session,
      registerTransient,
      unregisterTransient,
      boot,
      runWaiting,
      shutdown,
      info,
      ids: () => Array.from(processes.keys())
    }
  })

export type ProcessTable = Effect.Success<ReturnType<typeof makeProcessTable>>
