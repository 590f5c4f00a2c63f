/**
 * The networking key (both of ring's PKCS#8 forms) and Kinode's encrypted keyfile.
 *
 * Besides our own round trips, each format is checked against something independent:
 * RFC 8032's Ed25519 vector, OpenSSL 3.5's PKCS#8 import (Node 24), WebCrypto's PBKDF2
 * and AES-GCM building and opening keyfiles laid out by hand as Rust's aes-gcm and
 * serde_json do, and Argon2id known answers (RFC 9106 through OpenSSL, the reference
 * implementation's vector through hash-wasm, and OpenSSL against hash-wasm on Kinode's
 * parameters). Most keyfile tests lower PBKDF2's iteration count to stay fast; one round
 * trip runs at Kinode's full 1 000 000.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { argon2id } from "hash-wasm"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import {
  decodeKeyfile,
  encodeKeyfile,
  generateSecrets,
  keyfileNameAndRouters,
  keyfilePath,
  openKeyfile,
  passwordHash,
  PBKDF2_ITERATIONS,
  writeKeyfile
} from "../../../services/identity/Keyfile.ts"
import {
  encodePkcs8,
  fromPkcs8,
  fromSeed,
  generate,
  type NetworkingKey,
  publicKeyHex
} from "../../../services/identity/NetworkingKey.ts"

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")
const fromHex = (text: string) => Uint8Array.from(Buffer.from(text, "hex"))
const utf8 = (text: string) => new TextEncoder().encode(text)
const concat = (...parts: ReadonlyArray<Uint8Array>) => Uint8Array.from(Buffer.concat(parts))

/** The 16 fixed bytes before the seed; byte 1 is the outer SEQUENCE length. */
const prefix = (sequenceLength: number) => fromHex(`30${sequenceLength.toString(16)}020101300506032b657004220420`)

/** ring 0.16's 85-byte form of a key, built by hand from its parts. */
const legacyPkcs8 = (key: NetworkingKey) => concat(prefix(0x53), key.seed, fromHex("a123032100"), key.publicKey)

/** A raw Ed25519 public key as SPKI DER (RFC 8410), for node:crypto without our code. */
const publicKeyObject = (raw: Uint8Array) =>
  crypto.createPublicKey({ key: Buffer.concat([fromHex("302a300506032b6570032100"), raw]), format: "der", type: "spki" })

/** PBKDF2 iterations for tests of shape and corruption (Kinode's is `PBKDF2_ITERATIONS`). */
const FAST = 1_000
const fast = { iterations: FAST }
const HASH = "0x" + "ab".repeat(32)

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "kinode-keys-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const sampleContents = Effect.gen(function*() {
  const key = yield* generate
  const { jwtSecret, fileKey } = yield* generateSecrets
  return { name: "sample-node.os", routers: ["router-a.os", "router-b.os"], key, jwtSecret, fileKey }
})

/** The keyfile JSON as plain values: `[name, routers, salt, net, jwt, file]`. */
const parseTuple = (bytes: Uint8Array) =>
  JSON.parse(new TextDecoder().decode(bytes)) as [string, Array<string>, Array<number>, Array<number>, Array<number>, Array<number>]
const tupleBytes = (tuple: ReadonlyArray<unknown>) => utf8(JSON.stringify(tuple))

// WebCrypto, independent of the node:crypto calls Keyfile.ts makes.
const subtle = crypto.webcrypto.subtle
const webAesKey = (hash: string, salt: Uint8Array, iterations: number) =>
  Effect.gen(function*() {
    const material = yield* Effect.promise(() => subtle.importKey("raw", utf8(hash), "PBKDF2", false, ["deriveBits"]))
    const bits = yield* Effect.promise(() =>
      subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: Uint8Array.from(salt), iterations }, material, 256)
    )
    return yield* Effect.promise(() => subtle.importKey("raw", bits, "AES-GCM", false, ["encrypt", "decrypt"]))
  })
const webSeal = (key: crypto.webcrypto.CryptoKey, plaintext: Uint8Array) =>
  Effect.gen(function*() {
    const nonce = Uint8Array.from(crypto.randomBytes(12))
    const body = yield* Effect.promise(() => subtle.encrypt({ name: "AES-GCM", iv: nonce }, key, Uint8Array.from(plaintext)))
    return concat(nonce, new Uint8Array(body))
  })
const webOpen = (key: crypto.webcrypto.CryptoKey, sealed: ReadonlyArray<number>) =>
  Effect.promise(() =>
    subtle.decrypt({ name: "AES-GCM", iv: Uint8Array.from(sealed.slice(0, 12)) }, key, Uint8Array.from(sealed.slice(12)))
  ).pipe(Effect.map((plain) => new Uint8Array(plain)))

/** A keyfile laid out by hand the way keygen.rs + serde_json write one. */
const handMadeKeyfile = (fields: {
  readonly name: string
  readonly routers: ReadonlyArray<string>
  readonly net: Uint8Array
  readonly jwt: Uint8Array
  readonly file: Uint8Array
}) =>
  Effect.gen(function*() {
    const salt = Uint8Array.from(crypto.randomBytes(32))
    const aes = yield* webAesKey(HASH, salt, FAST)
    const sealed = [yield* webSeal(aes, fields.net), yield* webSeal(aes, fields.jwt), yield* webSeal(aes, fields.file)]
    return tupleBytes([fields.name, fields.routers, Array.from(salt), ...sealed.map((s) => Array.from(s))])
  })

describe("NetworkingKey", () => {
  it.effect("a fresh key is ring 0.17's 83-byte PKCS#8 v2 document and parses back", () =>
    Effect.gen(function*() {
      const key = yield* generate
      assert.strictEqual(key.pkcs8.length, 83)
      assert.strictEqual(hex(key.pkcs8.subarray(0, 16)), "3051020101300506032b657004220420")
      assert.strictEqual(hex(key.pkcs8.subarray(16, 48)), hex(key.seed))
      assert.strictEqual(hex(key.pkcs8.subarray(48, 51)), "812100")
      assert.strictEqual(hex(key.pkcs8.subarray(51)), hex(key.publicKey))
      const parsed = yield* fromPkcs8(key.pkcs8)
      assert.strictEqual(hex(parsed.seed), hex(key.seed))
      assert.strictEqual(hex(parsed.publicKey), hex(key.publicKey))
      assert.strictEqual(publicKeyHex(parsed), `0x${hex(key.publicKey)}`)
    }))

  it.effect("ring 0.16's 85-byte form parses to the same key and is kept as read", () =>
    Effect.gen(function*() {
      const key = yield* generate
      const legacy = legacyPkcs8(key)
      assert.strictEqual(legacy.length, 85)
      const parsed = yield* fromPkcs8(legacy)
      assert.strictEqual(hex(parsed.seed), hex(key.seed))
      assert.strictEqual(hex(parsed.publicKey), hex(key.publicKey))
      assert.strictEqual(hex(parsed.pkcs8), hex(legacy))
      // Ed25519 is deterministic: the same key signs the same bytes identically.
      const message = utf8("same key, either form")
      assert.strictEqual(hex(parsed.sign(message)), hex(key.sign(message)))
    }))

  it.effect("both forms mean the key OpenSSL 3.5 reads from them (Node 24 imports ring's documents)", () =>
    Effect.gen(function*() {
      const key = yield* generate
      for (const document of [key.pkcs8, legacyPkcs8(key)]) {
        const imported = crypto.createPrivateKey({ key: Buffer.from(document), format: "der", type: "pkcs8" })
        const raw = crypto.createPublicKey(imported).export({ format: "der", type: "spki" }).subarray(-32)
        assert.strictEqual(hex(raw), hex(key.publicKey))
      }
    }))

  it.effect("RFC 8032 test 1: seed, public key, PKCS#8 and signature of the empty message", () =>
    Effect.gen(function*() {
      const seed = fromHex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
      const key = yield* fromSeed(seed)
      assert.strictEqual(hex(key.publicKey), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
      assert.strictEqual(hex(key.pkcs8), hex(encodePkcs8(seed, key.publicKey)))
      assert.strictEqual(
        hex(key.sign(new Uint8Array(0))),
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
      )
    }))

  it.effect("sign/verify round trip, and node:crypto verifies the signature from the raw public key", () =>
    Effect.gen(function*() {
      const key = yield* generate
      const message = utf8("capability bytes")
      const signature = key.sign(message)
      assert.strictEqual(signature.length, 64)
      assert.isTrue(key.verify(message, signature))
      assert.isTrue(crypto.verify(null, message, publicKeyObject(key.publicKey), signature))
      assert.isFalse(key.verify(utf8("capability bytez"), signature))
      const flipped = Uint8Array.from(signature)
      flipped[10]! ^= 1
      assert.isFalse(key.verify(message, flipped))
      assert.isFalse(key.verify(message, signature.subarray(0, 63)))
      const other = yield* generate
      assert.isFalse(other.verify(message, signature))
    }))

  it.effect("refuses wrong lengths, a tampered prefix or tag, and a public key the seed does not derive", () =>
    Effect.gen(function*() {
      const key = yield* generate
      const other = yield* generate
      const refusal = (document: Uint8Array) => Effect.flip(fromPkcs8(document))

      const oid = Uint8Array.from(key.pkcs8)
      oid[11] = 0x71 // Ed25519's OID 1.3.101.112 ends in 0x70
      assert.strictEqual((yield* refusal(oid)).reason, "Prefix")
      const version = Uint8Array.from(key.pkcs8)
      version[4] = 0x00 // v1 documents carry no public key
      assert.strictEqual((yield* refusal(version)).reason, "Prefix")
      // The 85-byte form's header on an 83-byte document.
      assert.strictEqual((yield* refusal(concat(prefix(0x53), key.pkcs8.subarray(16)))).reason, "Prefix")

      const tag = Uint8Array.from(key.pkcs8)
      tag[48] = 0xa1
      assert.strictEqual((yield* refusal(tag)).reason, "PublicKeyTag")

      const swapped = concat(key.pkcs8.subarray(0, 51), other.publicKey)
      const mismatch = yield* refusal(swapped)
      assert.strictEqual(mismatch._tag, "NetworkingKeyInvalid")
      assert.strictEqual(mismatch.reason, "PublicKeyMismatch")
      const legacySwapped = concat(legacyPkcs8(key).subarray(0, 53), other.publicKey)
      assert.strictEqual((yield* refusal(legacySwapped)).reason, "PublicKeyMismatch")

      for (const length of [0, 48, 82, 84, 86]) {
        const refused = yield* refusal(concat(key.pkcs8, new Uint8Array(3)).subarray(0, length))
        assert.deepStrictEqual([refused.reason, refused.length], ["DocumentLength", length])
      }
      assert.strictEqual((yield* Effect.flip(fromSeed(new Uint8Array(31)))).reason, "SeedLength")
    }))
})

describe("password hash (Argon2id)", () => {
  it.effect("the libraries are right: RFC 9106 §5.3 through OpenSSL, the reference vector through hash-wasm", () =>
    Effect.gen(function*() {
      const rfc = crypto.argon2Sync("argon2id", {
        message: Buffer.alloc(32, 1),
        nonce: Buffer.alloc(16, 2),
        secret: Buffer.alloc(8, 3),
        associatedData: Buffer.alloc(12, 4),
        parallelism: 4,
        tagLength: 32,
        memory: 32,
        passes: 3
      })
      assert.strictEqual(rfc.toString("hex"), "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659")
      // phc-winner-argon2 src/test.c: argon2id v0x13, t=2, m=2^16, p=1 ("password", "somesalt").
      const reference = yield* Effect.promise(() =>
        argon2id({ password: "password", salt: "somesalt", iterations: 2, memorySize: 65536, parallelism: 1, hashLength: 32 })
      )
      assert.strictEqual(reference, "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7")
    }))

  it.effect("is 0x + 64 hex, pinned, and what OpenSSL computes with Kinode's parameters", () =>
    Effect.gen(function*() {
      const password = "correct horse battery staple"
      const name = "reference-node.os"
      const hash = yield* passwordHash(password, name)
      assert.match(hash, /^0x[0-9a-f]{64}$/)
      assert.strictEqual(hash, "0x04ce40ab29349c901c646b0b67783164b0492c303aa2425f942fa82b54d42e8d")
      const openssl = crypto.argon2Sync("argon2id", {
        message: utf8(password),
        nonce: utf8(name),
        parallelism: 1,
        tagLength: 32,
        memory: 19456,
        passes: 2
      })
      assert.strictEqual(hash, `0x${openssl.toString("hex")}`)
      assert.strictEqual(yield* passwordHash(password, name), hash)
      assert.notStrictEqual(yield* passwordHash(password, "reference-node2.os"), hash)
    }))

  it.effect("a node name shorter than Argon2's 8-byte salt minimum is salted with the name NUL-padded to 8 [quirk fixed]; an empty one is refused", () =>
    Effect.gen(function*() {
      const hash = yield* passwordHash("secret", "abc.os")
      const openssl = crypto.argon2Sync("argon2id", {
        message: utf8("secret"),
        nonce: Buffer.concat([Buffer.from("abc.os"), Buffer.alloc(2)]),
        parallelism: 1,
        tagLength: 32,
        memory: 19456,
        passes: 2
      })
      assert.strictEqual(hash, `0x${openssl.toString("hex")}`)
      assert.notStrictEqual(yield* passwordHash("secret", "abd.os"), hash)
      const refused = yield* Effect.flip(passwordHash("secret", ""))
      assert.deepStrictEqual([refused._tag, refused.bytes], ["PasswordSaltTooShort", 0])
    }))
})

describe("Keyfile", () => {
  it.effect("round trip at Kinode's full 1 000 000 PBKDF2 iterations", () =>
    Effect.gen(function*() {
      assert.strictEqual(PBKDF2_ITERATIONS, 1_000_000)
      const contents = yield* sampleContents
      const hash = yield* passwordHash("hunter22", contents.name)
      const bytes = yield* encodeKeyfile(contents, hash)
      const decoded = yield* decodeKeyfile(bytes, hash)
      assert.strictEqual(decoded.name, contents.name)
      assert.deepStrictEqual(decoded.routers, contents.routers)
      assert.strictEqual(hex(decoded.key.pkcs8), hex(contents.key.pkcs8))
      assert.strictEqual(hex(decoded.key.seed), hex(contents.key.seed))
      assert.strictEqual(hex(decoded.key.publicKey), hex(contents.key.publicKey))
      assert.strictEqual(hex(decoded.jwtSecret), hex(contents.jwtSecret))
      assert.strictEqual(hex(decoded.fileKey), hex(contents.fileKey))
      const message = utf8("signed after a round trip")
      assert.isTrue(contents.key.verify(message, decoded.key.sign(message)))
      // WebCrypto at exactly 1 000 000 iterations opens it: the count Kinode derives with.
      const [, , salt, net] = parseTuple(bytes)
      const aes = yield* webAesKey(hash, Uint8Array.from(salt), 1_000_000)
      assert.strictEqual(hex(yield* webOpen(aes, net)), hex(contents.key.pkcs8))
    }))

  it.effect("on disk it is exactly Kinode's compact JSON 6-tuple", () =>
    Effect.gen(function*() {
      const contents = yield* sampleContents
      const bytes = yield* encodeKeyfile({ ...contents, routers: [] }, HASH, fast)
      const text = new TextDecoder().decode(bytes)
      const tuple = parseTuple(bytes)
      assert.strictEqual(text, JSON.stringify(tuple)) // serde_json's compact output, no spaces
      assert.strictEqual(tuple.length, 6)
      assert.strictEqual(tuple[0], "sample-node.os")
      assert.deepStrictEqual(tuple[1], [])
      const [, , salt, net, jwt, file] = tuple
      assert.strictEqual(salt.length, 32)
      for (const field of [salt, net, jwt, file]) {
        assert.isTrue(field.every((n) => Number.isInteger(n) && n >= 0 && n <= 255))
      }
      assert.deepStrictEqual([net.length, jwt.length, file.length], [12 + 83 + 16, 12 + 32 + 16, 12 + 32 + 16])
      const nonces = [net, jwt, file].map((field) => hex(Uint8Array.from(field.slice(0, 12))))
      assert.strictEqual(new Set(nonces).size, 3)
      assert.deepStrictEqual(yield* keyfileNameAndRouters(bytes), { name: "sample-node.os", routers: [] })
    }))

  it.effect("WebCrypto opens what we write: PBKDF2-SHA256 key, nonce-prefixed AES-GCM with the tag appended", () =>
    Effect.gen(function*() {
      const contents = yield* sampleContents
      const [, , salt, net, jwt, file] = parseTuple(yield* encodeKeyfile(contents, HASH, fast))
      const aes = yield* webAesKey(HASH, Uint8Array.from(salt), FAST)
      assert.strictEqual(hex(yield* webOpen(aes, net)), hex(contents.key.pkcs8))
      assert.strictEqual(hex(yield* webOpen(aes, jwt)), hex(contents.jwtSecret))
      assert.strictEqual(hex(yield* webOpen(aes, file)), hex(contents.fileKey))
    }))

  it.effect("reads a keyfile laid out by hand as Rust writes it, with a legacy key and a 2-byte JWT secret", () =>
    Effect.gen(function*() {
      const key = yield* generate
      const fileKey = Uint8Array.from(crypto.randomBytes(32))
      // Kinode's on-chain registration makes `[0u8, 32]`: a 2-byte secret.
      const jwt = fromHex("9c20")
      const bytes = yield* handMadeKeyfile({ name: "old-node.os", routers: ["r.os"], net: legacyPkcs8(key), jwt, file: fileKey })
      const decoded = yield* decodeKeyfile(bytes, HASH, fast)
      assert.strictEqual(decoded.name, "old-node.os")
      assert.deepStrictEqual(decoded.routers, ["r.os"])
      assert.strictEqual(decoded.key.pkcs8.length, 85)
      assert.strictEqual(hex(decoded.key.publicKey), hex(key.publicKey))
      assert.strictEqual(hex(decoded.jwtSecret), "9c20")
      assert.strictEqual(hex(decoded.fileKey), hex(fileKey))
    }))

  it.effect("a wrong password hash is WrongPassword", () =>
    Effect.gen(function*() {
      const contents = yield* sampleContents
      const bytes = yield* encodeKeyfile(contents, HASH, fast)
      const refused = yield* Effect.flip(decodeKeyfile(bytes, "0x" + "cd".repeat(32), { ...fast, file: "/home/.keys" }))
      assert.deepStrictEqual([refused._tag, refused.file], ["WrongPassword", "/home/.keys"])
    }))

  it.effect("empty, garbage, truncated and misshapen keyfiles are KeyfileCorrupt with the reason", () =>
    Effect.gen(function*() {
      const contents = yield* sampleContents
      const bytes = yield* encodeKeyfile(contents, HASH, fast)
      const tuple = parseTuple(bytes)
      const reasonFor = (candidate: Uint8Array) =>
        Effect.flip(decodeKeyfile(candidate, HASH, { ...fast, file: "k" })).pipe(
          Effect.map((e) => (e._tag === "KeyfileCorrupt" && e.file === "k" ? e.reason : e._tag))
        )
      const withField = (index: number, value: unknown) => tupleBytes(tuple.map((v, i) => (i === index ? value : v)))
      const flipLast = (field: ReadonlyArray<number>) => field.map((n, i) => (i === field.length - 1 ? n ^ 1 : n))

      assert.strictEqual(yield* reasonFor(new Uint8Array(0)), "Empty")
      assert.strictEqual(yield* reasonFor(Uint8Array.from(crypto.randomBytes(200)).map((b) => b | 0x80)), "NotJson")
      assert.strictEqual(yield* reasonFor(utf8("not a keyfile")), "NotJson")
      assert.strictEqual(yield* reasonFor(bytes.subarray(0, bytes.length - 1)), "NotJson")
      assert.strictEqual(yield* reasonFor(bytes.subarray(0, bytes.length >> 1)), "NotJson")
      assert.strictEqual(yield* reasonFor(utf8("{}")), "WrongShape")
      assert.strictEqual(yield* reasonFor(tupleBytes(tuple.slice(0, 5))), "WrongShape")
      assert.strictEqual(yield* reasonFor(tupleBytes([...tuple, []])), "WrongShape")
      assert.strictEqual(yield* reasonFor(withField(0, 7)), "WrongShape")
      assert.strictEqual(yield* reasonFor(withField(1, [1])), "WrongShape")
      assert.strictEqual(yield* reasonFor(withField(2, [...tuple[2].slice(1), 256])), "WrongShape")
      assert.strictEqual(yield* reasonFor(withField(3, "net")), "WrongShape")
      assert.strictEqual(yield* reasonFor(withField(2, tuple[2].slice(1))), "SaltLength")
      assert.strictEqual(yield* reasonFor(withField(3, tuple[3].slice(0, -1))), "NetLength")
      assert.strictEqual(yield* reasonFor(withField(4, tuple[4].slice(0, 27))), "JwtLength")
      assert.strictEqual(yield* reasonFor(withField(5, tuple[5].slice(0, -1))), "FileLength")
      // Right password, tampered secrets: the GCM tag catches each.
      assert.strictEqual(yield* reasonFor(withField(4, flipLast(tuple[4]))), "JwtUndecryptable")
      assert.strictEqual(yield* reasonFor(withField(5, flipLast(tuple[5]))), "FileUndecryptable")
      // A tampered net is indistinguishable from a wrong password.
      assert.strictEqual(yield* reasonFor(withField(3, flipLast(tuple[3]))), "WrongPassword")

      const notAKey = yield* handMadeKeyfile({
        name: "n.os",
        routers: [],
        net: Uint8Array.from(crypto.randomBytes(83)),
        jwt: contents.jwtSecret,
        file: contents.fileKey
      })
      assert.strictEqual(yield* reasonFor(notAKey), "NetworkingKeyInvalid")
    }))

  it.effect("openKeyfile reads a file, checks the name first, and tells a missing file apart", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = keyfilePath(dir)
      assert.strictEqual(file, path.join(dir, ".keys"))
      const missing = yield* Effect.flip(openKeyfile(file, HASH, undefined, fast))
      assert.deepStrictEqual([missing._tag, "file" in missing ? missing.file : ""], ["KeyfileMissing", file])

      const contents = yield* sampleContents
      yield* writeKeyfile(file, yield* encodeKeyfile(contents, HASH, fast))
      const opened = yield* openKeyfile(file, HASH, "sample-node.os", fast)
      assert.strictEqual(hex(opened.key.publicKey), hex(contents.key.publicKey))

      // Default (full) iterations: refused on the plaintext name, before any key derivation.
      const mismatch = yield* Effect.flip(openKeyfile(file, HASH, "someone-else.os"))
      assert.strictEqual(mismatch._tag, "KeyfileNameMismatch")
      if (mismatch._tag === "KeyfileNameMismatch") {
        assert.deepStrictEqual([mismatch.file, mismatch.expected, mismatch.found], [file, "someone-else.os", "sample-node.os"])
      }
      fs.writeFileSync(file, "[")
      const corrupt = yield* Effect.flip(openKeyfile(file, HASH, "sample-node.os", fast))
      assert.strictEqual(corrupt._tag, "KeyfileCorrupt")
    }))

  it.effect("writeKeyfile writes mode 0600, refuses to overwrite unless asked, and leaves no temporary files", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = keyfilePath(dir)
      const first = utf8("[\"first\"]")
      const second = utf8("[\"second\"]")
      yield* writeKeyfile(file, first)
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
      assert.strictEqual(fs.readFileSync(file, "utf8"), "[\"first\"]")

      const refused = yield* Effect.flip(writeKeyfile(file, second))
      assert.deepStrictEqual([refused._tag, refused.file], ["KeyfileExists", file])
      assert.strictEqual(fs.readFileSync(file, "utf8"), "[\"first\"]")

      yield* writeKeyfile(file, second, { overwrite: true })
      assert.strictEqual(fs.readFileSync(file, "utf8"), "[\"second\"]")
      assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
      assert.deepStrictEqual(fs.readdirSync(dir), [".keys"])

      const nowhere = path.join(dir, "no-such-dir", ".keys")
      assert.strictEqual((yield* Effect.flip(writeKeyfile(nowhere, first)))._tag, "KeyfileIoError")
    }))
})
