/**
 * `kv:distro:sys`: per-package key-value databases in the node's LMDB environment.
 *
 * Storage layout: one LMDB sub-database `kv` holds every kv database's entries under
 * the key `<pkg>:<pub>/<db> NUL <key bytes>`, and `kv-dbs` records which databases
 * exist. One sub-db with prefixed keys rather than one named sub-db per kv database
 * because LMDB's named databases are a fixed, small, node-wide budget (`maxDbs`,
 * shared with the kernel), and because `RemoveDb` then becomes an ordinary range delete
 * in one durable transaction together with its registry entry. The prefix cannot
 * collide: package ids are kimap-safe (no `/` or NUL) and db names exclude `/` and NUL.
 *
 * Durability: a write is acknowledged only after its LMDB promise resolved (the commit
 * was synced); concurrent writers share one commit (group commit), so the server issues
 * each request's put synchronously in arrival order and awaits the commits concurrently.
 *
 * Deliberate departures from Kinode 1.0 ([quirk]s of kinode-semantics §6.3):
 * - `RemoveDb` removes the database for good; later requests answer `NoDb` until `Open`.
 * - Requests from `kernel:distro:sys` skip cap checks (the kernel is root anyway).
 */
import { Context, Effect, Layer, Result, Schema } from "effect"
import { randomBytes } from "node:crypto"
import { Address, KERNEL, pid } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import type { LazyLoadBlob } from "../../src/Message.ts"
import { response } from "../../src/Message.ts"
import { Runtime, wantsReply } from "../../src/Runtime.ts"
import type { Database } from "../lmdb/Lmdb.ts"
import { Lmdb } from "../lmdb/Lmdb.ts"
import { capParams, KvFailure, KvRequest } from "./Protocol.ts"
import { parseBody, plainBytes } from "./Wire.ts"
import type { KvErrorBody, KvResponse, PackageIdJson } from "./Protocol.ts"

/** What the server sends back for one request. */
export interface Reply {
  readonly body: Uint8Array
  readonly blob?: LazyLoadBlob | undefined
}

/** LMDB's largest key (lmdb-js default page size); longer keys are refused up front. */
export const MAX_LMDB_KEY = 1978
/** Open transactions across all databases; beyond it `BeginTx` is refused, not buffered forever. */
export const MAX_OPEN_TXS = 10_000
/** Requests being served at once; the mailbox holds the rest (backpressure). */
const MAX_IN_FLIGHT = 4096

const kimapName = /^[a-z0-9-]+$/
const kimapNode = /^[a-z0-9.-]+$/

const fail = (error: KvErrorBody) => Effect.fail(new KvFailure({ error }))
const malformed = fail("MalformedRequest")
const decodeRequest = Schema.decodeUnknownResult(KvRequest, { onExcessProperty: "error" })

/** A db name is a single path component in Kinode; refuse anything that is not. */
export const validDbName = (db: string): boolean =>
  db.length > 0 && Buffer.byteLength(db) <= 255 && db !== "." && db !== ".." && !/[/\\\0]/.test(db)

const validPackage = (p: PackageIdJson): boolean => kimapName.test(p.package_name) && kimapNode.test(p.publisher_node)

/** A random u64, as Kinode's `rand::random()` tx ids. */
export const randomU64 = (): bigint => randomBytes(8).readBigUInt64BE()

interface Tx {
  readonly dbKey: string
  readonly ops: Array<{ readonly key: Buffer; readonly value: Buffer | undefined }>
}

const ok: KvResponse = "Ok"
const OK_BYTES = plainBytes(ok)

export class Kv extends Context.Service<Kv, {
  /** Serves one request from `source`; every outcome is a reply body (errors are `{"Err":…}`). */
  readonly handle: (source: Address, body: Uint8Array, blob: LazyLoadBlob | undefined) => Effect.Effect<Reply>
}>()("services/kv/Kv") {
  /** The handler over the node's LMDB and the kernel's capability store. */
  static readonly layerNoDeps = Layer.effect(
    Kv,
    Effect.gen(function*() {
      const runtime = yield* Runtime
      const lmdb = yield* Lmdb
      const entries: Database<Buffer> = lmdb.open<Buffer>("kv", "binary")
      const registry: Database<boolean> = lmdb.open<boolean>("kv-dbs", "msgpack")
      const our = new Address({ node: runtime.node, process: pid("kv:distro:sys") }, { disableChecks: true })
      const txs = new Map<bigint, Tx>()

      const dbKeyOf = (p: PackageIdJson, db: string) => `${p.package_name}:${p.publisher_node}/${db}`
      const prefixOf = (dbKey: string) => Buffer.concat([Buffer.from(dbKey), Buffer.from([0])])
      const entryKey = (prefix: Buffer, key: Uint8Array) =>
        key.byteLength + prefix.byteLength > MAX_LMDB_KEY ? undefined : Buffer.concat([prefix, key])

      const lmdbError = (action: string) => (cause: unknown) =>
        new KvFailure({ error: { RocksDBError: `${action}: ${cause instanceof Error ? cause.message : String(cause)}` } })

      const has = (source: Address, kind: "read" | "write", p: PackageIdJson, db: string) =>
        runtime.hasCapability(source.process, { issuer: our, params: capParams(kind, p, db) })

      const serve = Effect.fnUntraced(function*(source: Address, req: KvRequest, blob: LazyLoadBlob | undefined) {
        const p = req.package_id
        if (!validPackage(p) || !validDbName(req.db)) return yield* malformed
        const isKernel = source.process.toString() === KERNEL
        const action = req.action
        const dbKey = dbKeyOf(p, req.db)
        const prefix = prefixOf(dbKey)
        const samePackage = source.process.packageName === p.package_name &&
          source.process.publisherNode === p.publisher_node

        if (action === "Open" || action === "RemoveDb") {
          if (!isKernel && !samePackage) return yield* fail("MismatchingPackageId")
          if (action === "Open") {
            if (registry.get(dbKey) !== true) {
              yield* Effect.tryPromise({ try: () => registry.put(dbKey, true), catch: lmdbError("open") })
            }
            if (!isKernel) {
              yield* runtime.grantCapabilities(source.process, [
                { issuer: our, params: capParams("read", p, req.db) },
                { issuer: our, params: capParams("write", p, req.db) }
              ])
            }
            return { body: OK_BYTES }
          }
          // RemoveDb: registry entry and every entry go in one durable transaction.
          yield* Effect.tryPromise({
            try: () =>
              entries.transaction(() => {
                for (const key of entries.getKeys({ start: prefix, end: Buffer.concat([prefix.subarray(0, -1), Buffer.from([1])]) })) {
                  entries.remove(key)
                }
                registry.remove(dbKey)
              }),
            catch: lmdbError("remove db")
          })
          for (const [id, tx] of txs) if (tx.dbKey === dbKey) txs.delete(id)
          return { body: OK_BYTES }
        }

        const needs = typeof action === "object" && "Get" in action ? "read" : "write"
        if (!isKernel && !has(source, needs, p, req.db)) {
          return yield* fail(needs === "read" ? "NoReadCap" : "NoWriteCap")
        }
        if (registry.get(dbKey) !== true) return yield* fail({ NoDb: [p, req.db] })

        if (action === "BeginTx") {
          if (txs.size >= MAX_OPEN_TXS) return yield* fail({ RocksDBError: "too many open transactions" })
          let id = randomU64()
          while (txs.has(id)) id = randomU64()
          txs.set(id, { dbKey, ops: [] })
          const body: KvResponse = { BeginTx: { tx_id: id } }
          return { body: Json.toBytes(body) }
        }
        if ("Get" in action) {
          const key = entryKey(prefix, action.Get)
          if (key === undefined) return yield* malformed
          const value = entries.get(key)
          if (value === undefined) return yield* fail("KeyNotFound")
          return {
            body: plainBytes({ Get: Array.from(action.Get) }),
            blob: { mime: "application/octet-stream", bytes: value }
          }
        }
        if ("Commit" in action) {
          const id = action.Commit.tx_id
          const tx = txs.get(id)
          if (tx === undefined || tx.dbKey !== dbKey) return yield* fail({ NoTx: id })
          txs.delete(id)
          yield* Effect.tryPromise({
            try: () =>
              entries.transaction(() => {
                for (const op of tx.ops) {
                  if (op.value === undefined) entries.remove(op.key)
                  else entries.put(op.key, op.value)
                }
              }),
            catch: lmdbError("commit")
          })
          return { body: OK_BYTES }
        }
        const isSet = "Set" in action
        const { key: rawKey, tx_id } = isSet ? action.Set : action.Delete
        const key = entryKey(prefix, rawKey)
        if (key === undefined) return yield* malformed
        let value: Buffer | undefined
        if (isSet) {
          if (blob === undefined) return yield* malformed
          value = Buffer.from(blob.bytes.buffer, blob.bytes.byteOffset, blob.bytes.byteLength)
        }
        if (tx_id !== undefined && tx_id !== null) {
          const tx = txs.get(tx_id)
          if (tx === undefined || tx.dbKey !== dbKey) return yield* fail({ NoTx: tx_id })
          tx.ops.push({ key, value })
          return { body: OK_BYTES }
        }
        // Issued now (in arrival order), acknowledged once its commit is synced.
        const written = value === undefined ? entries.remove(key) : entries.put(key, value)
        yield* Effect.tryPromise({ try: () => written, catch: lmdbError(isSet ? "set" : "delete") })
        return { body: OK_BYTES }
      })

      const handle = (source: Address, body: Uint8Array, blob: LazyLoadBlob | undefined): Effect.Effect<Reply> => {
        const json = parseBody(body)
        if (Result.isFailure(json)) return Effect.succeed(errorReply("MalformedRequest"))
        const req = decodeRequest(json.success)
        if (Result.isFailure(req)) return Effect.succeed(errorReply("MalformedRequest"))
        return serve(source, req.success, blob).pipe(
          Effect.catch((e: KvFailure) => Effect.succeed(errorReply(e.error)))
        )
      }
      return Kv.of({ handle })
    })
  )

  /** Registers `kv:distro:sys` with the kernel and serves its mailbox. */
  static readonly serve = Layer.effectDiscard(Effect.gen(function*() {
    const runtime = yield* Runtime
    const kv = yield* Kv
    yield* runtime.serve("kv", { public: false }, (ctx) =>
      Effect.gen(function*() {
        let inFlight = 0
        const waiters: Array<() => void> = []
        const done = Effect.sync(() => {
          inFlight--
          waiters.shift()?.()
        })
        while (true) {
          const batch = yield* ctx.takeBatch
          for (const km of batch) {
            // Kinode's kv serves only local requests; responses to it are not expected.
            if (km.message._tag !== "Request" || km.source.node !== runtime.node) continue
            if (inFlight >= MAX_IN_FLIGHT) {
              yield* Effect.callback<void>((resume) => {
                waiters.push(() => resume(Effect.void))
              })
            }
            inFlight++
            // Started immediately so each put is issued in arrival order; the commit
            // wait runs concurrently with later requests (group commit).
            yield* Effect.forkChild(
              kv.handle(km.source, km.message.body, km.blob).pipe(
                Effect.tap((r) =>
                  Effect.sync(() => {
                    // Kinode's kv answers errors even when no response was expected; a
                    // process that expected none drops it, so answer only when asked.
                    if (wantsReply(km)) ctx.reply(km, response({ body: r.body }), r.blob)
                  })
                ),
                Effect.ensuring(done)
              ),
              { startImmediately: true }
            )
          }
        }
      }))
  }))

  /** The running service: handler plus registration; needs the kernel and LMDB. */
  static readonly layer = Kv.serve.pipe(Layer.provide(Kv.layerNoDeps))
}

const errorReply = (error: KvErrorBody): Reply => ({ body: Json.toBytes({ Err: error }) })
