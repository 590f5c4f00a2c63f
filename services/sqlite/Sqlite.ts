/**
 * `sqlite:distro:sys`: per-package SQLite databases through Node's built-in
 * `node:sqlite`, at `<home>/sqlite/<pkg>:<pub>/<db>/<db>.db`.
 *
 * The main thread decodes, checks caps, keyword gates and parameters; the database
 * work runs in a worker thread (`Engine.ts`: connections, read-only queries, the
 * authorizer, WAL + synchronous=FULL), so a statement's fsync never stalls the node.
 * Requests from one process are served in arrival order; the worker runs them FIFO.
 *
 * Deliberate departures from Kinode 1.0 ([quirk]s of §6.4): read/write caps are
 * enforced; strings bind as TEXT (no base64 guessing, BLOBs are explicit, see
 * Protocol.ts); `RemoveDb` removes for good (`NoDb` until `Open`); kernel skips checks.
 */
import { Context, Effect, Layer, Result, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { SQLInputValue } from "node:sqlite"
import { randomBytes } from "node:crypto"
import { Home } from "../../src/Home.ts"
import { Address, KERNEL, pid } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import type { LazyLoadBlob } from "../../src/Message.ts"
import { ModuleHost } from "../../src/ModuleHost.ts"
import * as ServiceShell from "../../src/ServiceShell.ts"
import type { Reply } from "../../src/ServiceShell.ts"
import type { EngineResult } from "./Engine.ts"
import { makeEngineClient } from "./EngineClient.ts"
import { capParams, READ_KEYWORDS, SqliteFailure, SqliteRequest, SqlParams, WRITE_KEYWORDS } from "./Protocol.ts"
import type { PackageIdJson, SqlParam, SqliteErrorBody, SqliteResponse } from "./Protocol.ts"

export const MAX_OPEN_TXS = 10_000
/** Statements buffered in one transaction. */
export const MAX_TX_STATEMENTS = 100_000
const MAX_IN_FLIGHT = 4096

/** Package names: Kimap-safe, or legacy (`app_store`: installed packages from before Kimap, src/Ids.ts `checkLegacySafe`). */
const kimapName = /^[a-z0-9_-]+$/
const kimapNode = /^[a-z0-9.-]+$/
const I64_MIN = -(2n ** 63n)
const I64_MAX = 2n ** 63n - 1n

const fail = (error: SqliteErrorBody) => Effect.fail(new SqliteFailure({ error }))
const decodeParams = Schema.decodeUnknownResult(SqlParams)
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

interface Tx {
  readonly dbKey: string
  readonly statements: Array<{ readonly sql: string; readonly values: Array<SQLInputValue> }>
}

export class Sqlite extends Context.Service<Sqlite, {
  readonly handle: ServiceShell.Handle
}>()("services/sqlite/Sqlite") {
  static readonly layerNoDeps = Layer.effect(
    Sqlite,
    Effect.gen(function*() {
      const host = yield* ModuleHost
      const home = yield* Home
      const root = path.join(home.path, "sqlite")
      yield* Effect.sync(() => fs.mkdirSync(root, { recursive: true }))
      const our = new Address({ node: host.node, process: pid("sqlite:distro:sys") }, { disableChecks: true })
      const engine = yield* makeEngineClient
      const txs = new Map<bigint, Tx>()

      const dirOf = (p: PackageIdJson, db: string) => path.join(root, `${p.package_name}:${p.publisher_node}`, db)
      const fileOf = (p: PackageIdJson, db: string) => path.join(dirOf(p, db), `${db}.db`)

      /** An engine result as the request's outcome: its value, or the matching typed error. */
      const settle = (r: EngineResult, p: PackageIdJson, db: string) => {
        switch (r._tag) {
          case "Ok":
            return Effect.succeed(r.value)
          case "NoDb":
            return fail({ NoDb: [p, db] })
          case "SqlError":
            return fail({ RusqliteError: r.message })
          case "IoError":
            return fail({ IOError: r.message })
        }
      }

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
        const db = req.db
        if (!kimapName.test(p.package_name) || !kimapNode.test(p.publisher_node) || !validDbName(db)) {
          return yield* fail("MalformedRequest")
        }
        const isKernel = source.process.toString() === KERNEL
        const samePackage = source.process.packageName === p.package_name &&
          source.process.publisherNode === p.publisher_node
        const dbKey = `${p.package_name}:${p.publisher_node}/${db}`
        const file = fileOf(p, db)
        const action = req.action
        const run = (r: Parameters<typeof engine.call>[0]) => Effect.flatMap(engine.call(r), (res) => settle(res, p, db))

        if (action === "Open" || action === "RemoveDb") {
          if (!isKernel && !samePackage) return yield* fail("MismatchingPackageId")
          if (action === "Open") {
            yield* run({ op: "open", dbKey, file })
            if (!isKernel) {
              yield* host.grantCapabilities(source.process, [
                { issuer: our, params: capParams("read", p, db) },
                { issuer: our, params: capParams("write", p, db) }
              ])
            }
            return ok("Ok")
          }
          for (const [id, tx] of txs) if (tx.dbKey === dbKey) txs.delete(id)
          yield* run({ op: "remove", dbKey, dir: dirOf(p, db) })
          return ok("Ok")
        }

        const needs = typeof action === "object" && "Query" in action ? "read" : "write"
        if (
          !isKernel &&
          !host.hasCapability(source.process, { issuer: our, params: capParams(needs, p, db) })
        ) {
          return yield* fail(needs === "read" ? "NoReadCap" : "NoWriteCap")
        }

        if (action === "BeginTx") {
          yield* run({ op: "exists", dbKey, file })
          if (txs.size >= MAX_OPEN_TXS) return yield* fail({ RusqliteError: "too many open transactions" })
          let id = randomBytes(8).readBigUInt64BE()
          while (txs.has(id)) id = randomBytes(8).readBigUInt64BE()
          txs.set(id, { dbKey, statements: [] })
          return ok({ BeginTx: { tx_id: id } })
        }
        if ("Query" in action) {
          if (!READ_KEYWORDS.has(firstWord(action.Query))) return yield* fail("NotAReadKeyword")
          const values = yield* params(blob)
          const rows = yield* run({ op: "query", dbKey, file, sql: action.Query, values })
          return ok("Read", { mime: "application/json", bytes: Json.toBytes(rows) })
        }
        if ("Commit" in action) {
          const id = action.Commit.tx_id
          const tx = txs.get(id)
          if (tx === undefined || tx.dbKey !== dbKey) return yield* fail({ NoTx: id })
          txs.delete(id)
          yield* run({ op: "commit", dbKey, file, statements: tx.statements })
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
          // Buffered as Kinode does: a bad statement fails the Commit, which rolls back.
          tx.statements.push({ sql: statement, values })
          return ok("Ok")
        }
        yield* run({ op: "write", dbKey, file, sql: statement, values })
        return ok("Ok")
      })

      const shell = ServiceShell.make({
        request: SqliteRequest,
        malformed: (): SqliteErrorBody => "MalformedRequest",
        serve
      })
      return Sqlite.of({ handle: shell.handle })
    })
  )

  /** Registers `sqlite:distro:sys`: one lane per source process, lanes run concurrently. */
  static readonly serve = Layer.unwrap(Effect.map(Sqlite, (sqlite) =>
    ServiceShell.serveLayer("sqlite:distro:sys", { _tag: "lanes", maxInFlight: MAX_IN_FLIGHT }, sqlite.handle)))

  static readonly layer = Sqlite.serve.pipe(Layer.provide(Sqlite.layerNoDeps))
}
