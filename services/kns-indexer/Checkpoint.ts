/**
 * The indexer's checkpoint: `IndexerState.persisted()` (the state as of the last final
 * block) as msgpack bytes in the LMDB sub-database `kns-indexer`, one key per indexer.
 *
 * Loading decodes the bytes with a schema: anything unreadable (not msgpack, wrong shape,
 * another version, another chain or contract) is reported as `undefined` plus a reason,
 * and the caller re-indexes from its first block; it never fails the node.
 */
import { Effect, Schema } from "effect"

const identity = <A>(a: A): A => a
import { Packr } from "msgpackr"
import type { Database } from "../lmdb/Lmdb.ts"
import { Lmdb, LmdbError } from "../lmdb/Lmdb.ts"
import type { Persisted } from "./IndexerState.ts"

const KnsUpdateSchema = Schema.Struct({
  name: Schema.String,
  public_key: Schema.String,
  ips: Schema.Array(Schema.String),
  ports: Schema.Record(Schema.String, Schema.Number),
  routers: Schema.Array(Schema.String)
})

const NoteLogSchema = Schema.Struct({
  _tag: Schema.Literal("Note"),
  blockNumber: Schema.Number,
  logIndex: Schema.Number,
  blockHash: Schema.String,
  removed: Schema.optional(Schema.Boolean),
  parenthash: Schema.String,
  notehash: Schema.String,
  label: Schema.Uint8Array,
  data: Schema.Uint8Array
})

export const PersistedSchema = Schema.Struct({
  version: Schema.Literal(1),
  chainId: Schema.Number,
  contract: Schema.String,
  lastBlock: Schema.Number,
  names: Schema.Array(Schema.Tuple([Schema.String, Schema.String])),
  nodes: Schema.Array(KnsUpdateSchema),
  pending: Schema.Array(Schema.Struct({ log: NoteLogSchema, retries: Schema.Number }))
})

const decodePersisted = Schema.decodeUnknownExit(PersistedSchema)

// Records (not maps) and plain binary: what the schema above reads back.
const packr = new Packr({ useRecords: false, mapsAsObjects: true })

export type Loaded =
  | { readonly _tag: "Found"; readonly persisted: Persisted }
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Unusable"; readonly reason: string }

export interface CheckpointStore {
  readonly load: (expect: { readonly chainId: number; readonly contract: string }) => Effect.Effect<Loaded>
  readonly save: (p: Persisted) => Effect.Effect<void, LmdbError>
  readonly clear: Effect.Effect<void, LmdbError>
}

/** Encodes a checkpoint (exported for tests that corrupt or inspect one). */
export const encode = (p: Persisted): Buffer => packr.pack(p)

/** Decodes checkpoint bytes; `Unusable` with a reason for anything unexpected. */
export const decode = (
  bytes: Uint8Array,
  expect: { readonly chainId: number; readonly contract: string }
): Loaded => {
  let raw: unknown
  try {
    raw = packr.unpack(bytes)
  } catch (e) {
    return { _tag: "Unusable", reason: `not msgpack: ${e instanceof Error ? e.message : String(e)}` }
  }
  const exit = decodePersisted(raw)
  if (exit._tag === "Failure") return { _tag: "Unusable", reason: "not a version-1 indexer state" }
  const p = exit.value as Persisted
  if (p.chainId !== expect.chainId || p.contract !== expect.contract.toLowerCase()) {
    return { _tag: "Unusable", reason: `for chain ${p.chainId} contract ${p.contract}, not ${expect.chainId} ${expect.contract}` }
  }
  return { _tag: "Found", persisted: p }
}

/** The checkpoint of indexer `key` in the node's LMDB. */
export const lmdbCheckpoint = (key: string): Effect.Effect<CheckpointStore, never, Lmdb> =>
  Effect.gen(function*() {
    const lmdb = yield* Lmdb
    const db: Database<Buffer> = lmdb.open<Buffer>("kns-indexer", "binary")
    return identity<CheckpointStore>({
      load: (expect) =>
        Effect.sync((): Loaded => {
          let bytes: Buffer | undefined
          try {
            bytes = db.get(key)
          } catch (e) {
            return { _tag: "Unusable", reason: `unreadable: ${e instanceof Error ? e.message : String(e)}` }
          }
          return bytes === undefined ? { _tag: "Missing" } : decode(bytes, expect)
        }),
      save: (p) =>
        Effect.tryPromise({
          try: () => db.put(key, encode(p)),
          catch: (cause) => new LmdbError({ action: `save ${key} checkpoint`, cause })
        }).pipe(Effect.asVoid),
      clear: Effect.tryPromise({
        try: () => db.remove(key),
        catch: (cause) => new LmdbError({ action: `clear ${key} checkpoint`, cause })
      }).pipe(Effect.asVoid)
    })
  })

/** A checkpoint in memory (tests; a node without LMDB). */
export const memoryCheckpoint = (): CheckpointStore & { bytes: Uint8Array | undefined } => {
  const store = {
    bytes: undefined as Uint8Array | undefined,
    load: (expect: { readonly chainId: number; readonly contract: string }) =>
      Effect.sync((): Loaded => store.bytes === undefined ? { _tag: "Missing" } : decode(store.bytes, expect)),
    save: (p: Persisted) =>
      Effect.sync(() => {
        store.bytes = encode(p)
      }),
    clear: Effect.sync(() => {
      store.bytes = undefined
    })
  }
  return store
}
