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
 * Serving: each request is first *decided* synchronously (decode, cap check, read, or
 * the write to make). Plain `Set`/`Delete`s of one mailbox batch are then written in
 * one LMDB batch and all acknowledged once that commit is synced (group commit: one
 * fsync for the batch, and one promise instead of one per write). Rare requests that
 * must wait on their own (`Open`, `RemoveDb`, `Commit`) run in line. A process's
 * requests are answered in order, and a request never runs before the process's own
 * earlier writes are committed, so it always reads its own acknowledged writes.
 *
 * Deliberate departures from Kinode 1.0 ([quirk]s of kinode-semantics §6.3):
 * - `RemoveDb` removes the database for good; later requests answer `NoDb` until `Open`.
 * - Requests from `kernel:distro:sys` skip cap checks (the kernel is root anyway).
 */
import { Context, Effect, Layer, Result } from "effect"
import { randomBytes } from "node:crypto"
import { Address, KERNEL, pid } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import type { KernelMessage, LazyLoadBlob } from "../../src/Message.ts"
import { response } from "../../src/Message.ts"
import { ModuleHost, wantsReply } from "../../src/ModuleHost.ts"
import * as ServiceShell from "../../src/ServiceShell.ts"
import type { Reply } from "../../src/ServiceShell.ts"
import type { Database } from "../lmdb/Lmdb.ts"
import { Lmdb } from "../lmdb/Lmdb.ts"
import { capParams, KvRequest } from "./Protocol.ts"
import type { KvErrorBody, KvResponse, PackageIdJson } from "./Protocol.ts"
import { plainBytes } from "./Wire.ts"

/**
 * A request decided without waiting: answered now, a durable write to batch (answered
 * `"Ok"` once committed), or work that must wait on its own.
 */
export type Decision =
  | { readonly _tag: "Reply"; readonly reply: Reply }
  /** A read, run when it is this process's turn (after its own writes committed). */
  | { readonly _tag: "Read"; readonly read: () => Reply }
  | { readonly _tag: "Write"; readonly apply: () => void }
  | { readonly _tag: "Wait"; readonly effect: Effect.Effect<Reply> }

/** LMDB's largest key (lmdb-js default page size); longer keys are refused up front. */
export const MAX_LMDB_KEY = 1978
/** Open transactions across all databases; beyond it `BeginTx` is refused, not buffered forever. */
export const MAX_OPEN_TXS = 10_000

/** Package names: Kimap-safe, or legacy (`app_store`: installed packages from before Kimap, src/Ids.ts `checkLegacySafe`). */
const kimapName = /^[a-z0-9_-]+$/
const kimapNode = /^[a-z0-9.-]+$/

/** Unknown object keys are ignored, as serde does for structs. */
const decodeRequest = ServiceShell.decoder(KvRequest, (): KvErrorBody => "MalformedRequest")

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

const OK_BYTES = plainBytes("Ok" satisfies KvResponse)
const OK: Reply = { body: OK_BYTES }
const errorReply = (error: KvErrorBody): Reply => ServiceShell.errorReply(error)
const reply = (r: Reply): Decision => ({ _tag: "Reply", reply: r })
const refuse = (error: KvErrorBody): Decision => reply(errorReply(error))
const message = (cause: unknown) => cause instanceof Error ? cause.message : String(cause)

/**
 * The server loop runs `decide`/`read` in line; a storage exception there (a corrupt
 * page, an I/O error) must become the request's `RocksDBError`, not end the loop.
 */
const guarded = <D extends Decision>(f: () => D): D | Extract<Decision, { _tag: "Reply" }> => {
  try {
    return f()
  } catch (e) {
    return { _tag: "Reply", reply: errorReply({ RocksDBError: message(e) }) }
  }
}

export class Kv extends Context.Service<Kv, {
  /** Decides one request from `source` without waiting (see `Decision`). */
  readonly decide: (source: Address, body: Uint8Array, blob: LazyLoadBlob | undefined) => Decision
  /** Writes decided `Write`s in one LMDB batch; resolves once committed and synced. */
  readonly commitWrites: (writes: ReadonlyArray<() => void>) => Promise<boolean>
  /** Serves one request completely; every outcome is a reply body (errors are `{"Err":…}`). */
  readonly handle: (source: Address, body: Uint8Array, blob: LazyLoadBlob | undefined) => Effect.Effect<Reply>
}>()("services/kv/Kv") {
  /** The handler over the node's LMDB and the kernel's capability store. */
  static readonly layerNoDeps = Layer.effect(
    Kv,
    Effect.gen(function*() {
      const host = yield* ModuleHost
      const lmdb = yield* Lmdb
      const entries: Database<Buffer> = lmdb.open<Buffer>("kv", "binary")
      const registry: Database<boolean> = lmdb.open<boolean>("kv-dbs", "msgpack")
      const our = new Address({ node: host.node, process: pid("kv:distro:sys") }, { disableChecks: true })
      const txs = new Map<bigint, Tx>()

      // The registry is small and read on every request: mirrored in memory, written through.
      const existing = new Set<string>()
      for (const { key, value } of registry.getRange()) if (value === true) existing.add(String(key))
      // Per-db strings and prefixes, built once (bounded: dropped wholesale when large).
      const perDb = new Map<string, { readonly prefix: Buffer; readonly read: string; readonly write: string }>()
      const dbInfo = (p: PackageIdJson, db: string, dbKey: string) => {
        let info = perDb.get(dbKey)
        if (info === undefined) {
          if (perDb.size >= 10_000) perDb.clear()
          info = {
            prefix: Buffer.concat([Buffer.from(dbKey), Buffer.from([0])]),
            read: capParams("read", p, db),
            write: capParams("write", p, db)
          }
          perDb.set(dbKey, info)
        }
        return info
      }
      const entryKey = (prefix: Buffer, key: Uint8Array) =>
        key.byteLength + prefix.byteLength > MAX_LMDB_KEY ? undefined : Buffer.concat([prefix, key])
      const rocks = (action: string, cause: unknown) => errorReply({ RocksDBError: `${action}: ${message(cause)}` })


      const commitWrites = (writes: ReadonlyArray<() => void>) =>
        entries.batch(() => {
          for (const apply of writes) apply()
        })

      const open = (source: Address, isKernel: boolean, p: PackageIdJson, db: string, dbKey: string) =>
        Effect.gen(function*() {
          if (!existing.has(dbKey)) {
            const stored = yield* Effect.tryPromise(() => registry.put(dbKey, true)).pipe(Effect.result)
            if (Result.isFailure(stored)) return rocks("open", stored.failure.cause)
            existing.add(dbKey)
          }
          if (!isKernel) {
            yield* host.grantCapabilities(source.process, [
              { issuer: our, params: capParams("read", p, db) },
              { issuer: our, params: capParams("write", p, db) }
            ])
          }
          return OK
        })

      /** RemoveDb: registry entry and every entry go in one durable transaction. */
      const removeDb = (dbKey: string, prefix: Buffer) =>
        Effect.tryPromise(() =>
          entries.transaction(() => {
            const end = Buffer.concat([prefix.subarray(0, -1), Buffer.from([1])])
            for (const key of entries.getKeys({ start: prefix, end })) entries.remove(key)
            registry.remove(dbKey)
          })
        ).pipe(
          Effect.map(() => {
            existing.delete(dbKey)
            for (const [id, tx] of txs) if (tx.dbKey === dbKey) txs.delete(id)
            return OK
          }),
          Effect.catch((e) => Effect.succeed(rocks("remove db", e.cause)))
        )

      const commitTx = (tx: Tx) =>
        Effect.tryPromise(() =>
          entries.transaction(() => {
            for (const op of tx.ops) {
              if (op.value === undefined) entries.remove(op.key)
              else entries.put(op.key, op.value)
            }
          })
        ).pipe(
          Effect.as(OK),
          Effect.catch((e) => Effect.succeed(rocks("commit", e.cause)))
        )

      const decideRequest = (source: Address, req: KvRequest, blob: LazyLoadBlob | undefined): Decision => {
        const p = req.package_id
        if (!validPackage(p) || !validDbName(req.db)) return refuse("MalformedRequest")
        const isKernel = source.process.toString() === KERNEL
        const action = req.action
        const dbKey = `${p.package_name}:${p.publisher_node}/${req.db}`
        const info = dbInfo(p, req.db, dbKey)
        const prefix = info.prefix

        if (action === "Open" || action === "RemoveDb") {
          const samePackage = source.process.packageName === p.package_name &&
            source.process.publisherNode === p.publisher_node
          if (!isKernel && !samePackage) return refuse("MismatchingPackageId")
          return {
            _tag: "Wait",
            effect: action === "Open" ? open(source, isKernel, p, req.db, dbKey) : removeDb(dbKey, prefix)
          }
        }

        const needs = typeof action === "object" && "Get" in action ? "read" : "write"
        if (!isKernel && !host.hasCapability(source.process, { issuer: our, params: needs === "read" ? info.read : info.write })) {
          return refuse(needs === "read" ? "NoReadCap" : "NoWriteCap")
        }
        if (!existing.has(dbKey)) return refuse({ NoDb: [p, req.db] })

        if (action === "BeginTx") {
          if (txs.size >= MAX_OPEN_TXS) return refuse({ RocksDBError: "too many open transactions" })
          let id = randomU64()
          while (txs.has(id)) id = randomU64()
          txs.set(id, { dbKey, ops: [] })
          return reply({ body: Json.toBytes({ BeginTx: { tx_id: id } } satisfies KvResponse) })
        }
        if ("Get" in action) {
          const key = entryKey(prefix, action.Get)
          if (key === undefined) return refuse("MalformedRequest")
          const echoed = action.Get
          return {
            _tag: "Read",
            read: () => {
              const value = entries.get(key)
              if (value === undefined) return errorReply("KeyNotFound")
              return {
                body: plainBytes({ Get: Array.from(echoed) }),
                blob: { mime: "application/octet-stream", bytes: value }
              }
            }
          }
        }
        if ("Commit" in action) {
          const id = action.Commit.tx_id
          const tx = txs.get(id)
          if (tx === undefined || tx.dbKey !== dbKey) return refuse({ NoTx: id })
          txs.delete(id)
          return { _tag: "Wait", effect: commitTx(tx) }
        }
        const isSet = "Set" in action
        const { key: rawKey, tx_id } = isSet ? action.Set : action.Delete
        const key = entryKey(prefix, rawKey)
        if (key === undefined) return refuse("MalformedRequest")
        let value: Buffer | undefined
        if (isSet) {
          if (blob === undefined) return refuse("MalformedRequest")
          value = Buffer.from(blob.bytes.buffer, blob.bytes.byteOffset, blob.bytes.byteLength)
        }
        if (tx_id !== undefined && tx_id !== null) {
          const tx = txs.get(tx_id)
          if (tx === undefined || tx.dbKey !== dbKey) return refuse({ NoTx: tx_id })
          tx.ops.push({ key, value })
          return reply(OK)
        }
        const v = value
        return {
          _tag: "Write",
          apply: v === undefined ? () => void entries.remove(key) : () => void entries.put(key, v)
        }
      }

      const decide = (source: Address, body: Uint8Array, blob: LazyLoadBlob | undefined): Decision => {
        const req = decodeRequest(body)
        if (Result.isFailure(req)) return reply(req.failure)
        return decideRequest(source, req.success, blob)
      }

      const handle = (source: Address, body: Uint8Array, blob: LazyLoadBlob | undefined): Effect.Effect<Reply> => {
        const d = decide(source, body, blob)
        switch (d._tag) {
          case "Reply":
            return Effect.succeed(d.reply)
          case "Read":
            return Effect.sync(d.read)
          case "Wait":
            return d.effect
          case "Write":
            return Effect.tryPromise(() => commitWrites([d.apply])).pipe(
              Effect.as(OK),
              Effect.catch((e) => Effect.succeed(rocks("write", e.cause)))
            )
        }
      }
      return Kv.of({ decide, commitWrites, handle })
    })
  )

  /** Registers `kv:distro:sys` with the kernel and serves its mailbox with the group-commit loop. */
  static readonly serve = Layer.unwrap(Effect.map(Kv, (kv) =>
    ServiceShell.serveLayer("kv:distro:sys", { _tag: "custom", loop: (ctx, isLocalRequest) =>
      Effect.gen(function*() {
        const answer = (km: KernelMessage, r: Reply) => {
          if (wantsReply(km)) ctx.reply(km, response({ body: r.body }), r.blob)
        }
        /** Per source: the commit holding its latest unacknowledged writes. */
        const uncommitted = new Map<string, Promise<unknown>>()
        let segment: Array<{ readonly km: KernelMessage; readonly apply: () => void }> = []
        /** Sources with writes in `segment`. */
        const inSegment = new Set<string>()

        /**
         * Starts the commit of the current segment. Its writes are answered straight from
         * the commit's settlement (`ctx.reply` is synchronous), with no fiber per write;
         * `uncommitted` then holds the promise that settles once they were answered.
         */
        const flush = () => {
          if (segment.length === 0) return
          const writes = segment
          segment = []
          const answered: Promise<void> = kv.commitWrites(writes.map((w) => w.apply)).then(
            () => OK,
            (e: unknown) => errorReply({ RocksDBError: `write: ${message(e)}` })
          ).then((r) => {
            for (const w of writes) {
              const key = w.km.source.process.toString()
              if (uncommitted.get(key) === answered) uncommitted.delete(key)
              answer(w.km, r)
            }
          })
          for (const w of writes) uncommitted.set(w.km.source.process.toString(), answered)
        }

        while (true) {
          const batch = yield* ctx.takeBatch
          for (const km of batch) {
            // Kinode's kv serves only local requests; responses to it are not expected.
            if (!isLocalRequest(km)) continue
            const source = km.source.process.toString()
            const d = guarded(() => kv.decide(km.source, km.message.body, km.blob))
            if (d._tag === "Write") {
              // Writes of one process may share a commit: applied and answered in order.
              segment.push({ km, apply: d.apply })
              inSegment.add(source)
              continue
            }
            if (inSegment.has(source) || uncommitted.has(source)) {
              // Anything else waits until this process's earlier writes are committed and
              // answered, so it reads what it wrote and its answers stay in order.
              flush()
              inSegment.clear()
              const pending = uncommitted.get(source)
              if (pending !== undefined) yield* Effect.promise(() => pending)
            }
            if (d._tag === "Reply") answer(km, d.reply)
            else if (d._tag === "Read") {
              const r = guarded(() => reply(d.read()))
              if (r._tag === "Reply") answer(km, r.reply)
            }
            else {
              flush()
              inSegment.clear()
              answer(km, yield* d.effect)
            }
          }
          flush()
          inSegment.clear()
        }
      }) }, kv.handle)))

  /** The running service: handler plus registration; needs the kernel and LMDB. */
  static readonly layer = Kv.serve.pipe(Layer.provide(Kv.layerNoDeps))
}
