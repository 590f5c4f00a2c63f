/**
 * Crash-test driver, run as a child process: boots the real node layers (kernel +
 * storage services) on `<home>`, verifies that everything listed in `<acked.json>` is
 * present, then writes continuously through kv, state, vfs and sqlite (requests through
 * the router), printing `<store> <id>` to stdout only after each write was acknowledged.
 * The parent SIGKILLs it at random moments.
 *
 * Usage: node crash-driver.ts <home> <acked.json> <cycle> [verify-only]
 */
import { Effect, Result } from "effect"
import * as fs from "node:fs"
import * as Json from "../../../src/Json.ts"
import type { NativeApi } from "../../../src/ProcessApi.ts"
import { callService, client, storageNode } from "./Node.ts"

const [home, ackedFile, cycleArg, mode] = process.argv.slice(2) as [string, string, string, string | undefined]
const cycle = Number(cycleArg)
const pkg = { package_name: "app", publisher_node: "pub.os" }
const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)
const pause = new Int32Array(new SharedArrayBuffer(4))
/**
 * Writes a whole line to stdout before returning (the parent counts only complete
 * lines). stdout is a non-blocking pipe: when the parent lags, retry on EAGAIN.
 */
const out = (line: string) => {
  const bytes = Buffer.from(line + "\n")
  let done = 0
  while (done < bytes.length) {
    try {
      done += fs.writeSync(1, bytes, done, bytes.length - done)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e
      Atomics.wait(pause, 0, 0, 1)
    }
  }
}

interface Acked {
  readonly kv: Array<string>
  readonly vfs: Array<string>
  readonly sql: Array<string>
  readonly state: number
}

const acked: Acked = fs.existsSync(ackedFile)
  ? JSON.parse(fs.readFileSync(ackedFile, "utf8"))
  : { kv: [], vfs: [], sql: [], state: -1 }

const fail = (why: string) => Effect.die(new Error(why))

const verify = (api: NativeApi) =>
  Effect.gen(function*() {
    for (const id of acked.kv) {
      const r = yield* callService(api, "kv", { package_id: pkg, db: "crash", action: { Get: Array.from(enc(id)) } })
      if (r.blob === undefined || dec(r.blob.bytes) !== `value-${id}`) return yield* fail(`kv ${id} lost: ${JSON.stringify(r.body)}`)
    }
    for (const id of acked.vfs) {
      const r = yield* callService(api, "vfs", { path: `/app:pub.os/crash/${id}`, action: "Read" })
      if (r.blob === undefined || dec(r.blob.bytes) !== `file-${id}`.repeat(64)) return yield* fail(`vfs ${id} lost: ${JSON.stringify(r.body)}`)
    }
    const rows = yield* callService(api, "sqlite", { package_id: pkg, db: "crash", action: { Query: "SELECT id FROM t" } })
    const have = new Set((Result.getOrThrow(Json.parseBytes(rows.blob!.bytes)) as Array<{ id: string }>).map((r) => r.id))
    for (const id of acked.sql) if (!have.has(id)) return yield* fail(`sqlite ${id} lost`)
    const check = yield* callService(api, "sqlite", { package_id: pkg, db: "crash", action: { Query: "PRAGMA integrity_check" } })
    if (!dec(check.blob!.bytes).includes(`"ok"`)) return yield* fail(`sqlite corrupt: ${dec(check.blob!.bytes)}`)
    const state = yield* Effect.promise(() => api.getState())
    const value = state === undefined ? -1 : Number(dec(state))
    if (!(value >= acked.state)) return yield* fail(`state ${value} older than acknowledged ${acked.state}`)
    out(`verified kv=${acked.kv.length} vfs=${acked.vfs.length} sql=${acked.sql.length} state=${value}`)
  })

const program = Effect.gen(function*() {
  const api = yield* client("main:app:pub.os")
  const ok = (body: unknown, what: string) => body === "Ok" ? Effect.void : fail(`${what}: ${JSON.stringify(body)}`)
  yield* ok((yield* callService(api, "kv", { package_id: pkg, db: "crash", action: "Open" })).body, "kv open")
  yield* ok((yield* callService(api, "vfs", { path: "/app:pub.os/crash", action: "CreateDrive" })).body, "vfs drive")
  yield* ok((yield* callService(api, "sqlite", { package_id: pkg, db: "crash", action: "Open" })).body, "sqlite open")
  yield* callService(api, "sqlite", {
    package_id: pkg,
    db: "crash",
    action: { Write: { statement: "CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, v BLOB)", tx_id: null } }
  })
  yield* verify(api)
  if (mode === "verify-only") return
  out("ready")

  const kvWriter = (w: number) =>
    Effect.gen(function*() {
      const me = yield* client(`kvw${w}:app:pub.os`)
      yield* callService(me, "kv", { package_id: pkg, db: "crash", action: "Open" })
      for (let i = 0;; i++) {
        const id = `c${cycle}-w${w}-${i}`
        const r = yield* callService(me, "kv", {
          package_id: pkg,
          db: "crash",
          action: { Set: { key: Array.from(enc(id)), tx_id: null } }
        }, enc(`value-${id}`))
        yield* ok(r.body, "kv set")
        out(`kv ${id}`)
      }
    })
  const vfsWriter = (w: number) =>
    Effect.gen(function*() {
      const me = yield* client(`vfsw${w}:app:pub.os`)
      for (let i = 0;; i++) {
        const id = `c${cycle}-w${w}-${i}`
        yield* ok((yield* callService(me, "vfs", { path: `/app:pub.os/crash/${id}`, action: "Write" }, enc(`file-${id}`.repeat(64)))).body, "vfs write")
        out(`vfs ${id}`)
      }
    })
  const sqlWriter = Effect.gen(function*() {
    for (let i = 0;; i++) {
      const id = `c${cycle}-${i}`
      const r = yield* callService(api, "sqlite", {
        package_id: pkg,
        db: "crash",
        action: { Write: { statement: "INSERT INTO t VALUES (?, ?)", tx_id: null } }
      }, Json.toBytes([id, { Blob: [1, 2, 3] }]))
      yield* ok(r.body, "sqlite insert")
      out(`sql ${id}`)
    }
  })
  const stateWriter = Effect.gen(function*() {
    const me = yield* client("statew:app:pub.os")
    void me
    for (let i = 0;; i++) {
      const value = cycle * 1_000_000 + i
      yield* Effect.promise(() => api.setState(enc(String(value))))
      out(`state ${value}`)
    }
  })
  yield* Effect.all(
    [...[0, 1, 2, 3, 4, 5, 6, 7].map(kvWriter), vfsWriter(0), vfsWriter(1), sqlWriter, stateWriter],
    { concurrency: "unbounded", discard: true }
  )
})

Effect.runPromiseExit(Effect.scoped(Effect.provide(program, storageNode({ home })))).then((exit) => {
  if (exit._tag === "Failure") {
    out(`FAILED ${String(exit.cause)}`)
    process.exit(1)
  }
  process.exit(0)
})
