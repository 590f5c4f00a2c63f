/**
 * A package zip as a user names it: a file on this machine (`install <zip>` at the
 * terminal, `--install <zip>` at boot), and the package id it installs as.
 *
 * The id, in order:
 * 1. `as`, when the user gave one (`--id package:publisher`);
 * 2. the zip's `metadata.json`, either form (`properties.package_name:publisher`, or
 *    the older `package:publisher`);
 * 3. the file name `<package>:<publisher>.zip` (`kit build` names its zips so; a zip it
 *    builds holds `pkg/` only, not `metadata.json`).
 */
import { Effect, Result, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ManifestMissing, PackageFileInvalid, type PackageId, parseMetadata, ZipLimitExceeded, ZipUnreadable } from "./Manifest.ts"
import { checkPackageId } from "./Plan.ts"
import { ZIP_LIMITS } from "./PackageZip.ts"
import { inflateToMemory, readEntries } from "../vfs/index.ts"

/** The file cannot be read (missing, a directory, no permission). */
export class PackageFileUnreadable extends Schema.TaggedError<PackageFileUnreadable>()("PackageFileUnreadable", {
  path: Schema.String,
  reason: Schema.String
}) {}

/** Nothing says which package the zip is: no `metadata.json`, no `<package>:<publisher>.zip` name. */
export class PackageIdUnknown extends Schema.TaggedError<PackageIdUnknown>()("PackageIdUnknown", {
  file: Schema.String
}) {}

/** A package id given by the user that is not `package:publisher` with allowed names. */
export class PackageIdInvalid extends Schema.TaggedError<PackageIdInvalid>()("PackageIdInvalid", {
  given: Schema.String,
  reason: Schema.String
}) {}

export type PackageSourceError =
  | PackageFileUnreadable
  | PackageIdUnknown
  | PackageIdInvalid
  | ZipUnreadable
  | ZipLimitExceeded
  | ManifestMissing
  | PackageFileInvalid

/** Largest `metadata.json` read to find the package id. */
const METADATA_BYTES = 256 * 1024

/** `package:publisher` typed by a person, when its names are allowed (legacy `_` too). */
export const parsePackageId = (text: string): Result.Result<PackageId, PackageIdInvalid> => {
  const m = /^([^:\s]+):([^:\s]+)$/.exec(text.trim())
  if (m === null) return Result.fail(new PackageIdInvalid({ given: text, reason: "not package:publisher" }))
  const p = { package: m[1]!, publisher: m[2]! }
  return Result.mapError(Result.map(checkPackageId(p), () => p), (e) => new PackageIdInvalid({ given: text, reason: e.reason }))
}

/** Reads a zip file (refusing one over the package size limit before reading it). */
export const readZipFile = (file: string): Effect.Effect<Uint8Array, PackageFileUnreadable | ZipLimitExceeded> =>
  Effect.gen(function*() {
    const stat = yield* Effect.tryPromise({
      try: () => fs.promises.stat(file),
      catch: (e) => new PackageFileUnreadable({ path: file, reason: (e as NodeJS.ErrnoException).code ?? String(e) })
    })
    if (!stat.isFile()) return yield* new PackageFileUnreadable({ path: file, reason: "not a file" })
    if (stat.size > ZIP_LIMITS.zipBytes) {
      return yield* new ZipLimitExceeded({ package: path.basename(file), limit: "zip-bytes", entry: "", size: stat.size, max: ZIP_LIMITS.zipBytes })
    }
    const bytes = yield* Effect.tryPromise({
      try: () => fs.promises.readFile(file),
      catch: (e) => new PackageFileUnreadable({ path: file, reason: (e as NodeJS.ErrnoException).code ?? String(e) })
    })
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  })

/** The package id of a zip (see the header); `fileName` is the zip's file name, if it has one. */
export const packageIdOfZip = (
  zip: Uint8Array,
  fileName: string | undefined,
  as?: string
): Effect.Effect<PackageId, PackageIdUnknown | PackageIdInvalid | ZipUnreadable | ManifestMissing | PackageFileInvalid> =>
  Effect.gen(function*() {
    if (as !== undefined) return yield* Effect.fromResult(parsePackageId(as))
    const label = fileName ?? "(zip)"
    const entries = readEntries(zip, ZIP_LIMITS.entries)
    if (Result.isFailure(entries)) {
      const f = entries.failure
      return yield* new ZipUnreadable({ package: label, reason: "reason" in f ? f.reason : `more than ${ZIP_LIMITS.entries} entries` })
    }
    // Not a package at all says more than "no package id".
    if (!entries.success.some((e) => e.name === "manifest.json")) return yield* new ManifestMissing({ package: label })
    const meta = entries.success.find((e) => e.name === "metadata.json")
    if (meta !== undefined && meta.size <= METADATA_BYTES) {
      const bytes = yield* Effect.tryPromise({
        try: () => inflateToMemory(zip, meta),
        catch: (e) => new ZipUnreadable({ package: label, reason: `metadata.json: ${e instanceof Error ? e.message : String(e)}` })
      })
      const parsed = parseMetadata(label, new TextDecoder().decode(bytes))
      if (Result.isFailure(parsed)) return yield* parsed.failure
      const { package_name, publisher } = parsed.success.properties
      return yield* Effect.fromResult(parsePackageId(`${package_name}:${publisher}`))
    }
    const named = fileName === undefined ? undefined : /^([^:/\\]+:[^:/\\]+)\.zip$/.exec(path.basename(fileName))
    if (named !== null && named !== undefined) return yield* Effect.fromResult(parsePackageId(named[1]!))
    return yield* new PackageIdUnknown({ file: label })
  })

/** A zip file and the package it installs as. */
export const readPackageFile = (file: string, as?: string) =>
  Effect.gen(function*() {
    const zip = yield* readZipFile(file)
    const pkg = yield* packageIdOfZip(zip, file, as)
    return { zip, pkg }
  })
