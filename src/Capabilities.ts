/**
 * Capabilities: equality, signing, and the kernel's in-memory grant table.
 *
 * Two capabilities are equal when their issuers are equal and their params are equal
 * *as parsed JSON* (key order and whitespace do not matter). Kinode maps every
 * unparseable params string to `null`, which makes all of them equal to each other
 * [quirk]; here unparseable params compare by their exact text instead.
 *
 * A stored capability carries the node key's Ed25519 signature over the MessagePack
 * 2-array `[issuer, params]` (params signed verbatim), as Kinode signs them.
 */
import { type Address, localAddress, type ProcessId } from "./Ids.ts"
import type { Capability, SignedCapability } from "./Message.ts"

/** The capability to message `target` on `node`. */
export const messagingCap = (node: string, target: string | ProcessId): Capability => ({
  issuer: localAddress(node, target),
  params: "\"messaging\""
})

/** The capability to send to and receive from other nodes. */
export const networkCap = (node: string): Capability => ({
  issuer: localAddress(node, "kernel:distro:sys"),
  params: "\"network\""
})

const sortKeys = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(value).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k])
    return out
  }
  return value
}

const canonicalCache = new Map<string, string>()
const CANONICAL_CACHE_MAX = 10_000

/**
 * Params in a canonical text: parsed JSON printed with sorted keys, or the raw text if
 * unparseable. Memoized (bounded): services check the same few params on every request.
 */
export const canonicalParams = (params: string): string => {
  if (params === "\"messaging\"" || params === "\"network\"") return params
  const cached = canonicalCache.get(params)
  if (cached !== undefined) return cached
  let canonical: string
  try {
    canonical = JSON.stringify(sortKeys(JSON.parse(params)))
  } catch {
    canonical = `raw:${params}`
  }
  if (canonicalCache.size >= CANONICAL_CACHE_MAX) canonicalCache.clear()
  canonicalCache.set(params, canonical)
  return canonical
}

/** The key a capability is stored and compared under. */
export const capabilityKey = (issuer: Address | string, params: string): string =>
  `${typeof issuer === "string" ? issuer : issuer.toString()}\u0000${canonicalParams(params)}`

const utf8 = new TextEncoder()

const msgpackStr = (s: string): Uint8Array => {
  const bytes = utf8.encode(s)
  const n = bytes.length
  const head = n < 32
    ? [0xa0 | n]
    : n < 256
    ? [0xd9, n]
    : n < 65536
    ? [0xda, n >> 8, n & 0xff]
    : [0xdb, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]
  const out = new Uint8Array(head.length + n)
  out.set(head, 0)
  out.set(bytes, head.length)
  return out
}

/** The bytes a capability signature covers: MessagePack `[issuer, params]`. */
export const signingBytes = (cap: Capability): Uint8Array => {
  const issuer = msgpackStr(cap.issuer.toString())
  const params = msgpackStr(cap.params)
  const out = new Uint8Array(1 + issuer.length + params.length)
  out[0] = 0x92
  out.set(issuer, 1)
  out.set(params, 1 + issuer.length)
  return out
}

/**
 * Who holds what. Memory only; the kernel persists a holder's set with its process entry
 * after every change.
 */
export class GrantTable {
  private readonly byHolder = new Map<string, Map<string, SignedCapability>>()

  holds(holder: string, key: string): boolean {
    return this.byHolder.get(holder)?.has(key) ?? false
  }

  get(holder: string, key: string): SignedCapability | undefined {
    return this.byHolder.get(holder)?.get(key)
  }

  has(holder: string, cap: Capability): boolean {
    return this.holds(holder, capabilityKey(cap.issuer, cap.params))
  }

  /** Adds caps; true if anything changed. */
  add(holder: string, caps: ReadonlyArray<SignedCapability>): boolean {
    let set = this.byHolder.get(holder)
    if (set === undefined) {
      set = new Map()
      this.byHolder.set(holder, set)
    }
    let changed = false
    for (const cap of caps) {
      const key = capabilityKey(cap.issuer, cap.params)
      if (!set.has(key)) changed = true
      set.set(key, cap)
    }
    return changed
  }

  /** Removes caps (absent ones are ignored); true if anything changed. */
  drop(holder: string, caps: ReadonlyArray<Capability>): boolean {
    const set = this.byHolder.get(holder)
    if (set === undefined) return false
    let changed = false
    for (const cap of caps) changed = set.delete(capabilityKey(cap.issuer, cap.params)) || changed
    return changed
  }

  list(holder: string): ReadonlyArray<SignedCapability> {
    const set = this.byHolder.get(holder)
    return set === undefined ? [] : Array.from(set.values())
  }

  /** Removes a holder entirely (its process is gone). */
  forget(holder: string): void {
    this.byHolder.delete(holder)
  }

  /** Removes from every holder each cap issued by `issuerProcess`; returns the holders that changed. */
  revokeIssuedBy(issuerProcess: string): Array<string> {
    const changed: Array<string> = []
    for (const [holder, set] of this.byHolder) {
      let hit = false
      for (const [key, cap] of set) {
        if (cap.issuer.process.toString() === issuerProcess) {
          set.delete(key)
          hit = true
        }
      }
      if (hit) changed.push(holder)
    }
    return changed
  }
}
