/**
 * Whether a home can boot: its process map (`lmdb/data.mdb`) is checked before LMDB maps
 * it, and a home that holds a node's files but no process map is refused instead of
 * booting as a brand-new node over the old one's files (its processes, capabilities,
 * state and kv silently gone).
 *
 * A fresh home gets its process map first, before login writes the keyfile, so a first
 * boot cut short (no chain, port taken) never leaves data without a process map.
 */
import { Effect, Layer, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { checkLmdbFile, Lmdb } from "../lmdb/index.ts"

export class HomeWithoutProcessMap extends Schema.TaggedError<HomeWithoutProcessMap>()("HomeWithoutProcessMap", {
  home: Schema.String,
  /** The node data found, as home-relative names (`.keys`, `vfs/` ...). */
  found: Schema.Array(Schema.String),
  /** `lmdb/data.mdb` is missing, or empty (zero bytes). */
  processMap: Schema.Literals(["Missing", "Empty"])
}) {}

/**
 * `New`: a fresh home; `Existing`: its process map checked; `NewProcessMap`: an empty
 * process map made beside what was there (`found`).
 */
export type HomeState = "New" | "Existing" | "NewProcessMap"

export const processMapFile = (home: string) => path.join(home, "lmdb", "data.mdb")

/** What in `home` only a node that ran there leaves: the keyfile, files in vfs or sqlite. */
const nodeDataIn = (home: string): Array<string> => {
  const found: Array<string> = []
  if (fs.existsSync(path.join(home, ".keys"))) found.push(".keys")
  for (const dir of ["vfs", "sqlite"]) {
    try {
      if (fs.readdirSync(path.join(home, dir)).length > 0) found.push(`${dir}/`)
    } catch {
      // absent: nothing there
    }
  }
  return found
}

/**
 * Checks `home`'s process map (fails with `LmdbDamaged` if LMDB could fault on it) and
 * refuses files a node stored (vfs, sqlite) without one (`HomeWithoutProcessMap`) unless
 * `newProcessMap`. A keyfile alone is not refused: it is how a node is restored from its
 * keyfile, and nothing of it is lost. A home without a process map gets an empty one now.
 */
export const checkHomeState = Effect.fn("HomeState.check")(function*(home: string, options: { readonly newProcessMap: boolean }) {
  const map = yield* checkLmdbFile(processMapFile(home))
  if (map === "Ok") return { state: "Existing" as HomeState, found: [] as ReadonlyArray<string> }
  const found = yield* Effect.sync(() => nodeDataIn(home))
  const stored = found.filter((f) => f !== ".keys")
  if (stored.length > 0 && !options.newProcessMap) return yield* new HomeWithoutProcessMap({ home, found, processMap: map })
  yield* Effect.scoped(Layer.build(Lmdb.at(path.dirname(processMapFile(home)))))
  return { state: (found.length > 0 ? "NewProcessMap" : "New") as HomeState, found: found as ReadonlyArray<string> }
})

export const describeHomeWithoutProcessMap = (e: HomeWithoutProcessMap): string =>
  `this home has data but no process map: ${e.home} holds ${e.found.join(", ")} but lmdb/data.mdb is ` +
  `${e.processMap === "Missing" ? "missing" : "empty"}, so its processes, capabilities, state and kv are gone. ` +
  `Restore ${path.join(e.home, "lmdb")} from a backup, or boot with --new-process-map to keep the keyfile and files ` +
  "and start with no processes (bundled apps are installed again)"
