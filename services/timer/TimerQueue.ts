/**
 * The active timers: a binary min-heap ordered by (deadline, set order), so timers fire
 * in deadline order and timers with equal deadlines in the order they were set; with a
 * count per owner (the process that set them) for the per-process bound.
 */
import type { KernelMessage } from "../../src/Message.ts"

export interface Timer {
  /** Monotonic milliseconds (fractional) at which it fires, never before. */
  readonly deadline: number
  /** Set order, breaking ties between equal deadlines. */
  readonly seq: number
  /** The process that set it (a ProcessId string). */
  readonly owner: string
  /** What the answer is addressed from: id, source, rsvp (no body, no blob kept). */
  readonly request: KernelMessage
}

const before = (a: Timer, b: Timer): boolean => a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq)

export class TimerQueue {
  private readonly heap: Array<Timer> = []
  private readonly perOwner = new Map<string, number>()
  private nextSeq = 0

  get size(): number {
    return this.heap.length
  }

  /** How many active timers `owner` has. */
  countOf(owner: string): number {
    return this.perOwner.get(owner) ?? 0
  }

  add(deadline: number, owner: string, request: KernelMessage): Timer {
    const timer: Timer = { deadline, seq: this.nextSeq++, owner, request }
    const heap = this.heap
    heap.push(timer)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(timer, heap[parent]!)) break
      heap[i] = heap[parent]!
      i = parent
    }
    heap[i] = timer
    this.perOwner.set(owner, this.countOf(owner) + 1)
    return timer
  }

  /** The next timer to fire. */
  peek(): Timer | undefined {
    return this.heap[0]
  }

  /** Removes and returns the next timer to fire. */
  pop(): Timer | undefined {
    const heap = this.heap
    const top = heap[0]
    if (top === undefined) return undefined
    const last = heap.pop()!
    if (heap.length > 0) {
      let i = 0
      const n = heap.length
      while (true) {
        const l = 2 * i + 1
        if (l >= n) break
        const r = l + 1
        const child = r < n && before(heap[r]!, heap[l]!) ? r : l
        if (!before(heap[child]!, last)) break
        heap[i] = heap[child]!
        i = child
      }
      heap[i] = last
    }
    const left = this.countOf(top.owner) - 1
    if (left === 0) this.perOwner.delete(top.owner)
    else this.perOwner.set(top.owner, left)
    return top
  }

  /** The first `limit` timers in firing order (for `Debug`). */
  firstInOrder(limit: number): Array<Timer> {
    return [...this.heap].sort((a, b) => (before(a, b) ? -1 : 1)).slice(0, limit)
  }
}
