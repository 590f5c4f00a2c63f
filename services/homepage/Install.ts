/**
 * Installing a package from the browser, in two steps:
 *
 * 1. `POST /install` (multipart form: the zip as `package`, optionally `package_id`):
 *    the package id is the form's, else the zip's `metadata.json`
 *    (`properties.package_name:publisher`); the whole package is checked and its
 *    requested capabilities listed (`Packages.requested`). The zip waits in memory
 *    under a random token: at most `UPLOAD_LIMITS.max` at once (the oldest goes), each
 *    for `UPLOAD_LIMITS.ttlMs`.
 * 2. `POST /install/confirm` (token + the indices of the approved capabilities):
 *    `Packages.install` with exactly those approved; the others are withheld.
 *
 * This file holds the parts that are not HTTP: form parsing, reading the package id,
 * the waiting uploads, and plain-language descriptions of what went wrong.
 */
import { Effect, Match, Result, Schema } from "effect"
import { randomBytes } from "node:crypto"
import {
  type InstallError, type NotInstalled, type PackageFileInvalid, type PackageId, parseMetadata, type RequestedCapability,
  type VfsFailed
} from "../packages/index.ts"
import { inflateToMemory, readEntries } from "../vfs/index.ts"

export const UPLOAD_LIMITS = {
  /** Uploads waiting for confirmation; a new one beyond this evicts the oldest. */
  max: 4,
  ttlMs: 15 * 60 * 1000,
  /** Largest `metadata.json` read to find the package id. */
  metadataBytes: 256 * 1024,
  /** Parts of a multipart form looked at. */
  parts: 16
} as const

/** The form could not be read as `multipart/form-data` or had no file. */
export class FormUnreadable extends Schema.TaggedError<FormUnreadable>()("FormUnreadable", {
  reason: Schema.Literals(["not-multipart", "malformed", "no-file", "empty-file"])
}) {}

/** The upload is not a zip file at all. */
export class NotAZip extends Schema.TaggedError<NotAZip>()("NotAZip", {
  reason: Schema.String
}) {}

/** No package id: neither in the form nor in a `metadata.json`. */
export class NoPackageId extends Schema.TaggedError<NoPackageId>()("NoPackageId", {}) {}

/** A package id typed in the form that is not `package:publisher`. */
export class BadPackageId extends Schema.TaggedError<BadPackageId>()("BadPackageId", {
  given: Schema.String
}) {}

/** The upload token is unknown: expired, evicted, or already used. */
export class UploadGone extends Schema.TaggedError<UploadGone>()("UploadGone", {}) {}

export type UploadError = FormUnreadable | NotAZip | NoPackageId | BadPackageId | UploadGone

// ---- forms ------------------------------------------------------------------------

export interface MultipartForm {
  readonly fields: ReadonlyMap<string, string>
  readonly files: ReadonlyMap<string, { readonly filename: string; readonly bytes: Uint8Array }>
}

const CRLF2 = Buffer.from("\r\n\r\n")

/** The boundary of a `multipart/form-data` content type, or undefined. */
const boundaryOf = (contentType: string | undefined): string | undefined => {
  if (contentType === undefined || !/^multipart\/form-data\s*;/i.test(contentType)) return undefined
  const m = /;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType)
  const b = m?.[1] ?? m?.[2]
  return b === undefined || b.length > 200 ? undefined : b
}

/**
 * A `multipart/form-data` body (RFC 7578): text fields and files by field name. Only the
 * first `UPLOAD_LIMITS.parts` parts are read; file bytes are views into the body.
 */
export const parseMultipart = (contentType: string | undefined, body: Uint8Array): Result.Result<MultipartForm, FormUnreadable> => {
  const boundary = boundaryOf(contentType)
  if (boundary === undefined) return Result.fail(new FormUnreadable({ reason: "not-multipart" }))
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  const delimiter = Buffer.from(`--${boundary}`)
  const next = Buffer.from(`\r\n--${boundary}`)
  const fields = new Map<string, string>()
  const files = new Map<string, { filename: string; bytes: Uint8Array }>()
  let at = buf.indexOf(delimiter)
  if (at < 0) return Result.fail(new FormUnreadable({ reason: "malformed" }))
  at += delimiter.length
  for (let part = 0; part < UPLOAD_LIMITS.parts; part++) {
    // "--" after a delimiter closes the body.
    if (buf[at] === 0x2d && buf[at + 1] === 0x2d) break
    if (buf[at] !== 0x0d || buf[at + 1] !== 0x0a) return Result.fail(new FormUnreadable({ reason: "malformed" }))
    const headEnd = buf.indexOf(CRLF2, at + 2)
    if (headEnd < 0) return Result.fail(new FormUnreadable({ reason: "malformed" }))
    const head = buf.subarray(at + 2, headEnd).toString("utf8")
    const start = headEnd + CRLF2.length
    const end = buf.indexOf(next, start)
    if (end < 0) return Result.fail(new FormUnreadable({ reason: "malformed" }))
    const disposition = /^content-disposition:\s*form-data(.*)$/im.exec(head)?.[1] ?? ""
    const name = /;\s*name="([^"]*)"/i.exec(disposition)?.[1]
    const filename = /;\s*filename="([^"]*)"/i.exec(disposition)?.[1]
    if (name !== undefined) {
      const bytes = buf.subarray(start, end)
      if (filename !== undefined) files.set(name, { filename, bytes })
      else fields.set(name, bytes.toString("utf8"))
    }
    at = end + next.length
  }
  return Result.succeed({ fields, files })
}

/** An `application/x-www-form-urlencoded` body. */
export const parseUrlEncoded = (body: Uint8Array | undefined): URLSearchParams =>
  new URLSearchParams(body === undefined ? "" : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"))

/** `package:publisher` typed by a person (surrounding spaces ignored). */
export const parsePackageText = (text: string): PackageId | undefined => {
  const m = /^([^:\s]+):([^:\s]+)$/.exec(text.trim())
  return m === null ? undefined : { package: m[1]!, publisher: m[2]! }
}

// ---- the package id ---------------------------------------------------------------

/**
 * The package id of an uploaded zip: `typed` when given, else its `metadata.json`'s.
 * Fails `NotAZip` for bytes that are not a zip, `NoPackageId` when neither says.
 */
export const packageIdOf = Effect.fnUntraced(
  function*(zip: Uint8Array, typed: string | undefined): Effect.fn.Return<PackageId, NotAZip | NoPackageId | BadPackageId | PackageFileInvalid> {
    const entries = readEntries(zip, 4096)
    if (Result.isFailure(entries)) {
      const f = entries.failure
      return yield* new NotAZip({ reason: "reason" in f ? f.reason : `${f.tooMany} entries` })
    }
    if (typed !== undefined && typed.trim() !== "") {
      const p = parsePackageText(typed)
      return p === undefined ? yield* new BadPackageId({ given: typed }) : p
    }
    const meta = entries.success.find((e) => e.name === "metadata.json")
    if (meta === undefined || meta.size > UPLOAD_LIMITS.metadataBytes) return yield* new NoPackageId()
    const bytes = yield* Effect.tryPromise({
      try: () => inflateToMemory(zip, meta),
      catch: (e) => new NotAZip({ reason: `metadata.json: ${e instanceof Error ? e.message : String(e)}` })
    })
    const parsed = parseMetadata("(upload)", new TextDecoder().decode(bytes))
    if (Result.isFailure(parsed)) return yield* parsed.failure
    return { package: parsed.success.properties.package_name, publisher: parsed.success.properties.publisher }
  }
)

// ---- uploads waiting for confirmation ---------------------------------------------

export interface Upload {
  readonly token: string
  readonly pkg: PackageId
  readonly filename: string
  readonly zip: Uint8Array
  readonly requested: ReadonlyArray<RequestedCapability>
  /** Whether a version of the package is installed now. */
  readonly replaces: boolean
  readonly at: number
}

export const makeUploads = () => {
  const waiting = new Map<string, Upload>()

  const expire = (now: number) => {
    for (const [token, u] of waiting) if (now - u.at > UPLOAD_LIMITS.ttlMs) waiting.delete(token)
  }

  /** Keeps an upload (the zip copied: the message's blob is not ours to hold); its token. */
  const put = (u: Omit<Upload, "token" | "at">, now: number): Upload => {
    expire(now)
    // Map order is insertion order: the first key is the oldest.
    while (waiting.size >= UPLOAD_LIMITS.max) waiting.delete(waiting.keys().next().value!)
    const upload: Upload = { ...u, zip: u.zip.slice(), token: randomBytes(18).toString("base64url"), at: now }
    waiting.set(upload.token, upload)
    return upload
  }

  const get = (token: string, now: number): Upload | undefined => {
    expire(now)
    return waiting.get(token)
  }

  return { put, get, drop: (token: string) => void waiting.delete(token), size: () => waiting.size }
}
export type Uploads = ReturnType<typeof makeUploads>

// ---- what went wrong, in words ----------------------------------------------------

const field = (f: string) => (f === "" ? "as a whole" : `at ${f}`)

/** One sentence a person can act on, for any failure of an upload, an install or an uninstall. */
export const describeError = (e: UploadError | InstallError | NotInstalled | VfsFailed): string =>
  Match.valueTags(e, {
    FormUnreadable: (x) =>
      x.reason === "no-file" || x.reason === "empty-file"
        ? "No package was uploaded: choose a .zip file."
        : "The upload could not be read as a form (multipart/form-data expected).",
    NotAZip: (x) => `The file is not a zip archive (${x.reason}), so it is not a package.`,
    NoPackageId: () =>
      "The zip has no metadata.json naming its package: type the package id (package:publisher) in the form.",
    BadPackageId: (x) => `"${x.given}" is not a package id: write it as package:publisher, e.g. chess:sys.`,
    UploadGone: () => "This upload is no longer waiting (it expired, was replaced by newer uploads, or was used): upload the zip again.",
    InvalidPackageId: (x) => `"${x.package}" cannot be a package id: ${x.reason}.`,
    ZipUnreadable: (x) => `The zip cannot be read (${x.reason}), so it is not a package.`,
    ZipLimitExceeded: (x) =>
      `The package is too large: ${x.limit}${x.entry === "" ? "" : ` (${x.entry})`} is ${x.size}, at most ${x.max}.`,
    ZipEntryRefused: (x) => `The zip entry ${x.entry} is refused: ${x.reason}.`,
    ManifestMissing: () => "The zip has no manifest.json at its root, so it is not a Kinode package.",
    ManifestInvalid: (x) => `manifest.json is invalid ${field(x.field)}: ${x.issue}.`,
    PackageFileInvalid: (x) => `${x.file} is invalid ${field(x.field)}: ${x.issue}.`,
    PathEscapes: (x) => `The path ${x.path} would land outside the package's drive.`,
    VfsFailed: (x) => `Writing files failed (vfs ${x.action} ${x.path}: ${x.reply}).`,
    ProcessFailed: (x) =>
      x.step === "init"
        ? `The process ${x.process} did not start: ${x.reason}.`
        : `The process ${x.process} could not ${x.step === "run" ? "start" : "be created"}: ${x.reason}.`,
    NotInstalled: (x) => `${x.package} is not installed.`
  })
