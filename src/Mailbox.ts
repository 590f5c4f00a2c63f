/**
 * A process's bounded mailbox.
 *
 * Leaner than an Effect `Queue`: a plain array with a read cursor and one waiter
 * callback. Offers never block and never grow past `capacity`: a full mailbox
 * refuses the sender (who gets a typed error), so one slow process can neither
 * stall the router (Kinode's full mailbox blocks its whole kernel loop) nor eat
 * unbounded memory. The consumer drains everything waiting in one go.
 *
 * Only kernel-made failures (a sender's own timeouts) bypass the bound: each is
 * tied to one outstanding request of the owner, so they are bounded by those.
 */
import { Effect } from "effect"

export const DEFAULT_MAILBOX_CAPACITY = 1024

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
  readonly capacity: number
  /**
   * Whether the owner awaits a response with this id. Such responses always get in:
   * each outstanding request resolves once, so they are bounded by the owner's own
   * requests, and refusing one would strand a requester that is waiting for it.
   */
  awaitsResponse: ((id: bigint) => boolean) | undefined = undefined

  constructor(capacity: number = DEFAULT_MAILBOX_CAPACITY) {
    this.capacity = capacity
  }

  get size(): number {
    return this.items.length - this.head
  }

  get isClosed(): boolean {
    return this.closed
  }

  /** Adds an item unless the mailbox is full or closed; false means refused. */
  offer(item: A): boolean {
    if (this.closed || this.items.length - this.head + this.held >= this.capacity) return false
    this.push(item)
    return true
  }

  /** Counts `n` items the owner set aside (negative: released) against the bound. */
  hold(n: number): void {
    this.held += n
  }

  /** Adds a kernel-made item regardless of the bound (see the module comment). */
  offerInternal(item: A): boolean {
    if (this.closed) return false
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
    if (this.head === 0) {
      const all = this.items
      this.items = []
      return all
    }
    const rest = this.items.slice(this.head)
    this.items = []
    this.head = 0
    return rest
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

  /** Refuses all later offers, drops what is waiting, and wakes the consumer. */
  close(): Array<A> {
    this.closed = true
    const left = this.drain()
    const w = this.waiter
    this.waiter = undefined
    if (w !== undefined) w()
    return left
  }
}
