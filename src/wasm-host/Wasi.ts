/**
 * A small WASI 0.2 host for one Kinode process: what Rust's std (through the
 * preview1 adapter) needs, and nothing that reaches outside the process.
 *
 * - stdin is empty; stdout/stderr go to `WasiOutput` (terminal + crash report).
 * - The only filesystem is one preopened directory (the process's temporary
 *   directory, Kinode's `<home>/vfs/<pkg>:<pub>/tmp`), visible under the same
 *   guest path; paths cannot climb out of it (`..` above it, absolute paths and
 *   paths through a symlink are `not-permitted`; the vfs refuses symlinks too).
 *   `TEMP_DIR` names it, as in Kinode.
 * - Clocks and random work; `poll` waits for real (it is a suspending import).
 * - `exit` ends the process; sockets, http and anything unknown trap with a
 *   clear message.
 *
 * One instance serves both name sets a component may import: `wasi:*@0.2.x`
 * and the `@0.2.0-rc-2023-11-10` names of Kinode's 2024 toolchain; the function
 * shapes these use are the same. jco's glue looks interfaces up without their
 * version, so the import object is keyed by unversioned names.
 *
 * The real filesystem arrives as a `SyncFs` port (Node's `fs` module fits it),
 * so this module imports no Node built-ins.
 */
import { LineSink, STDERR_KEEP_BYTES, TailBuffer } from "./WasiOutput.ts"

/** The synchronous filesystem calls the WASI host uses; `node:fs` satisfies it. */
export interface SyncFs {
  openSync(path: string, flags: number, mode?: number): number
  closeSync(fd: number): void
  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number
  fstatSync(fd: number): SyncStat
  statSync(path: string): SyncStat
  lstatSync(path: string): SyncStat
  readdirSync(path: string): Array<string>
  mkdirSync(path: string): unknown
  rmdirSync(path: string): void
  unlinkSync(path: string): void
  renameSync(from: string, to: string): void
  ftruncateSync(fd: number, len: number): void
  fsyncSync(fd: number): void
  readonly constants: {
    readonly O_RDONLY: number
    readonly O_WRONLY: number
    readonly O_RDWR: number
    readonly O_CREAT: number
    readonly O_EXCL: number
    readonly O_TRUNC: number
    readonly O_APPEND: number
  }
}
export interface SyncStat {
  readonly size: number
  readonly nlink: number
  readonly atimeMs: number
  readonly mtimeMs: number
  readonly ctimeMs: number
  isFile(): boolean
  isDirectory(): boolean
  isSymbolicLink(): boolean
}

export interface WasiOptions {
  /** Host directory given to the process, and the path it has inside. */
  readonly preopen: { readonly hostPath: string; readonly guestPath: string; readonly fs: SyncFs } | undefined
  readonly stdout: (line: string) => void
  readonly stderr: (line: string) => void
  /** Wraps each real wait (a sleep through `poll`), so the CPU meter knows the guest is off the CPU. */
  readonly waiting?: <A>(wait: Promise<A>) => Promise<A>
}

/** Thrown by `wasi:cli/exit`; the process host turns it into a normal end or an error exit. */
export class WasiExit extends Error {
  override readonly name = "WasiExit"
  readonly code: number
  constructor(code: number) {
    super(`exit(${code})`)
    this.code = code
  }
}

/** Thrown when a component calls something this host refuses (sockets, http...). */
export class WasiRefused extends Error {
  override readonly name = "WasiRefused"
}

export interface WasiHost {
  /** Import object entries, by unversioned interface name. */
  readonly imports: Record<string, Record<string, unknown>>
  /** Last bytes written to stderr. */
  readonly stderrTail: () => string
  /** Emits partial stdout/stderr lines and closes open files. */
  readonly close: () => void
}

/** Interfaces `makeWasi` implements (unversioned). */
export const WASI_INTERFACES: ReadonlySet<string> = new Set([
  "wasi:cli/environment",
  "wasi:cli/exit",
  "wasi:cli/stdin",
  "wasi:cli/stdout",
  "wasi:cli/stderr",
  "wasi:cli/terminal-input",
  "wasi:cli/terminal-output",
  "wasi:cli/terminal-stdin",
  "wasi:cli/terminal-stdout",
  "wasi:cli/terminal-stderr",
  "wasi:clocks/monotonic-clock",
  "wasi:clocks/wall-clock",
  "wasi:filesystem/types",
  "wasi:filesystem/preopens",
  "wasi:io/error",
  "wasi:io/poll",
  "wasi:io/streams",
  "wasi:random/random",
  "wasi:random/insecure",
  "wasi:random/insecure-seed"
])

/** Interfaces a component may import but whose every call traps with a clear message. */
export const REFUSED_PREFIXES = ["wasi:sockets/", "wasi:http/"]

/** The WASI versions this host answers to: 0.2.x releases and Kinode's 2024 release candidate. */
export const isSupportedWasiVersion = (version: string): boolean =>
  /^0\.2\.\d+$/.test(version) || version === "0.2.0-rc-2023-11-10"

type Errno = string
const errnoOf = (e: unknown): Errno => {
  switch ((e as { code?: string } | null)?.code) {
    case "ENOENT":
      return "no-entry"
    case "EEXIST":
      return "exist"
    case "EACCES":
      return "access"
    case "EPERM":
      return "not-permitted"
    case "ENOTDIR":
      return "not-directory"
    case "EISDIR":
      return "is-directory"
    case "ENOTEMPTY":
      return "not-empty"
    case "EBADF":
      return "bad-descriptor"
    case "EINVAL":
      return "invalid"
    case "ENAMETOOLONG":
      return "name-too-long"
    case "ENOSPC":
      return "insufficient-space"
    default:
      return "io"
  }
}

const NS_PER_MS = 1_000_000n
const nowNs = (): bigint => BigInt(Math.round(performance.now() * 1e6))
const datetime = (ms: number) => ({
  seconds: BigInt(Math.floor(ms / 1000)),
  nanoseconds: Math.floor((ms % 1000) * 1e6)
})

/**
 * Whether any existing entry on the way from `root` down through `parts` is a
 * symlink: one could lead out of the preopen, so none is followed. Entries that
 * do not exist (yet) end the walk.
 */
const crossesSymlink = (fs: SyncFs, root: string, parts: ReadonlyArray<string>): boolean => {
  let at = root
  for (const part of parts) {
    at = `${at}/${part}`
    try {
      if (fs.lstatSync(at).isSymbolicLink()) return true
    } catch {
      return false
    }
  }
  return false
}

const refusedInterface = (name: string): Record<string, unknown> =>
  new Proxy({}, {
    get: (_target, key) => {
      if (typeof key === "symbol") return undefined
      // jco asks for camelCase names; the message uses the WIT name.
      const witName = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
      const fn = () => {
        throw new WasiRefused(`${name}.${witName}: not available to Kinode processes`)
      }
      return fn
    }
  })

export const makeWasi = (options: WasiOptions): WasiHost => {
  const stderrTail = new TailBuffer(STDERR_KEEP_BYTES)
  const stdoutLines = new LineSink(options.stdout)
  const stderrLines = new LineSink(options.stderr)
  const openFds = new Set<number>()
  const preopen = options.preopen
  const waiting = options.waiting ?? (<A>(wait: Promise<A>) => wait)

  class IoError {
    readonly text: string
    constructor(text: string) {
      this.text = text
    }
    toDebugString(): string {
      return this.text
    }
  }
  const failed = (e: unknown) => ({ tag: "last-operation-failed", val: new IoError(String(e)) })

  class Pollable {
    /** monotonic deadline in ns; 0 = always ready */
    readonly deadline: bigint
    constructor(deadline: bigint) {
      this.deadline = deadline
    }
    ready(): boolean {
      return this.deadline <= nowNs()
    }
    block(): Promise<void> | void {
      const wait = this.deadline - nowNs()
      if (wait <= 0n) return
      return waiting(new Promise((resolve) => setTimeout(resolve, Number(wait / NS_PER_MS) + 1)))
    }
  }
  const readyPollable = () => new Pollable(0n)

  const poll = (list: ReadonlyArray<Pollable>): Array<number> | Promise<Array<number>> => {
    const ready = () => list.flatMap((p, i) => (p.ready() ? [i] : []))
    const now = ready()
    if (now.length > 0) return now
    const soonest = list.reduce((m, p) => (p.deadline < m ? p.deadline : m), list[0]?.deadline ?? 0n)
    const wait = soonest - nowNs()
    return waiting(new Promise((resolve) => setTimeout(() => resolve(ready()), Number(wait / NS_PER_MS) + 1)))
  }

  type Sink = (bytes: Uint8Array) => void
  class OutputStream {
    private readonly sink: Sink
    constructor(sink: Sink) {
      this.sink = sink
    }
    checkWrite(): bigint {
      return 1n << 20n
    }
    write(bytes: Uint8Array): void {
      this.sink(bytes)
    }
    blockingWriteAndFlush(bytes: Uint8Array): void {
      this.sink(bytes)
    }
    flush(): void {}
    blockingFlush(): void {}
    writeZeroes(len: bigint): void {
      this.sink(new Uint8Array(Number(len)))
    }
    blockingWriteZeroesAndFlush(len: bigint): void {
      this.sink(new Uint8Array(Number(len)))
    }
    subscribe(): Pollable {
      return readyPollable()
    }
    splice(): never {
      throw new WasiRefused("output-stream.splice is not supported")
    }
    blockingSplice(): never {
      throw new WasiRefused("output-stream.blocking-splice is not supported")
    }
  }

  type Source = (len: number) => Uint8Array | undefined
  class InputStream {
    private readonly source: Source
    constructor(source: Source) {
      this.source = source
    }
    read(len: bigint): Uint8Array {
      const bytes = this.source(Number(len))
      if (bytes === undefined) throw { tag: "closed" }
      return bytes
    }
    blockingRead(len: bigint): Uint8Array {
      return this.read(len)
    }
    skip(len: bigint): bigint {
      return BigInt(this.read(len).length)
    }
    blockingSkip(len: bigint): bigint {
      return this.skip(len)
    }
    subscribe(): Pollable {
      return readyPollable()
    }
  }

  const stdin = new InputStream(() => undefined)
  const stdout = new OutputStream((b) => stdoutLines.write(b))
  const stderr = new OutputStream((b) => {
    stderrTail.write(b)
    stderrLines.write(b)
  })

  class TerminalInput {}
  class TerminalOutput {}

  // ---- filesystem ----------------------------------------------------------------
  const fsOrRefuse = (): SyncFs => {
    if (preopen === undefined) throw "not-permitted"
    return preopen.fs
  }
  /** Resolves a guest path relative to `base` inside the preopen; undefined if it escapes. */
  const resolveIn = (base: string, rel: string): string | undefined => {
    if (preopen === undefined || rel.startsWith("/")) return undefined
    const parts = base.slice(preopen.hostPath.length).split("/").filter((p) => p.length > 0)
    for (const seg of rel.split("/")) {
      if (seg === "" || seg === ".") continue
      if (seg === "..") {
        if (parts.length === 0) return undefined
        parts.pop()
      } else parts.push(seg)
    }
    if (crossesSymlink(preopen.fs, preopen.hostPath, parts)) return undefined
    return parts.length === 0 ? preopen.hostPath : `${preopen.hostPath}/${parts.join("/")}`
  }
  const fsCall = <A>(f: () => A): A => {
    try {
      return f()
    } catch (e) {
      if (e instanceof WasiRefused) throw e
      throw errnoOf(e)
    }
  }
  const typeOf = (st: SyncStat): string =>
    st.isDirectory() ? "directory" : st.isFile() ? "regular-file" : st.isSymbolicLink() ? "symbolic-link" : "unknown"
  const statOf = (st: SyncStat) => ({
    type: typeOf(st),
    linkCount: BigInt(st.nlink),
    size: BigInt(st.size),
    dataAccessTimestamp: datetime(st.atimeMs),
    dataModificationTimestamp: datetime(st.mtimeMs),
    statusChangeTimestamp: datetime(st.ctimeMs)
  })

  class DirectoryEntryStream {
    private readonly entries: Array<{ type: string; name: string }>
    constructor(entries: Array<{ type: string; name: string }>) {
      this.entries = entries
    }
    readDirectoryEntry(): { type: string; name: string } | undefined {
      return this.entries.shift()
    }
  }

  class Descriptor {
    readonly hostPath: string
    readonly fd: number | undefined
    readonly flags: { readonly read: boolean; readonly write: boolean }
    constructor(hostPath: string, fd: number | undefined, flags: { read: boolean; write: boolean }) {
      this.hostPath = hostPath
      this.fd = fd
      this.flags = flags
    }
    private file(): number {
      if (this.fd === undefined) throw "is-directory"
      return this.fd
    }
    private path(rel: string): string {
      const p = resolveIn(this.hostPath, rel)
      if (p === undefined) throw "not-permitted"
      return p
    }
    readViaStream(offset: bigint): InputStream {
      const fd = this.file()
      const fs = fsOrRefuse()
      let pos = Number(offset)
      return new InputStream((len) => {
        const buf = new Uint8Array(Math.min(len, 1 << 20))
        let n: number
        try {
          n = fs.readSync(fd, buf, 0, buf.length, pos)
        } catch (e) {
          throw failed(e)
        }
        if (n === 0 && len > 0) return undefined
        pos += n
        return buf.subarray(0, n)
      })
    }
    writeViaStream(offset: bigint): OutputStream {
      const fd = this.file()
      const fs = fsOrRefuse()
      let pos = Number(offset)
      return new OutputStream((bytes) => {
        try {
          pos += fs.writeSync(fd, bytes, 0, bytes.length, pos)
        } catch (e) {
          throw failed(e)
        }
      })
    }
    appendViaStream(): OutputStream {
      const fd = this.file()
      const fs = fsOrRefuse()
      return new OutputStream((bytes) => {
        try {
          fs.writeSync(fd, bytes, 0, bytes.length, fs.fstatSync(fd).size)
        } catch (e) {
          throw failed(e)
        }
      })
    }
    getType(): string {
      return fsCall(() => typeOf(fsOrRefuse().statSync(this.hostPath)))
    }
    getFlags(): { read: boolean; write: boolean } {
      return { ...this.flags }
    }
    stat() {
      return fsCall(() => statOf(fsOrRefuse().statSync(this.hostPath)))
    }
    statAt(_pathFlags: unknown, rel: string) {
      const p = this.path(rel)
      return fsCall(() => statOf(fsOrRefuse().statSync(p)))
    }
    openAt(
      _pathFlags: unknown,
      rel: string,
      open: { create?: boolean; directory?: boolean; exclusive?: boolean; truncate?: boolean },
      flags: { read?: boolean; write?: boolean }
    ): Descriptor {
      const p = this.path(rel)
      const fs = fsOrRefuse()
      return fsCall(() => {
        const c = fs.constants
        if (open.directory) {
          if (!fs.statSync(p).isDirectory()) throw { code: "ENOTDIR" }
          return new Descriptor(p, undefined, { read: true, write: flags.write === true })
        }
        let mode = flags.write ? (flags.read ? c.O_RDWR : c.O_WRONLY) : c.O_RDONLY
        if (open.create) mode |= c.O_CREAT
        if (open.exclusive) mode |= c.O_EXCL
        if (open.truncate) mode |= c.O_TRUNC
        if (!open.create && fs.statSync(p).isDirectory()) {
          return new Descriptor(p, undefined, { read: true, write: flags.write === true })
        }
        const fd = fs.openSync(p, mode, 0o644)
        openFds.add(fd)
        return new Descriptor(p, fd, { read: flags.read === true, write: flags.write === true })
      })
    }
    readDirectory(): DirectoryEntryStream {
      const fs = fsOrRefuse()
      return fsCall(() =>
        new DirectoryEntryStream(
          fs.readdirSync(this.hostPath).map((name) => ({ name, type: typeOf(fs.statSync(`${this.hostPath}/${name}`)) }))
        )
      )
    }
    createDirectoryAt(rel: string): void {
      const p = this.path(rel)
      fsCall(() => fsOrRefuse().mkdirSync(p))
    }
    removeDirectoryAt(rel: string): void {
      const p = this.path(rel)
      fsCall(() => fsOrRefuse().rmdirSync(p))
    }
    unlinkFileAt(rel: string): void {
      const p = this.path(rel)
      fsCall(() => fsOrRefuse().unlinkSync(p))
    }
    renameAt(oldRel: string, newDir: Descriptor, newRel: string): void {
      const from = this.path(oldRel)
      const to = newDir.path(newRel)
      fsCall(() => fsOrRefuse().renameSync(from, to))
    }
    read(len: bigint, offset: bigint): [Uint8Array, boolean] {
      const fd = this.file()
      return fsCall(() => {
        const buf = new Uint8Array(Math.min(Number(len), 1 << 20))
        const n = fsOrRefuse().readSync(fd, buf, 0, buf.length, Number(offset))
        return [buf.subarray(0, n), n === 0]
      })
    }
    write(bytes: Uint8Array, offset: bigint): bigint {
      const fd = this.file()
      return fsCall(() => BigInt(fsOrRefuse().writeSync(fd, bytes, 0, bytes.length, Number(offset))))
    }
    setSize(size: bigint): void {
      const fd = this.file()
      fsCall(() => fsOrRefuse().ftruncateSync(fd, Number(size)))
    }
    sync(): void {
      if (this.fd !== undefined) fsCall(() => fsOrRefuse().fsyncSync(this.fd!))
    }
    syncData(): void {
      this.sync()
    }
    advise(): void {}
    isSameObject(other: Descriptor): boolean {
      return other.hostPath === this.hostPath
    }
    metadataHash(): { lower: bigint; upper: bigint } {
      return hashPath(this.hostPath)
    }
    metadataHashAt(_pathFlags: unknown, rel: string): { lower: bigint; upper: bigint } {
      return hashPath(this.path(rel))
    }
    [Symbol.dispose](): void {
      if (this.fd !== undefined && openFds.delete(this.fd)) {
        try {
          fsOrRefuse().closeSync(this.fd)
        } catch {
          // already closed: nothing to release
        }
      }
    }
  }
  const hashPath = (p: string) => {
    let h = 0xcbf29ce484222325n
    for (let i = 0; i < p.length; i++) h = ((h ^ BigInt(p.charCodeAt(i))) * 0x100000001b3n) & 0xffffffffffffffffn
    return { lower: h, upper: 0n }
  }

  const root = preopen === undefined
    ? undefined
    : new Descriptor(preopen.hostPath, undefined, { read: true, write: true })

  const random = (len: bigint): Uint8Array => {
    const out = new Uint8Array(Number(len))
    for (let at = 0; at < out.length; at += 65536) crypto.getRandomValues(out.subarray(at, at + 65536))
    return out
  }
  const randomU64 = (): bigint => new DataView(random(8n).buffer).getBigUint64(0, true)

  const imports: Record<string, Record<string, unknown>> = {
    "wasi:cli/environment": {
      getEnvironment: () => (preopen === undefined ? [] : [["TEMP_DIR", preopen.guestPath]]),
      getArguments: () => [],
      initialCwd: () => undefined
    },
    "wasi:cli/exit": {
      exit: (status: { tag: "ok" | "err" }) => {
        throw new WasiExit(status.tag === "ok" ? 0 : 1)
      },
      exitWithCode: (code: number) => {
        throw new WasiExit(code)
      }
    },
    "wasi:cli/stdin": { getStdin: () => stdin },
    "wasi:cli/stdout": { getStdout: () => stdout },
    "wasi:cli/stderr": { getStderr: () => stderr },
    "wasi:cli/terminal-input": { TerminalInput },
    "wasi:cli/terminal-output": { TerminalOutput },
    "wasi:cli/terminal-stdin": { getTerminalStdin: () => undefined },
    "wasi:cli/terminal-stdout": { getTerminalStdout: () => undefined },
    "wasi:cli/terminal-stderr": { getTerminalStderr: () => undefined },
    "wasi:clocks/monotonic-clock": {
      now: nowNs,
      resolution: () => 1000n,
      subscribeInstant: (at: bigint) => new Pollable(at),
      subscribeDuration: (ns: bigint) => new Pollable(nowNs() + ns)
    },
    "wasi:clocks/wall-clock": {
      // Wall-clock time is what the guest asked for; Clock-based time belongs to kernel logic, not here.
      now: () => datetime(performance.timeOrigin + performance.now()),
      resolution: () => ({ seconds: 0n, nanoseconds: 1000 })
    },
    "wasi:filesystem/preopens": {
      getDirectories: () => (root === undefined || preopen === undefined ? [] : [[root, preopen.guestPath]])
    },
    "wasi:filesystem/types": {
      Descriptor,
      DirectoryEntryStream,
      filesystemErrorCode: () => undefined
    },
    "wasi:io/error": { Error: IoError },
    "wasi:io/poll": { Pollable, poll },
    "wasi:io/streams": { InputStream, OutputStream },
    "wasi:random/random": { getRandomBytes: random, getRandomU64: randomU64 },
    "wasi:random/insecure": { getInsecureRandomBytes: random, getInsecureRandomU64: randomU64 },
    "wasi:random/insecure-seed": { insecureSeed: () => [randomU64(), randomU64()] }
  }
  for (const name of [
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
    "wasi:http/types",
    "wasi:http/outgoing-handler"
  ]) imports[name] = refusedInterface(name)

  return {
    imports,
    stderrTail: () => stderrTail.text(),
    close: () => {
      stdoutLines.flush()
      stderrLines.flush()
      if (preopen !== undefined) {
        for (const fd of openFds) {
          try {
            preopen.fs.closeSync(fd)
          } catch {
            // the guest closed it already
          }
        }
      }
      openFds.clear()
    }
  }
}
