/**
 * Conversions between jco's JavaScript form of `kinode:process` WIT values and
 * the kernel's types (src/Ids.ts, src/Message.ts).
 *
 * jco's form: records are objects with camelCase fields, variants are
 * `{ tag, val }`, enums are their kebab-case strings, options are the value or
 * undefined, u64 is a bigint, list<u8> a Uint8Array (copied out of guest memory).
 *
 * Address objects cost about a microsecond to build and are compared by their
 * string form inside the kernel, so both directions are memoised per process.
 */
import { Address, ProcessId } from "../Ids.ts"
import type { Capability, LazyLoadBlob, Message, OnExit, Received, Request, Response, SendError } from "../Message.ts"

export interface WitProcessId {
  readonly processName: string
  readonly packageName: string
  readonly publisherNode: string
}
export interface WitAddress {
  readonly node: string
  readonly process: WitProcessId
}
export interface WitCapability {
  readonly issuer: WitAddress
  readonly params: string
}
export interface WitBlob {
  readonly mime: string | undefined
  readonly bytes: Uint8Array
}
export interface WitRequest {
  readonly inherit: boolean
  readonly expectsResponse: bigint | undefined
  readonly body: Uint8Array
  readonly metadata: string | undefined
  readonly capabilities: ReadonlyArray<WitCapability>
}
export interface WitResponse {
  readonly inherit: boolean
  readonly body: Uint8Array
  readonly metadata: string | undefined
  readonly capabilities: ReadonlyArray<WitCapability>
}
export type WitMessage =
  | { readonly tag: "request"; readonly val: WitRequest }
  | { readonly tag: "response"; readonly val: readonly [WitResponse, Uint8Array | undefined] }
export interface WitSendError {
  readonly kind: "offline" | "timeout"
  /** Absent from the 0.7.0 record; jco ignores the extra field there. */
  readonly target: WitAddress
  readonly message: WitMessage
  readonly lazyLoadBlob: WitBlob | undefined
}
export type WitOnExit =
  | { readonly tag: "none" }
  | { readonly tag: "restart" }
  | { readonly tag: "requests"; readonly val: ReadonlyArray<readonly [WitAddress, WitRequest, WitBlob | undefined]> }

export type WitResult<T, E> = { readonly tag: "ok"; readonly val: T } | { readonly tag: "err"; readonly val: E }

export type WitReceived = WitResult<
  readonly [WitAddress, WitMessage],
  readonly [WitSendError, Uint8Array | undefined]
>

const CACHE_LIMIT = 4096

/** Per-process memo of id conversions. */
export interface IdCodec {
  readonly address: (a: WitAddress) => Address
  readonly processId: (p: WitProcessId) => ProcessId
  readonly witAddress: (a: Address) => WitAddress
  readonly witProcessId: (p: ProcessId) => WitProcessId
}

export const makeIdCodec = (): IdCodec => {
  const addresses = new Map<string, Address>()
  const pids = new Map<string, ProcessId>()
  const witAddresses = new WeakMap<Address, WitAddress>()
  const witPids = new WeakMap<ProcessId, WitProcessId>()

  const processId = (p: WitProcessId): ProcessId => {
    const key = `${p.processName}:${p.packageName}:${p.publisherNode}`
    let pid = pids.get(key)
    if (pid === undefined) {
      if (pids.size >= CACHE_LIMIT) pids.clear()
      pid = new ProcessId(
        { processName: p.processName, packageName: p.packageName, publisherNode: p.publisherNode },
        { disableChecks: true }
      )
      pids.set(key, pid)
    }
    return pid
  }
  const address = (a: WitAddress): Address => {
    const p = a.process
    const key = `${a.node}@${p.processName}:${p.packageName}:${p.publisherNode}`
    let addr = addresses.get(key)
    if (addr === undefined) {
      if (addresses.size >= CACHE_LIMIT) addresses.clear()
      addr = new Address({ node: a.node, process: processId(p) }, { disableChecks: true })
      addresses.set(key, addr)
    }
    return addr
  }
  const witProcessId = (p: ProcessId): WitProcessId => {
    let w = witPids.get(p)
    if (w === undefined) {
      w = { processName: p.processName, packageName: p.packageName, publisherNode: p.publisherNode }
      witPids.set(p, w)
    }
    return w
  }
  const witAddress = (a: Address): WitAddress => {
    let w = witAddresses.get(a)
    if (w === undefined) {
      w = { node: a.node, process: witProcessId(a.process) }
      witAddresses.set(a, w)
    }
    return w
  }
  return { address, processId, witAddress, witProcessId }
}

// Blobs have the same shape on both sides; only the optional mime needs care.
export const blobFromWit = (b: WitBlob | undefined): LazyLoadBlob | undefined =>
  b === undefined || b === null ? undefined : { mime: b.mime ?? undefined, bytes: b.bytes }
export const blobToWit = (b: LazyLoadBlob | undefined): WitBlob | undefined => b

export const capabilitiesFromWit = (ids: IdCodec, caps: ReadonlyArray<WitCapability>): ReadonlyArray<Capability> =>
  caps.length === 0 ? [] : caps.map((c) => ({ issuer: ids.address(c.issuer), params: c.params }))
export const capabilitiesToWit = (ids: IdCodec, caps: ReadonlyArray<Capability>): ReadonlyArray<WitCapability> =>
  caps.length === 0 ? [] : caps.map((c) => ({ issuer: ids.witAddress(c.issuer), params: c.params }))

export const requestFromWit = (ids: IdCodec, r: WitRequest): Request => ({
  _tag: "Request",
  inherit: r.inherit,
  expectsResponse: r.expectsResponse ?? undefined,
  body: r.body,
  metadata: r.metadata ?? undefined,
  capabilities: capabilitiesFromWit(ids, r.capabilities)
})

export const responseFromWit = (ids: IdCodec, r: WitResponse): Response => ({
  _tag: "Response",
  inherit: r.inherit,
  body: r.body,
  metadata: r.metadata ?? undefined,
  capabilities: capabilitiesFromWit(ids, r.capabilities),
  context: undefined
})

export const requestToWit = (ids: IdCodec, r: Request): WitRequest => ({
  inherit: r.inherit,
  expectsResponse: r.expectsResponse,
  body: r.body,
  metadata: r.metadata,
  capabilities: capabilitiesToWit(ids, r.capabilities)
})

export const messageToWit = (ids: IdCodec, m: Message): WitMessage =>
  m._tag === "Request"
    ? { tag: "request", val: requestToWit(ids, m) }
    : {
      tag: "response",
      val: [{
        inherit: m.inherit,
        body: m.body,
        metadata: m.metadata,
        capabilities: capabilitiesToWit(ids, m.capabilities)
      }, m.context]
    }

export const sendErrorToWit = (ids: IdCodec, e: SendError): WitSendError => ({
  kind: e.kind,
  target: ids.witAddress(e.target),
  message: messageToWit(ids, e.message),
  lazyLoadBlob: e.blob
})

export const receivedToWit = (ids: IdCodec, r: Received): WitReceived =>
  r._tag === "Message"
    ? { tag: "ok", val: [ids.witAddress(r.source), messageToWit(ids, r.message)] }
    : { tag: "err", val: [sendErrorToWit(ids, r.error), r.context] }

export const onExitFromWit = (ids: IdCodec, o: WitOnExit): OnExit => {
  switch (o.tag) {
    case "none":
      return { _tag: "None" }
    case "restart":
      return { _tag: "Restart" }
    case "requests":
      return {
        _tag: "Requests",
        requests: o.val.map(([target, request, blob]) => ({
          target: ids.address(target),
          request: requestFromWit(ids, request),
          blob: blobFromWit(blob)
        }))
      }
  }
}

export const onExitToWit = (ids: IdCodec, o: OnExit): WitOnExit => {
  switch (o._tag) {
    case "None":
      return { tag: "none" }
    case "Restart":
      return { tag: "restart" }
    case "Requests":
      return {
        tag: "requests",
        val: o.requests.map((r) => [ids.witAddress(r.target), requestToWit(ids, r.request), r.blob] as const)
      }
  }
}
