/**
 * `pkg/manifest.json` (kinode-semantics §7) as a Schema, and the typed errors of a
 * package that cannot be installed. Every check that names a field reports it as a
 * JSON path such as `[0].request_capabilities[1]`.
 */
import { Result, Schema, SchemaIssue } from "effect"

/** `"messaging"` to a process, or a cap issued by `process` with `params` (any JSON). */
export const CapabilityRequest = Schema.Union([
  Schema.String,
  Schema.Struct({ process: Schema.String, params: Schema.Unknown })
])
export type CapabilityRequest = typeof CapabilityRequest.Type

const OnExitRequest = Schema.Tuple([
  Schema.String,
  Schema.Struct({
    inherit: Schema.Boolean,
    expects_response: Schema.NullOr(Schema.Number),
    body: Schema.Array(Schema.Number),
    metadata: Schema.NullOr(Schema.String),
    capabilities: Schema.Array(Schema.Unknown)
  }),
  Schema.NullOr(Schema.Unknown)
])

export const ManifestOnExit = Schema.Union([
  Schema.Literals(["None", "Restart"]),
  Schema.Struct({ Requests: Schema.Array(OnExitRequest) })
])
export type ManifestOnExit = typeof ManifestOnExit.Type

export const ManifestEntry = Schema.Struct({
  process_name: Schema.String,
  process_wasm_path: Schema.String,
  on_exit: ManifestOnExit,
  request_networking: Schema.Boolean,
  request_capabilities: Schema.Array(CapabilityRequest),
  grant_capabilities: Schema.Array(CapabilityRequest),
  public: Schema.Boolean
})
export type ManifestEntry = typeof ManifestEntry.Type

export const Manifest = Schema.Array(ManifestEntry)
export type Manifest = typeof Manifest.Type

/** `package:publisher`. */
export const PackageId = Schema.Struct({ package: Schema.String, publisher: Schema.String })
export type PackageId = typeof PackageId.Type
export const packageText = (p: PackageId) => `${p.package}:${p.publisher}`

export class ZipUnreadable extends Schema.TaggedError<ZipUnreadable>()("ZipUnreadable", {
  package: Schema.String,
  reason: Schema.String
}) {}

export class ManifestMissing extends Schema.TaggedError<ManifestMissing>()("ManifestMissing", {
  package: Schema.String
}) {}

export class ManifestInvalid extends Schema.TaggedError<ManifestInvalid>()("ManifestInvalid", {
  package: Schema.String,
  /** JSON path of the offending field, `""` for the whole document. */
  field: Schema.String,
  issue: Schema.String
}) {}

/** A zip entry or a wasm path that would land outside the package drive. */
export class PathEscapes extends Schema.TaggedError<PathEscapes>()("PathEscapes", {
  package: Schema.String,
  path: Schema.String
}) {}

export class VfsFailed extends Schema.TaggedError<VfsFailed>()("VfsFailed", {
  package: Schema.String,
  action: Schema.String,
  path: Schema.String,
  reply: Schema.String
}) {}

export class ProcessFailed extends Schema.TaggedError<ProcessFailed>()("ProcessFailed", {
  package: Schema.String,
  process: Schema.String,
  step: Schema.Literals(["initialize", "run"]),
  reason: Schema.String
}) {}

/** `package:publisher` that is not Kimap-safe (so not a drive name either). */
export class InvalidPackageId extends Schema.TaggedError<InvalidPackageId>()("InvalidPackageId", {
  package: Schema.String,
  reason: Schema.String
}) {}

export class NotInstalled extends Schema.TaggedError<NotInstalled>()("NotInstalled", {
  package: Schema.String
}) {}

export type InstallError = InvalidPackageId | ZipUnreadable | ManifestMissing | ManifestInvalid | PathEscapes | VfsFailed | ProcessFailed

const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

export const fieldPath = (path: ReadonlyArray<unknown>): string =>
  path.map((seg) => {
    // Standard Schema paths hold keys or `{ key }` segments.
    const k = typeof seg === "object" && seg !== null && "key" in seg ? (seg as { key: unknown }).key : seg
    return typeof k === "number" ? `[${k}]` : `.${String(k)}`
  }).join("").replace(/^\./, "")

const decodeManifest = Schema.decodeUnknownResult(Manifest)

/** Parses and validates manifest text; the error names the first bad field. */
export const parseManifest = (pkg: string, text: string): Result.Result<Manifest, ManifestInvalid> => {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (e) {
    return Result.fail(new ManifestInvalid({ package: pkg, field: "", issue: `not JSON: ${e instanceof Error ? e.message : String(e)}` }))
  }
  const r = decodeManifest(raw)
  if (Result.isSuccess(r)) return Result.succeed(r.success)
  const first = formatIssue(r.failure.issue).issues[0]
  return Result.fail(new ManifestInvalid({ package: pkg, field: fieldPath(first?.path ?? []), issue: first?.message ?? "invalid" }))
}

/**
 * A path inside the package: relative, `/`-separated, no `.`/`..`/empty segments,
 * no backslashes or NULs (a leading `/` only where allowed: manifest paths, not zip
 * entries). Returns the normalised form (no leading `/`) or undefined.
 */
export const safeRelativePath = (p: string, allowLeadingSlash = true): string | undefined => {
  if (!allowLeadingSlash && p.startsWith("/")) return undefined
  const s = p.startsWith("/") ? p.slice(1) : p
  if (s.length === 0 || s.includes("\\") || s.includes("\0")) return undefined
  const parts = s.split("/")
  const last = parts.length - 1
  // A trailing "/" marks a directory entry in a zip.
  if (parts.some((x, i) => (x === "" && i !== last) || x === "." || x === "..")) return undefined
  return s
}
