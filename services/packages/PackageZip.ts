/**
 * Reading a package zip safely, before anything on the node changes: bounded sizes
 * (zip bombs), only plain files and directories (no symlinks or other special entries),
 * no duplicate names, no file that is also a directory, every name a relative path
 * inside the package. The result is the unpacked files, by name.
 *
 * The central directory is read by the vfs's zip reader (`readEntries`) and each entry
 * inflated off the event loop (`inflateToMemory`: zlib on the thread pool, chunk by
 * chunk, into a buffer of the declared size). An entry whose data is longer or shorter
 * than declared, or fails its CRC-32, is refused: the declared sizes checked here bound
 * the memory used even when a header lies, and nothing is silently cut.
 */
import { Effect, Result } from "effect"
import { MAX_MESSAGE_BYTES } from "../../src/Message.ts"
import { inflateToMemory, readEntries, S_IFDIR, S_IFLNK, S_IFREG, ZipDataError } from "../vfs/index.ts"
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

/**
 * Unpacks a package zip (or the `api.zip` inside one: then `prefix` is `"api.zip/"`
 * and names in errors carry it).
 */
export const readPackageZip = (
  pkg: string,
  zip: Uint8Array,
  prefix = ""
): Effect.Effect<Record<string, Uint8Array>, PackageZipError> =>
  Effect.gen(function*() {
    if (zip.length > ZIP_LIMITS.zipBytes) {
      return yield* new ZipLimitExceeded({ package: pkg, limit: "zip-bytes", entry: prefix, size: zip.length, max: ZIP_LIMITS.zipBytes })
    }
    const listed = readEntries(zip, ZIP_LIMITS.entries)
    if (Result.isFailure(listed)) {
      const f = listed.failure
      return yield* ("tooMany" in f
        ? new ZipLimitExceeded({ package: pkg, limit: "entries", entry: prefix, size: f.tooMany, max: ZIP_LIMITS.entries })
        : new ZipUnreadable({ package: pkg, reason: `${prefix}${f.reason}` }))
    }
    const entries = listed.success
    let total = 0
    const seen = new Set<string>()
    for (const e of entries) {
      const name = `${prefix}${e.name}`
      if (safeRelativePath(e.name, false) === undefined) return yield* new PathEscapes({ package: pkg, path: name })
      if (e.unixType === S_IFLNK) return yield* new ZipEntryRefused({ package: pkg, entry: name, reason: "symlink" })
      if (e.unixType !== undefined && e.unixType !== 0 && e.unixType !== S_IFREG && e.unixType !== S_IFDIR) {
        return yield* new ZipEntryRefused({ package: pkg, entry: name, reason: "special file" })
      }
      if (seen.has(e.name)) return yield* new ZipEntryRefused({ package: pkg, entry: name, reason: "duplicate name" })
      seen.add(e.name)
      if (e.method !== 0 && e.method !== 8) return yield* new ZipEntryRefused({ package: pkg, entry: name, reason: `compression method ${e.method}` })
      if (e.encrypted) return yield* new ZipEntryRefused({ package: pkg, entry: name, reason: "encrypted" })
      if (e.size > ZIP_LIMITS.entryBytes) {
        return yield* new ZipLimitExceeded({ package: pkg, limit: "entry-bytes", entry: name, size: e.size, max: ZIP_LIMITS.entryBytes })
      }
      if ((total += e.size) > ZIP_LIMITS.totalBytes) {
        return yield* new ZipLimitExceeded({ package: pkg, limit: "total-bytes", entry: name, size: total, max: ZIP_LIMITS.totalBytes })
      }
    }
    // A name that is a file and also a directory of another entry could not be written.
    const fileNames = new Set(entries.map((e) => e.name).filter((n) => !n.endsWith("/")))
    for (const { name } of entries) {
      const parts = name.split("/")
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join("/")
        if (fileNames.has(dir)) return yield* new ZipEntryRefused({ package: pkg, entry: `${prefix}${name}`, reason: `${prefix}${dir} is a file` })
      }
    }
    const files: Record<string, Uint8Array> = {}
    for (const e of entries) {
      if (e.name.endsWith("/")) {
        files[e.name] = new Uint8Array(0)
        continue
      }
      files[e.name] = yield* Effect.tryPromise({
        try: () => inflateToMemory(zip, e),
        catch: (cause) =>
          cause instanceof ZipDataError
            ? new ZipEntryRefused({ package: pkg, entry: `${prefix}${e.name}`, reason: cause.problem })
            : new ZipUnreadable({ package: pkg, reason: `${prefix}${e.name}: ${cause instanceof Error ? cause.message : String(cause)}` })
      })
    }
    return files
  })
