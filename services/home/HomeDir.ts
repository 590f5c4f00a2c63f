/**
 * The home directory made ready: created if missing, a directory, writable.
 *
 * Not `fs.mkdirSync(dir, { recursive: true })`: Node's recursive mkdir spins forever
 * (in C++, on the main thread, so SIGTERM's handler never runs) when a parent exists but
 * refuses children with ENOENT, as procfs does: `mkdir /proc/nope` is ENOENT, `mkdir
 * /proc` is EEXIST, and it retries the child (Node 24.21; the same loop was fixed in
 * bun's mkdir, oven-sh/bun#40600). Here each missing directory is created once, top
 * down, and the first refusal is final.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"

export const HomeProblem = Schema.Literals(["NotADirectory", "CannotCreate", "NotWritable"])
export type HomeProblem = typeof HomeProblem.Type

export class HomeUnusable extends Schema.TaggedError<HomeUnusable>()("HomeUnusable", {
  /** The home as given (resolved). */
  home: Schema.String,
  problem: HomeProblem,
  /** The path the problem is at: the home, or the component of it that failed. */
  at: Schema.String,
  /** The errno code (`ENOENT`, `EACCES`, `EROFS` ...), when the system gave one. */
  code: Schema.optional(Schema.String)
}) {}

const codeOf = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code

type Step = { readonly _tag: "Done" } | { readonly _tag: "Refused"; readonly problem: HomeProblem; readonly at: string; readonly code?: string | undefined }

const refused = (problem: HomeProblem, at: string, code?: string): Step => ({ _tag: "Refused", problem, at, code })

/** Plain synchronous steps: find the deepest existing ancestor, then create each level once. */
const makeDirs = (dir: string): Step => {
  const missing: Array<string> = []
  let at = dir
  for (;;) {
    let stat: fs.Stats | undefined
    try {
      stat = fs.statSync(at)
    } catch (e) {
      const code = codeOf(e)
      // ENOTDIR: a file further up; climbing on finds it and names it.
      if (code !== "ENOENT" && code !== "ENOTDIR") return refused("CannotCreate", at, code)
    }
    if (stat !== undefined) {
      if (!stat.isDirectory()) return refused("NotADirectory", at)
      break
    }
    missing.push(at)
    const parent = path.dirname(at)
    if (parent === at) return refused("CannotCreate", at, "ENOENT")
    at = parent
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d)
    } catch (e) {
      const code = codeOf(e)
      // Someone else made it meanwhile: fine if it is a directory (a dangling symlink is not).
      const isDir = code === "EEXIST" && (() => {
        try {
          return fs.statSync(d).isDirectory()
        } catch {
          return false
        }
      })()
      if (!isDir) return refused(code === "ENOTDIR" ? "NotADirectory" : "CannotCreate", d, code)
    }
  }
  return { _tag: "Done" }
}

/** Writes, syncs and removes a probe file: `access(W_OK)` says yes to root on a 0555 dir. */
const probeWrite = (dir: string): Step => {
  const probe = path.join(dir, `.write-probe-${process.pid}`)
  try {
    const fd = fs.openSync(probe, "wx")
    try {
      fs.writeSync(fd, "ok")
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.unlinkSync(probe)
    return { _tag: "Done" }
  } catch (e) {
    try {
      fs.unlinkSync(probe)
    } catch {
      // never created
    }
    return refused("NotWritable", dir, codeOf(e))
  }
}

/**
 * Creates `dir` (and missing parents) if needed and checks it is a writable directory;
 * its real path. Fails with `HomeUnusable` at once, whatever the file system does.
 */
export const prepareHomeDir = Effect.fn("HomeDir.prepare")(function*(dir: string) {
  const home = path.resolve(dir)
  const step = yield* Effect.sync(() => {
    const made = makeDirs(home)
    return made._tag === "Done" ? probeWrite(home) : made
  })
  if (step._tag === "Refused") {
    return yield* new HomeUnusable({ home, problem: step.problem, at: step.at, ...(step.code === undefined ? {} : { code: step.code }) })
  }
  return yield* Effect.try({
    try: () => fs.realpathSync(home),
    catch: (e) => new HomeUnusable({ home, problem: "CannotCreate", at: home, ...(codeOf(e) === undefined ? {} : { code: codeOf(e)! }) })
  })
})

const explain: Record<string, string> = {
  ENOENT: "the parent does not take new directories",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  ENOTDIR: "a part of the path is a file",
  ELOOP: "too many symbolic links",
  ENAMETOOLONG: "the name is too long",
  EEXIST: "something that is not a directory is in the way"
}

export const describeHomeUnusable = (e: HomeUnusable): string => {
  const why = e.code === undefined ? "" : ` (${e.code}: ${explain[e.code] ?? "refused"})`
  const where = e.at === e.home ? "" : ` at ${e.at}`
  switch (e.problem) {
    case "NotADirectory":
      return `home ${e.home} is not a directory${where === "" ? "" : `: ${e.at} is a file`}; give --home a directory (it is created if missing)`
    case "CannotCreate":
      return `cannot create home ${e.home}${where}${why}; give --home a directory you can create`
    case "NotWritable":
      return `home ${e.home} is not writable${why}; give --home a directory you can write`
  }
}
