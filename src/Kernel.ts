/**
 * The kernel: the process table and everything that starts and stops processes.
 *
 * It owns the router, the grant table and the durable process map. Each process is a
 * fiber in the kernel's scope with a bounded mailbox and a `ProcessHost`; when its
 * program returns or fails, its on-exit applies (`None`: removed; `Restart`: started
 * again after Kinode's back-off; `Requests`: sent, then removed). A failure is printed
 * and contained: no other process and not the node are affected. `kernel:distro:sys`
 * itself is a runtime module that takes Kinode's kernel commands as messages
 * (see `KernelCommands.ts`).
 */
import { Cause, Clock, Context, Effect, Exit, Fiber, Layer, Result, Schema, Scope } from "effect"
import { GrantTable, signingBytes } from "./Capabilities.ts"
import { Address, checkKimapSafe, parseProcessId, pid, type ProcessId } from "./Ids.ts"
import { KernelStore, type ProcessRecord } from "./KernelStore.ts"
import { DEFAULT_MAILBOX_CAPACITY, Mailbox } from "./Mailbox.ts"
import type { Capability, KernelMessage, LazyLoadBlob, OnExit, Request, SignedCapability } from "./Message.ts"
import { NodeKey } from "./NodeKey.ts"
import { type NativeApi, type NativeProgram, SpawnFailed, type SpawnOptions, SendRefused } from "./ProcessApi.ts"
import { type HostKernel, ProcessHost, type RefusalMode } from "./ProcessHost.ts"
import { Printout } from "./Printout.ts"
import { NATIVE_PREFIX, ProgramLoader } from "./ProgramLoader.ts"
import { type Delivery, isFailedSend, RouterCore } from "./Router.ts"
import { Runtime, type ServiceContext, type ServiceOptions } from "./Runtime.ts"
import { Timeouts } from "./Timeouts.ts"

export class KernelConfig extends Context.Service<KernelConfig, {
  /** This node's name. */
  readonly node: string
  /** Bound of every process mailbox. */
  readonly mailboxCapacity: number
}>()("kernel/KernelConfig") {
  static readonly layer = (node: string, mailboxCapacity = DEFAULT_MAILBOX_CAPACITY) =>
    Layer.succeed(KernelConfig, { node, mailboxCapacity })
}

export const InitFailure = Schema.Literals(["NameTaken", "NotKimapSafe", "NoCode", "Persist"])

export class InitializeFailed extends Schema.TaggedError<InitializeFailed>()("InitializeFailed", {
  id: Schema.String,
  reason: InitFailure
}) {}

export class RunFailed extends Schema.TaggedError<RunFailed>()("RunFailed", {
  id: Schema.String,
  reason: Schema.String
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
}

export type ProcessStatus = "waiting" | "running" | "restarting" | "exited" | "runtime"

export interface ProcessInfo {
  readonly id: string
  readonly handle: string
  readonly witVersion: number | null
  readonly onExit: OnExit
  readonly public: boolean
  readonly status: ProcessStatus
  readonly mailboxDepth: number
  readonly capabilities: ReadonlyArray<Capability>
}

interface Live {
  record: ProcessRecord
  readonly pid: ProcessId
  mailbox: Mailbox<Delivery>
  host: ProcessHost | undefined
  status: ProcessStatus
  fiber: Fiber.Fiber<void, never> | undefined
  readonly bytes: Uint8Array | undefined
  /** Runtime modules and sessions are not persisted: they are re-created at every boot. */
  readonly transient: boolean
}

export interface KernelApi {
  readonly node: string
  readonly router: RouterCore
  readonly grants: GrantTable
  /** Loads the stored process map and starts every process in it. */
  readonly boot: Effect.Effect<void>
  readonly initialize: (spec: InitSpec) => Effect.Effect<void, InitializeFailed>
  readonly run: (id: string) => Effect.Effect<void, RunFailed>
  /** Stops a process at once (no on-exit), forgets it, and unless `revoke` is false revokes what it issued. */
  readonly kill: (id: string, revoke?: boolean) => Effect.Effect<boolean>
  /** Signs and grants caps; durable when it returns. */
  readonly grant: (holder: string, caps: ReadonlyArray<Capability>) => Effect.Effect<void>
  readonly drop: (holder: string, caps: ReadonlyArray<Capability>) => Effect.Effect<void>
  readonly setOnExit: (id: string, onExit: OnExit) => Effect.Effect<void>
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
  readonly call: (
    target: Address,
    request: Request,
    blob?: LazyLoadBlob
  ) => Effect.Effect<KernelMessage | SendRefused | "timeout">
  readonly spawn: (parent: Address, options: SpawnOptions) => Effect.Effect<ProcessId | SpawnFailed>
  /** Stops every process; `None` processes are forgotten, as at Kinode's shutdown. */
  readonly shutdown: Effect.Effect<void>
  readonly signCapability: (cap: Capability) => SignedCapability
}


export class Kernel extends Context.Service<Kernel, KernelApi>()("kernel/Kernel") {}

const U64_MASK = (1n << 64n) - 1n

/** `<node>@<id>` for an id known to be well-formed (kernel constants, registered processes). */
const localAddress = (node: string, id: string | ProcessId): Address =>
  new Address({ node, process: typeof id === "string" ? pid(id) : id }, { disableChecks: true })

/** The capability to message `target` on `node`. */
export const messagingCap = (node: string, target: string | ProcessId): Capability => ({
  issuer: localAddress(node, target),
  params: "\"messaging\""
})

/** The capability to send to and receive from other nodes. */
export const networkCap = (node: string): Capability => ({
  issuer: localAddress(node, "kernel:distro:sys"),
  params: "\"network\""
})

/** Kinode's restart back-off: 0, <=1, 1, 2, 4, 8 ... seconds for a tight crash loop, unbounded. */
export class RestartBackoff {
  private readonly state = new Map<string, { nextSoonest: number; attempts: number }>()

  /** Milliseconds to wait before restarting `id` now. */
  delay(id: string, now: number): number {
    const st = this.state.get(id)
    if (st === undefined || now >= st.nextSoonest) {
      this.state.set(id, { nextSoonest: now + 1000, attempts: 0 })
      return 0
    }
    const wait = st.nextSoonest - now
    st.nextSoonest += 2 ** st.attempts * 1000
    st.attempts += 1
    return wait
  }
}

const makeKernel = Effect.gen(function*() {
  const config = yield* KernelConfig
  const store = yield* KernelStore
  const key = yield* NodeKey
  const printout = yield* Printout
  const timeouts = yield* Timeouts
  const loader = yield* ProgramLoader
  const clock = yield* Clock.Clock
  const services = yield* Effect.context<never>()
  const runPromise = Effect.runPromiseWith(services)
  const node = config.node

  const grants = new GrantTable()
  const router = new RouterCore(node, grants)
  const processes = new Map<string, Live>()
  const backoff = new RestartBackoff()
  const NOT_STORED = new Uint8Array(0)
  let idCounter = BigInt.asUintN(64, BigInt(Math.floor(Math.random() * 2 ** 53)) << 11n)
  const nextId = () => (idCounter = (idCounter + 1n) & U64_MASK)

  const kernelAddress = localAddress(node, "kernel:distro:sys")
  const addressOf = (id: ProcessId) => localAddress(node, id)

  /**
   * A capability this node issues. Ed25519 signing costs ~45 us, and most
   * capabilities are never shown to anyone who checks it (only those attached to
   * messages are), so the signature is made on first read. An own enumerable
   * accessor, so spreading or encoding the object still carries it.
   */
  const signCapability = (cap: Capability): SignedCapability => {
    let signature: Uint8Array | undefined
    return Object.defineProperty({ issuer: cap.issuer, params: cap.params }, "signature", {
      enumerable: true,
      get: () => (signature ??= key.sign(signingBytes(cap)))
    }) as SignedCapability
  }
  /** Persisted without the signatures this node made: boot signs those again. */
  const forStore = (cap: SignedCapability): SignedCapability =>
    cap.issuer.node === node ? { issuer: cap.issuer, params: cap.params, signature: NOT_STORED } : cap

  const print = (level: number, source: string, text: string) => printout.print(level, source, text)

  const persist = (live: Live): Effect.Effect<void> => {
    if (live.transient) return Effect.void
    live.record = { ...live.record, capabilities: grants.list(live.record.id).map(forStore) }
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

  /**
   * Adds capabilities to a process's grants, in memory; whether anything changed.
   * Grants to a process that does not exist are ignored, as in Kinode (never kept in
   * memory only).
   */
  const addGrants = (holder: string, caps: ReadonlyArray<Capability>): boolean =>
    processes.has(holder) && grants.add(holder, caps.map(signCapability))

  const grant = (holder: string, caps: ReadonlyArray<Capability>) =>
    Effect.suspend(() => (addGrants(holder, caps) ? persistHolders([holder]) : Effect.void))

  const drop = (holder: string, caps: ReadonlyArray<Capability>) =>
    Effect.suspend(() => (grants.drop(holder, caps) ? persistHolders([holder]) : Effect.void))

  // ---- kernel calls (as `kernel:distro:sys`) -------------------------------------

  const pendingCalls = new Map<bigint, (km: KernelMessage | "timeout") => void>()

  const call = (target: Address, request: Request, blob?: LazyLoadBlob) =>
    Effect.callback<KernelMessage | SendRefused | "timeout">((resume) => {
      const id = nextId()
      const seconds = Number(request.expectsResponse ?? 5n)
      const timer = timeouts.schedule(seconds, () => {
        pendingCalls.delete(id)
        resume(Effect.succeed("timeout"))
      })
      pendingCalls.set(id, (km) => {
        timer.cancel()
        resume(Effect.succeed(km))
      })
      const refused = router.deliver({
        id,
        source: kernelAddress,
        target,
        rsvp: kernelAddress,
        message: { ...request, expectsResponse: BigInt(seconds) },
        blob
      })
      if (refused !== undefined) {
        pendingCalls.delete(id)
        timer.cancel()
        resume(Effect.succeed(new SendRefused({ target: target.toString(), reason: refused })))
      }
    })

  /** Settles a kernel call; true if `km` answered one. */
  const settleCall = (km: KernelMessage): boolean => {
    const settle = pendingCalls.get(km.id)
    if (settle === undefined) return false
    pendingCalls.delete(km.id)
    settle(km)
    return true
  }

  // ---- process hosts ---------------------------------------------------------------

  const stateTarget = localAddress(node, "state:distro:sys")
  const utf8 = new TextEncoder()
  const utf8Decoder = new TextDecoder()
  const stateRequest = (verb: "GetState" | "SetState" | "DeleteState", pid: ProcessId) =>
    ({
      _tag: "Request",
      inherit: false,
      expectsResponse: 5n,
      body: utf8.encode(JSON.stringify({ [verb]: pid.toString() })),
      metadata: undefined,
      capabilities: []
    }) satisfies Request

  const stateCall = (verb: "GetState" | "SetState" | "DeleteState", pid: ProcessId, blob?: LazyLoadBlob) =>
    Effect.map(call(stateTarget, stateRequest(verb, pid), blob), (r) => {
      if (r === "timeout" || r instanceof SendRefused) return { ok: false as const, blob: undefined }
      const body = utf8Decoder.decode(r.message.body)
      return { ok: body === JSON.stringify(verb), blob: r.blob }
    })

  const hostKernel: HostKernel = {
    sign: (bytes) => key.sign(bytes),
    schedule: (seconds, fire) => timeouts.schedule(seconds, fire),
    print,
    nextId,
    getState: (pid) => runPromise(Effect.map(stateCall("GetState", pid), (r) => (r.ok ? r.blob?.bytes : undefined))),
    setState: (pid, bytes) =>
      runPromise(Effect.flatMap(stateCall("SetState", pid, { mime: undefined, bytes }), (r) =>
        r.ok ? Effect.void : Effect.die(new Error(`set-state failed for ${pid}`)))),
    clearState: (pid) =>
      runPromise(Effect.flatMap(stateCall("DeleteState", pid), (r) =>
        r.ok ? Effect.void : Effect.die(new Error(`clear-state failed for ${pid}`)))),
    spawn: (parent, options) => runPromise(spawn(parent, options)),
    saveCapabilities: (holder, caps, received) => runPromise(saveCapabilities(holder.toString(), caps, received)),
    dropCapabilities: (holder, caps) => runPromise(drop(holder.toString(), caps)),
    setOnExit: (pid, onExit) => {
      runPromise(setOnExit(pid.toString(), onExit)).catch(() => undefined)
    }
  }

  /** `save-capabilities`: only caps the process holds, issued itself, or received on a message [quirk fixed]. */
  const saveCapabilities = (holder: string, caps: ReadonlyArray<Capability>, received: (cap: Capability) => boolean) =>
    Effect.suspend(() => {
      const allowed = caps.filter((c) => c.issuer.process.toString() === holder || grants.has(holder, c) || received(c))
      const refused = caps.length - allowed.length
      if (refused > 0) print(1, holder, `save-capabilities: ${refused} capabilities not held, not saved`)
      return grant(holder, allowed)
    })

  const newHost = (live: Live, mode: RefusalMode) =>
    new ProcessHost({
      our: addressOf(live.pid),
      onExit: live.record.onExit,
      mailbox: live.mailbox,
      router,
      grants,
      kernel: hostKernel,
      refusalMode: mode
    })

  const refusalModeOf = (handle: string): RefusalMode => handle.startsWith(NATIVE_PREFIX) || handle === "" ? "typed" : "send-error"

  // ---- lifecycle ----------------------------------------------------------------------

  /** Adds a process to the map, the router and the grant table; persisting is the caller's. */
  const register = (spec: InitSpec) =>
    Effect.gen(function*() {
      const id = spec.id.toString()
      if (Result.isFailure(checkKimapSafe(spec.id))) return yield* new InitializeFailed({ id, reason: "NotKimapSafe" })
      if (processes.has(id)) return yield* new InitializeFailed({ id, reason: "NameTaken" })
      if (spec.bytes === undefined && spec.handle === "") return yield* new InitializeFailed({ id, reason: "NoCode" })
      const live: Live = {
        record: { id, handle: spec.handle, witVersion: spec.witVersion, onExit: spec.onExit, public: spec.public, capabilities: [] },
        pid: spec.id,
        mailbox: new Mailbox(config.mailboxCapacity),
        host: undefined,
        status: "waiting",
        fiber: undefined,
        bytes: spec.bytes,
        transient: false
      }
      processes.set(id, live)
      router.register(id, live.mailbox, spec.public)
      grants.add(id, [...spec.capabilities, messagingCap(node, id)].map(signCapability))
      return live
    })

  const initialize = (spec: InitSpec) => Effect.flatMap(register(spec), persist)

  /** Starts a registered process's program. */
  const run = (id: string) =>
    Effect.gen(function*() {
      const live = processes.get(id)
      if (live === undefined || live.transient) return yield* new RunFailed({ id, reason: "no such process" })
      if (live.status === "running") return
      const program = yield* loader.load({ id, handle: live.record.handle, witVersion: live.record.witVersion, bytes: live.bytes }).pipe(
        Effect.mapError((e) => new RunFailed({ id, reason: e.message }))
      )
      start(live, program)
    }).pipe(Effect.tapError((e) => Effect.sync(() => print(0, "kernel", `cannot run ${e.id}: ${e.reason}`))))

  const start = (live: Live, program: NativeProgram) => {
    live.host = newHost(live, refusalModeOf(live.record.handle))
    live.status = "running"
    const host = live.host
    live.fiber = Effect.runForkWith(services)(
      // Yield first: the caller (a spawning parent, the boot loop) goes on while the
      // program starts; instantiating a component is the larger part of a spawn.
      Effect.exit(Effect.yieldNow.pipe(Effect.andThen(Effect.suspend(() => program(host))))).pipe(
        Effect.flatMap((exit) => exited(live, host, program, exit)),
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.void
            : Effect.sync(() => print(0, "kernel", `supervisor of ${live.record.id} failed: ${Cause.pretty(cause)}`))
        )
      )
    ) as Fiber.Fiber<void, never>
  }

  const exited = (live: Live, host: ProcessHost, program: NativeProgram, exit: Exit.Exit<void, unknown>) =>
    Effect.gen(function*() {
      if (processes.get(live.record.id) !== live || live.host !== host) return
      const id = live.record.id
      if (Exit.isFailure(exit)) {
        if (Cause.hasInterruptsOnly(exit.cause)) return
        print(0, id, `process ${id} crashed: ${describeCause(exit.cause)}`)
      } else {
        print(2, id, `process ${id} exited`)
      }
      const onExit = host.getOnExit()
      if (onExit._tag === "Restart") {
        live.status = "restarting"
        live.fiber = undefined
        live.mailbox.close()
        router.unregister(id, live.mailbox)
        const wait = backoff.delay(id, clock.currentTimeMillisUnsafe())
        if (wait > 0) yield* Effect.sleep(wait)
        if (processes.get(id) !== live || live.status !== "restarting") return
        live.mailbox = new Mailbox(config.mailboxCapacity)
        router.register(id, live.mailbox, live.record.public)
        start(live, program)
        return
      }
      if (onExit._tag === "Requests") {
        for (const { target, request, blob } of onExit.requests) {
          host.sendRequest(target, { ...request, expectsResponse: undefined }, undefined, blob)
        }
      }
      live.fiber = undefined
      yield* remove(live, true)
    })

  /** Forgets a process: mailbox closed, route gone, record deleted, caps it issued revoked. */
  const remove = (live: Live, revoke: boolean) =>
    Effect.gen(function*() {
      const id = live.record.id
      processes.delete(id)
      live.status = "exited"
      live.mailbox.close()
      router.unregister(id, live.mailbox)
      grants.forget(id)
      if (!live.transient) yield* store.remove(id).pipe(Effect.catch(() => Effect.void))
      if (revoke) yield* persistHolders(grants.revokeIssuedBy(id))
    })

  const kill = (id: string, revoke = true) =>
    Effect.gen(function*() {
      const live = processes.get(id)
      if (live === undefined || live.status === "runtime") return false
      const fiber = live.fiber
      live.fiber = undefined
      yield* remove(live, revoke)
      if (fiber !== undefined) yield* Fiber.interrupt(fiber)
      return true
    })

  const setOnExit = (id: string, onExit: OnExit) =>
    Effect.suspend(() => {
      const live = processes.get(id)
      if (live === undefined) return Effect.void
      live.record = { ...live.record, onExit }
      return persist(live)
    })

  const spawn = (parent: Address, options: SpawnOptions) =>
    Effect.gen(function*() {
      const parentId = parent.process
      const name = options.name ?? BigInt.asUintN(64, nextId() * 0x9e3779b97f4a7c15n).toString()
      const child = pid(`${name}:${parentId.packageName}:${parentId.publisherNode}`)
      const childId = child.toString()
      if (processes.has(childId)) return new SpawnFailed({ reason: "name-taken" })
      const native = options.wasmPath.startsWith(NATIVE_PREFIX)
      const handle = native ? options.wasmPath : normalizeWasmPath(options.wasmPath)
      if (!native && !readableByCaller(parent, handle)) return new SpawnFailed({ reason: "no-file-at-path" })
      // Loading first is the file check: a missing or broken file leaves no trace.
      const program = yield* Effect.result(loader.load({ id: childId, handle, witVersion: 1, bytes: undefined }))
      if (Result.isFailure(program)) {
        print(0, parent.process.toString(), `spawn of ${handle}: ${program.failure.message}`)
        return new SpawnFailed({ reason: "no-file-at-path" })
      }
      const parentKey = parentId.toString()
      const requested = options.requestCapabilities.filter((c) =>
        c.issuer.process.toString() === parentKey || grants.has(parentKey, c)
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
        bytes: undefined
      }))
      if (Result.isFailure(registered)) {
        if (registered.failure.reason === "NotKimapSafe") {
          return yield* Effect.die(new Error(`spawn: ${childId} is not a Kimap-safe process id`))
        }
        return new SpawnFailed({ reason: "name-taken" })
      }
      const touched = new Set([childId, parentKey])
      for (const [grantee, params] of options.grantCapabilities) {
        const holder = grantee.toString()
        if (addGrants(holder, [{ issuer: addressOf(child), params }])) touched.add(holder)
      }
      addGrants(parentKey, [messagingCap(node, childId)])
      // Every record the spawn changed goes into LMDB's ordered write queue now, before
      // the child runs; the one synced commit for them follows in the background
      // (~1 ms of fsync, several times the rest of a spawn). Crash-consistent rather
      // than acknowledged-durable: LMDB commits in order, so any write acknowledged
      // after this point (the child's or the parent's state or kv, a later
      // InitializeProcess) proves the spawn is on disk too, and a crash before one loses
      // the spawn as a whole, never half of it. Kernel commands stay synced.
      yield* Effect.forkDetach(persistHolders(touched), { startImmediately: true })
      start(registered.success, program.success)
      return child
    })

  /**
   * Whether the caller may read the component at `handle` (normalized): a file of its
   * own package, or one on a drive it holds a vfs read (or root) capability for.
   */
  const readableByCaller = (caller: Address, handle: string): boolean => {
    const parts = handle.split("/")
    const pkg = parts[1] ?? ""
    const drive = `/${pkg}/${parts[2] ?? ""}`
    const callerPkg = `${caller.process.packageName}:${caller.process.publisherNode}`
    const vfs = localAddress(node, "vfs:distro:sys")
    return pkg === callerPkg ||
      grants.has(caller.process.toString(), { issuer: vfs, params: JSON.stringify({ kind: "read", drive }) }) ||
      grants.has(caller.process.toString(), { issuer: vfs, params: "{\"root\":true}" })
  }

  // ---- sessions and runtime modules ------------------------------------------------

  const registerTransient = (id: string, isPublic: boolean, capacity: number, status: ProcessStatus) => {
    const live: Live = {
      record: { id, handle: "", witVersion: null, onExit: { _tag: "None" }, public: isPublic, capabilities: [] },
      pid: pid(id),
      mailbox: new Mailbox(capacity),
      host: undefined,
      status,
      fiber: undefined,
      bytes: undefined,
      transient: true
    }
    processes.set(id, live)
    router.register(id, live.mailbox, isPublic)
    return live
  }

  const unregisterTransient = (live: Live) =>
    Effect.sync(() => {
      if (processes.get(live.record.id) === live) processes.delete(live.record.id)
      live.mailbox.close()
      router.unregister(live.record.id, live.mailbox)
      grants.forget(live.record.id)
    })

  const session = (id: string, options: { readonly capabilities: ReadonlyArray<Capability>; readonly public: boolean }) =>
    Effect.gen(function*() {
      const live = registerTransient(id, options.public, config.mailboxCapacity, "runtime")
      grants.add(id, [...options.capabilities, messagingCap(node, id)].map(signCapability))
      live.host = newHost(live, "typed")
      yield* Effect.addFinalizer(() => unregisterTransient(live))
      return live.host as NativeApi
    })

  const runtimeModules: Array<string> = []

  const serve = (name: string, options: ServiceOptions, program: (ctx: ServiceContext) => Effect.Effect<void>) =>
    Effect.gen(function*() {
      const id = `${name}:distro:sys`
      const live = registerTransient(id, options.public, options.mailboxCapacity ?? 100_000, "runtime")
      // Kinode's bootstrap: every runtime module may message every other one and the network.
      for (const other of runtimeModules) {
        grants.add(other, [signCapability(messagingCap(node, id))])
        grants.add(id, [signCapability(messagingCap(node, other))])
      }
      grants.add(id, [messagingCap(node, id), networkCap(node)].map(signCapability))
      runtimeModules.push(id)
      const our = addressOf(live.pid)
      const ctx: ServiceContext = {
        our,
        take: Effect.suspend(function take(): Effect.Effect<KernelMessage> {
          const d = live.mailbox.poll()
          if (d === undefined) return Effect.flatMap(live.mailbox.awaitItem, take)
          return isFailedSend(d) ? take() : Effect.succeed(d)
        }),
        takeBatch: Effect.suspend(function takeBatch(): Effect.Effect<ReadonlyArray<KernelMessage>> {
          const all = live.mailbox.drain().filter((d): d is KernelMessage => !isFailedSend(d))
          return all.length > 0 ? Effect.succeed(all) : Effect.flatMap(live.mailbox.awaitItem, takeBatch)
        }),
        reply: (to, response, blob) => {
          const refused = router.deliver({
            id: to.id,
            source: our,
            target: to.rsvp ?? to.source,
            rsvp: null,
            message: response,
            blob
          })
          return refused === undefined ? undefined : new SendRefused({ target: (to.rsvp ?? to.source).toString(), reason: refused })
        },
        send: (target, request, blob) => {
          const id = nextId()
          const refused = router.deliver({
            id,
            source: our,
            target,
            rsvp: request.expectsResponse !== undefined ? our : null,
            message: request,
            blob
          })
          return refused === undefined ? id : new SendRefused({ target: target.toString(), reason: refused })
        }
      }
      const fiber = yield* Effect.forkScoped(program(ctx).pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.sync(() => print(0, id, `runtime module ${id} failed: ${Cause.pretty(cause)}`))
        )
      ))
      yield* Effect.addFinalizer(() =>
        Effect.andThen(Fiber.interrupt(fiber), unregisterTransient(live)).pipe(
          Effect.andThen(Effect.sync(() => runtimeModules.splice(runtimeModules.indexOf(id), 1)))
        )
      )
    })

  // ---- boot and shutdown ---------------------------------------------------------------

  const boot = Effect.gen(function*() {
    const loaded = yield* store.load.pipe(Effect.catch((e) =>
      Effect.sync(() => {
        print(0, "kernel", `cannot read the process map: ${String(e.cause)}`)
        return { records: [], corrupt: [] }
      })
    ))
    for (const reason of loaded.corrupt) print(0, "kernel", `skipping a corrupt process record: ${reason}`)
    const started: Array<string> = []
    for (const record of loaded.records) {
      const parsed = parseProcessId(record.id)
      if (Result.isFailure(parsed) || Result.isFailure(checkKimapSafe(parsed.success)) || processes.has(record.id)) {
        print(0, "kernel", `skipping stored process ${record.id}`)
        continue
      }
      const live: Live = {
        record,
        pid: parsed.success,
        mailbox: new Mailbox(config.mailboxCapacity),
        host: undefined,
        status: "waiting",
        fiber: undefined,
        bytes: undefined,
        transient: false
      }
      processes.set(record.id, live)
      router.register(record.id, live.mailbox, record.public)
      // Re-sign what this node issued (covers a key rotation), keep the rest as stored.
      grants.add(record.id, record.capabilities.map((c) => c.issuer.node === node ? signCapability(c) : c))
      started.push(record.id)
    }
    for (const id of started) {
      const live = processes.get(id)!
      if (live.record.onExit._tag === "Requests") {
        // Kinode re-fires persisted on-exit requests at boot, to targets it may message.
        for (const { target, request, blob } of live.record.onExit.requests) {
          if (!grants.has(id, { issuer: target, params: "\"messaging\"" }) && processes.get(target.process.toString())?.record.public !== true) continue
          router.deliver({ id: nextId(), source: addressOf(live.pid), target, rsvp: null, message: { ...request, expectsResponse: undefined }, blob })
        }
      }
      yield* Effect.ignore(run(id))
    }
  })

  const shutdown = Effect.gen(function*() {
    const all = Array.from(processes.values()).filter((l) => !l.transient)
    for (const live of all) {
      const fiber = live.fiber
      live.fiber = undefined
      live.status = "exited"
      live.mailbox.close()
      if (fiber !== undefined) yield* Fiber.interrupt(fiber)
      if (live.record.onExit._tag === "None") yield* store.remove(live.record.id).pipe(Effect.catch(() => Effect.void))
    }
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
      mailboxDepth: live.host?.mailboxDepth ?? live.mailbox.size,
      capabilities: grants.list(id)
    }
  }

  yield* Effect.addFinalizer(() => shutdown)

  const kernel: KernelApi = {
    node,
    router,
    grants,
    boot,
    initialize,
    run,
    kill,
    grant,
    drop,
    setOnExit,
    info,
    processes: () => Array.from(processes.keys()).map((id) => info(id)!),
    session,
    call,
    spawn,
    shutdown,
    signCapability
  }
  const runtime = Runtime.of({
    node,
    serve,
    hasCapability: (holder, cap) => grants.has(holder.toString(), cap),
    grantCapabilities: (holder, caps) => grant(holder.toString(), caps),
    dropCapabilities: (holder, caps) => drop(holder.toString(), caps),
    processExists: (id) => processes.has(id.toString())
  })
  return { kernel, runtime, settleCall }
})


const describeCause = (cause: Cause.Cause<unknown>): string => {
  const text = Cause.pretty(cause)
  return text.length > 5000 ? `${text.slice(0, 5000)}...` : text
}

/** `/pkg:pub/path` with a leading slash, as Kinode stores handles. */
export const normalizeWasmPath = (path: string): string => (path.startsWith("/") ? path : `/${path}`)

/** Services the kernel layer builds: the kernel itself and the `Runtime` view services use. */
export const makeKernelLayer = Layer.effectContext(
  Effect.gen(function*() {
    const { kernel, runtime, settleCall } = yield* makeKernel
    return Context.make(Kernel, kernel).pipe(Context.add(Runtime, runtime), Context.add(KernelCalls, { settleCall }))
  })
)

/** Lets the kernel command module hand responses to the kernel's own pending calls. */
export class KernelCalls extends Context.Service<KernelCalls, {
  readonly settleCall: (km: KernelMessage) => boolean
}>()("kernel/KernelCalls") {}
