/**
 * A port: whether a process may read a file of the vfs, by the capabilities it holds.
 * The kernel asks it before a spawn loads a component from a path (Kinode checks the
 * same through a vfs request); the rule itself is vfs's and lives beside its protocol
 * (`services/vfs/DriveAccess.ts`).
 */
import { Context } from "effect"
import type { Address } from "./Ids.ts"
import type { Capability } from "./Message.ts"

export class DriveAccess extends Context.Service<DriveAccess, {
  /**
   * Whether `caller` may read `path` (`/<package>/<drive>/...`, already normalized: no
   * `.` or `..` segments), given `holds`, which tells whether the caller holds a cap.
   */
  readonly mayRead: (caller: Address, path: string, holds: (cap: Capability) => boolean) => boolean
}>()("kernel/DriveAccess") {}

/**
 * `path` with a leading slash and `.`/`..` segments resolved, as Kinode stores code
 * handles; undefined if `..` climbs above the root. Normalizing before any check means
 * the check and the loader see the same file.
 */
export const normalizeVfsPath = (path: string): string | undefined => {
  const out: Array<string> = []
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue
    if (part === "..") {
      if (out.length === 0) return undefined
      out.pop()
    } else out.push(part)
  }
  return `/${out.join("/")}`
}
