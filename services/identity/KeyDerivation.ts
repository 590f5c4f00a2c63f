/**
 * The keyfile's two key derivations, off the event loop, and their early start.
 *
 * - `passwordHash`: Argon2id (v0x13, t = 2, m = 19 456 KiB, p = 1, 32 bytes) of the
 *   password salted with the node name, as `0x`-hex: Kinode's `password_hash`. Through
 *   node:crypto's `argon2` (OpenSSL on libuv's thread pool, Node >= 24.7), else hash-wasm
 *   (on the event loop).
 * - `diskKey`: PBKDF2-HMAC-SHA256 of that string with the keyfile's salt, the AES key,
 *   on the thread pool.
 *
 * Together they cost about 0.3 s, and on a later boot with the password in a file or the
 * environment nothing else needs them until the login: `startEarly` (called by the
 * entry point before it loads the node's modules) reads the keyfile's plaintext name and
 * salt and runs both in a worker thread, so they run beside the module loading (on the
 * thread pool they would not: each step's callback waits for the busy main thread).
 * `passwordHash` and `diskKey` hand out its results when asked for exactly the same
 * inputs, and compute afresh otherwise, so a wrong or changed password, another
 * keyfile, or a failed early derivation only costs the time it would have cost anyway.
 *
 * No Effect here: the entry point imports this module before anything else is loaded.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Worker } from "node:worker_threads"

/** Kinode's `keygen::ITERATIONS`. */
export const PBKDF2_ITERATIONS = 1_000_000
/** Argon2 refuses shorter salts (OpenSSL, hash-wasm and Rust's argon2 crate alike). */
const ARGON2_MIN_SALT_BYTES = 8
const SALT_BYTES = 32

/** Where Kinode keeps the keyfile under a node's home directory. */
export const keyfilePath = (home: string): string => path.join(home, ".keys")

const utf8 = new TextEncoder()

/**
 * The Argon2 salt for a name: its UTF-8, NUL-padded to 8 bytes. Kinode cannot hash a
 * name under 8 bytes at all (its login panics) [quirk]; no Kinode keyfile for such a
 * name can exist to disagree with the padding.
 */
const saltOf = (name: string): Uint8Array => {
  const named = utf8.encode(name)
  if (named.length >= ARGON2_MIN_SALT_BYTES) return named
  const padded = new Uint8Array(ARGON2_MIN_SALT_BYTES)
  padded.set(named)
  return padded
}

/** Kinode's Argon2id parameters, in node:crypto's names. */
const ARGON2 = { parallelism: 1, tagLength: 32, memory: 19456, passes: 2 } as const

const argon2Hex = (password: string, name: string): Promise<string> => {
  const message = utf8.encode(password)
  const nonce = saltOf(name)
  if (typeof crypto.argon2 === "function") {
    return new Promise((resolve, reject) =>
      crypto.argon2("argon2id", { message, nonce, ...ARGON2 }, (error, key) =>
        error === null ? resolve(`0x${key.toString("hex")}`) : reject(error))
    )
  }
  return import("hash-wasm").then(({ argon2id }) =>
    argon2id({
      password: message,
      salt: nonce,
      iterations: ARGON2.passes,
      memorySize: ARGON2.memory,
      parallelism: ARGON2.parallelism,
      hashLength: ARGON2.tagLength,
      outputType: "hex"
    })
  ).then((hex) => `0x${hex}`)
}

const pbkdf2 = (hash: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> =>
  new Promise((resolve, reject) =>
    crypto.pbkdf2(utf8.encode(hash), salt, iterations, 32, "sha256", (error, key) =>
      error === null ? resolve(new Uint8Array(key)) : reject(error))
  )

/** A derivation started by `startEarly`, kept until the login takes its disk key. */
interface Early {
  readonly password: string
  readonly name: string
  readonly salt: string
  readonly derived: Promise<{ readonly hash: string; readonly key: Uint8Array } | undefined>
  /** Keeps the process alive for the worker once someone waits for it. */
  readonly wanted: () => void
}

let early: Early | undefined

const hexOf = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex")

/** Both derivations, synchronously, in a worker of their own (CommonJS, evaluated). */
const WORKER = `const { parentPort, workerData: w } = require("node:worker_threads")
const crypto = require("node:crypto")
const hash = "0x" + crypto.argon2Sync("argon2id", { message: w.message, nonce: w.nonce, ...w.argon2 }).toString("hex")
parentPort.postMessage({ hash, key: crypto.pbkdf2Sync(hash, w.salt, w.iterations, 32, "sha256") })`

/**
 * Starts both derivations for the keyfile `file` and `password` in a worker thread, if
 * `file` holds a keyfile whose name and salt can be read; otherwise does nothing. Never
 * throws: a problem with the keyfile is the login's to report. Returns what the worker
 * will find (undefined if it fails), or undefined when nothing was started.
 */
export const startEarly = (file: string, password: string): Early["derived"] | undefined => {
  if (typeof crypto.argon2Sync !== "function") return undefined
  let tuple: unknown
  try {
    tuple = JSON.parse(fs.readFileSync(file, "utf8"))
  } catch {
    return undefined
  }
  if (!Array.isArray(tuple) || typeof tuple[0] !== "string" || tuple[0] === "" || !Array.isArray(tuple[2])) return undefined
  const name: string = tuple[0]
  const salt = tuple[2] as Array<unknown>
  if (salt.length !== SALT_BYTES || !salt.every((b) => Number.isInteger(b) && (b as number) >= 0 && (b as number) <= 255)) {
    return undefined
  }
  const saltBytes = Uint8Array.from(salt as Array<number>)
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: { message: utf8.encode(password), nonce: saltOf(name), argon2: ARGON2, salt: saltBytes, iterations: PBKDF2_ITERATIONS }
  })
  // Not what keeps the process alive until the login waits for it.
  worker.unref()
  // Any failure means "compute it at login".
  const derived = new Promise<{ readonly hash: string; readonly key: Uint8Array } | undefined>((resolve) => {
    worker.once("message", (m: { hash: string; key: Uint8Array }) => resolve({ hash: m.hash, key: new Uint8Array(m.key) }))
    worker.once("error", () => resolve(undefined))
    worker.once("exit", () => resolve(undefined))
  })
  early = { password, name, salt: hexOf(saltBytes), derived, wanted: () => worker.ref() }
  return derived
}

/** `0x` + hex of Argon2id(password, name) with Kinode's parameters; `name` must not be empty. */
export const passwordHash = (password: string, name: string): Promise<string> => {
  const e = early
  if (e === undefined || e.password !== password || e.name !== name) return argon2Hex(password, name)
  e.wanted()
  return e.derived.then((d) => d?.hash ?? argon2Hex(password, name))
}

/** The AES-256 key: PBKDF2-HMAC-SHA256(hash, salt, iterations), 32 bytes. */
export const diskKey = (hash: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> => {
  const e = early
  if (e === undefined || iterations !== PBKDF2_ITERATIONS || e.salt !== hexOf(salt)) return pbkdf2(hash, salt, iterations)
  early = undefined
  e.wanted()
  return e.derived.then((d) => d !== undefined && d.hash === hash ? d.key : pbkdf2(hash, salt, iterations))
}
