/**
 * VFS paths: `/<package>:<publisher>/<drive>/<rest>` resolved to a location under the
 * disk root that provably stays inside it.
 *
 * Normalisation is lexical (`.` dropped, `..` pops, and popping past the root is
 * refused), names with NUL or over 255 bytes and paths over 4096 bytes are refused, and
 * every existing component is `lstat`ed so a symlink anywhere on the way (say one
 * planted on disk by hand) is refused instead of followed. The vfs itself never creates
 * symlinks, so nothing a process can do plants one.
 */
import * as fs from "node:fs"
import * as path from "node:path"

export const MAX_PATH_BYTES = 4096
export const MAX_NAME_BYTES = 255

/** Package names: Kimap-safe, or legacy (`app_store`: installed packages from before Kimap, src/Ids.ts `checkLegacySafe`). */
const kimapName = /^[a-z0-9_-]+$/
const kimapNode = /^[a-z0-9.-]+$/

/** A request path inside the vfs. `segments` are relative to the disk root. */
export interface VfsPath {
  readonly segments: ReadonlyArray<string>
  /** `<package>:<publisher>`, or undefined for the root itself. */
  readonly pkg: { readonly packageName: string; readonly publisherNode: string } | undefined
  /** `/<package>:<publisher>/<drive>`, or undefined for the root / a bare package dir. */
  readonly drive: string | undefined
  /** Absolute location on disk. */
  readonly abs: string
}

export type PathProblem =
  | { readonly _tag: "Malformed" }
  | { readonly _tag: "Parse"; readonly error: string }

const malformed: PathProblem = { _tag: "Malformed" }
const parse = (error: string): PathProblem => ({ _tag: "Parse", error })

/** Lexically resolves `raw` under `root`; no disk access. */
export const resolve = (root: string, raw: string): VfsPath | PathProblem => {
  if (raw.includes("\0")) return parse("path contains a NUL byte")
  if (Buffer.byteLength(raw) > MAX_PATH_BYTES) return parse("path too long")
  const segments: Array<string> = []
  for (const s of raw.split("/")) {
    if (s === "" || s === ".") continue
    if (s === "..") {
      if (segments.length === 0) return malformed
      segments.pop()
      continue
    }
    if (Buffer.byteLength(s) > MAX_NAME_BYTES) return parse("file name too long")
    segments.push(s)
  }
  if (segments.length === 0) return { segments, pkg: undefined, drive: undefined, abs: root }
  const parts = segments[0]!.split(":")
  if (parts.length !== 2 || !kimapName.test(parts[0]!) || !kimapNode.test(parts[1]!)) return malformed
  const pkg = { packageName: parts[0]!, publisherNode: parts[1]! }
  const drive = segments.length >= 2 ? `/${segments[0]}/${segments[1]}` : undefined
  return { segments, pkg, drive, abs: path.join(root, ...segments) }
}

export const isProblem = (r: VfsPath | PathProblem): r is PathProblem => "_tag" in r

/** The first existing component of `p` that is a symlink, if any (root excluded). */
export const findSymlink = async (root: string, p: VfsPath): Promise<string | undefined> => {
  let at = root
  for (const s of p.segments) {
    at = path.join(at, s)
    let st: fs.Stats
    try {
      st = await fs.promises.lstat(at)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ENOTDIR") return undefined
      throw e
    }
    if (st.isSymbolicLink()) return "/" + path.relative(root, at)
  }
  return undefined
}
