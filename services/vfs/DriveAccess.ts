/**
 * vfs's read rule for code the kernel loads (a spawn's component path): a file of the
 * caller's own package, or one on a drive it holds a vfs `read` (or `root`) capability
 * for, the same capabilities a vfs `Read` request would need.
 */
import { Layer } from "effect"
import { DriveAccess } from "../../src/DriveAccess.ts"
import { localAddress } from "../../src/Ids.ts"

export const VfsDriveAccess = Layer.succeed(DriveAccess, DriveAccess.of({
  mayRead: (caller, path, holds) => {
    const parts = path.split("/")
    const pkg = parts[1] ?? ""
    const drive = `/${pkg}/${parts[2] ?? ""}`
    const callerPkg = `${caller.process.packageName}:${caller.process.publisherNode}`
    if (pkg === callerPkg) return true
    const vfs = localAddress(caller.node, "vfs:distro:sys")
    return holds({ issuer: vfs, params: JSON.stringify({ kind: "read", drive }) }) ||
      holds({ issuer: vfs, params: "{\"root\":true}" })
  }
}))
