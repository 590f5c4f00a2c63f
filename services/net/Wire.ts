/**
 * What travels between nodes on a net stream, and how it is cut into frames.
 *
 * Frames: a 4-byte big-endian length, then that many bytes of MessagePack. The length
 * is checked before anything is buffered, so an oversized frame is refused from its
 * header alone (Kinode's TCP receiver trusts the length [quirk]).
 *
 * The first frame on a stream is the dialler's `Hello` (its node name: the receiver
 * checks the chain's key for that name against the peer's proven libp2p key). Every
 * later frame is one `KernelMessage` as a MessagePack array (`WireMessage`), decoded
 * with its Schema: ids must parse and be Kimap-safe, ids are u64.
 *
 * Capabilities travel with their signatures; a response never carries its context
 * (that stays with the requester's process host).
 */
import { Result, Schema } from "effect"
import { Packr } from "msgpackr"
import { type Address, type AddressParseError, checkKimapSafe, parseAddress } from "../../src/Ids.ts"
import { type KernelMessage, MAX_MESSAGE_BYTES, type Message, type SignedCapability } from "../../src/Message.ts"

/** Room for the envelope (addresses, metadata, capabilities) beside a full 10 MiB message. */
export const ENVELOPE_ALLOWANCE = 64 * 1024
/** The largest frame either side accepts. */
export const MAX_FRAME_BYTES = MAX_MESSAGE_BYTES + ENVELOPE_ALLOWANCE

export const PROTOCOL = "/kinode-ts/net/1.0.0"
const WIRE_VERSION = 1

const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "bigint", largeBigIntToFloat: false })

/** A u64 as MessagePack gives it: a number when it fits 32 bits, a bigint otherwise. */
const WireU64 = Schema.Union([Schema.Number, Schema.BigInt])
// Addresses travel as strings and are parsed after the shape check (`parseAddress`):
// a Schema transformation per address tripled the decode cost.
const WireCapability = Schema.Tuple([Schema.String, Schema.String, Schema.Uint8Array])
const WireRequest = Schema.Tuple([
  Schema.Literal(0),
  Schema.Boolean,
  Schema.NullOr(WireU64),
  Schema.Uint8Array,
  Schema.NullOr(Schema.String),
  Schema.Array(WireCapability)
])
const WireResponse = Schema.Tuple([
  Schema.Literal(1),
  Schema.Boolean,
  Schema.Uint8Array,
  Schema.NullOr(Schema.String),
  Schema.Array(WireCapability)
])
/** `[id, source, target, rsvp, message, blob]`. */
export const WireMessage = Schema.Tuple([
  WireU64,
  Schema.String,
  Schema.String,
  Schema.NullOr(Schema.String),
  Schema.Union([WireRequest, WireResponse]),
  Schema.NullOr(Schema.Tuple([Schema.NullOr(Schema.String), Schema.Uint8Array]))
])

/** `["kinode-ts/net", version, name]`: who opened the stream. */
export const Hello = Schema.Tuple([Schema.Literal("kinode-ts/net"), Schema.Literal(WIRE_VERSION), Schema.String])

const decodeWire = Schema.decodeUnknownResult(WireMessage)
const decodeHello = Schema.decodeUnknownResult(Hello)

/** Why a frame was refused; the connection it came on is closed. */
export type FrameFault =
  | { readonly _tag: "Oversized"; readonly bytes: number }
  | { readonly _tag: "NotMessagePack"; readonly reason: string }
  | { readonly _tag: "Malformed"; readonly reason: string }

const caps = (list: ReadonlyArray<unknown>) =>
  (list as ReadonlyArray<SignedCapability>).map((c) => [c.issuer.toString(), c.params, c.signature ?? new Uint8Array(0)])

const encodeMessage = (m: Message): unknown =>
  m._tag === "Request"
    ? [0, m.inherit, m.expectsResponse ?? null, m.body, m.metadata ?? null, caps(m.capabilities)]
    : [1, m.inherit, m.body, m.metadata ?? null, caps(m.capabilities)]

/** One frame (length + MessagePack) for `km`. */
export const encodeFrame = (km: KernelMessage): Uint8Array =>
  frameOf(packr.pack([
    km.id,
    km.source.toString(),
    km.target.toString(),
    km.rsvp === null ? null : km.rsvp.toString(),
    encodeMessage(km.message),
    km.blob === undefined ? null : [km.blob.mime ?? null, km.blob.bytes]
  ]))

export const encodeHello = (name: string): Uint8Array => frameOf(packr.pack(["kinode-ts/net", WIRE_VERSION, name]))

const frameOf = (payload: Uint8Array): Uint8Array => {
  const out = new Uint8Array(4 + payload.byteLength)
  new DataView(out.buffer).setUint32(0, payload.byteLength)
  out.set(payload, 4)
  return out
}

const unpack = (payload: Uint8Array): Result.Result<unknown, FrameFault> => {
  try {
    return Result.succeed(packr.unpack(payload))
  } catch (e) {
    return Result.fail({ _tag: "NotMessagePack", reason: e instanceof Error ? e.message : String(e) })
  }
}

// Addresses repeat (the same few processes talk); building an `Address` costs about a
// microsecond, so parsed ones are kept. Cleared when full rather than LRU: cheap and bounded.
const addressCache = new Map<string, Result.Result<Address, AddressParseError>>()
const ADDRESS_CACHE_SIZE = 4096
const parseCached = (text: string): Result.Result<Address, AddressParseError> => {
  let r = addressCache.get(text)
  if (r === undefined) {
    if (addressCache.size >= ADDRESS_CACHE_SIZE) addressCache.clear()
    r = parseAddress(text)
    addressCache.set(text, r)
  }
  return r
}

const U64_MAX = (1n << 64n) - 1n
const u64 = (n: number | bigint): bigint | undefined => {
  if (typeof n === "number") return Number.isInteger(n) && n >= 0 ? BigInt(n) : undefined
  return n >= 0n && n <= U64_MAX ? n : undefined
}

const malformed = (reason: string): Result.Result<never, FrameFault> => Result.fail({ _tag: "Malformed", reason })

export const decodeHelloFrame = (payload: Uint8Array): Result.Result<string, FrameFault> =>
  Result.flatMap(unpack(payload), (value) => {
    const hello = decodeHello(value)
    return Result.isFailure(hello) ? malformed(`not a hello: ${hello.failure.message}`) : Result.succeed(hello.success[2])
  })

/** Decodes one message frame; the source process must be Kimap-safe (Kinode closes the connection otherwise). */
export const decodeMessageFrame = (payload: Uint8Array): Result.Result<KernelMessage, FrameFault> =>
  Result.flatMap(unpack(payload), (value) => {
    const wire = decodeWire(value)
    if (Result.isFailure(wire)) return malformed(wire.failure.message)
    const [rawId, sourceText, targetText, rsvpText, m, blob] = wire.success
    const id = u64(rawId)
    if (id === undefined) return malformed(`message id ${rawId} is not a u64`)
    const expects = m[0] === 0 && m[2] !== null ? u64(m[2]) : undefined
    if (m[0] === 0 && m[2] !== null && expects === undefined) return malformed(`expects-response ${m[2]} is not a u64`)
    const source = parseCached(sourceText)
    const target = parseCached(targetText)
    const rsvp = rsvpText === null ? Result.succeed(null) : parseCached(rsvpText)
    if (Result.isFailure(source)) return malformed(`source: ${source.failure.message}`)
    if (Result.isFailure(target)) return malformed(`target: ${target.failure.message}`)
    if (Result.isFailure(rsvp)) return malformed(`rsvp: ${rsvp.failure.message}`)
    if (Result.isFailure(checkKimapSafe(source.success.process))) return malformed(`unsafe source process ${sourceText}`)
    let capsFault: string | undefined
    const toCaps = (list: ReadonlyArray<readonly [string, string, Uint8Array]>): ReadonlyArray<SignedCapability> => {
      if (list.length === 0) return []
      const out: Array<SignedCapability> = []
      for (const [issuerText, params, signature] of list) {
        const issuer = parseCached(issuerText)
        if (Result.isFailure(issuer)) capsFault = `capability issuer: ${issuer.failure.message}`
        else out.push({ issuer: issuer.success, params, signature })
      }
      return out
    }
    const message: Message = m[0] === 0
      ? {
        _tag: "Request",
        inherit: m[1],
        expectsResponse: expects,
        body: m[3],
        metadata: m[4] ?? undefined,
        capabilities: toCaps(m[5])
      }
      : { _tag: "Response", inherit: m[1], body: m[2], metadata: m[3] ?? undefined, capabilities: toCaps(m[4]), context: undefined }
    if (capsFault !== undefined) return malformed(capsFault)
    return Result.succeed({
      id,
      source: source.success,
      target: target.success,
      rsvp: rsvp.success,
      message,
      blob: blob === null ? undefined : { mime: blob[0] ?? undefined, bytes: blob[1] }
    })
  })

/**
 * Cuts a byte stream into frame payloads. `push` takes what the stream delivered and
 * returns the complete payloads, or the fault that must close the stream.
 */
export const makeFrameReader = (maxFrame: number = MAX_FRAME_BYTES) => {
  let chunks: Array<Uint8Array> = []
  let buffered = 0
  let need = -1 // payload length of the frame being read; -1 before its header

  const take = (n: number): Uint8Array => {
    if (n === 0) return new Uint8Array(0) // an empty frame: there may be no chunk left
    const first = chunks[0]!
    if (first.byteLength >= n) {
      const out = first.subarray(0, n)
      if (first.byteLength === n) chunks.shift()
      else chunks[0] = first.subarray(n)
      buffered -= n
      return out
    }
    const out = new Uint8Array(n)
    let at = 0
    while (at < n) {
      const c = chunks[0]!
      const k = Math.min(c.byteLength, n - at)
      out.set(c.subarray(0, k), at)
      at += k
      if (k === c.byteLength) chunks.shift()
      else chunks[0] = c.subarray(k)
    }
    buffered -= n
    return out
  }

  return {
    push: (data: Uint8Array): Result.Result<ReadonlyArray<Uint8Array>, FrameFault> => {
      if (data.byteLength > 0) {
        chunks.push(data)
        buffered += data.byteLength
      }
      const out: Array<Uint8Array> = []
      while (true) {
        if (need < 0) {
          if (buffered < 4) break
          const header = take(4)
          need = new DataView(header.buffer, header.byteOffset, 4).getUint32(0)
          if (need > maxFrame) {
            chunks = []
            buffered = 0
            return Result.fail({ _tag: "Oversized", bytes: need })
          }
        }
        if (buffered < need) break
        out.push(take(need))
        need = -1
      }
      return Result.succeed(out)
    },
    /** Bytes held for a frame not yet complete. */
    get buffered() {
      return buffered
    },
    /** Whether a frame has begun (part of its header or payload read) and not ended. */
    get partial() {
      return need >= 0 || buffered > 0
    }
  }
}

export const describeFault = (f: FrameFault): string => {
  switch (f._tag) {
    case "Oversized":
      return `frame of ${f.bytes} bytes is over the ${MAX_FRAME_BYTES}-byte limit`
    case "NotMessagePack":
      return `frame is not MessagePack (${f.reason})`
    case "Malformed":
      return `malformed frame: ${f.reason}`
  }
}
