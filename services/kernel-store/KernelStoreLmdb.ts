/**
 * The kernel's process map in LMDB (sub-database `kernel`), one JSON record per process.
 * `save` resolves only after LMDB committed and synced the write.
 */
import { Effect, Layer, Result } from "effect"
import { decodeRecord, encodeRecord, KernelStore, KernelStoreError, type ProcessRecord } from "../../src/KernelStore.ts"
import { Lmdb } from "../lmdb/Lmdb.ts"

export const KernelStoreLmdb = Layer.effect(
  KernelStore,
  Effect.gen(function*() {
    const lmdb = yield* Lmdb
    const db = lmdb.open<string>("kernel", "string")
    return KernelStore.of({
      load: Effect.try({
        try: () => {
          const records: Array<ProcessRecord> = []
          const corrupt: Array<string> = []
          for (const { key, value } of db.getRange()) {
            const r = decodeRecord(String(key), typeof value === "string" ? value : "")
            if (Result.isSuccess(r)) records.push(r.success)
            else corrupt.push(r.failure)
          }
          return { records, corrupt }
        },
        catch: (cause) => new KernelStoreError({ action: "load", cause })
      }),
      save: (record) =>
        Effect.tryPromise({
          try: () => db.put(record.id, encodeRecord(record)),
          catch: (cause) => new KernelStoreError({ action: `save ${record.id}`, cause })
        }).pipe(Effect.asVoid),
      remove: (id) =>
        Effect.tryPromise({
          try: () => db.remove(id),
          catch: (cause) => new KernelStoreError({ action: `remove ${id}`, cause })
        }).pipe(Effect.asVoid)
    })
  })
)
