/**
 * The early start of a keyfile's derivations (`KeyDerivation.startEarly`, called by the
 * entry point before the node's modules load): what it hands out is only ever what
 * computing afresh would give. At Kinode's full PBKDF2 count, since that is the only
 * count the early start derives with.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { startEarly } from "../../../services/identity/KeyDerivation.ts"
import {
  encodeKeyfile,
  generateSecrets,
  keyfilePath,
  openKeyfile,
  passwordHash,
  writeKeyfile
} from "../../../services/identity/Keyfile.ts"
import { generate } from "../../../services/identity/NetworkingKey.ts"

const NAME = "early-node.os"
const PASSWORD = "early password"
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex")

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "kinode-early-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** A keyfile for NAME under PASSWORD in a fresh home; returns its path and networking key. */
const home = Effect.gen(function*() {
  const dir = yield* tempDir
  const key = yield* generate
  const secrets = yield* generateSecrets
  const bytes = yield* encodeKeyfile({ name: NAME, routers: [], key, ...secrets }, yield* passwordHash(PASSWORD, NAME))
  const file = keyfilePath(dir)
  yield* writeKeyfile(file, bytes)
  return { file, key }
})

describe("KeyDerivation.startEarly", () => {
  it.effect("the worker derives Kinode's hash and disk key; the keyfile opens with them", () =>
    Effect.gen(function*() {
      const { file, key } = yield* home
      const started = startEarly(file, PASSWORD)
      assert.isDefined(started)
      const derived = yield* Effect.promise(() => started!)
      // independently: OpenSSL's Argon2id and PBKDF2, synchronously, on this thread
      const hash = `0x${crypto.argon2Sync("argon2id", { message: PASSWORD, nonce: NAME, parallelism: 1, tagLength: 32, memory: 19456, passes: 2 }).toString("hex")}`
      const [, , salt] = JSON.parse(fs.readFileSync(file, "utf8")) as [string, Array<string>, Array<number>]
      assert.strictEqual(derived?.hash, hash)
      assert.strictEqual(hex(derived!.key), hex(crypto.pbkdf2Sync(hash, Uint8Array.from(salt), 1_000_000, 32, "sha256")))
      const opened = yield* openKeyfile(file, yield* passwordHash(PASSWORD, NAME), NAME)
      assert.strictEqual(hex(opened.key.pkcs8), hex(key.pkcs8))
    }), { timeout: 30_000 })

  it.effect("started with another password: the right one still opens, the early one is refused", () =>
    Effect.gen(function*() {
      const { file, key } = yield* home
      startEarly(file, "not the password")
      const opened = yield* openKeyfile(file, yield* passwordHash(PASSWORD, NAME), NAME)
      assert.strictEqual(hex(opened.key.pkcs8), hex(key.pkcs8))
      startEarly(file, "not the password")
      const refused = yield* Effect.flip(openKeyfile(file, yield* passwordHash("not the password", NAME), NAME))
      assert.strictEqual(refused._tag, "WrongPassword")
    }), { timeout: 30_000 })

  it.effect("started for one keyfile, another one (same name and password, other salt) still opens", () =>
    Effect.gen(function*() {
      const first = yield* home
      const second = yield* home
      startEarly(first.file, PASSWORD)
      const opened = yield* openKeyfile(second.file, yield* passwordHash(PASSWORD, NAME), NAME)
      assert.strictEqual(hex(opened.key.pkcs8), hex(second.key.pkcs8))
    }), { timeout: 30_000 })

  it.effect("a missing, garbled or misshapen keyfile starts nothing and throws nothing", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = keyfilePath(dir)
      assert.isUndefined(startEarly(file, PASSWORD))
      const misshapen = [
        "",
        "{not json",
        "[]",
        JSON.stringify(["x.os", [], [1, 2, 3], [], [], []]),
        JSON.stringify(["", [], Array(32).fill(0), [], [], []]),
        JSON.stringify(["x.os", [], Array(32).fill(256), [], [], []])
      ]
      for (const text of misshapen) {
        fs.writeFileSync(file, text)
        assert.isUndefined(startEarly(file, PASSWORD))
      }
    }))
})
