/**
 * Test side of the puppet component (test/fixtures/wasm/puppet.wat): encodes a
 * command (one `kinode:process` import call with its canonical-ABI arguments)
 * into a request body, and decodes the report the puppet sends back (the
 * import's return area plus everything the host allocated in guest memory).
 *
 * Canonical ABI (32-bit) layouts used here, offsets in bytes:
 *   string / list        ptr @0, len @4                                size 8
 *   process-id           3 strings                                     size 24
 *   address              node @0, process-id @8                        size 32
 *   capability           issuer @0, params @32                         size 40
 *   request              inherit @0, expects option<u64> (tag @8, @16), body @24,
 *                        metadata option<string> (tag @32, @36), caps @44   size 56, align 8
 *   response             inherit @0, body @4, metadata (tag @12, @16), caps @24  size 32
 *   message              tag @0, payload @8; response: option<context> @40     size 64
 *   option<blob>         tag @0, mime option<string> (tag @4, @8), bytes @16   size 24
 *   send-error 1.0.0     kind @0, target @4, message @40, blob @104     size 128
 *   send-error 0.7.0     kind @0, message @8, blob @72                  size 96
 *   on-exit              tag @0, list @4 of tuple<address, request, option<blob>> (112 each)
 *   send-request params  address @0, request @32, option<context> @88, option<blob> @100  size 128
 *   await params         address @0, request @32, option<blob> @88      size 112
 */
import { Effect } from "effect"
import { type Address, address, type ProcessId } from "../../src/Ids.ts"
import type { Capability, LazyLoadBlob, Message, OnExit, Request, Response } from "../../src/Message.ts"
import type { NativeApi } from "../../src/ProcessApi.ts"

export type Version = "1.0.0" | "0.7.0"

const ARGS = 4096
const REPORT = 65272
const RET = 65280
const HEADER = 96

export const Op = {
  print: 1,
  our: 2,
  getOnExit: 3,
  setOnExit: 4,
  getState: 5,
  setState: 6,
  clearState: 7,
  spawn: 8,
  saveCapabilities: 9,
  dropCapabilities: 10,
  ourCapabilities: 11,
  receive: 12,
  hasBlob: 13,
  getBlob: 14,
  lastBlob: 15,
  sendRequest: 16,
  sendRequests: 17,
  sendResponse: 18,
  sendAndAwait: 19,
  exit: 20,
  trap: 21
} as const

const utf8 = new TextEncoder()
const utf8Decoder = new TextDecoder()

// ---- encoding (test -> guest) ------------------------------------------------------

/** Builds a command body; addresses are absolute guest addresses (the body lands at ARGS). */
export class Writer {
  private buf = new Uint8Array(4096)
  private end = HEADER
  private dv = new DataView(this.buf.buffer)

  private ensure(size: number): void {
    if (size <= this.buf.length) return
    const next = new Uint8Array(Math.max(size, this.buf.length * 2))
    next.set(this.buf)
    this.buf = next
    this.dv = new DataView(next.buffer)
  }
  alloc(size: number, align: number): number {
    this.end = Math.ceil(this.end / align) * align
    const at = this.end
    this.end += size
    this.ensure(this.end)
    return ARGS + at
  }
  u8(at: number, v: number): void {
    this.dv.setUint8(at - ARGS, v)
  }
  u32(at: number, v: number): void {
    this.dv.setUint32(at - ARGS, v, true)
  }
  u64(at: number, v: bigint): void {
    this.dv.setBigUint64(at - ARGS, v, true)
  }
  /** Copies bytes into the payload; returns [ptr, len]. */
  bytes(data: Uint8Array): [number, number] {
    const ptr = this.alloc(data.length, 1)
    this.buf.set(data, ptr - ARGS)
    return [ptr, data.length]
  }
  string(s: string): [number, number] {
    return this.bytes(utf8.encode(s))
  }
  putList(at: number, [ptr, len]: [number, number]): void {
    this.u32(at, ptr)
    this.u32(at + 4, len)
  }
  putString(at: number, s: string): void {
    this.putList(at, this.string(s))
  }
  putProcessId(at: number, p: ProcessId): void {
    this.putString(at, p.processName)
    this.putString(at + 8, p.packageName)
    this.putString(at + 16, p.publisherNode)
  }
  putAddress(at: number, a: Address): void {
    this.putString(at, a.node)
    this.putProcessId(at + 8, a.process)
  }
  capabilities(caps: ReadonlyArray<Capability>): [number, number] {
    const base = this.alloc(caps.length * 40, 4)
    caps.forEach((c, i) => {
      this.putAddress(base + i * 40, c.issuer)
      this.putString(base + i * 40 + 32, c.params)
    })
    return [base, caps.length]
  }
  putOptionString(at: number, s: string | undefined): void {
    this.u8(at, s === undefined ? 0 : 1)
    if (s !== undefined) this.putString(at + 4, s)
  }
  putRequest(at: number, r: Request): void {
    this.u8(at, r.inherit ? 1 : 0)
    this.u8(at + 8, r.expectsResponse === undefined ? 0 : 1)
    if (r.expectsResponse !== undefined) this.u64(at + 16, r.expectsResponse)
    this.putList(at + 24, this.bytes(r.body))
    this.putOptionString(at + 32, r.metadata)
    this.putList(at + 44, this.capabilities(r.capabilities))
  }
  putOptionBlob(at: number, b: LazyLoadBlob | undefined): void {
    this.u8(at, b === undefined ? 0 : 1)
    if (b === undefined) return
    this.putOptionString(at + 4, b.mime)
    this.putList(at + 16, this.bytes(b.bytes))
  }
  putOptionBytes(at: number, b: Uint8Array | undefined): void {
    this.u8(at, b === undefined ? 0 : 1)
    if (b !== undefined) this.putList(at + 4, this.bytes(b))
  }
  /** on-exit as its three flat parameters. */
  onExit(o: OnExit): [number, number, number] {
    if (o._tag === "None") return [0, 0, 0]
    if (o._tag === "Restart") return [1, 0, 0]
    const base = this.alloc(o.requests.length * 112, 8)
    o.requests.forEach((r, i) => {
      this.putAddress(base + i * 112, r.target)
      this.putRequest(base + i * 112 + 32, r.request)
      this.putOptionBlob(base + i * 112 + 88, r.blob)
    })
    return [2, base, o.requests.length]
  }
  /** send-request's parameter record (also one element of send-requests). */
  putSendRequest(at: number, target: Address, r: Request, context: Uint8Array | undefined, blob: LazyLoadBlob | undefined): void {
    this.putAddress(at, target)
    this.putRequest(at + 32, r)
    this.putOptionBytes(at + 88, context)
    this.putOptionBlob(at + 100, blob)
  }
  /** The final body: op, flat args, report address, payload. */
  finish(op: number, args: ReadonlyArray<number>, reportTo: Address): Uint8Array {
    if (args.length > 14) throw new Error("at most 14 flat parameters")
    this.u32(ARGS, op)
    args.forEach((a, i) => this.u32(ARGS + 4 + i * 4, a))
    this.putAddress(ARGS + 60, reportTo)
    if (ARGS + this.end > REPORT) throw new Error(`a command body must fit below ${REPORT} (payload ${this.end} bytes)`)
    return this.buf.slice(0, this.end)
  }
}

// ---- decoding (guest -> test) ------------------------------------------------------

export interface WitReceived {
  readonly ok?: { readonly source: string; readonly message: DecodedMessage }
  readonly err?: { readonly error: DecodedSendError; readonly context: string | undefined }
}
export type DecodedMessage =
  | { readonly tag: "request"; readonly request: DecodedRequest }
  | { readonly tag: "response"; readonly response: DecodedResponse; readonly context: string | undefined }
export interface DecodedRequest {
  readonly inherit: boolean
  readonly expectsResponse: bigint | undefined
  readonly body: string
  readonly metadata: string | undefined
  readonly capabilities: ReadonlyArray<DecodedCapability>
}
export interface DecodedResponse {
  readonly inherit: boolean
  readonly body: string
  readonly metadata: string | undefined
  readonly capabilities: ReadonlyArray<DecodedCapability>
}
export interface DecodedCapability {
  readonly issuer: string
  readonly params: string
}
export interface DecodedBlob {
  readonly mime: string | undefined
  readonly bytes: Uint8Array
}
export interface DecodedSendError {
  readonly kind: "offline" | "timeout"
  /** undefined for 0.7.0, which has no target field */
  readonly target: string | undefined
  readonly message: DecodedMessage
  readonly blob: DecodedBlob | undefined
}
export type DecodedOnExit =
  | { readonly tag: "none" }
  | { readonly tag: "restart" }
  | {
    readonly tag: "requests"
    readonly requests: ReadonlyArray<{ readonly target: string; readonly request: DecodedRequest; readonly blob: DecodedBlob | undefined }>
  }

/** One report: `tag` 0 answers command `op`; 1 is an item the command loop received. */
export class Report {
  readonly tag: number
  readonly op: number
  private readonly dv: DataView
  readonly body: Uint8Array
  readonly version: Version
  constructor(body: Uint8Array, version: Version) {
    this.body = body
    this.version = version
    this.dv = new DataView(body.buffer, body.byteOffset, body.byteLength)
    this.tag = this.dv.getUint32(0, true)
    this.op = this.dv.getUint32(4, true)
  }
  static readonly RET = RET
  private off(at: number): number {
    const o = at - REPORT
    if (o < 0 || o >= this.body.length) throw new Error(`guest address ${at} is outside the report`)
    return o
  }
  u8(at: number): number {
    return this.dv.getUint8(this.off(at))
  }
  u32(at: number): number {
    return this.dv.getUint32(this.off(at), true)
  }
  u64(at: number): bigint {
    return this.dv.getBigUint64(this.off(at), true)
  }
  bytesAt(at: number): Uint8Array {
    const ptr = this.u32(at)
    const len = this.u32(at + 4)
    if (len === 0) return new Uint8Array(0)
    const o = this.off(ptr)
    this.off(ptr + len - 1)
    return this.body.slice(o, o + len)
  }
  stringAt(at: number): string {
    return utf8Decoder.decode(this.bytesAt(at))
  }
  optionString(at: number): string | undefined {
    return this.u8(at) === 0 ? undefined : this.stringAt(at + 4)
  }
  processId(at: number): string {
    return `${this.stringAt(at)}:${this.stringAt(at + 8)}:${this.stringAt(at + 16)}`
  }
  address(at: number): string {
    return `${this.stringAt(at)}@${this.processId(at + 8)}`
  }
  capabilities(at: number): ReadonlyArray<DecodedCapability> {
    const ptr = this.u32(at)
    const n = this.u32(at + 4)
    return Array.from({ length: n }, (_, i) => ({
      issuer: this.address(ptr + i * 40),
      params: this.stringAt(ptr + i * 40 + 32)
    }))
  }
  request(at: number): DecodedRequest {
    return {
      inherit: this.u8(at) !== 0,
      expectsResponse: this.u8(at + 8) === 0 ? undefined : this.u64(at + 16),
      body: this.stringAt(at + 24),
      metadata: this.optionString(at + 32),
      capabilities: this.capabilities(at + 44)
    }
  }
  message(at: number): DecodedMessage {
    const p = at + 8
    if (this.u8(at) === 0) return { tag: "request", request: this.request(p) }
    return {
      tag: "response",
      response: {
        inherit: this.u8(p) !== 0,
        body: this.stringAt(p + 4),
        metadata: this.optionString(p + 12),
        capabilities: this.capabilities(p + 24)
      },
      context: this.optionString(p + 32)
    }
  }
  optionBlob(at: number): DecodedBlob | undefined {
    if (this.u8(at) === 0) return undefined
    return { mime: this.optionString(at + 4), bytes: this.bytesAt(at + 16) }
  }
  sendError(at: number): DecodedSendError {
    const kind = this.u8(at) === 0 ? "offline" : "timeout"
    return this.version === "1.0.0"
      ? { kind, target: this.address(at + 4), message: this.message(at + 40), blob: this.optionBlob(at + 104) }
      : { kind, target: undefined, message: this.message(at + 8), blob: this.optionBlob(at + 72) }
  }
  /** receive's result<tuple<address, message>, tuple<send-error, option<context>>> at RET. */
  received(): WitReceived {
    if (this.u8(RET) === 0) return { ok: { source: this.address(RET + 8), message: this.message(RET + 40) } }
    const errSize = this.version === "1.0.0" ? 128 : 96
    return { err: { error: this.sendError(RET + 8), context: this.optionString(RET + 8 + errSize) } }
  }
  /** send-and-await-response's result<tuple<address, message>, send-error> at RET. */
  awaited(): { readonly ok?: { readonly source: string; readonly message: DecodedMessage }; readonly err?: DecodedSendError } {
    if (this.u8(RET) === 0) return { ok: { source: this.address(RET + 8), message: this.message(RET + 40) } }
    return { err: this.sendError(RET + 8) }
  }
  onExit(): DecodedOnExit {
    const tag = this.u8(RET)
    if (tag === 0) return { tag: "none" }
    if (tag === 1) return { tag: "restart" }
    const ptr = this.u32(RET + 4)
    const n = this.u32(RET + 8)
    return {
      tag: "requests",
      requests: Array.from({ length: n }, (_, i) => ({
        target: this.address(ptr + i * 112),
        request: this.request(ptr + i * 112 + 32),
        blob: this.optionBlob(ptr + i * 112 + 88)
      }))
    }
  }
}

// ---- driving ---------------------------------------------------------------------

export interface SpawnArgs {
  readonly name?: string
  readonly wasmPath: string
  readonly onExit?: OnExit
  readonly requestCapabilities?: ReadonlyArray<Capability>
  /** 1.0.0: (process, params); 0.7.0: params ignored (each gets messaging). */
  readonly grantCapabilities?: ReadonlyArray<readonly [string, string]>
  readonly public?: boolean
}

const toPid = (s: string): ProcessId => address(`x@${s}`).process

/**
 * A puppet process and the two sessions that talk to it: `driver` sends the
 * commands (and is whatever the tests want it to be: a target, a requester),
 * `reports` only receives reports, so the two never mix.
 */
export const makePuppet = (options: {
  readonly target: Address
  readonly driver: NativeApi
  readonly reports: NativeApi
  readonly version?: Version
}) => {
  const version = options.version ?? "1.0.0"
  const { target, driver, reports } = options
  const within = <A, E, R>(what: string, eff: Effect.Effect<A, E, R>) =>
    Effect.timeoutOrElse(eff, {
      duration: "10 seconds",
      orElse: () => Effect.die(new Error(`puppet ${target}: no ${what} within 10 s`))
    })

  /** Sends command `op`; `build` lays out the arguments and returns the flat parameters. */
  const send = (
    op: number,
    build: (w: Writer) => ReadonlyArray<number> = () => [],
    extra: { readonly blob?: LazyLoadBlob; readonly expectsResponse?: bigint } = {}
  ) =>
    Effect.sync(() => {
      const w = new Writer()
      const args = build(w)
      const body = w.finish(op, args, reports.our)
      const refused = driver.sendRequest(target, {
        _tag: "Request",
        inherit: false,
        expectsResponse: extra.expectsResponse,
        body,
        metadata: undefined,
        capabilities: []
      }, undefined, extra.blob)
      if (refused !== undefined) throw new Error(`command to ${target} refused: ${refused.reason}`)
    })

  /** The next report, whatever it is. */
  const nextReport = within("report", Effect.gen(function*() {
    const r = yield* reports.receiveEffect
    if (r._tag !== "Message" || r.message._tag !== "Request") return yield* Effect.die(new Error(`unexpected ${r._tag}`))
    if (r.source.toString() !== target.toString()) return yield* Effect.die(new Error(`report from ${r.source}`))
    return new Report(r.message.body, version)
  }))

  /** Runs `op` and returns its report (tag 0, same op). */
  const run = (op: number, build?: (w: Writer) => ReadonlyArray<number>, extra?: { readonly blob?: LazyLoadBlob; readonly expectsResponse?: bigint }) =>
    Effect.gen(function*() {
      yield* send(op, build, extra)
      const report = yield* nextReport
      if (report.tag !== 0 || report.op !== op) {
        return yield* Effect.die(new Error(`expected the report of op ${op}, got tag ${report.tag} op ${report.op}`))
      }
      return report
    })

  /** What the driver session receives next (requests, responses the puppet sends it). */
  const driverReceives = within("message at the driver", driver.receiveEffect)

  const spawnArgs = (w: Writer, s: SpawnArgs): ReadonlyArray<number> => {
    const name = s.name === undefined ? [0, 0, 0] : [1, ...w.string(s.name)]
    const path = w.string(s.wasmPath)
    const onExit = w.onExit(s.onExit ?? { _tag: "None" })
    const caps = w.capabilities(s.requestCapabilities ?? [])
    const grants = s.grantCapabilities ?? []
    const size = version === "1.0.0" ? 32 : 24
    const base = w.alloc(grants.length * size, 4)
    grants.forEach(([p, params], i) => {
      w.putProcessId(base + i * size, toPid(p))
      if (version === "1.0.0") w.putString(base + i * size + 24, params)
    })
    return [...name, ...path, ...onExit, ...caps, base, grants.length, s.public === true ? 1 : 0]
  }

  return {
    target,
    version,
    send,
    run,
    nextReport,
    driverReceives,
    /** The blob of what the driver received last. */
    driverBlob: () => driver.getBlob(),
    print: (level: number, message: string) => run(Op.print, (w) => [level, ...w.string(message)]),
    our: Effect.map(run(Op.our), (r) => r.address(RET)),
    getOnExit: Effect.map(run(Op.getOnExit), (r) => r.onExit()),
    setOnExit: (o: OnExit) => run(Op.setOnExit, (w) => w.onExit(o)),
    getState: Effect.map(run(Op.getState), (r) => (r.u8(RET) === 0 ? undefined : r.bytesAt(RET + 4))),
    setState: (bytes: Uint8Array) => run(Op.setState, (w) => w.bytes(bytes)),
    clearState: run(Op.clearState),
    spawn: (s: SpawnArgs) =>
      Effect.map(run(Op.spawn, (w) => spawnArgs(w, s)), (r): { ok: string } | { err: "name-taken" | "no-file-at-path" } =>
        r.u8(RET) === 0 ? { ok: r.processId(RET + 4) } : { err: r.u8(RET + 4) === 0 ? "name-taken" : "no-file-at-path" }),
    saveCapabilities: (caps: ReadonlyArray<Capability>) => run(Op.saveCapabilities, (w) => w.capabilities(caps)),
    dropCapabilities: (caps: ReadonlyArray<Capability>) => run(Op.dropCapabilities, (w) => w.capabilities(caps)),
    ourCapabilities: Effect.map(run(Op.ourCapabilities), (r) => r.capabilities(RET)),
    /** Starts a `receive` in the guest; the report comes once something arrives. */
    startReceive: send(Op.receive),
    hasBlob: (blob?: LazyLoadBlob) => Effect.map(run(Op.hasBlob, undefined, blob === undefined ? {} : { blob }), (r) => r.u32(RET) !== 0),
    getBlob: (blob?: LazyLoadBlob) => Effect.map(run(Op.getBlob, undefined, blob === undefined ? {} : { blob }), (r) => r.optionBlob(RET)),
    lastBlob: Effect.map(run(Op.lastBlob), (r) => r.optionBlob(RET)),
    sendRequest: (to: Address, req: Request, context?: Uint8Array, blob?: LazyLoadBlob) =>
      run(Op.sendRequest, (w) => {
        const at = w.alloc(128, 8)
        w.putSendRequest(at, to, req, context, blob)
        return [at]
      }),
    sendRequests: (list: ReadonlyArray<readonly [Address, Request, Uint8Array | undefined, LazyLoadBlob | undefined]>) =>
      run(Op.sendRequests, (w) => {
        const base = w.alloc(list.length * 128, 8)
        list.forEach(([to, req, ctx, blob], i) => w.putSendRequest(base + i * 128, to, req, ctx, blob))
        return [base, list.length]
      }),
    sendResponse: (resp: Response, blob?: LazyLoadBlob) =>
      run(Op.sendResponse, (w) => {
        const body = w.bytes(resp.body)
        const meta = resp.metadata === undefined ? [0, 0, 0] : [1, ...w.string(resp.metadata)]
        const caps = w.capabilities(resp.capabilities)
        const b = blob === undefined
          ? [0, 0, 0, 0, 0, 0]
          : [1, ...(blob.mime === undefined ? [0, 0, 0] : [1, ...w.string(blob.mime)]), ...w.bytes(blob.bytes)]
        return [resp.inherit ? 1 : 0, ...body, ...meta, ...caps, ...b]
      }),
    /** Starts a send-and-await-response; the report arrives when it returns. */
    startAwait: (to: Address, req: Request, blob?: LazyLoadBlob) =>
      send(Op.sendAndAwait, (w) => {
        const at = w.alloc(112, 8)
        w.putAddress(at, to)
        w.putRequest(at + 32, req)
        w.putOptionBlob(at + 88, blob)
        return [at]
      }),
    exit: send(Op.exit),
    trap: send(Op.trap)
  }
}

export type Puppet = ReturnType<typeof makePuppet>

export const bodyOf = (m: Message): string => utf8Decoder.decode(m.body)
