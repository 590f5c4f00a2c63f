/**
 * `sqlite:distro:sys`: per-package SQLite databases through Node's built-in
 * `node:sqlite`, at `<home>/sqlite/<pkg>:<pub>/<db>/<db>.db`.
 *
 * Each open database has two connections: a read-write one for `Write`/`Commit` and a
 * read-only one for `Query`, so a read cap can never write, whatever the statement
 * hides behind its first keyword (`WITH … DELETE`). An authorizer on both refuses
 * ATTACH (reading other packages' files, `VACUUM INTO` writing anywhere) and
 * transaction control (a `SAVEPOINT` left open would make later "acknowledged" writes
 * uncommitted); transactions are what `BeginTx`/`Commit` are for.
 *
 * Durability: WAL with `synchronous=FULL`, so every commit fsyncs the WAL before
 * `Ok` goes out. `NORMAL` in WAL mode survives an application crash but may lose the
 * last commits on power loss; an acknowledged write must survive both.
 *
 * Deliberate departures from Kinode 1.0 ([quirk]s of §6.4): read/write caps are
 * enforced; strings bind as TEXT (no base64 guessing, BLOBs are explicit, see
 * Protocol.ts); `RemoveDb` removes for good (`NoDb` until `Open`); kernel skips checks.
 *
 * `node:sqlite` is synchronous, so requests are served one at a time in arrival order.
 */
import { Context, Effect, Layer, Result, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { constants as SQLITE, DatabaseSync } from "node:sqlite"
import type { SQLInputValue } from "node:sqlite"
import { randomBytes } from "node:crypto"
import { Home } from "../../src/Home.ts"
import { Address, KERNEL, pid } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import type { LazyLoadBlob } from "../../src/Message.ts"
import { response } from "../../src/Message.ts"
import { Runtime, wantsReply } from "../../src/Runtime.ts"
import { capParams, READ_KEYWORDS, SqliteFailure, SqliteRequest, SqlParams, WRITE_KEYWORDS } from "./Protocol.ts"
import type { PackageIdJson, SqlParam, SqliteErrorBody, SqliteResponse } from "./Protocol.ts"

export interface Reply {
  readonly body: Uint8Array
  readonly blob?: LazyLoadBlob | undefined
}

/** Databases kept open at once (two connections each); least recently used close first. */
export const MAX_OPEN_DBS = 64
export const MAX_OPEN_TXS = 10_000
/** Statements buffered in one transaction. */
export const MAX_TX_STATEMENTS = 100_000

const kimapName = /^[a-z0-9-]+$/
const kimapNode = /^[a-z0-9.-]+$/
const I64_MIN = -(2n ** 63n)
const I64_MAX = 2n ** 63n - 1n

const fail = (error: SqliteErrorBody) => Effect.fail(new SqliteFailure({ error }))
const errorReply = (error: SqliteErrorBody): Reply => ({ body: Json.toBytes({ Err: error }) })
const decodeRequest = Schema.decodeUnknownResult(SqliteRequest)
const decodeParams = Schema.decodeUnknownResult(SqlParams)
const message = (cause: unknown) => cause instanceof Error ? cause.message : String(cause)
const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

export const validDbName = (db: string): boolean =>
  db.length > 0 && Buffer.byteLength(db) <= 255 && db !== "." && db !== ".." && !/[/\\\0]/.test(db)

const firstWord = (statement: string): string => (/^\s*([A-Za-z]+)/.exec(statement)?.[1] ?? "").toUpperCase()

/** JSON params -> values `node:sqlite` binds; undefined when one is not allowed. */
export const toSqlValues = (params: ReadonlyArray<SqlParam>): Array<SQLInputValue> | undefined => {
  const out: Array<SQLInputValue> = []
  for (const p of params) {
    if (p === null || typeof p === "string") out.push(p)
    else if (typeof p === "boolean") out.push(p ? 1n : 0n)
    // node:sqlite binds every JS number as REAL; integral ones must be INTEGER.
    else if (typeof p === "number") out.push(Number.isInteger(p) ? BigInt(p) : p)
    else if (typeof p === "bigint") {
      if (p < I64_MIN || p > I64_MAX) return undefined
      out.push(p)
    } else if (typeof p.Blob === "string") {
      if (!base64.test(p.Blob)) return undefined
      out.push(new Uint8Array(Buffer.from(p.Blob, "base64")))
    } else out.push(Uint8Array.from(p.Blob))
  }
  return out
}

/** A result value as Kinode prints it: BLOBs base64, integers exact. */
const toJsonValue = (v: unknown): unknown =>
  typeof v === "bigint"
    ? (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v)
    : v instanceof Uint8Array
    ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64")
    : v

interface Conn {
  readonly rw: DatabaseSync
  readonly ro: DatabaseSync
  /** Set while the service itself runs BEGIN/COMMIT/ROLLBACK (the authorizer allows them). */
  internal: boolean
}

interface Tx {
  readonly dbKey: string
  readonly statements: Array<{ readonly sql: string; readonly values: Array<SQLInputValue> }>
}

const yieldToEventLoop = Effect.callback<void>((resume) => {
  setImmediate(() => resume(Effect.void))
})

export class Sqlite extends Context.Service<Sqlite, {
  readonly handle: (source: Address, body: Uint8Array, blob: LazyLoadBlob | undefined) => Effect.Effect<Reply>
}>()("services/sqlite/Sqlite") {
  static readonly layerNoDeps = Layer.effect(
    Sqlite,
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const home = yield* Home
      const root = path.join(home.path, "sqlite")
      yield* Effect.sync(() => fs.mkdirSync(root, { recursive: true }))
      const our = new Address({ node: runtime.node, process: pid("sqlite:distro:sys") }, { disableChecks: true })
      const conns = new Map<string, Conn>()
      const txs = new Map<bigint, Tx>()

      const close = (dbKey: string) => {
        const c = conns.get(dbKey)
        if (c === undefined) return
        conns.delete(dbKey)
        c.ro.close()
        c.rw.close()
      }
      yield* Effect.addFinalizer(() => Effect.sync(() => [...conns.keys()].forEach(close)))

      const dirOf = (p: PackageIdJson, db: string) => path.join(root, `${p.package_name}:${p.publisher_node}`, db)
      const fileOf = (p: PackageIdJson, db: string) => path.join(dirOf(p, db), `${db}.db`)

      const authorize = (conn: { internal: boolean }) => (code: number) =>
        code === SQLITE.SQLITE_ATTACH || code === SQLITE.SQLITE_DETACH ||
          ((code === SQLITE.SQLITE_TRANSACTION || code === SQLITE.SQLITE_SAVEPOINT) && !conn.internal)
          ? SQLITE.SQLITE_DENY
          : SQLITE.SQLITE_OK

      /** The open connections of an existing db (opening it if needed), or undefined if it does not exist. */
      const connect = (dbKey: string, file: string, create: boolean): Conn | undefined => {
        const cached = conns.get(dbKey)
        if (cached !== undefined) {
          conns.delete(dbKey)
          conns.set(dbKey, cached)
          return cached
        }
        if (!create && !fs.existsSync(file)) return undefined
        if (create) fs.mkdirSync(path.dirname(file), { recursive: true })
        const rw = new DatabaseSync(file, { timeout: 5000 })
        try {
          rw.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
          const ro = new DatabaseSync(file, { readOnly: true, timeout: 5000 })
          const conn: Conn = { rw, ro, internal: false }
          rw.setAuthorizer(authorize(conn))
          ro.setAuthorizer(authorize(conn))
          conns.set(dbKey, conn)
          while (conns.size > MAX_OPEN_DBS) close(conns.keys().next().value!)
          return conn
        } catch (e) {
          rw.close()
          throw e
        }
      }

      const sqlError = (cause: unknown) => new SqliteFailure({ error: { RusqliteError: message(cause) } })

      const params = (blob: LazyLoadBlob | undefined) => {
        if (blob === undefined) return Effect.succeed([] as Array<SQLInputValue>)
        const json = Json.parseBytes(blob.bytes)
        if (Result.isFailure(json)) return fail("InvalidParameters")
        const decoded = decodeParams(json.success)
        if (Result.isFailure(decoded)) return fail("InvalidParameters")
        const values = toSqlValues(decoded.success)
        return values === undefined ? fail("InvalidParameters") : Effect.succeed(values)
      }

      const ok = (r: SqliteResponse, blob?: LazyLoadBlob): Reply => ({ body: Json.toBytes(r), blob })

      const serve = Effect.fnUntraced(function*(
        source: Address,
        req: SqliteRequest,
        blob: LazyLoadBlob | undefined
      ): Effect.fn.Return<Reply, SqliteFailure> {
        const p = req.package_id
        if (!kimapName.test(p.package_name) || !kimapNode.test(p.publisher_node) || !validDbName(req.db)) {
          return yield* fail("MalformedRequest")
        }
        const isKernel = source.process.toString() === KERNEL
        const samePackage = source.process.packageName === p.package_name &&
          source.process.publisherNode === p.publisher_node
        const dbKey = `${p.package_name}:${p.publisher_node}/${req.db}`
        const file = fileOf(p, req.db)
        const action = req.action

        if (action === "Open" || action === "RemoveDb") {
          if (!isKernel && !samePackage) return yield* fail("MismatchingPackageId")
          if (action === "Open") {
            yield* Effect.try({ try: () => connect(dbKey, file, true), catch: sqlError })
            if (!isKernel) {
              yield* runtime.grantCapabilities(source.process, [
                { issuer: our, params: capParams("read", p, req.db) },
                { issuer: our, params: capParams("write", p, req.db) }
              ])
            }
            return ok("Ok")
          }
          close(dbKey)
          for (const [id, tx] of txs) if (tx.dbKey === dbKey) txs.delete(id)
          yield* Effect.tryPromise({
            try: () => fs.promises.rm(dirOf(p, req.db), { recursive: true, force: true }),
            catch: (cause) => new SqliteFailure({ error: { IOError: message(cause) } })
          })
          return ok("Ok")
        }

        const needs = typeof action === "object" && "Query" in action ? "read" : "write"
        if (
          !isKernel &&
          !runtime.hasCapability(source.process, { issuer: our, params: capParams(needs, p, req.db) })
        ) {
          return yield* fail(needs === "read" ? "NoReadCap" : "NoWriteCap")
        }
        const conn = yield* Effect.try({ try: () => connect(dbKey, file, false), catch: sqlError })
        if (conn === undefined) return yield* fail({ NoDb: [p, req.db] })

        if (action === "BeginTx") {
          if (txs.size >= MAX_OPEN_TXS) return yield* fail({ RusqliteError: "too many open transactions" })
          let id = randomBytes(8).readBigUInt64BE()
          while (txs.has(id)) id = randomBytes(8).readBigUInt64BE()
          txs.set(id, { dbKey, statements: [] })
          return ok({ BeginTx: { tx_id: id } })
        }
        if ("Query" in action) {
          if (!READ_KEYWORDS.has(firstWord(action.Query))) return yield* fail("NotAReadKeyword")
          const values = yield* params(blob)
          const rows = yield* Effect.try({
            try: () => {
              const stmt = conn.ro.prepare(action.Query)
              stmt.setReadBigInts(true)
              return stmt.all(...values).map((row) => {
                const out: Record<string, unknown> = {}
                for (const k in row) out[k] = toJsonValue(row[k])
                return out
              })
            },
            catch: sqlError
          })
          return ok("Read", { mime: "application/json", bytes: Json.toBytes(rows) })
        }
        if ("Commit" in action) {
          const id = action.Commit.tx_id
          const tx = txs.get(id)
          if (tx === undefined || tx.dbKey !== dbKey) return yield* fail({ NoTx: id })
          txs.delete(id)
          yield* Effect.try({
            try: () => {
              conn.internal = true
              try {
                conn.rw.exec("BEGIN IMMEDIATE")
                try {
                  for (const s of tx.statements) conn.rw.prepare(s.sql).run(...s.values)
                  conn.rw.exec("COMMIT")
                } catch (e) {
                  conn.rw.exec("ROLLBACK")
                  throw e
                }
              } finally {
                conn.internal = false
              }
            },
            catch: sqlError
          })
          return ok("Ok")
        }
        const { statement, tx_id } = action.Write
        if (!WRITE_KEYWORDS.has(firstWord(statement))) return yield* fail("NotAWriteKeyword")
        const values = yield* params(blob)
        if (tx_id !== undefined && tx_id !== null) {
          const tx = txs.get(tx_id)
          if (tx === undefined || tx.dbKey !== dbKey) return yield* fail({ NoTx: tx_id })
          if (tx.statements.length >= MAX_TX_STATEMENTS) {
            return yield* fail({ RusqliteError: "too many statements in one transaction" })
          }
          // Compiled now so a bad statement fails at Write, not later at Commit.
          yield* Effect.try({ try: () => conn.rw.prepare(statement), catch: sqlError })
          tx.statements.push({ sql: statement, values })
          return ok("Ok")
        }
        yield* Effect.try({ try: () => conn.rw.prepare(statement).run(...values), catch: sqlError })
        return ok("Ok")
      })

      const handle = (source: Address, body: Uint8Array, blob: LazyLoadBlob | undefined): Effect.Effect<Reply> => {
        const json = Json.parseBytes(body)
        if (Result.isFailure(json)) return Effect.succeed(errorReply("MalformedRequest"))
        const req = decodeRequest(json.success)
        if (Result.isFailure(req)) return Effect.succeed(errorReply("MalformedRequest"))
        return serve(source, req.success, blob).pipe(
          Effect.catch((e: SqliteFailure) => Effect.succeed(errorReply(e.error)))
        )
      }
      return Sqlite.of({ handle })
    })
  )

  /** Registers `sqlite:distro:sys`; requests are served one at a time, in arrival order. */
  static readonly serve = Layer.effectDiscard(Effect.gen(function*() {
    const runtime = yield* Runtime
    const sqlite = yield* Sqlite
    yield* runtime.serve("sqlite", { public: false }, (ctx) =>
      Effect.gen(function*() {
        while (true) {
          const batch = yield* ctx.takeBatch
          for (const km of batch) {
            if (km.message._tag !== "Request" || km.source.node !== runtime.node) continue
            const r = yield* sqlite.handle(km.source, km.message.body, km.blob)
            if (wantsReply(km)) ctx.reply(km, response({ body: r.body }), r.blob)
            // Each statement blocks the thread (node:sqlite is synchronous, a commit
            // fsyncs); let pending I/O of every other service run between two of them.
            yield* yieldToEventLoop
          }
        }
      }))
  }))

  static readonly layer = Sqlite.serve.pipe(Layer.provide(Sqlite.layerNoDeps))
}
