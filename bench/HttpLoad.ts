/**
 * The http bench's load generator, in a child process of its own so it never shares the
 * server's event loop (on the 2-core machine: the generator on one core, the server on
 * the other). `startLoad()` forks this file; each `run` asks it for one measurement.
 *
 * A run opens `connections` keep-alive TCP connections to `127.0.0.1:<port>` and keeps
 * one `GET <path>` outstanding on each (a new one is written the moment the previous
 * answer is complete), for `warmupMs` unrecorded then `durationMs` recorded. The client
 * is a raw socket with a minimal HTTP/1.1 response parser (status line, Content-Length
 * or chunked) and no client library, so the generator stays cheap (~13 us of CPU a
 * request against the bare server's ~20 us) and its core is not what limits the figures;
 * its CPU use per run is reported so a saturated generator would show. Every answer must
 * be 200 with the expected body, else it counts as an error.
 */
import { type ChildProcess, fork } from "node:child_process"
import * as net from "node:net"
import { fileURLToPath } from "node:url"

export interface LoadSpec {
  readonly port: number
  readonly path: string
  readonly connections: number
  readonly warmupMs: number
  readonly durationMs: number
  /** The body every answer must carry. */
  readonly expect: string
}

export interface LoadResult {
  /** Answers completed within the recorded window. */
  readonly count: number
  /** Answers over the whole run (ramp and the last ones after the window included). */
  readonly total: number
  readonly seconds: number
  /** Wrong status or body, or a connection that failed. */
  readonly errors: number
  /** Per-request latency, write to last byte, in microseconds, sorted. */
  readonly latencies: Float64Array
  /** The generator's CPU time over the window / the window (1 = a whole core). */
  readonly cpu: number
}

const CRLF2 = Buffer.from("\r\n\r\n")

/** Where the response that starts at `at` in `buf` ends (index after it), or -1 if incomplete; its status and body. */
const parseResponse = (buf: Buffer, at: number): { end: number; status: number; body: Buffer } | undefined => {
  const headEnd = buf.indexOf(CRLF2, at)
  if (headEnd < 0) return undefined
  const head = buf.toString("latin1", at, headEnd)
  const status = Number(head.slice(9, 12))
  const lower = head.toLowerCase()
  const cl = lower.indexOf("\r\ncontent-length:")
  const bodyAt = headEnd + 4
  if (cl >= 0) {
    const eol = lower.indexOf("\r\n", cl + 2)
    const len = Number(lower.slice(cl + 17, eol < 0 ? undefined : eol).trim())
    if (buf.length < bodyAt + len) return undefined
    return { end: bodyAt + len, status, body: buf.subarray(bodyAt, bodyAt + len) }
  }
  if (lower.includes("\r\ntransfer-encoding: chunked")) {
    const parts: Array<Buffer> = []
    let p = bodyAt
    for (;;) {
      const eol = buf.indexOf("\r\n", p)
      if (eol < 0) return undefined
      const size = parseInt(buf.toString("latin1", p, eol), 16)
      if (size === 0) {
        if (buf.length < eol + 4) return undefined
        return { end: eol + 4, status, body: parts.length === 1 ? parts[0]! : Buffer.concat(parts) }
      }
      if (buf.length < eol + 2 + size + 2) return undefined
      parts.push(buf.subarray(eol + 2, eol + 2 + size))
      p = eol + 2 + size + 2
    }
  }
  return { end: bodyAt, status, body: Buffer.alloc(0) }
}

/** One measurement (runs in the child). */
const measure = (spec: LoadSpec): Promise<LoadResult> =>
  new Promise((resolve) => {
    const request = Buffer.from(`GET ${spec.path} HTTP/1.1\r\nHost: 127.0.0.1:${spec.port}\r\n\r\n`, "latin1")
    const expect = Buffer.from(spec.expect)
    let recording = false
    let stopping = false
    let lat = new Float64Array(1 << 16)
    let count = 0
    let total = 0
    let errors = 0
    let open = 0
    let t0 = 0
    let t1 = 0
    let cpu0 = process.cpuUsage()
    const record = (us: number) => {
      if (count === lat.length) {
        const more = new Float64Array(lat.length * 2)
        more.set(lat)
        lat = more
      }
      lat[count++] = us
    }
    const finish = () => {
      const cpu = process.cpuUsage(cpu0)
      const seconds = (t1 - t0) / 1000
      resolve({ count, total, seconds, errors, latencies: lat.slice(0, count).sort(), cpu: (cpu.user + cpu.system) / 1e6 / seconds })
    }
    const sockets: Array<net.Socket> = []
    const connect = () => {
      const socket = net.connect({ port: spec.port, host: "127.0.0.1", noDelay: true })
      sockets.push(socket)
      open++
      let pending: Buffer | undefined
      let sentAt = 0
      const send = () => {
        sentAt = performance.now()
        socket.write(request)
      }
      socket.on("connect", send)
      socket.on("data", (chunk: Buffer) => {
        let buf = pending === undefined ? chunk : Buffer.concat([pending, chunk])
        pending = undefined
        let at = 0
        for (;;) {
          const r = parseResponse(buf, at)
          if (r === undefined) break
          const now = performance.now()
          total++
          if (r.status !== 200 || !r.body.equals(expect)) errors++
          if (recording && now <= t1) record((now - sentAt) * 1000)
          at = r.end
          if (stopping) {
            socket.destroy()
            return
          }
          send()
        }
        if (at < buf.length) pending = at === 0 ? buf : Buffer.from(buf.subarray(at))
      })
      socket.on("error", () => {
        errors++
      })
      socket.on("close", () => {
        if (--open === 0) finish()
      })
    }
    for (let i = 0; i < spec.connections; i++) connect()
    setTimeout(() => {
      recording = true
      t0 = performance.now()
      t1 = t0 + spec.durationMs
      cpu0 = process.cpuUsage()
      setTimeout(() => {
        stopping = true
        t1 = performance.now()
        // A server that stopped answering: count what is still open as errors and end.
        setTimeout(() => {
          for (const s of sockets) {
            if (!s.destroyed) {
              errors++
              s.destroy()
            }
          }
        }, 10_000).unref()
      }, spec.durationMs)
    }, spec.warmupMs)
  })

export interface Load {
  readonly run: (spec: LoadSpec) => Promise<LoadResult>
  readonly stop: () => void
}

/** Forks the generator; one run at a time. */
export const startLoad = (): Load => {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    serialization: "advanced"
  })
  let waiting: ((r: LoadResult) => void) | undefined
  child.on("message", (m) => {
    const w = waiting
    waiting = undefined
    w?.(m as LoadResult)
  })
  return {
    run: (spec) =>
      new Promise((resolve, reject) => {
        if (waiting !== undefined) return reject(new Error("one load run at a time"))
        waiting = resolve
        child.send(spec)
      }),
    stop: () => {
      child.kill()
    }
  }
}

if (import.meta.main) {
  process.on("message", (spec) => {
    void measure(spec as LoadSpec).then((r) => process.send!(r))
  })
  process.on("disconnect", () => process.exit(0))
}
