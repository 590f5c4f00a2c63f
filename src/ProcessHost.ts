/**
 * The kernel side of one process: Kinode's per-process host state and the exact
 * send/receive semantics of `kinode:process` (§3.2-3.5), shared by native actors and
 * Wasm processes.
 *
 * It keeps the "prompting message" (what `send-response` answers), the newest blob,
 * one context entry per outstanding request that expects a response (with its
 * timer), and a queue of items set aside while `send-and-await-response` waited.
 * Responses and failures without a context entry are dropped: unsolicited, late and
 * duplicate responses never reach the process, and each outstanding request resolves
 * exactly once.
 */
import { Effect } from "effect"
import { capabilityKey, type GrantTable, signingBytes } from "./Capabilities.ts"
import type { Address, ProcessId } from "./Ids.ts"
import type { Mailbox } from "./Mailbox.ts"
import type {
  Capability,
  KernelMessage,
  LazyLoadBlob,
  Message,
  OnExit,
  Received,
  Request,
  Response,
  SendError,
  SignedCapability
} from "./Message.ts"
import {
  NothingToAnswer,
  type ProcessApi,
  ProcessTrap,
  type RefusalReason,
  type SpawnFailed,
  type SpawnOptions,
  SendRefused
} from "./ProcessApi.ts"
import { type Delivery, isFailedSend, type RouterCore } from "./Router.ts"
import type { TimeoutHandle } from "./Timeouts.ts"

/** What a process host asks of the kernel for the calls that are not plain messaging. */
export interface HostKernel {
  readonly sign: (bytes: Uint8Array) => Uint8Array
  readonly schedule: (seconds: number, fire: () => void) => TimeoutHandle
  readonly print: (level: number, source: string, text: string) => void
  readonly nextId: () => bigint
  readonly getState: (id: ProcessId) => Promise<Uint8Array | undefined>
  readonly setState: (id: ProcessId, bytes: Uint8Array) => Promise<void>
  readonly clearState: (id: ProcessId) => Promise<void>
  readonly spawn: (parent: Address, options: SpawnOptions) => Promise<ProcessId | SpawnFailed>
  /** `received`: whether the process got `cap` on a message (it may keep those, §4.4). */
  readonly saveCapabilities: (
    holder: ProcessId,
    caps: ReadonlyArray<Capability>,
    received: (cap: Capability) => boolean
  ) => Promise<void>
  readonly dropCapabilities: (holder: ProcessId, caps: ReadonlyArray<Capability>) => Promise<void>
  readonly setOnExit: (id: ProcessId, onExit: OnExit) => void
}

interface Outstanding {
  readonly prompting: KernelMessage | undefined
  readonly context: Uint8Array | undefined
  readonly target: Address
  readonly request: Request
  readonly blob: LazyLoadBlob | undefined
  readonly timer: TimeoutHandle | undefined
}

/** Received caps remembered per process for `save-capabilities`. */
const MAX_RECEIVED_CAPS = 1024

/**
 * How a refused send reaches the sender. Native senders get the typed refusal back;
 * Wasm senders (whose WIT knows only offline/timeout) see `SendError { timeout }`.
 */
export type RefusalMode = "typed" | "send-error"

export class ProcessHost implements ProcessApi {
  readonly our: Address
  private readonly ourId: string
  private prompting: KernelMessage | undefined = undefined
  private latestBlob: LazyLoadBlob | undefined = undefined
  private latestHadBlob = false
  private readonly contexts = new Map<bigint, Outstanding>()
  private readonly setAside: Array<Delivery> = []
  /** Keys of caps that arrived on accepted messages, newest last (bounded). */
  private readonly receivedCaps = new Set<string>()
  private onExit: OnExit
  private readonly mailbox: Mailbox<Delivery>
  private readonly router: RouterCore
  private readonly grants: GrantTable
  private readonly kernel: HostKernel
  private readonly refusalMode: RefusalMode

  constructor(options: {
    readonly our: Address
    readonly onExit: OnExit
    readonly mailbox: Mailbox<Delivery>
    readonly router: RouterCore
    readonly grants: GrantTable
    readonly kernel: HostKernel
    readonly refusalMode: RefusalMode
  }) {
    this.our = options.our
    this.ourId = options.our.process.toString()
    this.onExit = options.onExit
    this.mailbox = options.mailbox
    this.router = options.router
    this.grants = options.grants
    this.kernel = options.kernel
    this.refusalMode = options.refusalMode
    this.mailbox.awaitsResponse = (id) => this.contexts.has(id)
  }

  get mailboxDepth(): number {
    return this.mailbox.size + this.setAside.length
  }

  get outstandingRequests(): number {
    return this.contexts.size
  }

  printToTerminal = (verbosity: number, text: string): void => {
    this.kernel.print(verbosity, this.ourId, `${this.our.process.packageName}:${this.our.process.publisherNode}: ${text}`)
  }

  getOnExit = (): OnExit => this.onExit

  setOnExit = (onExit: OnExit): void => {
    this.onExit = onExit
    this.kernel.setOnExit(this.our.process, onExit)
  }

  getState = (): Promise<Uint8Array | undefined> => this.kernel.getState(this.our.process)
  setState = (bytes: Uint8Array): Promise<void> => this.kernel.setState(this.our.process, bytes)
  clearState = (): Promise<void> => this.kernel.clearState(this.our.process)
  spawn = (options: SpawnOptions): Promise<ProcessId | SpawnFailed> => this.kernel.spawn(this.our, options)
  saveCapabilities = (caps: ReadonlyArray<Capability>): Promise<void> =>
    this.kernel.saveCapabilities(this.our.process, caps, (c) => this.receivedCaps.has(capabilityKey(c.issuer, c.params)))
  dropCapabilities = (caps: ReadonlyArray<Capability>): Promise<void> =>
    this.kernel.dropCapabilities(this.our.process, caps)
  ourCapabilities = (): ReadonlyArray<Capability> =>
    this.grants.list(this.ourId).map((c) => ({ issuer: c.issuer, params: c.params }))

  hasBlob = (): boolean => this.latestHadBlob
  getBlob = (): LazyLoadBlob | undefined => this.latestHadBlob ? this.latestBlob : undefined
  lastBlob = (): LazyLoadBlob | undefined => this.latestBlob

  // ---- receiving -------------------------------------------------------------

  /** Turns a delivery into what the process sees, or undefined if it must be dropped (§3.4). */
  private accept(d: Delivery): Received | undefined {
    if (isFailedSend(d)) {
      const entry = this.contexts.get(d.id)
      if (entry === undefined) return undefined
      this.settle(d.id, entry)
      this.latestHadBlob = false
      return { _tag: "SendError", error: d.error, context: entry.context }
    }
    const msg = d.message
    if (msg._tag === "Response") {
      const entry = this.contexts.get(d.id)
      if (entry === undefined) return undefined
      this.settle(d.id, entry)
      this.takeBlob(d.blob)
      if (msg.capabilities.length > 0) this.noteCaps(msg.capabilities)
      return {
        _tag: "Message",
        source: d.source,
        message: entry.context === undefined && msg.context === undefined ? msg : { ...msg, context: entry.context }
      }
    }
    this.takeBlob(d.blob)
    if (msg.capabilities.length > 0) this.noteCaps(msg.capabilities)
    if (msg.expectsResponse !== undefined || d.rsvp !== null) this.prompting = d
    return { _tag: "Message", source: d.source, message: msg }
  }

  /** Remembers caps a message carried, so `save-capabilities` can keep them. */
  private noteCaps(caps: ReadonlyArray<Capability>): void {
    for (const c of caps) {
      const key = capabilityKey(c.issuer, c.params)
      this.receivedCaps.delete(key)
      this.receivedCaps.add(key)
      if (this.receivedCaps.size > MAX_RECEIVED_CAPS) this.receivedCaps.delete(this.receivedCaps.values().next().value!)
    }
  }

  private settle(id: bigint, entry: Outstanding): void {
    this.contexts.delete(id)
    if (entry.timer !== undefined) entry.timer.cancel()
    this.prompting = entry.prompting
  }

  private takeBlob(blob: LazyLoadBlob | undefined): void {
    this.latestHadBlob = blob !== undefined
    if (blob !== undefined) this.latestBlob = blob
  }

  private nextDelivery(): Delivery | undefined {
    if (this.setAside.length === 0) return this.mailbox.poll()
    const d = this.setAside.shift()!
    this.mailbox.unhold(d)
    return d
  }

  /** Keeps an item for a later `receive`; it still counts against the mailbox bound. */
  private putAside(d: Delivery): void {
    this.mailbox.hold(d)
    this.setAside.push(d)
  }

  tryReceive = (): Received | undefined => {
    let d = this.nextDelivery()
    while (d !== undefined) {
      const r = this.accept(d)
      if (r !== undefined) return r
      d = this.nextDelivery()
    }
    return undefined
  }

  receive = (): Promise<Received> => {
    const now = this.tryReceive()
    if (now !== undefined) return Promise.resolve(now)
    return new Promise((resolve, reject) => {
      const attempt = () => {
        if (this.mailbox.isClosed) return reject(new ProcessTrap({ process: this.ourId, reason: "process was killed" }))
        const r = this.tryReceive()
        if (r !== undefined) resolve(r)
        else this.mailbox.onNext(attempt)
      }
      this.mailbox.onNext(attempt)
    })
  }

  /** `receive` for native programs: no Promise per message. */
  readonly receiveEffect: Effect.Effect<Received> = Effect.suspend(() => {
    const now = this.tryReceive()
    return now !== undefined ? Effect.succeed(now) : Effect.flatMap(this.mailbox.awaitItem, () => this.receiveEffect)
  })

  // ---- sending ---------------------------------------------------------------

  /**
   * Kinode's outgoing filter (§4.4): self-issued caps are signed fresh, held ones keep
   * their signature, the rest are dropped. Self-issued means by this process on this
   * node: Kinode compares only the process part, so it signed `other.os@<sender>` [quirk fixed].
   */
  private filterCaps(caps: ReadonlyArray<Capability>): ReadonlyArray<SignedCapability> {
    if (caps.length === 0) return caps as ReadonlyArray<SignedCapability>
    const out: Array<SignedCapability> = []
    for (const cap of caps) {
      if (cap.issuer.node === this.our.node && cap.issuer.process.toString() === this.ourId) {
        out.push({ issuer: cap.issuer, params: cap.params, signature: this.kernel.sign(signingBytes(cap)) })
      } else {
        const held = this.grants.get(this.ourId, capabilityKey(cap.issuer, cap.params))
        if (held !== undefined) out.push(held)
      }
    }
    return out
  }

  private refuse(target: Address, reason: RefusalReason): SendRefused {
    return new SendRefused({ target: target.toString(), reason })
  }

  sendRequest = (
    target: Address,
    request: Request,
    context: Uint8Array | undefined,
    blob: LazyLoadBlob | undefined
  ): SendRefused | undefined => this.send(target, request, context, blob).refused

  /** §3.2; returns the id the request went out with. */
  private send(
    target: Address,
    request: Request,
    context: Uint8Array | undefined,
    blob: LazyLoadBlob | undefined
  ): { readonly id: bigint; readonly refused: SendRefused | undefined } {
    const inheritFrom = request.inherit ? this.prompting : undefined
    const id = inheritFrom !== undefined ? inheritFrom.id : this.kernel.nextId()
    const sentBlob = blob ?? (request.inherit ? this.latestBlob : undefined)
    const caps = this.filterCaps(request.capabilities)
    const req: Request = caps === request.capabilities ? request : { ...request, capabilities: caps }
    const expects = request.expectsResponse
    const resolvedTarget = this.router.resolveOur(target)
    let timer: TimeoutHandle | undefined
    if (expects !== undefined) {
      timer = this.kernel.schedule(Number(expects), () => {
        this.router.fail(this.our, id, { kind: "timeout", target: resolvedTarget, message: req, blob: sentBlob })
      })
      this.contexts.set(id, { prompting: this.prompting, context, target: resolvedTarget, request: req, blob: sentBlob, timer })
    }
    const km: KernelMessage = {
      id,
      source: this.our,
      target: resolvedTarget,
      rsvp: expects !== undefined ? this.our : inheritFrom !== undefined ? inheritFrom.rsvp : null,
      message: req,
      blob: sentBlob
    }
    const refused = this.router.deliver(km)
    if (refused === undefined) return { id, refused: undefined }
    this.kernel.print(refused === "CapabilityDenied" ? 0 : 2, this.ourId, `message to ${resolvedTarget} refused: ${refused}`)
    if (expects !== undefined) {
      if (this.refusalMode === "send-error" || refused !== "MailboxFull") {
        // Kinode: an immediate timeout, delivered like any other failure.
        timer!.cancel()
        this.mailbox.offerInternal({
          _tag: "FailedSend",
          id,
          error: { kind: refused === "Offline" ? "offline" : "timeout", target: resolvedTarget, message: req, blob: sentBlob }
        })
      } else {
        this.contexts.delete(id)
        timer!.cancel()
      }
    }
    return { id, refused: this.refuse(resolvedTarget, refused) }
  }

  sendResponse = (response: Response, blob: LazyLoadBlob | undefined): SendRefused | NothingToAnswer | undefined => {
    const prompting = this.prompting
    if (prompting === undefined) {
      this.kernel.print(0, this.ourId, `${this.ourId}: send-response with no request to answer`)
      return new NothingToAnswer({ process: this.ourId })
    }
    const caps = this.filterCaps(response.capabilities)
    const km: KernelMessage = {
      id: prompting.id,
      source: this.our,
      target: prompting.rsvp ?? prompting.source,
      rsvp: null,
      message: caps === response.capabilities && response.context === undefined
        ? response
        : { ...response, capabilities: caps, context: undefined },
      blob: response.inherit ? this.latestBlob : blob
    }
    const refused = this.router.deliver(km)
    if (refused === undefined) return undefined
    this.kernel.print(2, this.ourId, `response to ${km.target} refused: ${refused}`)
    return this.refuse(km.target, refused)
  }

  sendAndAwaitResponse = (
    target: Address,
    request: Request,
    blob: LazyLoadBlob | undefined
  ): Promise<{ readonly source: Address; readonly message: Message } | SendError | ProcessTrap> => {
    const trap = this.checkAwaitable(target, request)
    if (trap !== undefined) return Promise.resolve(trap)
    const id = this.startAwait(target, request, blob)
    return new Promise((resolve) => {
      const attempt = () => {
        const r = this.pollAwaited(id)
        if (r !== undefined) resolve(r)
        else if (this.mailbox.isClosed) resolve(new ProcessTrap({ process: this.ourId, reason: "process was killed" }))
        else this.mailbox.onNext(attempt)
      }
      attempt()
    })
  }

  /** `send-and-await-response` for native programs. */
  sendAndAwaitEffect = (
    target: Address,
    request: Request,
    blob?: LazyLoadBlob
  ): Effect.Effect<{ readonly source: Address; readonly message: Message } | SendError, ProcessTrap> =>
    Effect.suspend(() => {
      const trap = this.checkAwaitable(target, request)
      if (trap !== undefined) return Effect.fail(trap)
      const id = this.startAwait(target, request, blob)
      const wait: Effect.Effect<{ readonly source: Address; readonly message: Message } | SendError, ProcessTrap> =
        Effect.suspend(() => {
          const r = this.pollAwaited(id)
          if (r instanceof ProcessTrap) return Effect.fail(r)
          if (r !== undefined) return Effect.succeed(r)
          if (this.mailbox.isClosed) return Effect.fail(new ProcessTrap({ process: this.ourId, reason: "killed" }))
          return Effect.flatMap(this.mailbox.awaitItem, () => wait)
        })
      return wait
    })

  private checkAwaitable(target: Address, request: Request): ProcessTrap | undefined {
    if (request.expectsResponse === undefined) {
      return new ProcessTrap({ process: this.ourId, reason: "send-and-await-response needs expects-response" })
    }
    if (this.router.resolveOur(target).toString() === this.our.toString()) {
      return new ProcessTrap({ process: this.ourId, reason: "send-and-await-response to itself" })
    }
    return undefined
  }

  private startAwait(target: Address, request: Request, blob: LazyLoadBlob | undefined): bigint {
    return this.send(target, request, undefined, blob).id
  }

  /** Looks for the awaited id among set-aside items and then the mailbox, setting others aside. */
  private pollAwaited(id: bigint): { readonly source: Address; readonly message: Message } | SendError | ProcessTrap | undefined {
    for (let i = 0; i < this.setAside.length; i++) {
      const d = this.setAside[i]!
      if (d.id === id && (isFailedSend(d) || d.message._tag === "Response")) {
        this.setAside.splice(i, 1)
        this.mailbox.unhold(d)
        return this.resolveAwaited(d)
      }
    }
    let d = this.mailbox.poll()
    while (d !== undefined) {
      if (d.id === id) {
        if (!isFailedSend(d) && d.message._tag === "Request") {
          return new ProcessTrap({ process: this.ourId, reason: "received a request carrying the awaited id" })
        }
        const r = this.resolveAwaited(d)
        if (r !== undefined) return r
      } else if (isFailedSend(d) || d.message._tag === "Response") {
        if (this.contexts.has(d.id)) this.putAside(d)
      } else {
        this.putAside(d)
      }
      d = this.mailbox.poll()
    }
    return undefined
  }

  private resolveAwaited(d: Delivery): { readonly source: Address; readonly message: Message } | SendError | undefined {
    const r = this.accept(d)
    if (r === undefined) return undefined
    return r._tag === "SendError" ? r.error : { source: r.source, message: r.message }
  }
}

