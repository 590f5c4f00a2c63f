/**
 * Hand-written canonical-ABI bindings for the hot `kinode:process` calls
 * (`receive`, `send-request`, `send-response`, `print-to-terminal`, `get-blob`,
 * `last-blob`) and the waiting calls without a result (`set-state`,
 * `clear-state`, `save-capabilities`, `drop-capabilities`), used instead of
 * jco's generic glue.
 *
 * jco's glue (importBindings `hybrid`) asks each host function for
 * `fn[Symbol.for("cabiLower")]({ memory, realloc })`; when present, the
 * returned core function is linked straight into the Wasm instance, skipping
 * jco's per-call task bookkeeping and value conversion. We read and write the
 * guest's memory ourselves with the layouts below (32-bit canonical ABI; the
 * WIT is fixed, so the layouts are too). `receive` is wrapped in
 * `WebAssembly.Suspending`: it returns at once when a message is waiting and
 * suspends the Wasm stack (JSPI) otherwise.
 *
 * Layouts (byte offsets):
 *   string/list          ptr @0, len @4                      size 8
 *   address              node @0, process-id (3 strings) @8  size 32
 *   capability           issuer @0, params @32               size 40
 *   request              inherit @0, expects option<u64> (tag @8, value @16),
 *                        body @24, metadata option<string> (tag @32, @36),
 *                        capabilities @44                    size 56, align 8
 *   response             inherit @0, body @4, metadata (tag @12, @16),
 *                        capabilities @24                    size 32
 *   message              tag @0, payload @8 (request, or response + option<context> @32)  size 64
 *   lazy-load-blob opt.  tag @0, mime option<string> (tag @4, @8), bytes @16  size 24
 *   send-error 1.0.0     kind @0, target @4, message @40, blob @104   size 128
 *   send-error 0.7.0     kind @0, message @8, blob @72                size 96
 *   receive result       tag @0, payload @8: ok (address @8, message @40),
 *                        err (send-error @8, option<context> @8+size)
 *   send-request args    address @0, request @32, option<context> (tag @88, @92),
 *                        option<lazy-load-blob> @100          size 128, align 8
 *
 * Recycling (componentize-js guests only, see `Reclaimed`): componentize-js 0.23
 * allocates every string and list it lowers for an import call with a tracked
 * realloc and frees them only when the export returns (its post-return). A Kinode
 * process's export is `init`, which never returns: each message sent added its
 * buffers to that list for good (a leak), and every free in the guest (its
 * bindings free each string and list they lift from a result) searched the whole
 * list, so the process got slower with every message (7.3k -> 3.1k echo round
 * trips/s over 40k messages). Those buffers are dead once the import returns, so
 * we keep them and lower later results into them: the guest's bindings free them
 * after lifting, which also takes them off the list.
 */
import type { Address } from "../Ids.ts"
import type { Capability, LazyLoadBlob, Message, Received, Request } from "../Message.ts"
import type { ProcessApi } from "../ProcessApi.ts"
import type { KinodeVersion } from "./ComponentShape.ts"
import { HostTrap } from "./KinodeImports.ts"
import type { IdCodec } from "./WitValues.ts"

const CABI_LOWER = Symbol.for("cabiLower")

/** JSPI's import wrapper (Node 24); not in TypeScript's lib yet. */
const Suspending = (WebAssembly as unknown as {
  readonly Suspending: new(fn: (...args: Array<number>) => unknown) => object
}).Suspending

interface CoreContext {
  readonly memory: WebAssembly.Memory
  readonly realloc?: (old: number, oldSize: number, align: number, size: number) => number
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const emptyBytes = new Uint8Array(0)

/**
 * UTF-8 of the strings lowered most: node names, process-id parts, capability
 * params. They repeat on every message, and encoding them afresh was a fifth of
 * a Wasm<->Wasm round trip (plus the garbage). Bounded: cleared when full.
 */
const ENCODED_LIMIT = 4096
const SHORT_STRING = 24
const encoded = new Map<string, Uint8Array>()
const utf8 = (s: string): Uint8Array => {
  let bytes = encoded.get(s)
  if (bytes === undefined) {
    if (encoded.size >= ENCODED_LIMIT) encoded.clear()
    bytes = encoder.encode(s)
    encoded.set(s, bytes)
  }
  return bytes
}

/** At most this many reclaimed buffers are kept (the smallest go first). */
const RECLAIM_LIMIT = 256

/**
 * Buffers a componentize-js guest lowered for our imports, by pointer and the size
 * it asked for. Each is still on the guest's own list of allocations to free when
 * `init` returns, but nothing in the guest reads it any more; handed out again as
 * the memory of a result, it is freed (and taken off that list) by the guest's
 * bindings once they have lifted the result.
 */
export class Reclaimed {
  private readonly ptrs: Array<number> = []
  private readonly sizes: Array<number> = []
  get size(): number {
    return this.ptrs.length
  }
  add(ptr: number, size: number): void {
    if (this.ptrs.length >= RECLAIM_LIMIT) {
      // Full: drop the smallest (a buffer no result fits in would stay forever).
      let min = 0
      for (let i = 1; i < this.sizes.length; i++) if (this.sizes[i]! < this.sizes[min]!) min = i
      if (this.sizes[min]! >= size) return
      this.removeAt(min)
    }
    this.ptrs.push(ptr)
    this.sizes.push(size)
  }
  /** The smallest kept buffer of at least `size` bytes aligned to `align`; removed from the pool. */
  take(size: number, align: number): number | undefined {
    let best = -1
    for (let i = 0; i < this.ptrs.length; i++) {
      const s = this.sizes[i]!
      if (s >= size && (best < 0 || s < this.sizes[best]!) && this.ptrs[i]! % align === 0) {
        best = i
        if (s === size) break
      }
    }
    if (best < 0) return undefined
    const ptr = this.ptrs[best]!
    this.removeAt(best)
    return ptr
  }
  private removeAt(i: number): void {
    const last = this.ptrs.length - 1
    this.ptrs[i] = this.ptrs[last]!
    this.sizes[i] = this.sizes[last]!
    this.ptrs.pop()
    this.sizes.pop()
  }
}

/** Memory access that survives `memory.grow` (which detaches the old buffer). */
class Guest {
  private buffer: ArrayBuffer
  private dv: DataView
  private u8: Uint8Array
  private readonly memory: WebAssembly.Memory
  private readonly realloc: CoreContext["realloc"]
  private readonly reclaimed: Reclaimed | undefined
  constructor(ctx: CoreContext, reclaimed: Reclaimed | undefined) {
    this.memory = ctx.memory
    this.realloc = ctx.realloc
    this.reclaimed = reclaimed
    this.buffer = ctx.memory.buffer as ArrayBuffer
    this.dv = new DataView(this.buffer)
    this.u8 = new Uint8Array(this.buffer)
  }
  /** A grown memory detaches the old buffer (byteLength 0): cheaper to test than reading `memory.buffer`. */
  private fresh(): void {
    if (this.buffer.byteLength === 0) {
      this.buffer = this.memory.buffer as ArrayBuffer
      this.dv = new DataView(this.buffer)
      this.u8 = new Uint8Array(this.buffer)
    }
  }
  view(): DataView {
    this.fresh()
    return this.dv
  }
  bytes(): Uint8Array {
    this.fresh()
    return this.u8
  }
  alloc(size: number, align: number): number {
    if (size === 0) return align
    const reused = this.reclaimed?.take(size, align)
    if (reused !== undefined) return reused
    if (this.realloc === undefined) throw new HostTrap("component exports no cabi_realloc")
    // i32 results arrive signed; a broken allocator must not make the host write out of bounds.
    const ptr = this.realloc(0, 0, align, size) >>> 0
    const end = this.bytes().length
    if (ptr + size > end) {
      throw new HostTrap(`cabi_realloc returned ${ptr} for ${size} bytes, beyond the end of guest memory (${end} bytes)`)
    }
    return ptr
  }
  // ---- lowering (host -> guest) ----
  putBytes(at: number, data: Uint8Array): void {
    const ptr = this.alloc(data.length, 1)
    this.bytes().set(data, ptr)
    const dv = this.view()
    dv.setUint32(at, ptr, true)
    dv.setUint32(at + 4, data.length, true)
  }
  putString(at: number, s: string): void {
    this.putBytes(at, s.length === 0 ? emptyBytes : encoder.encode(s))
  }
  /** A string that recurs on every message (address parts, capability params): encoded once. */
  putName(at: number, s: string): void {
    this.putBytes(at, s.length === 0 ? emptyBytes : utf8(s))
  }
  putOptionString(at: number, s: string | undefined): void {
    if (s === undefined) {
      this.view().setUint8(at, 0)
    } else {
      this.view().setUint8(at, 1)
      this.putString(at + 4, s)
    }
  }
  /**
   * One allocation per string. The guest owns
   * every lowered string and may free each pointer (StarlingMonkey/componentize-js does);
   * four strings packed in one allocation hand it interior pointers, and freeing them
   * corrupts its heap (trap: out of bounds memory access).
   */
  putAddress(at: number, a: Address): void {
    this.putName(at, a.node)
    this.putName(at + 8, a.process.processName)
    this.putName(at + 16, a.process.packageName)
    this.putName(at + 24, a.process.publisherNode)
  }
  putCapabilities(at: number, caps: ReadonlyArray<Capability>): void {
    const n = caps.length
    const base = n === 0 ? 4 : this.alloc(n * 40, 4)
    for (let i = 0; i < n; i++) {
      const c = caps[i]!
      this.putAddress(base + i * 40, c.issuer)
      this.putName(base + i * 40 + 32, c.params)
    }
    const dv = this.view()
    dv.setUint32(at, base, true)
    dv.setUint32(at + 4, n, true)
  }
  putMessage(at: number, m: Message): void {
    const p = at + 8
    if (m._tag === "Request") {
      this.view().setUint8(at, 0)
      this.view().setUint8(p, m.inherit ? 1 : 0)
      if (m.expectsResponse === undefined) this.view().setUint8(p + 8, 0)
      else {
        this.view().setUint8(p + 8, 1)
        this.view().setBigUint64(p + 16, m.expectsResponse, true)
      }
      this.putBytes(p + 24, m.body)
      this.putOptionString(p + 32, m.metadata)
      this.putCapabilities(p + 44, m.capabilities)
    } else {
      this.view().setUint8(at, 1)
      this.view().setUint8(p, m.inherit ? 1 : 0)
      this.putBytes(p + 4, m.body)
      this.putOptionString(p + 12, m.metadata)
      this.putCapabilities(p + 24, m.capabilities)
      if (m.context === undefined) this.view().setUint8(p + 32, 0)
      else {
        this.view().setUint8(p + 32, 1)
        this.putBytes(p + 36, m.context)
      }
    }
  }
  putOptionBlob(at: number, b: LazyLoadBlob | undefined): void {
    if (b === undefined) {
      this.view().setUint8(at, 0)
      return
    }
    this.view().setUint8(at, 1)
    this.putOptionString(at + 4, b.mime)
    this.putBytes(at + 16, b.bytes)
  }
  putReceived(at: number, r: Received, version: KinodeVersion): void {
    if (r._tag === "Message") {
      this.view().setUint8(at, 0)
      this.putAddress(at + 8, r.source)
      this.putMessage(at + 40, r.message)
      return
    }
    this.view().setUint8(at, 1)
    const e = at + 8
    const err = r.error
    this.view().setUint8(e, err.kind === "offline" ? 0 : 1)
    let contextAt: number
    if (version === "1.0.0") {
      this.putAddress(e + 4, err.target)
      this.putMessage(e + 40, err.message)
      this.putOptionBlob(e + 104, err.blob)
      contextAt = e + 128
    } else {
      this.putMessage(e + 8, err.message)
      this.putOptionBlob(e + 72, err.blob)
      contextAt = e + 96
    }
    if (r.context === undefined) this.view().setUint8(contextAt, 0)
    else {
      this.view().setUint8(contextAt, 1)
      this.putBytes(contextAt + 4, r.context)
    }
  }
  // ---- reclaiming what the guest lowered for a call, once it has been read ----
  reclaim(ptr: number, size: number): void {
    if (this.reclaimed === undefined || size === 0 || ptr === 0) return
    if (ptr + size > this.bytes().length) return
    this.reclaimed.add(ptr, size)
  }
  reclaimStringAt(at: number): void {
    const dv = this.view()
    this.reclaim(dv.getUint32(at, true), dv.getUint32(at + 4, true))
  }
  reclaimAddress(at: number): void {
    for (let i = 0; i < 32; i += 8) this.reclaimStringAt(at + i)
  }
  reclaimCapabilities(ptr: number, n: number): void {
    if (this.reclaimed === undefined || n === 0) return
    for (let i = 0; i < n; i++) {
      this.reclaimAddress(ptr + i * 40)
      this.reclaimStringAt(ptr + i * 40 + 32)
    }
    this.reclaim(ptr, n * 40)
  }
  reclaimRequest(at: number): void {
    const dv = this.view()
    this.reclaimStringAt(at + 24)
    if (dv.getUint8(at + 32) !== 0) this.reclaimStringAt(at + 36)
    this.reclaimCapabilities(dv.getUint32(at + 44, true), dv.getUint32(at + 48, true))
  }
  reclaimOptionBlob(at: number): void {
    const dv = this.view()
    if (dv.getUint8(at) === 0) return
    if (dv.getUint8(at + 4) !== 0) this.reclaimStringAt(at + 8)
    this.reclaimStringAt(at + 16)
  }
  // ---- lifting (guest -> host); byte data is copied out ----
  getBytes(ptr: number, len: number): Uint8Array {
    return len === 0 ? emptyBytes : this.bytes().slice(ptr, ptr + len)
  }
  getString(ptr: number, len: number): string {
    if (len === 0) return ""
    const u8 = this.bytes()
    if (len <= SHORT_STRING) {
      // Names are short and ASCII; TextDecoder's call overhead dominates for them.
      let s = ""
      for (let i = ptr; i < ptr + len; i++) {
        const b = u8[i]!
        if (b >= 0x80) return decoder.decode(u8.subarray(ptr, ptr + len))
        s += String.fromCharCode(b)
      }
      return s
    }
    return decoder.decode(u8.subarray(ptr, ptr + len))
  }
  getStringAt(at: number): string {
    const dv = this.view()
    return this.getString(dv.getUint32(at, true), dv.getUint32(at + 4, true))
  }
  getAddress(ids: IdCodec, at: number): Address {
    return ids.address({
      node: this.getStringAt(at),
      process: {
        processName: this.getStringAt(at + 8),
        packageName: this.getStringAt(at + 16),
        publisherNode: this.getStringAt(at + 24)
      }
    })
  }
  getCapabilities(ids: IdCodec, ptr: number, n: number): ReadonlyArray<Capability> {
    if (n === 0) return []
    const caps: Array<Capability> = []
    for (let i = 0; i < n; i++) {
      caps.push({ issuer: this.getAddress(ids, ptr + i * 40), params: this.getStringAt(ptr + i * 40 + 32) })
    }
    return caps
  }
  getRequest(ids: IdCodec, at: number): Request {
    const dv = this.view()
    return {
      _tag: "Request",
      inherit: dv.getUint8(at) !== 0,
      expectsResponse: dv.getUint8(at + 8) === 0 ? undefined : dv.getBigUint64(at + 16, true),
      body: this.getBytes(dv.getUint32(at + 24, true), dv.getUint32(at + 28, true)),
      metadata: dv.getUint8(at + 32) === 0 ? undefined : this.getStringAt(at + 36),
      capabilities: this.getCapabilities(ids, dv.getUint32(at + 44, true), dv.getUint32(at + 48, true))
    }
  }
  getOptionBlob(at: number): LazyLoadBlob | undefined {
    const dv = this.view()
    if (dv.getUint8(at) === 0) return undefined
    return {
      mime: dv.getUint8(at + 4) === 0 ? undefined : this.getStringAt(at + 8),
      bytes: this.getBytes(dv.getUint32(at + 16, true), dv.getUint32(at + 20, true))
    }
  }
}

const withLower = <F extends (...args: never) => unknown>(fn: F, lower: (ctx: CoreContext) => unknown): F =>
  Object.assign(fn, { [CABI_LOWER]: lower })

/**
 * Adds core-ABI fast paths to the hot functions of a `makeKinodeImports` object.
 * The generic (JS-value) versions stay as they are for glue that does not ask.
 * `recycle`: the guest is componentize-js (see `Reclaimed`); never for other guests,
 * which may free or reuse what they lowered as soon as the call returns.
 */
export const addFastPaths = (
  generic: Record<string, unknown>,
  api: ProcessApi,
  ids: IdCodec,
  version: KinodeVersion,
  recycle = false
): Record<string, unknown> => {
  // One pool per process instance, shared by every import of it.
  const reclaimed = recycle ? new Reclaimed() : undefined
  const guestOf = (ctx: CoreContext) => new Guest(ctx, reclaimed)

  const receive = withLower(generic["receive"] as () => unknown, (ctx) => {
    const guest = guestOf(ctx)
    const receiveCore = (retptr: number): void | Promise<void> => {
      const ready = api.tryReceive()
      if (ready !== undefined) {
        guest.putReceived(retptr, ready, version)
        return
      }
      return api.receive().then((r) => guest.putReceived(retptr, r, version))
    }
    return new Suspending(receiveCore as (...args: Array<number>) => unknown)
  })

  const sendResponse = withLower(generic["sendResponse"] as () => unknown, (ctx) => {
    const guest = guestOf(ctx)
    return (
      inherit: number,
      bodyPtr: number,
      bodyLen: number,
      metaTag: number,
      metaPtr: number,
      metaLen: number,
      capsPtr: number,
      capsLen: number,
      blobTag: number,
      mimeTag: number,
      mimePtr: number,
      mimeLen: number,
      bytesPtr: number,
      bytesLen: number
    ): void => {
      const refused = api.sendResponse(
        {
          _tag: "Response",
          inherit: inherit !== 0,
          body: guest.getBytes(bodyPtr, bodyLen),
          metadata: metaTag === 0 ? undefined : guest.getString(metaPtr, metaLen),
          capabilities: guest.getCapabilities(ids, capsPtr, capsLen),
          context: undefined
        },
        blobTag === 0 ? undefined : {
          mime: mimeTag === 0 ? undefined : guest.getString(mimePtr, mimeLen),
          bytes: guest.getBytes(bytesPtr, bytesLen)
        }
      )
      if (reclaimed !== undefined) {
        guest.reclaim(bodyPtr, bodyLen)
        if (metaTag !== 0) guest.reclaim(metaPtr, metaLen)
        guest.reclaimCapabilities(capsPtr, capsLen)
        if (blobTag !== 0) {
          if (mimeTag !== 0) guest.reclaim(mimePtr, mimeLen)
          guest.reclaim(bytesPtr, bytesLen)
        }
      }
      if (refused !== undefined && refused._tag === "NothingToAnswer") {
        api.printToTerminal(0, "send-response: there is no request to answer")
      }
    }
  })

  const sendRequest = withLower(generic["sendRequest"] as () => unknown, (ctx) => {
    const guest = guestOf(ctx)
    // One pointer to tuple<address, request, option<context>, option<lazy-load-blob>>.
    return (at: number): void => {
      const dv = guest.view()
      const hasContext = dv.getUint8(at + 88) !== 0
      const context = hasContext ? guest.getBytes(dv.getUint32(at + 92, true), dv.getUint32(at + 96, true)) : undefined
      api.sendRequest(guest.getAddress(ids, at), guest.getRequest(ids, at + 32), context, guest.getOptionBlob(at + 100))
      if (reclaimed !== undefined) {
        guest.reclaimAddress(at)
        guest.reclaimRequest(at + 32)
        if (hasContext) guest.reclaimStringAt(at + 92)
        guest.reclaimOptionBlob(at + 100)
        guest.reclaim(at, 128)
      }
    }
  })

  // print-to-terminal: (level, message). Every line an app logs would otherwise go through jco's glue.
  const printToTerminal = withLower(generic["printToTerminal"] as () => unknown, (ctx) => {
    const guest = guestOf(ctx)
    return (level: number, ptr: number, len: number): void => {
      api.printToTerminal(level & 0xff, guest.getString(ptr, len))
      guest.reclaim(ptr, len)
    }
  })

  // get-blob / last-blob write the (possibly large) blob straight into guest memory: option<lazy-load-blob> at retptr.
  const blobGetter = (name: "getBlob" | "lastBlob", read: () => LazyLoadBlob | undefined) =>
    withLower(generic[name] as () => unknown, (ctx) => {
      const guest = guestOf(ctx)
      return (retptr: number): void => guest.putOptionBlob(retptr, read())
    })
  const getBlob = blobGetter("getBlob", api.getBlob)
  const lastBlob = blobGetter("lastBlob", api.lastBlob)

  // The waiting calls without a result. jco's async glue never settles such a call
  // whose host function failed, so the process would hang where Kinode traps (a failed
  // set-state or clear-state); as JSPI imports of their own, a rejection traps at once.
  // (clear-state gets no memory: it lowers nothing.) What they lowered is read before
  // they wait, so it is reclaimed at once.
  const suspending = (name: string, lower: (ctx: CoreContext) => (...args: Array<number>) => Promise<void>) =>
    withLower(generic[name] as () => unknown, (ctx) => new Suspending(lower(ctx)))
  const withGuest = (f: (guest: Guest, a: number, b: number) => Promise<void>) => (ctx: CoreContext) => {
    const guest = guestOf(ctx)
    return (...args: Array<number>) => f(guest, args[0]!, args[1]!)
  }
  const setState = suspending(
    "setState",
    withGuest((guest, ptr, len) => {
      const bytes = guest.getBytes(ptr, len)
      guest.reclaim(ptr, len)
      return api.setState(bytes)
    })
  )
  const clearState = suspending("clearState", () => () => api.clearState())
  const capabilitiesCall = (call: (caps: ReadonlyArray<Capability>) => Promise<void>) =>
    withGuest((guest, ptr, n) => {
      const caps = guest.getCapabilities(ids, ptr, n)
      guest.reclaimCapabilities(ptr, n)
      return call(caps)
    })
  const saveCapabilities = suspending("saveCapabilities", capabilitiesCall((caps) => api.saveCapabilities(caps)))
  const dropCapabilities = suspending("dropCapabilities", capabilitiesCall((caps) => api.dropCapabilities(caps)))

  return {
    ...generic,
    receive,
    sendResponse,
    sendRequest,
    printToTerminal,
    getBlob,
    lastBlob,
    setState,
    clearState,
    saveCapabilities,
    dropCapabilities
  }
}
