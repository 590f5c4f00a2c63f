/** The storage runtime modules: vfs, state, kv, sqlite, all over the node's home and LMDB. */
import { Layer } from "effect"
import { Kv } from "../services/kv/index.ts"
import { Sqlite } from "../services/sqlite/index.ts"
import { State } from "../services/state/index.ts"
import { Vfs } from "../services/vfs/index.ts"

export const StorageLive = Layer.mergeAll(Vfs.layer, State.layer, Kv.layer, Sqlite.layer)
