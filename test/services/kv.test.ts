import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Kv } from "../../services/kv/index.ts"
import { TestRuntime } from "./support/TestRuntime.ts"
import { withServices } from "./support/Storage.ts"

const pkg = { package_name: "app", publisher_node: "pub.os" }
const other = { package_name: "other", publisher_node: "pub.os" }
const APP = "main:app:pub.os"
const SIBLING = "worker:app:pub.os"
const STRANGER = "main:other:pub.os"
const bytes = (s: string) => new TextEncoder().encode(s)
const key = (s: string) => Array.from(bytes(s))

const kv = (source: string, db: string, action: unknown, blob?: Uint8Array, p = pkg) =>
  Effect.flatMap(TestRuntime, (t) =>
    t.call("kv", source, { package_id: p, db, action }, blob === undefined ? {} : { blob }))

describe("kv", () => {
  layer(withServices(Kv.layer))((it) => {
    it.effect("Open, Set, Get, Delete round trip with exact shapes", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual((yield* kv(APP, "db1", "Open")).body, "Ok")
        assert.deepStrictEqual((yield* kv(APP, "db1", { Set: { key: key("k"), tx_id: null } }, bytes("v1"))).body, "Ok")
        const got = yield* kv(APP, "db1", { Get: key("k") })
        assert.deepStrictEqual(got.body, { Get: key("k") })
        assert.deepStrictEqual(new TextDecoder().decode(got.blob!.bytes), "v1")
        assert.deepStrictEqual((yield* kv(APP, "db1", { Delete: { key: key("k") } })).body, "Ok")
        assert.deepStrictEqual((yield* kv(APP, "db1", { Get: key("k") })).body, { Err: "KeyNotFound" })
      }))

    it.effect("caps: Open grants read+write to the caller only; siblings need their own", () =>
      Effect.gen(function*() {
        yield* kv(APP, "caps", "Open")
        assert.deepStrictEqual((yield* kv(SIBLING, "caps", { Get: key("x") })).body, { Err: "NoReadCap" })
        assert.deepStrictEqual(
          (yield* kv(SIBLING, "caps", { Set: { key: key("x"), tx_id: null } }, bytes("1"))).body,
          { Err: "NoWriteCap" }
        )
        const t = yield* TestRuntime
        assert.strictEqual(t.caps(APP).filter((c) => c.includes("caps")).length, 2)
      }))

    it.effect("another package's db: Open/RemoveDb refused with MismatchingPackageId, data ops without caps", () =>
      Effect.gen(function*() {
        yield* kv(APP, "private", "Open")
        yield* kv(APP, "private", { Set: { key: key("secret"), tx_id: null } }, bytes("s"))
        assert.deepStrictEqual((yield* kv(STRANGER, "private", "Open")).body, { Err: "MismatchingPackageId" })
        assert.deepStrictEqual((yield* kv(STRANGER, "private", "RemoveDb")).body, { Err: "MismatchingPackageId" })
        assert.deepStrictEqual((yield* kv(STRANGER, "private", { Get: key("secret") })).body, { Err: "NoReadCap" })
        // its own package id with our db name is a different database
        assert.deepStrictEqual((yield* kv(STRANGER, "private", "Open", undefined, other)).body, "Ok")
        assert.deepStrictEqual(
          (yield* kv(STRANGER, "private", { Get: key("secret") }, undefined, other)).body,
          { Err: "KeyNotFound" }
        )
      }))

    it.effect("RemoveDb removes for good: NoDb until re-opened, and re-opened empty", () =>
      Effect.gen(function*() {
        yield* kv(APP, "gone", "Open")
        yield* kv(APP, "gone", { Set: { key: key("a"), tx_id: null } }, bytes("1"))
        assert.deepStrictEqual((yield* kv(APP, "gone", "RemoveDb")).body, "Ok")
        assert.deepStrictEqual((yield* kv(APP, "gone", { Get: key("a") })).body, { Err: { NoDb: [pkg, "gone"] } })
        assert.deepStrictEqual(
          (yield* kv(APP, "gone", { Set: { key: key("a"), tx_id: null } }, bytes("1"))).body,
          { Err: { NoDb: [pkg, "gone"] } }
        )
        yield* kv(APP, "gone", "Open")
        assert.deepStrictEqual((yield* kv(APP, "gone", { Get: key("a") })).body, { Err: "KeyNotFound" })
      }))

    it.effect("RemoveDb leaves databases whose names share a prefix alone", () =>
      Effect.gen(function*() {
        yield* kv(APP, "p", "Open")
        yield* kv(APP, "p2", "Open")
        yield* kv(APP, "p2", { Set: { key: key("a"), tx_id: null } }, bytes("2"))
        yield* kv(APP, "p", { Set: { key: key("a"), tx_id: null } }, bytes("1"))
        yield* kv(APP, "p", "RemoveDb")
        assert.deepStrictEqual((yield* kv(APP, "p2", { Get: key("a") })).body, { Get: key("a") })
      }))

    it.effect("transactions: u64 tx_id exact in JSON, buffered until Commit, NoTx for unknown ids", () =>
      Effect.gen(function*() {
        yield* kv(APP, "tx", "Open")
        const begin = yield* kv(APP, "tx", "BeginTx")
        const raw = new TextDecoder().decode(begin.raw)
        assert.match(raw, /^\{"BeginTx":\{"tx_id":\d+\}\}$/)
        const txId = (begin.body as { BeginTx: { tx_id: bigint | number } }).BeginTx.tx_id
        assert.strictEqual(raw, `{"BeginTx":{"tx_id":${txId.toString()}}}`)
        yield* kv(APP, "tx", { Set: { key: key("t"), tx_id: txId } }, bytes("x"))
        assert.deepStrictEqual((yield* kv(APP, "tx", { Get: key("t") })).body, { Err: "KeyNotFound" })
        assert.deepStrictEqual((yield* kv(APP, "tx", { Commit: { tx_id: txId } })).body, "Ok")
        assert.deepStrictEqual((yield* kv(APP, "tx", { Get: key("t") })).body, { Get: key("t") })
        const big = 18446744073709551557n
        assert.deepStrictEqual((yield* kv(APP, "tx", { Commit: { tx_id: big } })).body, { Err: { NoTx: big } })
        assert.deepStrictEqual(
          (yield* kv(APP, "tx", { Set: { key: key("u"), tx_id: big } }, bytes("y"))).body,
          { Err: { NoTx: big } }
        )
        // committing twice is NoTx
        assert.deepStrictEqual((yield* kv(APP, "tx", { Commit: { tx_id: txId } })).body, { Err: { NoTx: txId } })
      }))

    it.effect("bad input is answered with typed errors, never a crash", () =>
      Effect.gen(function*() {
        const t = yield* TestRuntime
        yield* kv(APP, "bad", "Open")
        const cases: Array<unknown> = [
          bytes("{not json"),
          new Uint8Array([0xff, 0xfe]),
          { package_id: pkg, db: "bad", action: "Explode" },
          { package_id: pkg, db: "bad", action: { Get: "notbytes" } },
          { package_id: pkg, db: "bad", action: { Get: [256] } },
          { package_id: "app:pub.os", db: "bad", action: "Open" },
          { package_id: pkg, db: 5, action: "Open" },
          { package_id: pkg, db: "../escape", action: "Open" },
          { package_id: pkg, db: "", action: "Open" },
          { package_id: { package_name: "a:b", publisher_node: "c" }, db: "x", action: "Open" },
          { package_id: pkg, db: "bad", action: { Set: { key: [1], tx_id: null } } }, // no blob
          { package_id: pkg, db: "bad", action: { Set: { key: [1], tx_id: -1 } } },
          { package_id: pkg, db: "bad", action: { Commit: { tx_id: 18446744073709551616n } } },
          { package_id: pkg, db: "bad", action: { Get: Array.from({ length: 5000 }, () => 1) } },
          null,
          [1, 2, 3]
        ]
        for (const body of cases) {
          const r = yield* t.call("kv", APP, body)
          assert.deepStrictEqual(r.body, { Err: "MalformedRequest" }, JSON.stringify(String(body)))
        }
        // huge value (9 MB) is stored and read back
        const huge = new Uint8Array(9 * 1024 * 1024).fill(7)
        assert.deepStrictEqual((yield* kv(APP, "bad", { Set: { key: key("huge"), tx_id: null } }, huge)).body, "Ok")
        assert.strictEqual((yield* kv(APP, "bad", { Get: key("huge") })).blob!.bytes.byteLength, huge.byteLength)
        // the service is still alive
        assert.deepStrictEqual((yield* kv(APP, "bad", { Get: key("nope") })).body, { Err: "KeyNotFound" })
      }))

    it.effect("a process pipelining requests gets them applied and answered in order", () =>
      Effect.gen(function*() {
        yield* kv(APP, "pipe", "Open")
        const results = yield* Effect.all([
          kv(APP, "pipe", { Set: { key: key("p"), tx_id: null } }, bytes("1")),
          kv(APP, "pipe", { Set: { key: key("p"), tx_id: null } }, bytes("2")),
          kv(APP, "pipe", { Get: key("p") }),
          kv(APP, "pipe", { Delete: { key: key("p"), tx_id: null } }),
          kv(APP, "pipe", { Get: key("p") })
        ], { concurrency: "unbounded" })
        assert.deepStrictEqual(results[0]!.body, "Ok")
        assert.deepStrictEqual(results[1]!.body, "Ok")
        assert.strictEqual(new TextDecoder().decode(results[2]!.blob!.bytes), "2")
        assert.deepStrictEqual(results[3]!.body, "Ok")
        assert.deepStrictEqual(results[4]!.body, { Err: "KeyNotFound" })
      }))

    it.effect("remote sources are ignored (local only)", () =>
      Effect.gen(function*() {
        const t = yield* TestRuntime
        yield* t.call("kv", APP, { package_id: pkg, db: "r", action: "Open" }, { node: "evil.os", noResponse: true })
        assert.deepStrictEqual((yield* kv(APP, "r", { Get: key("a") })).body, { Err: "NoReadCap" })
      }))
  })
})
