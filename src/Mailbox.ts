/**
 * A process's bounded mailbox.
 *
 * Leaner than an Effect `Queue`: a plain array with a read cursor and one waiter
 * callback. Offers never block and never grow past `capacity`: a full mailbox
 * refuses the sender (who gets a typed error), so one slow process can neither
 * stall the router (Kinode's full mailbox blocks its whole kernel loop) nor eat
 * unbounded memory. The consumer drains everything waiting in one go.
 *
 * Mailboxes of processes are bounded in bytes too: each by its own cap, and all of them
 * together by one node-wide budget (`QueuedBytes`), so a silent process cannot hold a
 * thousand 10 MiB messages (a count bound alone let 10 GiB pile up). Past either, the
 * sender is refused as when the count is full.
 *
 * Only kernel-made failures (a sender's own timeouts) and responses the owner awaits
 * bypass the count and the mailbox's own byte cap: each is tied to one outstanding
 * request of the owner, so they are bounded by those. Awaited responses still count
 * against the node-wide budget and are refused past it (the requester's timeout fires).
 */
import { Effect } from "effect"

export const DEFAULT_MAILBOX_CAPACITY = 1024
/** Bytes one process mailbox may hold (bodies, blobs, metadata); room for 6 messages of the 10 MiB limit. */
export const DEFAULT_MAILBOX_BYTES = 64 * 1024 * 1024
/** Bytes all process mailboxes of a node may hold together. */
export const DEFAULT_QUEUED_BYTES = 512 * 1024 * 1024

/** The node-wide budget of queued bytes, shared by every bounded mailbox. */
export class QueuedBytes {
  used = 0
  readonly limit: number
  constructor(limit: number = DEFAULT_QUEUED_BYTES) {
    this.limit = limit
  }
}

/** How a mailbox counts bytes: its own cap, the node's budget, and each item's size. */
export interface ByteBound<A> {
  readonly max: number
  readonly node: QueuedBytes
  readonly sizeOf: (item: A) => number
}

/*
 * Wakes are immediate (the cheapest hand-off for one message in flight), except while
 * a consumer drains a batch: then the wakes it causes wait until the batch is done, so
 * the woken consumers in turn find many items instead of being re-entered per item.
 * This is scheduling state of the one JS thread, not data, hence module-level.
 */
let batchDepth = 0
let deferredWakes: Array<() => void> = []

/** Runs `f` (a consumer handling a batch), holding back the wakes it causes until it returns. */
export const inBatch = <A>(f: () => A): A => {
  batchDepth++
  try {
    return f()
  } finally {
    batchDepth--
    if (batchDepth === 0 && deferredWakes.length > 0) {
      const wakes = deferredWakes
      deferredWakes = []
      for (const w of wakes) w()
    }
  }
}

export class Mailbox<A> {
  private items: Array<A> = []
  private head = 0
  private waiter: (() => void) | undefined = undefined
  private closed = false
  /** Items the owner took out but set aside (send-and-await-response); they still count. */
  private held = 0
  /** Bytes of the items waiting and set aside, all counted in `bound.node` too (until closed). */
  private bytes = 0
  readonly capacity: number
  private readonly bound: ByteBound<A> | undefined
  /**
   * Whether the owner awaits a response with this id. Such responses always get in:
   * each outstanding request resolves once, so they are bounded by the owner's own
   * requests, and refusing one would strand a requester that is waiting for it.
   */
  awaitsResponse: ((id: bigint) => boolean) | undefined = undefined

  constructor(capacity: number = DEFAULT_MAILBOX_CAPACITY, bound?: ByteBound<A>) {
    this.capacity = capacity
    this.bound = bound
  }

  get size(): number {
    return this.items.length - this.head
  }

  /** Bytes waiting or set aside. */
  get queuedBytes(): number {
    return this.bytes
  }

  get isClosed(): boolean {
    return this.closed
  }

  /**
   * Adds an item unless the mailbox is full (in items or bytes), the node's budget of
   * queued bytes is spent, or it is closed; false means refused. `size` is the item's
   * size when the caller has it already.
   */
  offer(item: A, size?: number): boolean {
    if (this.closed || this.items.length - this.head + this.held >= this.capacity) return false
    const bound = this.bound
    if (bound !== undefined) {
      const n = size ?? bound.sizeOf(item)
      if (n > 0) {
        if (this.bytes + n > bound.max || bound.node.used + n > bound.node.limit) return false
        this.bytes += n
        bound.node.used += n
      }
    }
    this.push(item)
    return true
  }

  /** Counts an item the owner set aside (taken out, kept for later) against the bounds. */
  hold(item: A): void {
    this.held++
    this.count(item, 1)
  }

  /** Releases an item `hold` counted. */
  unhold(item: A): void {
    this.held--
    this.count(item, -1)
  }

  private count(item: A, sign: 1 | -1): void {
    const bound = this.bound
    if (bound === undefined || this.closed) return
    const n = bound.sizeOf(item)
    this.bytes += sign * n
    bound.node.used += sign * n
  }

  /**
   * Adds a kernel-made item regardless of the mailbox's bounds (see the module comment),
   * except the node's budget when `budgeted`.
   */
  offerInternal(item: A, budgeted = false): boolean {
    if (this.closed) return false
    const bound = this.bound
    if (bound !== undefined) {
      const n = bound.sizeOf(item)
      if (n > 0) {
        if (budgeted && bound.node.used + n > bound.node.limit) return false
        this.bytes += n
        bound.node.used += n
      }
    }
    this.push(item)
    return true
  }

  private push(item: A): void {
    this.items.push(item)
    const w = this.waiter
    if (w !== undefined) {
      this.waiter = undefined
      if (batchDepth > 0) deferredWakes.push(w)
      else w()
    }
  }

  /** The oldest item, if any. */
  poll(): A | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]!
    this.items[this.head] = undefined as A
    this.head++
    if (this.bound !== undefined) this.count(item, -1)
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  /** Everything waiting, oldest first (possibly empty). */
  drain(): Array<A> {
    let out: Array<A>
    if (this.head === 0) {
      out = this.items
    } else {
      out = this.items.slice(this.head)
      this.head = 0
    }
    this.items = []
    if (this.bound !== undefined && !this.closed) for (const item of out) this.count(item, -1)
    return out
  }

  /** Calls `wake` once, when the next item arrives or the mailbox closes. One waiter at a time. */
  onNext(wake: () => void): void {
    if (this.closed || this.head < this.items.length) wake()
    else this.waiter = wake
  }

  /** Suspends until an item is waiting (or the mailbox closed). */
  readonly awaitItem: Effect.Effect<void> = Effect.callback<void>((resume) => {
    this.onNext(() => resume(Effect.void))
  })

  /** Refuses all later offers, drops what is waiting (and returns what it and set-aside items held of the budget), and wakes the consumer. */
  close(): Array<A> {
    if (this.bound !== undefined) this.bound.node.used -= this.bytes
    this.bytes = 0
    this.closed = true
    const left = this.drain()
    const w = this.waiter
    this.waiter = undefined
    if (w !== undefined) w()
    return left
  }
}
