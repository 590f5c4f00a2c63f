/**
 * One node per home: `<home>/.lock` holds the running node's pid.
 *
 * LMDB lets several processes share an environment, so without this two nodes on one
 * home both run, each writing over the other's process map. The lock is made whole in
 * one step (written to a file of its own, then hard-linked to `.lock`: `link` fails if
 * `.lock` exists). A lock whose process is gone (SIGKILL, power loss) is stale: it is
 * replaced with `rename` and read back, and the node says whose lock it took over. On
 * Linux the lock also records the process's start time (`/proc/<pid>/stat`), so a pid
 * reused by another program after a reboot does not hold the home.
 *
 * Left: two nodes taking over the same stale lock within the same few microseconds could
 * both read back their own pid; a home on a network file system shared by two machines
 * is not protected (a pid means nothing on the other machine).
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"

export class HomeInUse extends Schema.TaggedError<HomeInUse>()("HomeInUse", {
  home: Schema.String,
  /** The pid of the node that holds the home. */
  pid: Schema.Number
}) {}

export class HomeLockFailed extends Schema.TaggedError<HomeLockFailed>()("HomeLockFailed", {
  home: Schema.String,
  cause: Schema.Defect()
}) {}

export const lockFile = (home: string) => path.join(home, ".lock")

interface Holder {
  readonly pid: number
  /** Linux: the process's start time in clock ticks since boot; undefined elsewhere. */
  readonly start: string | undefined
}

/** Field 22 of `/proc/<pid>/stat` (after the parenthesised command name, which may hold spaces). */
const startTimeOf = (pid: number): string | undefined => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]
  } catch {
    return undefined
  }
}

const encode = (h: Holder) => `${h.pid} ${h.start ?? "-"}\n`

const decode = (text: string): Holder | undefined => {
  const m = /^(\d+) (\d+|-)\n?$/.exec(text)
  if (m === null) return undefined
  return { pid: Number(m[1]), start: m[2] === "-" ? undefined : m[2] }
}

const read = (file: string): Holder | undefined => {
  try {
    return decode(fs.readFileSync(file, "utf8"))
  } catch {
    return undefined
  }
}

/** Whether the holder's process still runs (the same process, where the start time tells). */
const isAlive = (h: Holder): boolean => {
  try {
    process.kill(h.pid, 0)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false
  }
  if (h.start === undefined) return true
  const now = startTimeOf(h.pid)
  return now === undefined || now === h.start
}

const same = (a: Holder | undefined, b: Holder) => a !== undefined && a.pid === b.pid && a.start === b.start

type Taken = { readonly _tag: "Taken"; readonly tookOverFrom: number | undefined } | { readonly _tag: "InUse"; readonly pid: number }

/** Synchronous: the lock is taken before anything else touches the home. */
const take = (home: string, me: Holder): Taken => {
  const lock = lockFile(home)
  const mine = path.join(home, `.lock.${me.pid}`)
  fs.writeFileSync(mine, encode(me))
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        fs.linkSync(mine, lock)
        return { _tag: "Taken", tookOverFrom: undefined }
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
      }
      const holder = read(lock)
      if (same(holder, me)) return { _tag: "Taken", tookOverFrom: undefined }
      if (holder !== undefined && isAlive(holder)) return { _tag: "InUse", pid: holder.pid }
      // Stale (or not a lock at all: it is always written whole): replace it in one step, then make sure it is ours.
      fs.renameSync(mine, lock)
      const now = read(lock)
      if (same(now, me)) return { _tag: "Taken", tookOverFrom: holder?.pid }
      if (now !== undefined && isAlive(now)) return { _tag: "InUse", pid: now.pid }
      fs.writeFileSync(mine, encode(me))
    }
    throw new Error(`could not take ${lock}: it keeps changing`)
  } finally {
    fs.rmSync(mine, { force: true })
  }
}

/**
 * Takes `<home>/.lock` for this process for the life of the scope, or fails with
 * `HomeInUse` naming the pid of the node that holds it. Returns the pid of a dead node
 * whose lock it took over, if any.
 */
export const lockHome = Effect.fn("HomeLock.lock")(function*(home: string) {
  const me: Holder = { pid: process.pid, start: startTimeOf(process.pid) }
  const taken = yield* Effect.acquireRelease(
    Effect.try({ try: () => take(home, me), catch: (cause) => new HomeLockFailed({ home, cause }) }),
    (taken) =>
      taken._tag === "Taken"
        ? Effect.sync(() => {
          if (same(read(lockFile(home)), me)) fs.rmSync(lockFile(home), { force: true })
        })
        : Effect.void
  )
  if (taken._tag === "InUse") return yield* new HomeInUse({ home, pid: taken.pid })
  return { tookOverFrom: taken.tookOverFrom }
})

export const describeHomeInUse = (e: HomeInUse): string =>
  `home ${e.home} is in use by another node (pid ${e.pid}); stop it first, or give this node another --home ` +
  `(if pid ${e.pid} is no node, remove ${lockFile(e.home)})`
