import { assert, describe, layer } from "@effect/vitest"
import { Effect, Result } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Home } from "../../src/Home.ts"
import * as Json from "../../src/Json.ts"
import { Sqlite } from "../../services/sqlite/index.ts"
import { TestRuntime } from "./support/TestRuntime.ts"
import { withServices } from "./support/Storage.ts"

const pkg = { package_name: "app", publisher_node: "pub.os" }
const other = { package_name: "other", publisher_node: "pub.os" }
const APP = "main:app:pub.os"
const STRANGER = "main:other:pub.os"

const sql = (source: string, db: string, action: unknown, params?: unknown, p = pkg) =>
  Effect.flatMap(TestRuntime, (t) =>
    t.call("sqlite", source, { package_id: p, db, action }, params === undefined ? {} : { blob: Json.toBytes(params) }))
const write = (db: string, statement: string, params?: unknown, tx_id: unknown = null) =>
  sql(APP, db, { Write: { statement, tx_id } }, params)
const rows = (r: { blob: { bytes: Uint8Array } | undefined }) => Result.getOrThrow(Json.parseBytes(r.blob!.bytes))

describe("sqlite", () => {
  layer(withServices(Sqlite.layer))((it) => {
    it.effect("Open creates <home>/sqlite/<pkg>/<db>/<db>.db in WAL mode; Write/Query round trip", () =>
      Effect.gen(function*() {
        const home = yield* Home
        assert.deepStrictEqual((yield* sql(APP, "main", "Open")).body, "Ok")
        assert.ok(fs.existsSync(path.join(home.path, "sqlite", "app:pub.os", "main", "main.db")))
        assert.deepStrictEqual((yield* write("main", "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n)")).body, "Ok")
        const big = 9007199254740993n
        assert.deepStrictEqual(
          (yield* write("main", "INSERT INTO t VALUES (?, ?, ?, ?, ?)", [big, 1.5, "test", { Blob: [1, 2, 255] }, null])).body,
          "Ok"
        )
        assert.deepStrictEqual(
          (yield* write("main", "INSERT INTO t VALUES (?, ?, ?, ?, ?)", [7, 0.25, "aGVsbG8=", { Blob: "aGk=" }, true])).body,
          "Ok"
        )
        const r = yield* sql(APP, "main", { Query: "SELECT i, r, s, b, n, typeof(s) AS ts FROM t ORDER BY r DESC" })
        assert.deepStrictEqual(r.body, "Read")
        const text = new TextDecoder().decode(r.blob!.bytes)
        assert.include(text, `"i":${big.toString()}`)
        assert.deepStrictEqual(rows(r), [
          { i: big, r: 1.5, s: "test", b: "AQL/", n: null, ts: "text" },
          { i: 7, r: 0.25, s: "aGVsbG8=", b: "aGk=", n: 1, ts: "text" }
        ])
      }))

    it.effect("keyword gates", () =>
      Effect.gen(function*() {
        yield* sql(APP, "gate", "Open")
        assert.deepStrictEqual((yield* write("gate", "SELECT 1")).body, { Err: "NotAWriteKeyword" })
        assert.deepStrictEqual((yield* sql(APP, "gate", { Query: "DROP TABLE x" })).body, { Err: "NotAReadKeyword" })
        assert.deepStrictEqual((yield* sql(APP, "gate", { Query: "" })).body, { Err: "NotAReadKeyword" })
      }))

    it.effect("Query runs read-only; ATTACH, VACUUM INTO and SAVEPOINT are refused", () =>
      Effect.gen(function*() {
        yield* sql(APP, "ro", "Open")
        yield* write("ro", "CREATE TABLE t (a)")
        yield* write("ro", "INSERT INTO t VALUES (1)")
        const sneaky = yield* sql(APP, "ro", { Query: "WITH x AS (SELECT 1) DELETE FROM t" })
        assert.ok("RusqliteError" in (sneaky.body as { Err: object }).Err)
        const attach = yield* sql(APP, "ro", { Query: "ATTACH '/etc/hosts' AS h" })
        assert.ok("RusqliteError" in (attach.body as { Err: object }).Err)
        const vacuum = yield* write("ro", "VACUUM INTO '/tmp/kinode-sqlite-escape.db'")
        assert.ok("RusqliteError" in (vacuum.body as { Err: object }).Err)
        const savepoint = yield* write("ro", "SAVEPOINT s")
        assert.ok("RusqliteError" in (savepoint.body as { Err: object }).Err)
        const r = yield* sql(APP, "ro", { Query: "SELECT count(*) AS c FROM t" })
        assert.deepStrictEqual(rows(r), [{ c: 1 }])
      }))

    it.effect("transactions: buffered until Commit, atomic, NoTx", () =>
      Effect.gen(function*() {
        yield* sql(APP, "tx", "Open")
        yield* write("tx", "CREATE TABLE t (a INTEGER UNIQUE)")
        const begin = yield* sql(APP, "tx", "BeginTx")
        const txId = (begin.body as { BeginTx: { tx_id: bigint | number } }).BeginTx.tx_id
        assert.deepStrictEqual((yield* write("tx", "INSERT INTO t VALUES (?)", [1], txId)).body, "Ok")
        assert.deepStrictEqual((yield* write("tx", "INSERT INTO t VALUES (?)", [2], txId)).body, "Ok")
        const before = yield* sql(APP, "tx", { Query: "SELECT count(*) AS c FROM t" })
        assert.include(new TextDecoder().decode(before.blob!.bytes), `"c":0`)
        assert.deepStrictEqual((yield* sql(APP, "tx", { Commit: { tx_id: txId } })).body, "Ok")
        const after = yield* sql(APP, "tx", { Query: "SELECT count(*) AS c FROM t" })
        assert.include(new TextDecoder().decode(after.blob!.bytes), `"c":2`)
        // a failing statement rolls the whole transaction back
        const t2 = ((yield* sql(APP, "tx", "BeginTx")).body as { BeginTx: { tx_id: bigint } }).BeginTx.tx_id
        yield* write("tx", "INSERT INTO t VALUES (?)", [3], t2)
        yield* write("tx", "INSERT INTO t VALUES (?)", [1], t2)
        assert.ok("RusqliteError" in ((yield* sql(APP, "tx", { Commit: { tx_id: t2 } })).body as { Err: object }).Err)
        const still = yield* sql(APP, "tx", { Query: "SELECT count(*) AS c FROM t" })
        assert.include(new TextDecoder().decode(still.blob!.bytes), `"c":2`)
        assert.deepStrictEqual((yield* sql(APP, "tx", { Commit: { tx_id: 1 } })).body, { Err: { NoTx: 1 } })
      }))

    it.effect("caps enforced (quirk fixed) and cross-package refused", () =>
      Effect.gen(function*() {
        yield* sql(APP, "caps", "Open")
        assert.deepStrictEqual((yield* sql("worker:app:pub.os", "caps", { Query: "SELECT 1" })).body, { Err: "NoReadCap" })
        assert.deepStrictEqual(
          (yield* sql("worker:app:pub.os", "caps", { Write: { statement: "CREATE TABLE x (a)", tx_id: null } })).body,
          { Err: "NoWriteCap" }
        )
        assert.deepStrictEqual((yield* sql(STRANGER, "caps", "Open")).body, { Err: "MismatchingPackageId" })
        assert.deepStrictEqual((yield* sql(STRANGER, "caps", "RemoveDb")).body, { Err: "MismatchingPackageId" })
        assert.deepStrictEqual((yield* sql(STRANGER, "caps", { Query: "SELECT 1" })).body, { Err: "NoReadCap" })
        assert.deepStrictEqual((yield* sql(STRANGER, "caps", "Open", undefined, other)).body, "Ok")
      }))

    it.effect("RemoveDb removes the files; NoDb afterwards", () =>
      Effect.gen(function*() {
        const home = yield* Home
        yield* sql(APP, "gone", "Open")
        yield* write("gone", "CREATE TABLE t (a)")
        assert.deepStrictEqual((yield* sql(APP, "gone", "RemoveDb")).body, "Ok")
        assert.isFalse(fs.existsSync(path.join(home.path, "sqlite", "app:pub.os", "gone")))
        assert.deepStrictEqual((yield* sql(APP, "gone", { Query: "SELECT 1" })).body, { Err: { NoDb: [pkg, "gone"] } })
      }))

    it.effect("bad input: typed errors, never a crash", () =>
      Effect.gen(function*() {
        const t = yield* TestRuntime
        yield* sql(APP, "bad", "Open")
        for (
          const body of [
            new TextEncoder().encode("nope"),
            { package_id: pkg, db: "bad", action: "Drop" },
            { package_id: pkg, db: "bad", action: { Query: 5 } },
            { package_id: pkg, db: "../../etc", action: "Open" },
            { package_id: pkg, db: "bad", action: { Write: { statement: "x", tx_id: "1" } } }
          ]
        ) {
          assert.deepStrictEqual((yield* t.call("sqlite", APP, body)).body, { Err: "MalformedRequest" })
        }
        for (const params of [{ not: "array" }, [{}], [[1]], [{ Blob: "!!notbase64" }], [2n ** 70n], [{ Blob: [256] }]]) {
          assert.deepStrictEqual((yield* sql(APP, "bad", { Query: "SELECT ?" }, params)).body, { Err: "InvalidParameters" })
        }
        const garbage = yield* t.call("sqlite", APP, { package_id: pkg, db: "bad", action: { Query: "SELECT 1" } }, {
          blob: new Uint8Array([0xff])
        })
        assert.deepStrictEqual(garbage.body, { Err: "InvalidParameters" })
        const syntax = yield* sql(APP, "bad", { Query: "SELECT FROM WHERE" })
        assert.ok("RusqliteError" in (syntax.body as { Err: object }).Err)
        assert.deepStrictEqual((yield* sql(APP, "bad", { Query: "SELECT 1 AS one" })).body, "Read")
      }))
  })
})
