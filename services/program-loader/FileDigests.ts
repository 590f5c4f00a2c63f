/**
 * SHA-256 of files, remembered across boots in a small JSON index keyed by path and
 * file identity (device, inode, size, mtime, ctime), so a boot does not read and hash
 * unchanged multi-megabyte apps and bundles again. A file changed in any way (ctime
 * cannot be set back by a user) is read and hashed afresh. A lost or corrupt index
 * only costs the hashing.
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"

export interface FileDigests {
  /** The file's SHA-256 (hex) and, when it had to be read, its bytes. Throws what `fs` throws. */
  readonly of: (file: string) => { readonly hash: string; readonly bytes: Uint8Array | undefined }
}

interface Entry {
  readonly identity: string
  readonly hash: string
}

const identityOf = (st: fs.Stats) => `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`

const readIndex = (indexPath: string): Record<string, Entry> => {
  try {
    const parsed: unknown = JSON.parse(fs.readFileSync(indexPath, "utf8"))
    return typeof parsed === "object" && parsed !== null ? parsed as Record<string, Entry> : {}
  } catch {
    return {}
  }
}

export const makeFileDigests = (indexPath: string): FileDigests => {
  const index = readIndex(indexPath)
  const save = () => {
    try {
      fs.mkdirSync(path.dirname(indexPath), { recursive: true })
      const tmp = `${indexPath}.tmp-${process.pid}`
      fs.writeFileSync(tmp, JSON.stringify(index))
      fs.renameSync(tmp, indexPath)
    } catch {
      // an index that cannot be written only costs hashing at the next boot
    }
  }
  return {
    of: (file) => {
      const before = identityOf(fs.statSync(file))
      const known = index[file]
      if (known !== undefined && known.identity === before && typeof known.hash === "string") {
        return { hash: known.hash, bytes: undefined }
      }
      const bytes = new Uint8Array(fs.readFileSync(file))
      const hash = crypto.createHash("sha256").update(bytes).digest("hex")
      // Remember it only if the file did not change while it was read.
      if (identityOf(fs.statSync(file)) === before) {
        index[file] = { identity: before, hash }
        save()
      }
      return { hash, bytes }
    }
  }
}
