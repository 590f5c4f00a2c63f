/**
 * Kinode's encrypted keyfile, `<home>/.keys` (identity-and-network.md §1.7,
 * kinode-semantics.md §9), byte-compatible with `kinode/src/keygen.rs`.
 *
 * On disk it is the JSON array serde_json writes for Kinode's 6-tuple:
 *
 *     [username, routers[], salt(32 ints), net, jwt, file]
 *
 * where `net`, `jwt` and `file` are each `nonce(12) ‖ AES-256-GCM ciphertext ‖ tag(16)`
 * (the tag appended, as Rust's aes-gcm does) of, in turn, the PKCS#8 networking key,
 * the JWT secret and the file key. The AES key is PBKDF2-HMAC-SHA256 over the UTF-8 of
 * the *password hash string* (`0x` + hex of Argon2id(password, salt = node name)),
 * the keyfile's salt, 1 000 000 iterations. The password itself never reaches here.
 *
 * The name and routers are plaintext, so a name check costs nothing. The two
 * derivations (about 0.3 s together) run on libuv's thread pool, not the event loop,
 * and a later boot may have started them before the node's modules loaded
 * (`KeyDerivation.ts`).
 */
import { Effect, Schema } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { diskKey as deriveDiskKey, passwordHash as derivePasswordHash, PBKDF2_ITERATIONS } from "./KeyDerivation.ts"
import { fromPkcs8, type NetworkingKey } from "./NetworkingKey.ts"

export { keyfilePath, PBKDF2_ITERATIONS } from "./KeyDerivation.ts"
const SALT_BYTES = 32
const NONCE_BYTES = 12
const TAG_BYTES = 16
const SECRET_BYTES = 32
/** The two PKCS#8 forms ring accepts for an Ed25519 key (see NetworkingKey.ts). */
const PKCS8_LENGTHS = [83, 85]

/** What a keyfile holds, decrypted. */
export interface KeyfileContents {
  readonly name: string
  /** Empty for a direct node. */
  readonly routers: ReadonlyArray<string>
  readonly key: NetworkingKey
  /**
   * The HS256 key for login cookies. Kinode makes 32 bytes, except its on-chain
   * registration path, which makes 2 (`[0u8, 32]` in register.rs): any length is read.
   */
  readonly jwtSecret: Uint8Array
  /** 32 random bytes Kinode reserves for file and backup encryption. */
  readonly fileKey: Uint8Array
}

/**
 * Why a keyfile could not be read, before or after the password was found right.
 * - `Empty`, `NotJson` (also not UTF-8, or cut short mid-JSON), `WrongShape` (not the
 *   6-tuple of strings and byte arrays).
 * - `SaltLength`, `NetLength`, `JwtLength`, `FileLength`: a field of the wrong size
 *   (a `net` must hold an 83- or 85-byte document, a `file` a 32-byte key).
 * - `NetworkingKeyInvalid`: `net` decrypted, but not to an Ed25519 PKCS#8 document.
 * - `JwtUndecryptable`, `FileUndecryptable`: `net` decrypted under this password but
 *   these did not, so they were altered.
 */
export const KeyfileCorruptReason = Schema.Literals([
  "Empty",
  "NotJson",
  "WrongShape",
  "SaltLength",
  "NetLength",
  "JwtLength",
  "FileLength",
  "NetworkingKeyInvalid",
  "JwtUndecryptable",
  "FileUndecryptable"
])
export type KeyfileCorruptReason = typeof KeyfileCorruptReason.Type

export class KeyfileCorrupt extends Schema.TaggedError<KeyfileCorrupt>()("KeyfileCorrupt", {
  file: Schema.String,
  reason: KeyfileCorruptReason
}) {}

/** The networking key did not decrypt: the password hash is not this keyfile's. */
export class WrongPassword extends Schema.TaggedError<WrongPassword>()("WrongPassword", {
  file: Schema.String
}) {}

export class KeyfileNameMismatch extends Schema.TaggedError<KeyfileNameMismatch>()("KeyfileNameMismatch", {
  file: Schema.String,
  expected: Schema.String,
  found: Schema.String
}) {}

export class KeyfileMissing extends Schema.TaggedError<KeyfileMissing>()("KeyfileMissing", {
  file: Schema.String
}) {}

/** `writeKeyfile` found a keyfile in place and was not asked to replace it. */
export class KeyfileExists extends Schema.TaggedError<KeyfileExists>()("KeyfileExists", {
  file: Schema.String
}) {}

export class KeyfileIoError extends Schema.TaggedError<KeyfileIoError>()("KeyfileIoError", {
  file: Schema.String,
  cause: Schema.Defect()
}) {}

/** The node name (the Argon2 salt) is empty. */
export class PasswordSaltTooShort extends Schema.TaggedError<PasswordSaltTooShort>()("PasswordSaltTooShort", {
  name: Schema.String,
  bytes: Schema.Int
}) {}

/**
 * @internal Lowering `iterations` is for tests of shape and corruption only: a keyfile
 * written with any other count than `PBKDF2_ITERATIONS` is unreadable by Kinode.
 */
export interface KeyfileCryptoOptions {
  readonly iterations?: number
}

export interface DecodeOptions extends KeyfileCryptoOptions {
  /** Named in errors; decoding itself reads no file. */
  readonly file?: string
}

const utf8 = new TextEncoder()
const strictUtf8 = new TextDecoder("utf-8", { fatal: true })

/**
 * `password_hash` as Kinode's register UI and `--password` compute it: Argon2id
 * (v0x13, t = 2, m = 19 456 KiB, p = 1, 32 bytes), salt = the node name, as `0x`-hex.
 *
 * A name under Argon2's 8-byte salt minimum (`bob.os`) cannot be hashed by Kinode at
 * all (its login panics) [quirk]; here its salt is the name padded with NUL bytes to 8,
 * so such names work (no Kinode keyfile for them can exist to disagree with).
 */
export const passwordHash = Effect.fn("Keyfile.passwordHash")(function*(password: string, name: string) {
  if (name === "") return yield* new PasswordSaltTooShort({ name, bytes: 0 })
  // Parameters are checked above; any rejection left is a bug in the library, a defect.
  return yield* Effect.promise(() => derivePasswordHash(password, name))
})

/** Fresh random JWT secret and file key, 32 bytes each, as Kinode's boot makes them. */
export const generateSecrets: Effect.Effect<{ readonly jwtSecret: Uint8Array; readonly fileKey: Uint8Array }> =
  Effect.sync(() => ({
    jwtSecret: new Uint8Array(crypto.randomBytes(SECRET_BYTES)),
    fileKey: new Uint8Array(crypto.randomBytes(SECRET_BYTES))
  }))

/** The AES-256 key: PBKDF2 on the thread pool, so its fraction of a second blocks nothing. */
const diskKey = (hash: string, salt: Uint8Array, iterations: number) =>
  Effect.promise(() => deriveDiskKey(hash, salt, iterations))

/** `nonce ‖ ciphertext ‖ tag`, the layout of Rust's `Aes256Gcm::encrypt` plus Kinode's nonce prefix. */
const seal = (key: Uint8Array, plaintext: Uint8Array): Uint8Array => {
  const nonce = crypto.randomBytes(NONCE_BYTES)
  const cipher = crypto.createCipheriv("aes-256-gcm", key, nonce)
  return new Uint8Array(Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]))
}

/** Opens a sealed field; a failed GCM tag check fails with `onAuthFailure()`. */
const unseal = <E>(key: Uint8Array, sealed: Uint8Array, onAuthFailure: () => E) =>
  Effect.try({
    try: () => {
      const decipher = crypto.createDecipheriv("aes-256-gcm", key, sealed.subarray(0, NONCE_BYTES))
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES))
      const body = sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)
      return new Uint8Array(Buffer.concat([decipher.update(body), decipher.final()]))
    },
    catch: onAuthFailure
  })

const sealedLength = (plaintextBytes: number) => NONCE_BYTES + plaintextBytes + TAG_BYTES

const Byte = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 }))
const ByteArray = Schema.Array(Byte)
/** serde_json's form of `(String, Vec<String>, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>)`. */
const KeyfileJson = Schema.Tuple([Schema.String, Schema.Array(Schema.String), ByteArray, ByteArray, ByteArray, ByteArray])
const decodeKeyfileJson = Schema.decodeUnknownEffect(KeyfileJson)

/** The keyfile with its lengths checked and nothing decrypted yet. */
interface SealedKeyfile {
  readonly name: string
  readonly routers: ReadonlyArray<string>
  readonly salt: Uint8Array
  readonly net: Uint8Array
  readonly jwt: Uint8Array
  readonly file: Uint8Array
}

const parseSealed = Effect.fnUntraced(function*(bytes: Uint8Array, file: string) {
  const corrupt = (reason: KeyfileCorruptReason) => new KeyfileCorrupt({ file, reason })
  if (bytes.length === 0) return yield* corrupt("Empty")
  const json = yield* Effect.try({
    try: () => JSON.parse(strictUtf8.decode(bytes)) as unknown,
    catch: () => corrupt("NotJson")
  })
  const [name, routers, salt, net, jwt, fileKey] = yield* decodeKeyfileJson(json).pipe(
    Effect.mapError(() => corrupt("WrongShape"))
  )
  if (salt.length !== SALT_BYTES) return yield* corrupt("SaltLength")
  // Checked before the costly key derivation, and so that a cut-off `net` reads as
  // corrupt rather than as a wrong password.
  if (!PKCS8_LENGTHS.some((length) => net.length === sealedLength(length))) return yield* corrupt("NetLength")
  if (jwt.length < sealedLength(0)) return yield* corrupt("JwtLength")
  if (fileKey.length !== sealedLength(SECRET_BYTES)) return yield* corrupt("FileLength")
  return {
    name,
    routers,
    salt: Uint8Array.from(salt),
    net: Uint8Array.from(net),
    jwt: Uint8Array.from(jwt),
    file: Uint8Array.from(fileKey)
  } satisfies SealedKeyfile
})

const openSealed = Effect.fnUntraced(function*(
  sealed: SealedKeyfile,
  hash: string,
  file: string,
  iterations: number
) {
  const corrupt = (reason: KeyfileCorruptReason) => new KeyfileCorrupt({ file, reason })
  const aesKey = yield* diskKey(hash, sealed.salt, iterations)
  const pkcs8 = yield* unseal(aesKey, sealed.net, () => new WrongPassword({ file }))
  const key = yield* fromPkcs8(pkcs8).pipe(Effect.mapError(() => corrupt("NetworkingKeyInvalid")))
  const jwtSecret = yield* unseal(aesKey, sealed.jwt, () => corrupt("JwtUndecryptable"))
  const fileKey = yield* unseal(aesKey, sealed.file, () => corrupt("FileUndecryptable"))
  return { name: sealed.name, routers: sealed.routers, key, jwtSecret, fileKey } satisfies KeyfileContents
})

const IN_MEMORY = "<bytes>"

/** The keyfile's plaintext part, readable without the password (Kinode's `get_username_and_routers`). */
export const keyfileNameAndRouters = Effect.fn("Keyfile.nameAndRouters")(function*(
  bytes: Uint8Array,
  file: string = IN_MEMORY
) {
  const { name, routers } = yield* parseSealed(bytes, file)
  return { name, routers }
})

/** Decrypts a keyfile with the password hash (not the password: see `passwordHash`). */
export const decodeKeyfile = Effect.fn("Keyfile.decode")(function*(
  bytes: Uint8Array,
  hash: string,
  options: DecodeOptions = {}
) {
  const file = options.file ?? IN_MEMORY
  const sealed = yield* parseSealed(bytes, file)
  return yield* openSealed(sealed, hash, file, options.iterations ?? PBKDF2_ITERATIONS)
})

/** A new keyfile (fresh salt and nonces) as the JSON bytes Kinode writes. */
export const encodeKeyfile = Effect.fn("Keyfile.encode")(function*(
  contents: KeyfileContents,
  hash: string,
  options: KeyfileCryptoOptions = {}
) {
  // Decoding insists on a 32-byte file key, so writing another would make a keyfile
  // this node could not read back: a caller's bug.
  if (contents.fileKey.length !== SECRET_BYTES) {
    return yield* Effect.die(new RangeError(`file key must be ${SECRET_BYTES} bytes, got ${contents.fileKey.length}`))
  }
  const salt = new Uint8Array(crypto.randomBytes(SALT_BYTES))
  const aesKey = yield* diskKey(hash, salt, options.iterations ?? PBKDF2_ITERATIONS)
  const tuple = [
    contents.name,
    contents.routers,
    Array.from(salt),
    Array.from(seal(aesKey, contents.key.pkcs8)),
    Array.from(seal(aesKey, contents.jwtSecret)),
    Array.from(seal(aesKey, contents.fileKey))
  ]
  return utf8.encode(JSON.stringify(tuple))
})

const errnoCode = (cause: unknown): unknown =>
  typeof cause === "object" && cause !== null && "code" in cause ? cause.code : undefined

/** Reads and decrypts `<file>`, refusing a keyfile of another node before paying for PBKDF2. */
export const openKeyfile = Effect.fn("Keyfile.open")(function*(
  file: string,
  hash: string,
  expectedName?: string,
  options: KeyfileCryptoOptions = {}
) {
  const bytes = yield* Effect.tryPromise({
    try: () => fs.readFile(file),
    catch: (cause) =>
      errnoCode(cause) === "ENOENT" ? new KeyfileMissing({ file }) : new KeyfileIoError({ file, cause })
  })
  const sealed = yield* parseSealed(bytes, file)
  if (expectedName !== undefined && sealed.name !== expectedName) {
    return yield* new KeyfileNameMismatch({ file, expected: expectedName, found: sealed.name })
  }
  return yield* openSealed(sealed, hash, file, options.iterations ?? PBKDF2_ITERATIONS)
})

/**
 * Writes keyfile bytes (from `encodeKeyfile`, or an imported keyfile) to `file`, mode
 * 0600, atomically: a temporary file is written and fsynced, then moved into place,
 * then the directory is fsynced. Without `overwrite` the move is a hard link, which the
 * kernel refuses if `file` exists, so a keyfile appearing meanwhile is not clobbered.
 */
export const writeKeyfile = Effect.fn("Keyfile.write")(function*(
  file: string,
  bytes: Uint8Array,
  options: { readonly overwrite?: boolean } = {}
) {
  const tryIo = <A>(run: () => Promise<A>) =>
    Effect.tryPromise({ try: run, catch: (cause) => new KeyfileIoError({ file, cause }) })
  const tmp = `${file}.${crypto.randomBytes(6).toString("hex")}.tmp`
  const writeTmp = Effect.acquireUseRelease(
    tryIo(() => fs.open(tmp, "wx", 0o600)),
    (handle) =>
      tryIo(() => handle.chmod(0o600)).pipe(
        Effect.andThen(tryIo(() => handle.writeFile(bytes))),
        Effect.andThen(tryIo(() => handle.sync()))
      ),
    (handle) => tryIo(() => handle.close()).pipe(Effect.orDie)
  )
  const moveIntoPlace = options.overwrite === true
    ? tryIo(() => fs.rename(tmp, file))
    : Effect.tryPromise({
      try: () => fs.link(tmp, file),
      catch: (cause) =>
        errnoCode(cause) === "EEXIST" ? new KeyfileExists({ file }) : new KeyfileIoError({ file, cause })
    })
  const syncDirectory = Effect.acquireUseRelease(
    tryIo(() => fs.open(path.dirname(file), "r")),
    (dir) => tryIo(() => dir.sync()),
    (dir) => tryIo(() => dir.close()).pipe(Effect.orDie)
  )
  // After a rename the temporary name is gone already; after a link or a failure it
  // must go. A leftover is harmless to Kinode, so failing to remove it only warns.
  const removeTmp = tryIo(() => fs.rm(tmp, { force: true })).pipe(
    Effect.catch((error) => Effect.logWarning("could not remove temporary keyfile", tmp, error.cause))
  )
  yield* writeTmp.pipe(Effect.andThen(moveIntoPlace), Effect.ensuring(removeTmp))
  yield* syncDirectory
})
