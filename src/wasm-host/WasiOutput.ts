/**
 * Where a process's stdout and stderr go.
 *
 * Kinode discards a process's stdout and keeps stderr for crash reports;
 * processes print through `print-to-terminal`. We keep that spirit but lose
 * less: stdout lines are printed at verbosity 1 (hidden at the default level 0,
 * visible when debugging), stderr lines at verbosity 2, and the last 5000 bytes
 * of stderr are kept for the crash report of a trap.
 */

export const STDERR_KEEP_BYTES = 5000
/** A line longer than this is printed in pieces rather than buffered without bound. */
const MAX_LINE_BYTES = 64 * 1024

const decoder = new TextDecoder()

/** Splits a byte stream into lines and hands each to `emit`. */
export class LineSink {
  private pending: Array<Uint8Array> = []
  private pendingBytes = 0
  private readonly emit: (line: string) => void
  constructor(emit: (line: string) => void) {
    this.emit = emit
  }
  write(bytes: Uint8Array): void {
    let start = 0
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] === 0x0a) {
        this.push(bytes.subarray(start, i))
        this.flush()
        start = i + 1
      }
    }
    if (start < bytes.length) {
      this.push(bytes.subarray(start))
      if (this.pendingBytes >= MAX_LINE_BYTES) this.flush()
    }
  }
  private push(part: Uint8Array): void {
    if (part.length === 0) return
    this.pending.push(part.slice())
    this.pendingBytes += part.length
  }
  /** Emits whatever is buffered as a line (also used at exit). */
  flush(): void {
    if (this.pending.length === 0) {
      return
    }
    const all = new Uint8Array(this.pendingBytes)
    let at = 0
    for (const p of this.pending) {
      all.set(p, at)
      at += p.length
    }
    this.pending = []
    this.pendingBytes = 0
    this.emit(decoder.decode(all).replace(/\r$/, ""))
  }
}

/** Keeps the last `limit` bytes written. */
export class TailBuffer {
  private chunks: Array<Uint8Array> = []
  private size = 0
  private readonly limit: number
  constructor(limit: number) {
    this.limit = limit
  }
  write(bytes: Uint8Array): void {
    const b = bytes.length > this.limit ? bytes.subarray(bytes.length - this.limit) : bytes
    this.chunks.push(b.slice())
    this.size += b.length
    while (this.size - this.chunks[0]!.length >= this.limit) {
      this.size -= this.chunks.shift()!.length
    }
  }
  text(): string {
    const all = new Uint8Array(this.size)
    let at = 0
    for (const c of this.chunks) {
      all.set(c, at)
      at += c.length
    }
    const tail = all.length > this.limit ? all.subarray(all.length - this.limit) : all
    return decoder.decode(tail)
  }
}
