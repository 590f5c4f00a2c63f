/**
 * The router: the only path between processes.
 *
 * `deliver` is synchronous and allocation-light because every message crosses it.
 * In order it: resolves the node literal `our`, refuses oversized messages, hands
 * messages for other nodes to `net` (sender must hold `network`), and for local
 * targets checks the source is known, the target is registered and alive, and that
 * the target is `public` or the source holds `{issuer: <us>@<target>, params: "messaging"}`
 * (Kinode's pipeline, §3.7; sources `kernel`, `state` and `vfs` are exempt). Responses
 * are checked exactly like requests. One process's messages to another arrive in send
 * order because delivery is a synchronous append to the target's mailbox.
 *
 * `deliver` answers with a value, not an Effect failure: it is the hot path (a million
 * messages a second), and a refusal is an ordinary outcome the caller turns into its
 * own error (a typed `SendRefused`, or Kinode's `SendError` for a Wasm sender).
 *
 * The router is private to the kernel: services reach it only by sending messages,
 * the network only through the `Net` port it is built with.
 *
 * Only the exact id `kernel:distro:sys` is the kernel. Kinode routes any process
 * *named* `kernel` to its command handler [quirk]; here such a process is ordinary.
 */
import { capabilityKey, type GrantTable } from "./Capabilities.ts"
import { Address } from "./Ids.ts"
import type { RouteTrace } from "./KernelEvents.ts"
import type { Mailbox } from "./Mailbox.ts"
import { type KernelMessage, MAX_MESSAGE_BYTES, messageSize, type SendError } from "./Message.ts"
import type { RefusalReason } from "./ProcessApi.ts"

/** What sits in a mailbox: a message, or a failure of one of the owner's own requests. */
export type Delivery = KernelMessage | FailedSend

export interface FailedSend {
  readonly _tag: "FailedSend"
  /** The id of the request that failed. */
  readonly id: bigint
  readonly error: SendError
}

export const isFailedSend = (d: Delivery): d is FailedSend => (d as FailedSend)._tag === "FailedSend"

/** Bytes a delivery holds in a mailbox: a message's size; a failure holds nothing new (its request is the owner's). */
export const deliverySize = (d: Delivery): number => (d as FailedSend)._tag === "FailedSend" ? 0 : messageSize(d as KernelMessage)

export interface RouteEntry {
  readonly id: string
  readonly mailbox: Mailbox<Delivery>
  public: boolean
  /** Kernel, state and vfs skip the messaging check as senders. */
  readonly exempt: boolean
  /** Precomputed key of the messaging capability to this process. */
  readonly messagingKey: string
}

/** Hands a message for another node to the network; returns a refusal or nothing (the `Net` port's `send`). */
export type RemoteSend = (km: KernelMessage) => RefusalReason | undefined

const EXEMPT_SOURCES = new Set(["kernel:distro:sys", "state:distro:sys", "vfs:distro:sys"])

export class RouterCore {
  private readonly entries = new Map<string, RouteEntry>()
  private readonly remote: RemoteSend
  readonly node: string
  private readonly grants: GrantTable
  private readonly networkKey: string
  private readonly trace: RouteTrace | undefined

  /** `trace`: told of every message when its `on()` says so (verbosity 3, KernelEvents.ts). */
  constructor(node: string, grants: GrantTable, remote: RemoteSend, trace?: RouteTrace) {
    this.node = node
    this.grants = grants
    this.remote = remote
    this.networkKey = capabilityKey(`${node}@kernel:distro:sys`, "\"network\"")
    this.trace = trace
  }

  register(id: string, mailbox: Mailbox<Delivery>, isPublic: boolean): RouteEntry {
    const entry: RouteEntry = {
      id,
      mailbox,
      public: isPublic,
      exempt: EXEMPT_SOURCES.has(id),
      messagingKey: capabilityKey(`${this.node}@${id}`, "\"messaging\"")
    }
    this.entries.set(id, entry)
    return entry
  }

  unregister(id: string, mailbox: Mailbox<Delivery>): void {
    if (this.entries.get(id)?.mailbox === mailbox) this.entries.delete(id)
  }

  lookup(id: string): RouteEntry | undefined {
    return this.entries.get(id)
  }

  ids(): Array<string> {
    return Array.from(this.entries.keys())
  }

  /** Rewrites the node literal `our` to this node's name. */
  resolveOur(addr: Address): Address {
    return addr.node === "our" ? new Address({ node: this.node, process: addr.process }, { disableChecks: true }) : addr
  }

  /** Routes one message. Undefined means it is in the target's mailbox (or with `net`). */
  deliver(input: KernelMessage): RefusalReason | undefined {
    const refused = this.route(input)
    // One cheap read per message; the event line is built only at verbosity 3.
    if (this.trace !== undefined && this.trace.on()) this.trace.routed(input, refused)
    return refused
  }

  private route(input: KernelMessage): RefusalReason | undefined {
    let km = input
    if (km.target.node === "our" || km.source.node === "our") {
      km = { ...km, target: this.resolveOur(km.target), source: this.resolveOur(km.source) }
    }
    const size = messageSize(km)
    if (size > MAX_MESSAGE_BYTES) return "MessageTooLarge"
    const sourceId = km.source.process.toString()
    if (km.target.node !== this.node) {
      if (km.source.node !== this.node) return "UnknownSource"
      if (!this.entries.has(sourceId)) return "UnknownSource"
      if (!this.grants.holds(sourceId, this.networkKey)) return "NoNetworkCapability"
      return this.remote(km)
    }
    const target = this.entries.get(km.target.process.toString())
    if (km.source.node !== this.node) {
      // From another node: the target must exist and hold `network`; no messaging check.
      if (target === undefined) return "NoSuchProcess"
      if (!this.grants.holds(target.id, this.networkKey)) return "NoNetworkCapability"
    } else {
      const source = this.entries.get(sourceId)
      if (source === undefined) return "UnknownSource"
      if (target === undefined) return "NoSuchProcess"
      if (!source.exempt && !target.public && !this.grants.holds(sourceId, target.messagingKey)) {
        return "CapabilityDenied"
      }
    }
    const mailbox = target.mailbox
    if (mailbox.isClosed) return "NotRunning"
    const accepted = km.message._tag === "Response" && mailbox.awaitsResponse?.(km.id) === true
      ? mailbox.offerInternal(km, true)
      : mailbox.offer(km, size)
    return accepted ? undefined : "MailboxFull"
  }

  /** Hands a failure of `to`'s request `id` back to it (a timer, or `net` giving up). */
  fail(to: Address, id: bigint, error: SendError): boolean {
    if (to.node !== this.node && to.node !== "our") return false
    const entry = this.entries.get(to.process.toString())
    const delivered = entry === undefined ? false : entry.mailbox.offerInternal({ _tag: "FailedSend", id, error })
    if (this.trace !== undefined && this.trace.on()) this.trace.failed(to, id, error, delivered)
    return delivered
  }
}
