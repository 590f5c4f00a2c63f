/**
 * The node's home directory made safe to boot: created and writable, locked to one node,
 * its process map checked before LMDB maps it. `openHome` does all three, in that order.
 */
import { Effect } from "effect"
import { describeLmdbDamage, type LmdbDamaged, type LmdbUnreadable } from "../lmdb/index.ts"
import { describeHomeUnusable, type HomeUnusable, prepareHomeDir } from "./HomeDir.ts"
import { describeHomeInUse, type HomeInUse, type HomeLockFailed, lockHome } from "./HomeLock.ts"
import { checkHomeState, describeHomeWithoutProcessMap, type HomeWithoutProcessMap } from "./HomeState.ts"

export { describeHomeUnusable, HomeProblem, HomeUnusable, prepareHomeDir } from "./HomeDir.ts"
export { describeHomeInUse, HomeInUse, HomeLockFailed, lockFile, lockHome } from "./HomeLock.ts"
export { checkHomeState, describeHomeWithoutProcessMap, type HomeState, HomeWithoutProcessMap, processMapFile } from "./HomeState.ts"

/**
 * Prepares `dir` (`HomeUnusable`), locks it for the life of the scope (`HomeInUse`) and
 * checks its process map (`LmdbDamaged`, `HomeWithoutProcessMap`): the home's real path,
 * the pid of a dead node whose lock was taken over, the home's state and, with
 * `NewProcessMap`, what was found beside the new process map.
 */
export const openHome = Effect.fn("Home.open")(function*(dir: string, options: { readonly newProcessMap: boolean }) {
  const home = yield* prepareHomeDir(dir)
  const lock = yield* lockHome(home)
  const { found, state } = yield* checkHomeState(home, options)
  return { path: home, tookOverFrom: lock.tookOverFrom, state, found }
})

/** Every way `openHome` fails. */
export type HomeFailure = HomeUnusable | HomeInUse | HomeLockFailed | HomeWithoutProcessMap | LmdbDamaged | LmdbUnreadable

/** The one line for a home that cannot boot, or undefined if `e` is not about the home. */
export const describeHomeFailure = (e: unknown): string | undefined => {
  const tagged = e as { readonly _tag?: string }
  switch (tagged._tag) {
    case "HomeUnusable":
      return describeHomeUnusable(e as HomeUnusable)
    case "HomeInUse":
      return describeHomeInUse(e as HomeInUse)
    case "HomeLockFailed": {
      const f = e as HomeLockFailed
      return `cannot lock home ${f.home}: ${f.cause instanceof Error ? f.cause.message : String(f.cause)}`
    }
    case "HomeWithoutProcessMap":
      return describeHomeWithoutProcessMap(e as HomeWithoutProcessMap)
    case "LmdbDamaged": {
      const d = e as LmdbDamaged
      return `${describeLmdbDamage(d)}. The node did not open it (mapped, it would crash). Restore the lmdb directory ` +
        "from a backup, or move it aside and boot with --new-process-map to keep the keyfile and files and start with no processes"
    }
    case "LmdbUnreadable": {
      const u = e as LmdbUnreadable
      return `cannot read ${u.file}: ${u.cause instanceof Error ? u.cause.message : String(u.cause)}`
    }
    default:
      return undefined
  }
}

/** Exit codes: 7 home in use by another node, 8 home cannot be created, written or read, 9 home damaged. */
export const homeExitCode = (e: unknown): number | undefined => {
  switch ((e as { readonly _tag?: string })._tag) {
    case "HomeInUse":
      return 7
    case "HomeUnusable":
    case "HomeLockFailed":
    case "LmdbUnreadable":
      return 8
    case "HomeWithoutProcessMap":
    case "LmdbDamaged":
      return 9
    default:
      return undefined
  }
}
