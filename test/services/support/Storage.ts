/** Test layers: the storage services on real LMDB/SQLite/files in a scoped temp dir. */
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Home } from "../../../src/Home.ts"
import { Lmdb } from "../../../services/lmdb/Lmdb.ts"
import type { ModuleHost } from "../../../src/ModuleHost.ts"
import { TestRuntime } from "./TestRuntime.ts"

/** A fresh home directory, removed when the layer's scope closes. */
export const TempHome = Layer.effect(
  Home,
  Effect.acquireRelease(
    Effect.sync(() => ({ path: fs.mkdtempSync(path.join(os.tmpdir(), "kinode-storage-")) })),
    (home) => Effect.sync(() => fs.rmSync(home.path, { recursive: true, force: true }))
  )
)

/** `Home` at an existing directory (crash tests reopen the same one). */
export const HomeAt = (dir: string) => Layer.succeed(Home, { path: dir })

/** Runtime + LMDB + Home for the services under test; exposes all three plus the test client. */
export const base = (home: Layer.Layer<Home>) =>
  Layer.mergeAll(TestRuntime.layer, Lmdb.layer).pipe(Layer.provideMerge(home))

/** Builds the given service layers over a temp home; the test client stays visible. */
export const withServices = <A, E>(
  services: Layer.Layer<A, E, ModuleHost | Lmdb | Home>,
  home: Layer.Layer<Home> = TempHome
) =>
  services.pipe(Layer.provideMerge(base(home)))
