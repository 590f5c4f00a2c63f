/**
 * The node's Ed25519 networking key, in the PKCS#8 form Kinode keeps it in.
 *
 * Kinode makes the key with ring, whose PKCS#8 documents node:crypto cannot be relied
 * on to import (Node 20's OpenSSL 3.0 rejects both forms with "wrong tag"). So the
 * documents are read and written by offset here, and node:crypto only ever sees the
 * key as a JWK `{kty: "OKP", crv: "Ed25519", d, x}`.
 *
 * The two forms, both still accepted by ring (identity-and-network.md §1.7):
 * - ring 0.17, 83 bytes: `30 51 02 01 01 30 05 06 03 2b 65 70 04 22 04 20` ‖ seed(32)
 *   ‖ `81 21 00` ‖ pub(32)  (public key as `[1] IMPLICIT BIT STRING`)
 * - ring 0.16, 85 bytes: `30 53 …` same prefix ‖ seed(32) ‖ `a1 23 03 21 00` ‖ pub(32)
 *   (public key as `[1] EXPLICIT { BIT STRING }`, what older Kinode keyfiles hold)
 *
 * In both the seed is bytes 16..48 and the public key the last 32 bytes.
 */
import { Effect, Schema } from "effect"
import * as crypto from "node:crypto"

/** A usable networking key. Its shape fits the kernel's `NodeKey` port. */
export interface NetworkingKey {
  /** The 32-byte Ed25519 seed (RFC 8032 private key). */
  readonly seed: Uint8Array
  /** The 32-byte public key: the on-chain `~net-key`. */
  readonly publicKey: Uint8Array
  /** The PKCS#8 document as read (a legacy key keeps its 85-byte form) or as made (83 bytes). */
  readonly pkcs8: Uint8Array
  /** Ed25519 signature of `bytes`; synchronous because signing sits on the send path. */
  readonly sign: (bytes: Uint8Array) => Uint8Array
  /** Whether `signature` is this key's signature of `bytes`. */
  readonly verify: (bytes: Uint8Array, signature: Uint8Array) => boolean
}

/**
 * Why a seed or PKCS#8 document was refused.
 * - `SeedLength`: a seed that is not 32 bytes.
 * - `DocumentLength`: neither 83 (ring 0.17) nor 85 (ring 0.16) bytes.
 * - `Prefix`: the fixed header (version, Ed25519 OID, seed octet string) differs.
 * - `PublicKeyTag`: the bytes between seed and public key differ from the form's.
 * - `PublicKeyMismatch`: the stored public key is not the one the seed derives.
 */
export const NetworkingKeyInvalidReason = Schema.Literals([
  "SeedLength",
  "DocumentLength",
  "Prefix",
  "PublicKeyTag",
  "PublicKeyMismatch"
])
export type NetworkingKeyInvalidReason = typeof NetworkingKeyInvalidReason.Type

export class NetworkingKeyInvalid extends Schema.TaggedError<NetworkingKeyInvalid>()("NetworkingKeyInvalid", {
  reason: NetworkingKeyInvalidReason,
  /** Length in bytes of the input that was refused. */
  length: Schema.Int
}) {}

const KEY_BYTES = 32
const SEED_OFFSET = 16
const SIGNATURE_BYTES = 64

/** Byte 1 is the outer SEQUENCE length, the only prefix byte the two forms differ in. */
const prefixFor = (sequenceLength: number) =>
  Uint8Array.of(0x30, sequenceLength, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20)

interface Pkcs8Form {
  readonly prefix: Uint8Array
  readonly publicKeyTag: Uint8Array
}

const ring017: Pkcs8Form = { prefix: prefixFor(0x51), publicKeyTag: Uint8Array.of(0x81, 0x21, 0x00) }
const ring016: Pkcs8Form = { prefix: prefixFor(0x53), publicKeyTag: Uint8Array.of(0xa1, 0x23, 0x03, 0x21, 0x00) }

const documentLength = (form: Pkcs8Form) => form.prefix.length + KEY_BYTES + form.publicKeyTag.length + KEY_BYTES

const formsByLength = new Map([ring017, ring016].map((form) => [documentLength(form), form]))

const bytesEqual = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((byte, i) => byte === b[i])

const base64url = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64url")

/** The PKCS#8 v2 document ring 0.17 (current Kinode) writes for this 32-byte seed and public key. */
export const encodePkcs8 = (seed: Uint8Array, publicKey: Uint8Array): Uint8Array => {
  const doc = new Uint8Array(documentLength(ring017))
  doc.set(ring017.prefix, 0)
  doc.set(seed, SEED_OFFSET)
  doc.set(ring017.publicKeyTag, SEED_OFFSET + KEY_BYTES)
  doc.set(publicKey, doc.length - KEY_BYTES)
  return doc
}

/** The on-chain `~net-key` text form: `0x` + lowercase hex of the public key. */
export const publicKeyHex = (key: Pick<NetworkingKey, "publicKey">): string =>
  `0x${Buffer.from(key.publicKey).toString("hex")}`

/**
 * node:crypto reads only `d` from a private JWK and derives the public key itself:
 * `x` must be present but is never checked against `d`. So a placeholder `x` serves
 * when the public key is what we want to learn, and a stored public key has to be
 * compared with the derived one explicitly.
 */
const privateKeyObject = (seed: Uint8Array, publicKey: Uint8Array = new Uint8Array(KEY_BYTES)) =>
  crypto.createPrivateKey({
    key: { kty: "OKP", crv: "Ed25519", d: base64url(seed), x: base64url(publicKey) },
    format: "jwk"
  })

const rawPublicKey = (key: crypto.KeyObject) =>
  new Uint8Array(Buffer.from(crypto.createPublicKey(key).export({ format: "jwk" }).x ?? "", "base64url"))

/**
 * Whether `signature` is the Ed25519 signature of `bytes` by the raw 32-byte `publicKey`
 * (another node's `~net-key`, from the PKI).
 */
export const verifyWithPublicKey = (publicKey: Uint8Array, bytes: Uint8Array, signature: Uint8Array): boolean => {
  if (publicKey.length !== KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false
  const key = crypto.createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: base64url(publicKey) }, format: "jwk" })
  return crypto.verify(null, bytes, key, signature)
}

/** Builds the key from its parts, refusing a public key the seed does not derive. */
const assemble = (seed: Uint8Array, publicKey: Uint8Array, pkcs8: Uint8Array) => {
  const privateKey = privateKeyObject(seed, publicKey)
  const publicKeyObject = crypto.createPublicKey(privateKey)
  if (!bytesEqual(rawPublicKey(privateKey), publicKey)) {
    return Effect.fail(new NetworkingKeyInvalid({ reason: "PublicKeyMismatch", length: pkcs8.length }))
  }
  return Effect.succeed<NetworkingKey>({
    seed: Uint8Array.from(seed),
    publicKey: Uint8Array.from(publicKey),
    pkcs8: Uint8Array.from(pkcs8),
    sign: (bytes) => new Uint8Array(crypto.sign(null, bytes, privateKey)),
    // A wrong-length signature can never verify; saying so up front keeps OpenSSL out of it.
    verify: (bytes, signature) =>
      signature.length === SIGNATURE_BYTES && crypto.verify(null, bytes, publicKeyObject, signature)
  })
}

/** Parses either PKCS#8 form by offset; the public key must derive from the seed. */
export const fromPkcs8 = Effect.fn("NetworkingKey.fromPkcs8")(function*(document: Uint8Array) {
  const refuse = (reason: NetworkingKeyInvalidReason) =>
    Effect.fail(new NetworkingKeyInvalid({ reason, length: document.length }))
  const form = formsByLength.get(document.length)
  if (form === undefined) return yield* refuse("DocumentLength")
  if (!bytesEqual(document.subarray(0, SEED_OFFSET), form.prefix)) return yield* refuse("Prefix")
  const tagStart = SEED_OFFSET + KEY_BYTES
  if (!bytesEqual(document.subarray(tagStart, tagStart + form.publicKeyTag.length), form.publicKeyTag)) {
    return yield* refuse("PublicKeyTag")
  }
  const seed = document.subarray(SEED_OFFSET, SEED_OFFSET + KEY_BYTES)
  const publicKey = document.subarray(document.length - KEY_BYTES)
  return yield* assemble(seed, publicKey, document)
})

/** The key a 32-byte seed determines (its PKCS#8 form is the current 83-byte one). */
export const fromSeed = Effect.fn("NetworkingKey.fromSeed")(function*(seed: Uint8Array) {
  if (seed.length !== KEY_BYTES) {
    return yield* new NetworkingKeyInvalid({ reason: "SeedLength", length: seed.length })
  }
  const publicKey = rawPublicKey(privateKeyObject(seed))
  return yield* assemble(seed, publicKey, encodePkcs8(seed, publicKey))
})

/** A fresh random key, as Kinode's `generate_networking_key` makes on registration. */
export const generate: Effect.Effect<NetworkingKey> = Effect.suspend(() => {
  const jwk = crypto.generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" })
  const seed = Buffer.from(jwk.d ?? "", "base64url")
  const publicKey = Buffer.from(jwk.x ?? "", "base64url")
  // Node just made this pair, so a refusal here would be a bug, not an outcome.
  return assemble(seed, publicKey, encodePkcs8(seed, publicKey)).pipe(Effect.orDie)
}).pipe(Effect.withSpan("NetworkingKey.generate"))
