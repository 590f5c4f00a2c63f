/**
 * Reading a package zip safely, before anything on the node changes: bounded sizes
 * (zip bombs), only plain files and directories (no symlinks or other special entries),
 * no duplicate names, no file that is also a directory, every name a relative path
 * inside the package. The result is the unpacked files, by name.
 *
 * fflate hides the external attributes that mark a symlink, so the central directory is
 * walked here too (same offsets fflate reads); its i-th entry is fflate's i-th file.
 * fflate inflates into a buffer of the *declared* size, so the declared sizes checked
 * here bound the memory used even when a header lies.
 */
import { Result } from "effect"
import { unzipSync } from "fflate"
import { MAX_MESSAGE_BYTES } from "../../src/Message.ts"
import { PathEscapes, safeRelativePath, ZipEntryRefused, ZipLimitExceeded, ZipUnreadable } from "./Manifest.ts"

/**
 * Limits of one package zip (and of its `api.zip`, checked on its own).
 * - `zipBytes`: the zip goes to vfs `AddZip` as one message blob, and messages are
 *   bounded by `MAX_MESSAGE_BYTES` (10 MiB); 64 KiB are left for the request body.
 * - `entryBytes` / `totalBytes`: unpacked sizes (a componentize-js app is ~12 MB).
 * - `entries`: files and directories.
 */
export const ZIP_LIMITS = {
  zipBytes: MAX_MESSAGE_BYTES - 64 * 1024,
  entries: 4096,
  entryBytes: 128 * 1024 * 1024,
  totalBytes: 256 * 1024 * 1024
} as const

export type PackageZipError = ZipUnreadable | ZipLimitExceeded | ZipEntryRefused | PathEscapes

const S_IFMT = 0o170000
const S_IFREG = 0o100000
const S_IFDIR = 0o040000
const S_IFLNK = 0o120000
/** Hosts whose external attributes carry a Unix mode in the high 16 bits (Unix, macOS). */
const UNIX_HOSTS = new Set([3, 19])

interface CentralEntry {
  readonly unixType: number | undefined
}

const u16 = (d: Uint8Array, at: number) => d[at]! | (d[at + 1]! << 8)
const u32 = (d: Uint8Array, at: number) => (d[at]! | (d[at + 1]! << 8) | (d[at + 2]! << 16) | (d[at + 3]! << 24)) >>> 0

/** The central directory's entries, or why it cannot be read. */
const centralDirectory = (d: Uint8Array): Result.Result<ReadonlyArray<CentralEntry> | number, string> => {
  if (d.length < 22) return Result.fail("too short for a zip")
  let e = d.length - 22
  while (u32(d, e) !== 0x06054b50) {
    if (e === 0 || d.length - e > 65557) return Result.fail("no end of central directory record")
    e -= 1
  }
  let count = u16(d, e + 8)
  let offset = u32(d, e + 16)
  if (e >= 20 && u32(d, e - 20) === 0x07064b50) {
    const ze = u32(d, e - 12)
    if (ze + 56 <= d.length && u32(d, ze) === 0x06064b50) {
      count = u32(d, ze + 32)
      offset = u32(d, ze + 48)
    }
  }
  // Too many: the count alone is the answer.
  if (count > ZIP_LIMITS.entries) return Result.succeed(count)
  const entries: Array<CentralEntry> = []
  for (let i = 0; i < count; i++) {
    if (offset + 46 > d.length || u32(d, offset) !== 0x02014b50) return Result.fail(`central directory entry ${i} is corrupt`)
    const host = d[offset + 5]!
    const attrs = u32(d, offset + 38)
    entries.push({ unixType: UNIX_HOSTS.has(host) ? (attrs >>> 16) & S_IFMT : undefined })
    offset += 46 + u16(d, offset + 28) + u16(d, offset + 30) + u16(d, offset + 32)
    if (offset > d.length) return Result.fail(`central directory entry ${i} is corrupt`)
  }
  return Result.succeed(entries)
}

/**
 * Unpacks a package zip (or the `api.zip` inside one: then `prefix` is `"api.zip/"`
 * and names in errors carry it).
 */
export const readPackageZip = (
  pkg: string,
  zip: Uint8Array,
  prefix = ""
): Result.Result<Record<string, Uint8Array>, PackageZipError> => {
  if (zip.length > ZIP_LIMITS.zipBytes) {
    return Result.fail(new ZipLimitExceeded({ package: pkg, limit: "zip-bytes", entry: prefix, size: zip.length, max: ZIP_LIMITS.zipBytes }))
  }
  const central = centralDirectory(zip)
  if (Result.isFailure(central)) return Result.fail(new ZipUnreadable({ package: pkg, reason: `${prefix}${central.failure}` }))
  const entries = central.success
  if (typeof entries === "number") {
    return Result.fail(new ZipLimitExceeded({ package: pkg, limit: "entries", entry: prefix, size: entries, max: ZIP_LIMITS.entries }))
  }
  let problem: PackageZipError | undefined
  let index = 0
  let total = 0
  const seen = new Set<string>()
  let files: Record<string, Uint8Array>
  try {
    files = unzipSync(zip, {
      filter: (f) => {
        const entry = entries[index++]
        if (problem !== undefined) return false
        const name = `${prefix}${f.name}`
        if (entry === undefined) {
          problem = new ZipUnreadable({ package: pkg, reason: `${prefix}entry count mismatch` })
        } else if (safeRelativePath(f.name, false) === undefined) {
          problem = new PathEscapes({ package: pkg, path: name })
        } else if (entry.unixType === S_IFLNK) {
          problem = new ZipEntryRefused({ package: pkg, entry: name, reason: "symlink" })
        } else if (entry.unixType !== undefined && entry.unixType !== 0 && entry.unixType !== S_IFREG && entry.unixType !== S_IFDIR) {
          problem = new ZipEntryRefused({ package: pkg, entry: name, reason: "special file" })
        } else if (seen.has(f.name)) {
          problem = new ZipEntryRefused({ package: pkg, entry: name, reason: "duplicate name" })
        } else if (f.compression !== 0 && f.compression !== 8) {
          problem = new ZipEntryRefused({ package: pkg, entry: name, reason: `compression method ${f.compression}` })
        } else if (f.originalSize > ZIP_LIMITS.entryBytes) {
          problem = new ZipLimitExceeded({ package: pkg, limit: "entry-bytes", entry: name, size: f.originalSize, max: ZIP_LIMITS.entryBytes })
        } else if ((total += f.originalSize) > ZIP_LIMITS.totalBytes) {
          problem = new ZipLimitExceeded({ package: pkg, limit: "total-bytes", entry: name, size: total, max: ZIP_LIMITS.totalBytes })
        }
        seen.add(f.name)
        return problem === undefined
      }
    })
  } catch (e) {
    return Result.fail(problem ?? new ZipUnreadable({ package: pkg, reason: `${prefix}${e instanceof Error ? e.message : String(e)}` }))
  }
  if (problem !== undefined) return Result.fail(problem)
  // A name that is a file and also a directory of another entry could not be written.
  const fileNames = new Set(Object.keys(files).filter((n) => !n.endsWith("/")))
  for (const name of Object.keys(files)) {
    const parts = name.split("/")
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join("/")
      if (fileNames.has(dir)) return Result.fail(new ZipEntryRefused({ package: pkg, entry: `${prefix}${name}`, reason: `${prefix}${dir} is a file` }))
    }
  }
  return Result.succeed(files)
}
