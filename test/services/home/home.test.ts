/**
 * services/home and the LMDB file check, in process: the lock's states (free, held,
 * stale, garbage), the home's states (new, existing, data without a process map), and
 * `checkLmdbFile` against files lmdb-js wrote and damaged copies of them. The CLI test
 * (test/cli/home.test.ts) meets the same cases through `node dist/main.js`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { checkHomeState, lockFile, lockHome, openHome, prepareHomeDir } from "../../../services/home/index.ts"
import { checkLmdbFile, Lmdb } from "../../../services/lmdb/index.ts"

const tmpdir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "kinode-ts-homeunit-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** A pid that is certainly gone: a process that ran and exited. */
const deadPid = () => spawnSync(process.execPath, ["-e", "0"]).pid!

/** An LMDB environment with some records, written by lmdb-js and closed. */
const writeEnv = (dir: string) =>
  Effect.scoped(Effect.gen(function*() {
    const lmdb = yield* Layer.build(Lmdb.at(dir)).pipe(Effect.map((c) => c.mapUnsafe.get(Lmdb.key) as Lmdb["Service"]))
    const db = lmdb.open<string>("kernel", "string")
    for (let i = 0; i < 300; i++) yield* Effect.promise(() => db.put(`k${i}`, "v".repeat(i * 10)))
  }))

describe("home lock", () => {
  it.effect("is taken, refuses a live holder, takes over a dead one's and a garbage file, and is removed at the end", () =>
    Effect.gen(function*() {
      const home = yield* tmpdir
      const first = yield* Effect.scoped(Effect.gen(function*() {
        const taken = yield* lockHome(home)
        assert.strictEqual(fs.readFileSync(lockFile(home), "utf8").split(" ")[0], String(process.pid))
        return taken
      }))
      assert.isUndefined(first.tookOverFrom)
      assert.isFalse(fs.existsSync(lockFile(home)), "released at the end of the scope")

      // held by a live process (the parent of this one)
      fs.writeFileSync(lockFile(home), `${process.ppid} -\n`)
      const held = yield* Effect.flip(Effect.scoped(lockHome(home)))
      assert.strictEqual(held._tag, "HomeInUse")
      assert.strictEqual(held._tag === "HomeInUse" ? held.pid : 0, process.ppid)
      assert.strictEqual(fs.readFileSync(lockFile(home), "utf8"), `${process.ppid} -\n`, "a refused node leaves the lock alone")

      const dead = deadPid()
      fs.writeFileSync(lockFile(home), `${dead} -\n`)
      const stale = yield* Effect.scoped(lockHome(home))
      assert.strictEqual(stale.tookOverFrom, dead)

      // the holder's pid alive but with another start time: a reused pid, stale
      if (fs.existsSync("/proc/self/stat")) {
        fs.writeFileSync(lockFile(home), `${process.ppid} 1\n`)
        assert.strictEqual((yield* Effect.scoped(lockHome(home))).tookOverFrom, process.ppid)
      }

      fs.writeFileSync(lockFile(home), "not a lock")
      assert.isUndefined((yield* Effect.scoped(lockHome(home))).tookOverFrom)
      assert.deepStrictEqual(fs.readdirSync(home), [], "no lock or temporary file left")
    }))
})

describe("home directory", () => {
  it.effect("is created with its parents; a file in the way or an unwritable directory is HomeUnusable", () =>
    Effect.gen(function*() {
      const dir = yield* tmpdir
      const home = yield* prepareHomeDir(path.join(dir, "a", "b", "home"))
      assert.isTrue(fs.statSync(home).isDirectory())
      fs.writeFileSync(path.join(dir, "file"), "")
      const notDir = yield* Effect.flip(prepareHomeDir(path.join(dir, "file", "home")))
      assert.strictEqual(notDir.problem, "NotADirectory")
      assert.strictEqual(notDir.at, path.join(dir, "file"))
      // Node's mkdir -p spins forever here; this returns at once.
      const proc = yield* Effect.flip(prepareHomeDir("/proc/nope/home"))
      assert.deepInclude(proc, { problem: "CannotCreate", at: "/proc/nope", code: "ENOENT" })
    }))
})

describe("home state", () => {
  it.effect("a fresh home gets a process map; data without one is refused unless newProcessMap", () =>
    Effect.gen(function*() {
      const fresh = yield* tmpdir
      assert.strictEqual((yield* checkHomeState(fresh, { newProcessMap: false })).state, "New")
      assert.strictEqual(yield* checkLmdbFile(path.join(fresh, "lmdb", "data.mdb")), "Ok")
      assert.strictEqual((yield* checkHomeState(fresh, { newProcessMap: false })).state, "Existing")

      const keyOnly = yield* tmpdir
      fs.writeFileSync(path.join(keyOnly, ".keys"), "[]")
      assert.deepStrictEqual(yield* checkHomeState(keyOnly, { newProcessMap: false }), { state: "NewProcessMap", found: [".keys"] })

      const orphan = yield* tmpdir
      fs.mkdirSync(path.join(orphan, "vfs", "app:pub.os"), { recursive: true })
      const refused = yield* Effect.flip(checkHomeState(orphan, { newProcessMap: false }))
      assert.deepInclude(refused, { _tag: "HomeWithoutProcessMap", found: ["vfs/"], processMap: "Missing" })
      assert.isFalse(fs.existsSync(path.join(orphan, "lmdb")))
      assert.strictEqual((yield* checkHomeState(orphan, { newProcessMap: true })).state, "NewProcessMap")

      const opened = yield* Effect.scoped(openHome(path.join(orphan, "."), { newProcessMap: false }))
      assert.strictEqual(opened.state, "Existing")
    }))
})

describe("checkLmdbFile", () => {
  it.effect("passes what lmdb-js wrote; refuses it cut short, overwritten or garbage; Missing and Empty are states", () =>
    Effect.gen(function*() {
      const dir = yield* tmpdir
      const env = path.join(dir, "env")
      yield* writeEnv(env)
      const file = path.join(env, "data.mdb")
      assert.strictEqual(yield* checkLmdbFile(file), "Ok")
      assert.strictEqual(yield* checkLmdbFile(path.join(dir, "none.mdb")), "Missing")
      const bytes = fs.readFileSync(file)
      const damaged = (name: string, content: Uint8Array) =>
        Effect.gen(function*() {
          const f = path.join(dir, name)
          fs.writeFileSync(f, content)
          const result = yield* Effect.result(checkLmdbFile(f))
          if (result._tag === "Success") return result.success
          return result.failure._tag === "LmdbDamaged" ? result.failure.damage : "Unreadable"
        })
      assert.strictEqual(yield* damaged("empty", new Uint8Array(0)), "Empty")
      assert.strictEqual(yield* damaged("half", bytes.subarray(0, bytes.length - 4096)), "Truncated")
      assert.strictEqual(yield* damaged("tiny", bytes.subarray(0, 100)), "TooShort")
      assert.strictEqual(yield* damaged("text", new TextEncoder().encode("hello ".repeat(2000))), "BadMagic")
      const magic = Buffer.from(bytes)
      magic.writeUInt32LE(0x12345678, 24)
      assert.strictEqual(yield* damaged("magic", magic), "BadMagic")
      const version = Buffer.from(bytes)
      version.writeUInt32LE(1, 28)
      assert.strictEqual(yield* damaged("version", version), "BadVersion")
      const notMeta = Buffer.from(bytes)
      notMeta.writeUInt16LE(0x02, 18) // page 0 marked a leaf page
      assert.strictEqual(yield* damaged("notmeta", notMeta), "NotMetaPage")
      const pageSize = Buffer.from(bytes)
      pageSize.writeUInt32LE(3000, 48)
      assert.strictEqual(yield* damaged("pagesize", pageSize), "BadPageSize")
    }))
})
