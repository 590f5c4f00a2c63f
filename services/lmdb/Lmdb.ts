/**
 * The node's one LMDB environment, `<home>/lmdb`, opened for the life of the node.
 *
 * Durability: lmdb-js queues every `put`/`remove` into the next write transaction and
 * resolves its promise only after that transaction committed and was synced, so
 * awaiting the promise is "acknowledged = on disk", and concurrent writers share one
 * fsync (group commit). Never acknowledge a write before its promise resolves.
 */
import { Context, Effect, Layer, Schema } from "effect"
import * as lmdb from "lmdb"
import * as path from "node:path"
import { Home } from "../../src/Home.ts"
import { checkLmdbFile, extendToLastPage } from "./LmdbCheck.ts"

export class LmdbError extends Schema.TaggedError<LmdbError>()("LmdbError", {
  action: Schema.String,
  cause: Schema.Defect()
}) {}

export type Database<V = unknown> = lmdb.Database<V, lmdb.Key>

export class Lmdb extends Context.Service<Lmdb, {
  readonly root: lmdb.RootDatabase
  /** A named sub-database; `encoding: "binary"` stores Uint8Arrays as they are. */
  readonly open: <V>(name: string, encoding: "msgpack" | "binary" | "string") => Database<V>
}>()("services/lmdb/Lmdb") {
  /**
   * Opens `<dir>` as the environment; closed (after pending writes flush) when the scope
   * ends, and its file then made as long as its last used page (`extendToLastPage`). A
   * damaged `data.mdb` (cut short, header overwritten) is refused with `LmdbDamaged`
   * before LMDB maps it: mapped, it would crash the process (SIGBUS/SIGSEGV).
   */
  static readonly at = (dir: string) =>
    Layer.effect(
      Lmdb,
      Effect.gen(function*() {
        yield* checkLmdbFile(path.join(dir, "data.mdb"))
        const root = yield* Effect.acquireRelease(
          Effect.try({
            try: () => lmdb.open({ path: dir, maxDbs: 1024, mapSize: 2 ** 34, compression: false }),
            catch: (cause) => new LmdbError({ action: `open ${dir}`, cause })
          }),
          (env) => Effect.andThen(Effect.promise(() => env.close()), Effect.sync(() => extendToLastPage(path.join(dir, "data.mdb"))))
        )
        return Lmdb.of({
          root,
          open: <V>(name: string, encoding: "msgpack" | "binary" | "string") =>
            root.openDB<V, lmdb.Key>({ name, encoding, compression: false })
        })
      })
    )

  /** `<home>/lmdb`. */
  static readonly layer = Layer.unwrap(Effect.map(Home, (home) => Lmdb.at(path.join(home.path, "lmdb"))))
}
