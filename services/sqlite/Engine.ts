/**
 * The SQLite engine: `node:sqlite` connections and statements, run inside the sqlite
 * worker thread (`EngineWorker.ts`). `node:sqlite` is synchronous and every commit
 * fsyncs; on the node's main thread each statement would stall every process and
 * service for its duration, so the service only decides and checks on the main
 * thread and hands the database work to this engine.
 *
 * Each open database has two connections: a read-write one for writes and commits and
 * a read-only one for queries, so a read cap can never write, whatever the statement
 * hides behind its first keyword (`WITH … DELETE`). An authorizer on both refuses
 * ATTACH/DETACH (reading other packages' files, `VACUUM INTO` writing anywhere) and
 * transaction control (a `SAVEPOINT` left open would make later "acknowledged" writes
 * uncommitted); transactions are what `BeginTx`/`Commit` are for.
 *
 * Durability: WAL with `synchronous=FULL`, so every commit fsyncs the WAL before it
 * returns. `NORMAL` in WAL mode survives an application crash but may lose the last
 * commits on power loss; an acknowledged write must survive both.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { constants as SQLITE, DatabaseSync } from "node:sqlite"
import type { SQLInputValue } from "node:sqlite"

/** Databases kept open at once (two connections each); least recently used close first. */
export const MAX_OPEN_DBS = 64

export type EngineRequest =
  | { readonly op: "open"; readonly dbKey: string; readonly file: string }
  | { readonly op: "remove"; readonly dbKey: string; readonly dir: string }
  | { readonly op: "query"; readonly dbKey: string; readonly file: string; readonly sql: string; readonly values: Array<SQLInputValue> }
  | { readonly op: "write"; readonly dbKey: string; readonly file: string; readonly sql: string; readonly values: Array<SQLInputValue> }
  | {
    readonly op: "commit"
    readonly dbKey: string
    readonly file: string
    readonly statements: ReadonlyArray<{ readonly sql: string; readonly values: Array<SQLInputValue> }>
  }
  | { readonly op: "exists"; readonly dbKey: string; readonly file: string }

export type EngineResult =
  | { readonly _tag: "Ok"; readonly value: unknown }
  | { readonly _tag: "NoDb" }
  | { readonly _tag: "SqlError"; readonly message: string }
  | { readonly _tag: "IoError"; readonly message: string }

interface Conn {
  readonly rw: DatabaseSync
  readonly ro: DatabaseSync
  /** Set while the engine itself runs BEGIN/COMMIT/ROLLBACK (the authorizer allows them). */
  internal: boolean
}

const message = (cause: unknown) => cause instanceof Error ? cause.message : String(cause)

/** A result value as Kinode prints it: BLOBs base64, integers exact (bigint beyond 2^53). */
const toJsonValue = (v: unknown): unknown =>
  typeof v === "bigint"
    ? (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v)
    : v instanceof Uint8Array
    ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64")
    : v

export const makeEngine = () => {
  const conns = new Map<string, Conn>()

  const close = (dbKey: string) => {
    const c = conns.get(dbKey)
    if (c === undefined) return
    conns.delete(dbKey)
    c.ro.close()
    c.rw.close()
  }

  const authorize = (conn: { internal: boolean }) => (code: number) =>
    code === SQLITE.SQLITE_ATTACH || code === SQLITE.SQLITE_DETACH ||
      ((code === SQLITE.SQLITE_TRANSACTION || code === SQLITE.SQLITE_SAVEPOINT) && !conn.internal)
      ? SQLITE.SQLITE_DENY
      : SQLITE.SQLITE_OK

  /** The connections of a db (opening them if needed); undefined if it does not exist. */
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

  const ok = (value: unknown): EngineResult => ({ _tag: "Ok", value })
  const NO_DB: EngineResult = { _tag: "NoDb" }

  const run = (req: EngineRequest): EngineResult => {
    if (req.op === "remove") {
      close(req.dbKey)
      try {
        fs.rmSync(req.dir, { recursive: true, force: true })
        return ok(null)
      } catch (e) {
        return { _tag: "IoError", message: message(e) }
      }
    }
    try {
      const conn = connect(req.dbKey, req.file, req.op === "open")
      if (conn === undefined) return NO_DB
      switch (req.op) {
        case "open":
        case "exists":
          return ok(null)
        case "write":
          conn.rw.prepare(req.sql).run(...req.values)
          return ok(null)
        case "query": {
          const stmt = conn.ro.prepare(req.sql)
          stmt.setReadBigInts(true)
          return ok(stmt.all(...req.values).map((row) => {
            const out: Record<string, unknown> = {}
            for (const k in row) out[k] = toJsonValue(row[k])
            return out
          }))
        }
        case "commit": {
          conn.internal = true
          try {
            conn.rw.exec("BEGIN IMMEDIATE")
            try {
              for (const s of req.statements) conn.rw.prepare(s.sql).run(...s.values)
              conn.rw.exec("COMMIT")
            } catch (e) {
              conn.rw.exec("ROLLBACK")
              throw e
            }
          } finally {
            conn.internal = false
          }
          return ok(null)
        }
      }
    } catch (e) {
      return { _tag: "SqlError", message: message(e) }
    }
  }

  const closeAll = () => [...conns.keys()].forEach(close)
  return { run, closeAll }
}
