/**
 * Seeded generators of hostile net frames for the fault tests, and the verdict the
 * victim must reach on each (from the same decoders the peer table uses, plus its two
 * address checks): a frame is "lethal" (the victim must close the connection), "fine"
 * (it must keep it), or "unknown" (its length header lies: what follows is undefined).
 */
import { Result } from "effect"
import { Packr } from "msgpackr"
import { encodeFrame, encodeHello, MAX_FRAME_BYTES } from "../../../services/net/index.ts"
import { decodeHelloFrame, decodeMessageFrame } from "../../../services/net/Wire.ts"
import { address } from "../../../src/Ids.ts"
import type { KernelMessage, Message, SignedCapability } from "../../../src/Message.ts"

/** Deterministic numbers and bytes (mulberry32), so a failing run replays from its seed. */
export const prng = (seed: number) => {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  const bytes = (n: number) => {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = int(256)
    return out
  }
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[int(xs.length)]!
  const chance = (p: number) => next() < p
  return { next, int, bytes, pick, chance }
}
export type Prng = ReturnType<typeof prng>

/** A 4-byte big-endian length (the true one unless given), then `payload`. */
export const framed = (payload: Uint8Array, length = payload.byteLength): Uint8Array => {
  const out = new Uint8Array(4 + payload.byteLength)
  new DataView(out.buffer).setUint32(0, length)
  out.set(payload, 4)
  return out
}

export type Verdict = "lethal" | "fine" | "unknown"

export interface Fuzzed {
  readonly kind: string
  readonly bytes: Uint8Array
  readonly verdict: Verdict
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true })

const U64_MAX = (1n << 64n) - 1n

const safeName = (r: Prng) => {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-"
  let s = ""
  for (let i = 0, n = 1 + r.int(10); i < n; i++) s += r.pick([...alphabet])
  return s
}

const anyString = (r: Prng): string => {
  switch (r.int(6)) {
    case 0:
      return ""
    case 1:
      return r.pick(["__proto__", "constructor", "toString", "kinode-ts/net", "victim.os", "our", "@", ":", "a:b:c"])
    case 2:
      return String.fromCodePoint(...Array.from({ length: r.int(12) }, () => r.int(0x2FFFF)).filter((c) => c < 0xD800 || c > 0xDFFF))
    case 3:
      return "x".repeat(r.int(20) === 0 ? 70_000 : r.int(300))
    default:
      return safeName(r)
  }
}

/** A random MessagePack-able value, nested up to `depth`. */
const anyValue = (r: Prng, depth = 3): unknown => {
  switch (r.int(depth > 0 ? 13 : 10)) {
    case 0:
      return null
    case 1:
      return r.chance(0.5)
    case 2:
      return r.int(256) - 128
    case 3:
      return r.pick([0, -1, 2 ** 31, 2 ** 32, -(2 ** 31) - 1, 2 ** 53 + 2, 1.5, Number.NaN, Infinity, -0])
    case 4:
      return r.pick([0n, 1n, U64_MAX, 1n << 63n, -(1n << 63n), -1n, 2n ** 53n + 1n])
    case 5:
    case 6:
      return anyString(r)
    case 7:
    case 8:
      return r.bytes(r.int(r.chance(0.01) ? 100_000 : 80))
    case 9:
      return undefined
    case 10:
    case 11:
      return Array.from({ length: r.int(8) }, () => anyValue(r, depth - 1))
    default: {
      const o: Record<string, unknown> = {}
      for (let i = 0, n = r.int(5); i < n; i++) o[anyString(r)] = anyValue(r, depth - 1)
      return o
    }
  }
}

const pack = (v: unknown): Uint8Array => {
  try {
    return packr.pack(v)
  } catch {
    return packr.pack(null)
  }
}

const PROCESSES = [
  "echo:test:pub.os",
  "net:distro:sys",
  "kernel:distro:sys",
  "inbox:test:pub.os",
  "nobody:test:pub.os"
]

const anyAddressText = (r: Prng, self: string): string =>
  `${r.pick([self, "victim.os", "friend.os", "our", safeName(r) + ".os"])}@${r.chance(0.6) ? r.pick(PROCESSES) : `${safeName(r)}:${safeName(r)}:${safeName(r)}.os`}`

const anyCaps = (r: Prng, self: string): ReadonlyArray<SignedCapability> =>
  Array.from({ length: r.chance(0.7) ? 0 : 1 + r.int(3) }, () => ({
    issuer: address(anyAddressText(r, self)),
    params: r.chance(0.5) ? "\"messaging\"" : JSON.stringify(anyString(r)),
    signature: r.bytes(r.pick([0, 63, 64, 64, 65]))
  }))

/** A well-formed message from `self` (a process of it) to the victim, fields drawn at random. */
export const validMessage = (r: Prng, self: string, body?: Uint8Array): KernelMessage => {
  const msgBody = body ?? r.bytes(r.int(r.chance(0.005) ? 200_000 : 200))
  const metadata = r.chance(0.7) ? undefined : anyString(r)
  const message: Message = r.chance(0.75)
    ? {
      _tag: "Request",
      inherit: r.chance(0.1),
      expectsResponse: r.chance(0.5) ? undefined : r.pick([0n, 1n, 5n, 30n, U64_MAX]),
      body: msgBody,
      metadata,
      capabilities: anyCaps(r, self)
    }
    : { _tag: "Response", inherit: r.chance(0.1), body: msgBody, metadata, capabilities: anyCaps(r, self), context: undefined }
  return {
    id: r.pick([0n, 1n, BigInt(r.int(2 ** 32)), U64_MAX, 2n ** 53n + 1n]),
    source: address(`${self}@${r.chance(0.8) ? "hostile:test:pub.os" : `${safeName(r)}:${safeName(r)}:${safeName(r)}.os`}`),
    target: address(`victim.os@${r.pick(PROCESSES)}`),
    rsvp: r.chance(0.9) ? null : address(r.pick([`${self}@hostile:test:pub.os`, "victim.os@echo:test:pub.os"])),
    message,
    blob: r.chance(0.8) ? undefined : { mime: r.chance(0.5) ? undefined : anyString(r), bytes: r.bytes(r.int(600)) }
  }
}

/** The wire array `encodeFrame` packs, for shape mutations. */
const wireArray = (km: KernelMessage): Array<unknown> => {
  const caps = (km.message.capabilities as ReadonlyArray<SignedCapability>).map((c) => [c.issuer.toString(), c.params, c.signature])
  const m = km.message
  return [
    km.id,
    km.source.toString(),
    km.target.toString(),
    km.rsvp?.toString() ?? null,
    m._tag === "Request"
      ? [0, m.inherit, m.expectsResponse ?? null, m.body, m.metadata ?? null, caps]
      : [1, m.inherit, m.body, m.metadata ?? null, caps],
    km.blob === undefined ? null : [km.blob.mime ?? null, km.blob.bytes]
  ]
}

const payloadOf = (frame: Uint8Array) => frame.subarray(4)

const flipBits = (r: Prng, payload: Uint8Array): Uint8Array => {
  const out = payload.slice()
  if (out.byteLength === 0) return out
  for (let i = 0, n = 1 + r.int(4); i < n; i++) {
    const at = r.chance(0.6) ? r.int(Math.min(out.byteLength, 96)) : r.int(out.byteLength) // mostly in the envelope
    out[at]! ^= 1 << r.int(8)
  }
  return out
}

const splice = (r: Prng, payload: Uint8Array): Uint8Array => {
  const at = r.int(payload.byteLength + 1)
  switch (r.int(3)) {
    case 0:
      return payload.subarray(0, at)
    case 1: {
      const cut = r.int(16) + 1
      const out = new Uint8Array(Math.max(0, payload.byteLength - cut))
      out.set(payload.subarray(0, Math.min(at, out.byteLength)))
      out.set(payload.subarray(Math.min(at + cut, payload.byteLength)).subarray(0, out.byteLength - Math.min(at, out.byteLength)), Math.min(at, out.byteLength))
      return out
    }
    default: {
      const extra = r.bytes(1 + r.int(16))
      const out = new Uint8Array(payload.byteLength + extra.byteLength)
      out.set(payload.subarray(0, at))
      out.set(extra, at)
      out.set(payload.subarray(at), at + extra.byteLength)
      return out
    }
  }
}

const deepNesting = (r: Prng): Uint8Array => {
  const depth = r.pick([1_000, 10_000, 100_000, 1_000_000])
  const out = new Uint8Array(depth + 1)
  out.fill(r.pick([0x91, 0x81, 0xdc]), 0, depth) // fixarray(1), fixmap(1), array16 (lying length)
  out[depth] = 0xc0
  return out
}

const extensions = (r: Prng): Uint8Array => {
  // ext 8: 0xc7 len type data; msgpackr has its own ext types (records, Sets, Maps, typed arrays, ...)
  const parts: Array<number> = [0x96] // an array of 6, like the message
  for (let i = 0; i < 6; i++) {
    if (r.chance(0.5)) {
      const data = r.bytes(r.int(40))
      parts.push(0xc7, data.byteLength, r.int(256), ...data)
    } else parts.push(...pack(anyValue(r, 1)))
  }
  return Uint8Array.from(parts)
}

/** The verdict on a message frame's payload from `self`. */
export const messageVerdict = (payload: Uint8Array, self: string): Verdict => {
  const decoded = decodeMessageFrame(payload)
  if (Result.isFailure(decoded)) return "lethal"
  return decoded.success.source.node === self && decoded.success.target.node === "victim.os" ? "fine" : "lethal"
}

/** The verdict on a stream's first frame from the holder of `self`'s key. */
export const helloVerdict = (payload: Uint8Array, self: string): Verdict => {
  const name = decodeHelloFrame(payload)
  return Result.isSuccess(name) && name.success === self ? "fine" : "lethal"
}

const withVerdict = (kind: string, payload: Uint8Array, verdict: (p: Uint8Array) => Verdict): Fuzzed => ({
  kind,
  bytes: framed(payload),
  verdict: verdict(payload)
})

const lyingLength = (r: Prng, kind: string, payload: Uint8Array): Fuzzed => {
  if (r.chance(0.4)) return { kind: `${kind}/oversized`, bytes: framed(payload, MAX_FRAME_BYTES + 1 + r.int(2 ** 31)), verdict: "lethal" }
  const length = r.chance(0.5) ? r.int(payload.byteLength + 1) : payload.byteLength + 1 + r.int(1000)
  return { kind: `${kind}/length`, bytes: framed(payload, length), verdict: "unknown" }
}

/** A frame after the hello. */
export const fuzzMessage = (r: Prng, self: string): Fuzzed => {
  const verdict = (p: Uint8Array) => messageVerdict(p, self)
  const roll = r.next()
  if (roll < 0.20) return withVerdict("valid", payloadOf(encodeFrame(validMessage(r, self))), verdict)
  if (roll < 0.55) return withVerdict("bit-flip", flipBits(r, payloadOf(encodeFrame(validMessage(r, self)))), verdict)
  if (roll < 0.67) {
    const wire = wireArray(validMessage(r, self))
    const at = r.int(wire.length + 1)
    if (at === wire.length) {
      const inner = wire[4] as Array<unknown>
      inner[r.int(inner.length)] = anyValue(r)
    } else wire[at] = anyValue(r)
    if (r.chance(0.1)) wire.push(anyValue(r, 1))
    return withVerdict("near-shape", pack(wire), verdict)
  }
  if (roll < 0.75) return withVerdict("wrong-shape", pack(anyValue(r)), verdict)
  if (roll < 0.81) return withVerdict("random-bytes", r.bytes(r.int(600)), verdict)
  if (roll < 0.91) return withVerdict("splice", splice(r, payloadOf(encodeFrame(validMessage(r, self)))), verdict)
  if (roll < 0.94) return withVerdict("deep", deepNesting(r), verdict)
  if (roll < 0.97) return withVerdict("ext", extensions(r), verdict)
  return lyingLength(r, "message", r.chance(0.5) ? payloadOf(encodeFrame(validMessage(r, self))) : r.bytes(r.int(100)))
}

/** A stream's first frame, when it is fuzzed. */
export const fuzzHello = (r: Prng, self: string, others: ReadonlyArray<string>): Fuzzed => {
  const verdict = (p: Uint8Array) => helloVerdict(p, self)
  const roll = r.next()
  if (roll < 0.15) return withVerdict("hello", payloadOf(encodeHello(self)), verdict)
  if (roll < 0.35) {
    return withVerdict("hello/other-name", payloadOf(encodeHello(r.pick([...others, "victim.os", safeName(r) + ".os", "", "our"]))), verdict)
  }
  if (roll < 0.50) {
    const hello: Array<unknown> = ["kinode-ts/net", 1, self]
    hello[r.int(3)] = anyValue(r, 1)
    if (r.chance(0.2)) hello.push(anyValue(r, 1))
    return withVerdict("hello/near-shape", pack(hello), verdict)
  }
  if (roll < 0.70) return withVerdict("hello/bit-flip", flipBits(r, payloadOf(encodeHello(self))), verdict)
  if (roll < 0.80) return withVerdict("hello/message", payloadOf(encodeFrame(validMessage(r, self))), verdict)
  if (roll < 0.86) return withVerdict("hello/wrong-shape", pack(anyValue(r)), verdict)
  if (roll < 0.92) return withVerdict("hello/random-bytes", r.bytes(r.int(100)), verdict)
  if (roll < 0.95) return withVerdict("hello/deep", deepNesting(r), verdict)
  return lyingLength(r, "hello", payloadOf(encodeHello(self)))
}

export const hex = (bytes: Uint8Array, max = 160) =>
  Buffer.from(bytes.subarray(0, max)).toString("hex") + (bytes.byteLength > max ? `…(${bytes.byteLength} bytes)` : "")
