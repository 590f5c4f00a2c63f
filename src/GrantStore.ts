/**
 * The grant store: which process holds which capability, signed by this node, and
 * kept durable with each holder's process record.
 *
 * The `GrantTable` (memory) stays private to the kernel: every change goes through
 * here, so each one is signed and persisted. Signing is lazy: an Ed25519 signature
 * costs ~45 us and most capabilities are never shown to anyone who checks it (only
 * those attached to messages are), so it is made on first read.
 */
import { Effect } from "effect"
import { GrantTable, signingBytes } from "./Capabilities.ts"
import type { Capability, SignedCapability } from "./Message.ts"

export interface GrantStoreDeps {
  readonly node: string
  readonly sign: (bytes: Uint8Array) => Uint8Array
  /** Whether `holder` is a registered process: grants to anyone else are ignored, as in Kinode. */
  readonly exists: (holder: string) => boolean
  /** Writes the holders' records (with their current grants) durably. */
  readonly persist: (holders: Iterable<string>) => Effect.Effect<void>
  readonly print: (level: number, source: string, text: string) => void
}

const NOT_STORED = new Uint8Array(0)

export const makeGrantStore = (deps: GrantStoreDeps) => {
  const table = new GrantTable()

  /** A capability this node issues, signed on first read (an own enumerable accessor, so spreads keep it). */
  const sign = (cap: Capability): SignedCapability => {
    let signature: Uint8Array | undefined
    return Object.defineProperty({ issuer: cap.issuer, params: cap.params }, "signature", {
      enumerable: true,
      get: () => (signature ??= deps.sign(signingBytes(cap)))
    }) as SignedCapability
  }

  /** Persisted without the signatures this node made: boot signs those again (covers a key rotation). */
  const forStore = (cap: SignedCapability): SignedCapability =>
    cap.issuer.node === deps.node ? { issuer: cap.issuer, params: cap.params, signature: NOT_STORED } : cap

  /** Adds caps in memory; whether anything changed. */
  const addUnpersisted = (holder: string, caps: ReadonlyArray<Capability>): boolean =>
    deps.exists(holder) && table.add(holder, caps.map(sign))

  const grant = (holder: string, caps: ReadonlyArray<Capability>) =>
    Effect.suspend(() => (addUnpersisted(holder, caps) ? deps.persist([holder]) : Effect.void))

  const drop = (holder: string, caps: ReadonlyArray<Capability>) =>
    Effect.suspend(() => (table.drop(holder, caps) ? deps.persist([holder]) : Effect.void))

  /**
   * `save-capabilities`: only caps the process holds, issued itself, or received on a
   * message [quirk fixed]. Issued itself means on this node: `other.os@<holder>` is not.
   */
  const save = (holder: string, caps: ReadonlyArray<Capability>, received: (cap: Capability) => boolean) =>
    Effect.suspend(() => {
      const allowed = caps.filter((c) =>
        (c.issuer.node === deps.node && c.issuer.process.toString() === holder) || table.has(holder, c) || received(c)
      )
      const refused = caps.length - allowed.length
      if (refused > 0) deps.print(1, holder, `save-capabilities: ${refused} capabilities not held, not saved`)
      return grant(holder, allowed)
    })

  return {
    /** The table itself, for the router and process hosts (kernel-internal). */
    table,
    sign,
    forStore,
    addUnpersisted,
    grant,
    drop,
    save,
    /** Grants a fresh holder its initial set (not yet persisted: the caller writes the record). */
    seed: (holder: string, caps: ReadonlyArray<Capability>) => table.add(holder, caps.map(sign)),
    /** Restores stored grants: this node's are signed again, others kept as stored. */
    restore: (holder: string, caps: ReadonlyArray<SignedCapability>) =>
      table.add(holder, caps.map((c) => (c.issuer.node === deps.node ? sign(c) : c))),
    has: (holder: string, cap: Capability) => table.has(holder, cap),
    list: (holder: string) => table.list(holder),
    forget: (holder: string) => table.forget(holder),
    /** Revokes what `issuer` issued from every holder; persists the holders that changed. */
    revokeIssuedBy: (issuer: string) => Effect.suspend(() => deps.persist(table.revokeIssuedBy(issuer)))
  }
}

export type GrantStore = ReturnType<typeof makeGrantStore>
