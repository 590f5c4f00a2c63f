/**
 * A closed LMDB file passes the open check even after a transaction that freed many
 * pages: LMDB never writes pages freed in the transaction that allocated them, so the
 * running file can end before its last used page (a shutdown forgetting 500 processes in
 * one commit left it so, and the next boot refused the home as "cut short"); closing
 * through `Lmdb` extends it to that page.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as lmdb from "lmdb"
import * as fs from "node:fs"
import * as path from "node:path"
import { Lmdb } from "../../services/lmdb/Lmdb.ts"
import { checkLmdbFile, extendToLastPage } from "../../services/lmdb/LmdbCheck.ts"
import { tempDirs } from "../support/TempDirs.ts"

const dirs = tempDirs()
afterAll(dirs.removeAll)

/** Records written one transaction each (as processes are saved), then all deleted in one. */
const churn = async (db: lmdb.Database<string, lmdb.Key>) => {
  for (let i = 0; i < 200; i++) await db.put(`k${i}`, "x".repeat(200))
  await Promise.all(Array.from({ length: 200 }, (_, i) => db.remove(`k${i}`)))
}

describe("LMDB files at close", () => {
  it("a file LMDB leaves shorter than its last used page opens (and is not damage); Lmdb's close extends it", async () => {
    const dir = path.join(dirs.mkdir("kinode-ts-lmdb-"), "lmdb")
    const file = path.join(dir, "data.mdb")
    // Closed by lmdb-js alone: the file ends before the last used page...
    const env = lmdb.open({ path: dir, maxDbs: 16, mapSize: 2 ** 34, compression: false })
    await churn(env.openDB<string, lmdb.Key>({ name: "t", encoding: "string" }))
    await env.close()
    const short = await Effect.runPromise(Effect.result(checkLmdbFile(file)))
    assert.isTrue(short._tag === "Failure" && short.failure._tag === "LmdbDamaged" && short.failure.damage === "Truncated", JSON.stringify(short))
    // ...which LMDB opens, reads and writes without harm: the missing pages are free ones.
    const again = lmdb.open({ path: dir, maxDbs: 16, compression: false })
    const db = again.openDB<string, lmdb.Key>({ name: "t", encoding: "string" })
    await db.put("kept", "yes")
    assert.strictEqual(db.get("kept"), "yes")
    await again.close()
    extendToLastPage(file)
    assert.strictEqual(await Effect.runPromise(checkLmdbFile(file)), "Ok")

    // Through the node's Lmdb layer the file is extended at close.
    await Effect.runPromise(Effect.scoped(Effect.provide(
      Effect.flatMap(Lmdb, (l) => Effect.promise(() => churn(l.open<string>("t", "string")))),
      Layer.fresh(Lmdb.at(dir))
    )))
    assert.strictEqual(await Effect.runPromise(checkLmdbFile(file)), "Ok")
    const reopened = lmdb.open({ path: dir, maxDbs: 16, compression: false })
    assert.strictEqual(reopened.openDB<string, lmdb.Key>({ name: "t", encoding: "string" }).get("kept"), "yes")
    await reopened.close()
  })

  it("a file really cut short is still refused", async () => {
    const dir = path.join(dirs.mkdir("kinode-ts-lmdb-"), "lmdb")
    const file = path.join(dir, "data.mdb")
    await Effect.runPromise(Effect.scoped(Effect.provide(
      Effect.flatMap(Lmdb, (l) => Effect.promise(async () => {
        const db = l.open<string>("t", "string")
        for (let i = 0; i < 3000; i++) void db.put(`k${i}`, "y".repeat(200))
        await db.flushed
      })),
      Layer.fresh(Lmdb.at(dir))
    )))
    const size = fs.statSync(file).size
    fs.truncateSync(file, Math.floor(size / 2 / 4096) * 4096 + 100)
    const cut = await Effect.runPromise(Effect.result(checkLmdbFile(file)))
    assert.isTrue(cut._tag === "Failure" && cut.failure._tag === "LmdbDamaged" && cut.failure.damage === "Truncated", JSON.stringify(cut))
  })
})
