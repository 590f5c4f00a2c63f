/**
 * The host side of preemption (see `Metering.ts` for the guest side): one `GuestMeter`
 * per running instance answers its fuel checks, counts its CPU time, suspends it when
 * its slice is used up and stops it past its budgets or when it is killed; one
 * `GuestScheduler` per node resumes suspended guests round-robin, at most one per
 * event-loop turn, so timers, I/O and every other process run between two slices.
 *
 * When a guest may suspend. A JSPI `Suspending` import traps unless every frame
 * between it and the `WebAssembly.promising` entry is Wasm. jco enters a guest through
 * `promising` only for `init`; it calls `cabi_realloc`, post-returns, `_initialize`
 * and start functions synchronously, often from inside a host import the guest
 * called. So every export jco can call from JS is wrapped (`instantiateCore`) to count
 * how deep the guest is inside synchronous entries (`depth`); the same functions passed
 * from one core instance to another as imports are unwrapped again, so Wasm-to-Wasm
 * links keep no JS frame. The guest suspends only at depth 0 (inside `init`). At
 * depth > 0 it cannot: it keeps running, and is stopped with a trap if it holds the
 * loop longer than `unpreemptibleMs` there, or goes past a budget.
 *
 * Stopping. A guest past a budget, or killed, is never resumed: its `suspend` promise
 * never settles, the instance is dropped, and `outcome` rejects with `GuestStopped` so
 * the host ends the process at once. Where it cannot suspend, the check traps it with
 * a real Wasm trap (`unreachable` in a helper module) rather than a JS exception, and
 * every later check traps again.
 */

/** CPU limits of one process, in milliseconds. */
export interface CpuLimits {
  /**
   * How long a guest runs before it yields the event loop. Every chain of dependent
   * event-loop turns elsewhere (a kernel command is three fiber hops) waits up to one
   * slice per turn while a guest spins, so slices are short: 5 ms kept `KillProcess`
   * of a spinner under 20 ms; a suspend and resume costs ~4 us.
   */
  readonly sliceMs: number
  /** CPU for one message: from one `receive` to the next (`init` up to its first `receive` counts as one). */
  readonly perMessageMs: number
  /** CPU over the process's run (from start or restart). */
  readonly totalMs: number
  /** How long a guest may run where it cannot be suspended (a synchronous entry such as `cabi_realloc`). */
  readonly unpreemptibleMs: number
}

export const defaultCpuLimits: CpuLimits = {
  sliceMs: 5,
  perMessageMs: 60_000,
  totalMs: Number.POSITIVE_INFINITY,
  unpreemptibleMs: 1_000
}

export type StopReason = "CpuPerMessage" | "CpuTotal" | "Unpreemptible"

/** Why a guest was stopped; the process ends with it. */
export class GuestStopped extends Error {
  override readonly name = "GuestStopped"
  readonly reason: StopReason
  readonly usedMs: number
  readonly limitMs: number
  constructor(reason: StopReason, usedMs: number, limitMs: number) {
    const used = Math.round(usedMs)
    super(
      reason === "CpuPerMessage"
        ? `used ${used} ms of CPU on one message, past its budget of ${limitMs} ms`
        : reason === "CpuTotal"
        ? `used ${used} ms of CPU in total, past its budget of ${limitMs} ms`
        : `held the event loop for ${used} ms where it could not be preempted (limit ${limitMs} ms)`
    )
    this.reason = reason
    this.usedMs = usedMs
    this.limitMs = limitMs
  }
}

/** JSPI (Node 24); not in TypeScript's lib yet. */
const Suspending = (WebAssembly as unknown as {
  readonly Suspending: new(fn: () => Promise<number>) => object
}).Suspending

const NEVER: Promise<number> = new Promise<number>(() => {})

/** `(module (func (export "trap") unreachable))`: a trap Wasm handlers cannot catch. */
const TRAP_MODULE = Uint8Array.from([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
  0x03, 0x02, 0x01, 0x00, // func 0: type 0
  0x07, 0x08, 0x01, 0x04, 0x74, 0x72, 0x61, 0x70, 0x00, 0x00, // export "trap" func 0
  0x0a, 0x05, 0x01, 0x03, 0x00, 0x00, 0x0b // code: unreachable end
])
let trapFn: (() => void) | undefined
const trap = (): never => {
  trapFn ??= new WebAssembly.Instance(new WebAssembly.Module(TRAP_MODULE)).exports["trap"] as () => void
  trapFn()
  throw new Error("unreachable")
}

// ---- scheduler --------------------------------------------------------------------

interface Waiter {
  resume: (() => void) | undefined
}

const nextTurn: (f: () => void) => void = typeof setImmediate === "function" ? setImmediate : (f) => setTimeout(f, 0)

/** Resumes suspended guests in arrival order, one per event-loop turn. */
export class GuestScheduler {
  private readonly queue: Array<Waiter> = []
  private pumping = false

  /** Guests waiting for a slice. */
  get waiting(): number {
    return this.queue.length
  }

  /** Resolves on the guest's next turn; `cancel` drops it (the promise never settles). */
  enqueue(): { readonly turn: Promise<void>; readonly cancel: () => void } {
    const waiter: Waiter = { resume: undefined }
    const turn = new Promise<void>((resolve) => {
      waiter.resume = resolve
    })
    this.queue.push(waiter)
    if (!this.pumping) {
      this.pumping = true
      nextTurn(this.pump)
    }
    return { turn, cancel: () => void (waiter.resume = undefined) }
  }

  private readonly pump = (): void => {
    let waiter = this.queue.shift()
    while (waiter !== undefined && waiter.resume === undefined) waiter = this.queue.shift()
    waiter?.resume?.()
    if (this.queue.length > 0) nextTurn(this.pump)
    else this.pumping = false
  }
}

// ---- meter ------------------------------------------------------------------------

/** Checks aim to come about this often (fuel adapts to the guest's speed). */
const CHECK_EVERY_MS = 0.5
const MIN_FUEL = 100
const MAX_FUEL = 1 << 24

type ImportObject = Record<string, Record<string, unknown>>

/** Export names jco enters through `WebAssembly.promising` (the only async export). */
const ASYNC_EXPORTS = new Set(["init"])

/**
 * One running instance's CPU meter and preemption state.
 *
 * CPU is sampled at the guest's checks: a running span starts at the first check
 * after the guest (re)starts, or when the scheduler resumes it, and ends when it waits
 * for the host or suspends. A handler shorter than one check interval (~0.5 ms) may go
 * uncounted: the budgets are for long runs, and the hot path of a message pays no clock
 * read at all.
 */
export class GuestMeter {
  /** Synchronous entries (from JS) the guest is inside; 0 in `init`'s own stack. */
  private depth = 0
  /** A running span is open: the timestamps below are valid. */
  private running = false
  private sliceStart = 0
  private accountedAt = 0
  private lastCheck = 0
  private fuel = MIN_FUEL * 10
  private cpuTotal = 0
  private cpuMessage = 0
  private killed = false
  private stopped: GuestStopped | undefined
  private pending: { readonly cancel: () => void } | undefined
  private rejectOutcome: ((e: GuestStopped) => void) | undefined
  /** Rejects with `GuestStopped` when a budget stops the guest; never resolves. */
  readonly outcome: Promise<never>
  /** Our JS wrappers of exports, to their Wasm functions. */
  private readonly raw = new WeakMap<object, unknown>()
  /** Whether each module imports the preempt functions. */
  private readonly preempted = new WeakMap<WebAssembly.Module, boolean>()
  private readonly preemptImports: Record<string, unknown>
  private readonly limits: CpuLimits
  private readonly scheduler: GuestScheduler
  private readonly now: () => number

  constructor(options: { readonly limits: CpuLimits; readonly scheduler: GuestScheduler; readonly now?: () => number }) {
    this.limits = options.limits
    this.scheduler = options.scheduler
    this.now = options.now ?? (() => performance.now())
    this.outcome = new Promise<never>((_, reject) => {
      this.rejectOutcome = reject
    })
    this.outcome.catch(() => {})
    this.preemptImports = { check: this.check, suspend: new Suspending(this.suspend) }
  }

  /** CPU counted so far (ms), in total and on the current message. */
  get cpu(): { readonly total: number; readonly message: number } {
    if (this.running) this.charge(this.now())
    return { total: this.cpuTotal, message: this.cpuMessage }
  }

  get stoppedBy(): GuestStopped | undefined {
    return this.stopped
  }

  /** The process is being killed: the guest never runs again. */
  kill(): void {
    this.killed = true
    this.pending?.cancel()
    this.pending = undefined
  }

  /** The guest stops running (it returned, or waits for the host). */
  leave(): void {
    if (!this.running) return
    this.charge(this.now())
    this.running = false
  }

  /**
   * A new message begins (the guest called `receive`). No clock read: CPU since the
   * last check (< one check interval) is counted to the new message.
   */
  nextMessage(): void {
    this.cpuMessage = 0
  }

  /** For host calls that may wait: the guest is off the CPU until `p` settles. */
  waiting<A>(p: Promise<A>): Promise<A> {
    this.leave()
    return p
  }

  private enter(t: number): void {
    this.running = true
    this.sliceStart = this.accountedAt = this.lastCheck = t
  }

  private charge(t: number): void {
    const d = t - this.accountedAt
    this.accountedAt = t
    this.cpuTotal += d
    this.cpuMessage += d
  }

  private stop(reason: StopReason, used: number, limit: number): void {
    if (this.stopped !== undefined) return
    this.stopped = new GuestStopped(reason, used, limit)
    this.rejectOutcome?.(this.stopped)
  }

  /** `kinode:preempt/check`: the next fuel, or 0 when the guest must suspend. */
  private readonly check = (): number => {
    const t = this.now()
    if (this.running) this.charge(t)
    else this.enter(t)
    const limits = this.limits
    if (this.cpuMessage > limits.perMessageMs) this.stop("CpuPerMessage", this.cpuMessage, limits.perMessageMs)
    else if (this.cpuTotal > limits.totalMs) this.stop("CpuTotal", this.cpuTotal, limits.totalMs)
    const held = t - this.sliceStart
    if (this.depth > 0 && held > limits.unpreemptibleMs) this.stop("Unpreemptible", held, limits.unpreemptibleMs)
    if (this.stopped !== undefined || this.killed) return this.depth === 0 ? 0 : trap()
    if (held >= limits.sliceMs && this.depth === 0) return 0
    // Aim the next check CHECK_EVERY_MS ahead, from how fast the last fuel went.
    const since = t - this.lastCheck
    this.lastCheck = t
    if (since < CHECK_EVERY_MS / 2) this.fuel = Math.min(this.fuel * 2, MAX_FUEL)
    else if (since > CHECK_EVERY_MS * 2) this.fuel = Math.max(this.fuel >> 1, MIN_FUEL)
    return this.fuel
  }

  /** `kinode:preempt/suspend` (Suspending): waits for the next slice, or forever once stopped. */
  private readonly suspend = async (): Promise<number> => {
    this.leave()
    if (this.stopped !== undefined || this.killed) return NEVER
    const ticket = this.scheduler.enqueue()
    this.pending = ticket
    await ticket.turn
    this.pending = undefined
    if (this.stopped !== undefined || this.killed) return NEVER
    this.enter(this.now())
    return this.fuel
  }

  private wrapExports(exports: WebAssembly.Exports): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    const meter = this
    for (const [name, value] of Object.entries(exports)) {
      if (typeof value !== "function" || ASYNC_EXPORTS.has(name)) {
        out[name] = value
        continue
      }
      const fn = value as (...args: Array<unknown>) => unknown
      // A synchronous entry: the guest must not suspend until it returns.
      const wrapped = function(this: unknown, ...args: Array<unknown>) {
        meter.depth++
        try {
          return fn.apply(this, args)
        } finally {
          meter.depth--
        }
      }
      this.raw.set(wrapped, fn)
      out[name] = wrapped
    }
    return out
  }

  private unwrapImports(imports: ImportObject | undefined): ImportObject {
    const out: ImportObject = {}
    for (const [module, members] of Object.entries(imports ?? {})) {
      const m: Record<string, unknown> = {}
      for (const [name, value] of Object.entries(members)) {
        m[name] = typeof value === "function" ? this.raw.get(value) ?? value : value
      }
      out[module] = m
    }
    return out
  }

  private importsPreempt(module: WebAssembly.Module): boolean {
    let yes = this.preempted.get(module)
    if (yes === undefined) {
      yes = WebAssembly.Module.imports(module).some((i) => i.module === "kinode:preempt")
      this.preempted.set(module, yes)
    }
    return yes
  }

  /** jco's `instantiateCore` for this instance: links the meter in, wraps exports (see the module comment). */
  readonly instantiateCore = (module: WebAssembly.Module, imports?: ImportObject): { readonly exports: Record<string, unknown> } => {
    const linked = this.unwrapImports(imports)
    if (this.importsPreempt(module)) linked["kinode:preempt"] = this.preemptImports
    // A start function runs inside instantiation: a synchronous entry too.
    this.depth++
    try {
      const instance = new WebAssembly.Instance(module, linked as WebAssembly.Imports)
      return { exports: this.wrapExports(instance.exports) }
    } finally {
      this.depth--
    }
  }
}
