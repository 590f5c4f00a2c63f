/**
 * `pkg/manifest.json`, `scripts.json` and `metadata.json` (kinode-semantics §7) as
 * Schemas, and the typed errors of a package that cannot be installed. Every check that
 * names a field reports it as a JSON path such as `[0].request_capabilities[1]`.
 *
 * Both formats of Kinode's history are read unmodified:
 * - **current** (Kinode 0.6 and later): `metadata.json` in the ERC-721 form
 *   `{name?, description?, ..., properties: {package_name, publisher, current_version,
 *   mirrors, code_hashes, wit_version?, ...}}`, snake_case `scripts.json`;
 * - **older** (Kinode 0.5, `kinode_process_lib` 0.5): `metadata.json` inside the zip as
 *   `{package, publisher, version: [major, minor, patch], wit_version?, description?,
 *   website?}`; `scripts.json` with camelCase keys (`requestNetworking`,
 *   `requestCapabilities`, `grantCapabilities`; `witVersion` too); manifest entries
 *   without `request_capabilities` / `grant_capabilities` (then none).
 * A `wit_version` of the form `[major, minor, patch]` (Kinode 0.5 to 0.8) names no
 * process world and Kinode's installers of that time ignored it: it is read as absent
 * (the loader tells the world from the component's imports anyway).
 */
import { Result, Schema, SchemaIssue } from "effect"

/** `"messaging"` to a process, or a cap issued by `process` with `params` (any JSON). */
export const CapabilityRequest = Schema.Union([
  Schema.String,
  Schema.Struct({ process: Schema.String, params: Schema.Unknown })
])
export type CapabilityRequest = typeof CapabilityRequest.Type

/**
 * One on-exit request: `[target address, request, blob | null]` in the kernel's JSON
 * form (`SetOnExit`, kinode-semantics §5.7). Only the shape is checked here; the
 * installer decodes the request and blob with the kernel's own schema and accepts a
 * target without a node (or with `our`) as this node's.
 */
const OnExitRequest = Schema.Tuple([Schema.String, Schema.Unknown, Schema.Unknown])

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
  /** Absent or null (Kinode 0.5's `Option`): none. */
  request_capabilities: Schema.optionalKey(Schema.NullOr(Schema.Array(CapabilityRequest))),
  /** Absent or null (Kinode 0.5's `Option`): none. */
  grant_capabilities: Schema.optionalKey(Schema.NullOr(Schema.Array(CapabilityRequest))),
  public: Schema.Boolean
})
export type ManifestEntry = typeof ManifestEntry.Type

export const Manifest = Schema.Array(ManifestEntry)
export type Manifest = typeof Manifest.Type

/** `scripts.json`: `<name>.wasm` → how the terminal runs it (kinode-semantics §7, §8). */
export const ScriptEntry = Schema.Struct({
  root: Schema.Boolean,
  public: Schema.Boolean,
  request_networking: Schema.Boolean,
  request_capabilities: Schema.optionalKey(Schema.NullOr(Schema.Array(CapabilityRequest))),
  grant_capabilities: Schema.optionalKey(Schema.NullOr(Schema.Array(CapabilityRequest))),
  wit_version: Schema.optionalKey(Schema.NullOr(Schema.Int))
})
export const Scripts = Schema.Record(Schema.String, ScriptEntry)
export type Scripts = typeof Scripts.Type

/** camelCase keys of Kinode 0.5's `scripts.json` (`#[serde(rename_all = "camelCase")]`), by their snake_case name. */
const SCRIPT_KEYS: ReadonlyArray<readonly [camel: string, snake: string]> = [
  ["requestNetworking", "request_networking"],
  ["requestCapabilities", "request_capabilities"],
  ["grantCapabilities", "grant_capabilities"],
  ["witVersion", "wit_version"]
]

/** A `scripts.json` value with each entry's camelCase keys renamed to snake_case (a snake_case key present wins). */
const snakeScripts = (raw: unknown): unknown => {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return raw
  const out: Record<string, unknown> = {}
  for (const [name, entry] of Object.entries(raw)) {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      out[name] = entry
      continue
    }
    const e: Record<string, unknown> = { ...entry }
    for (const [camel, snake] of SCRIPT_KEYS) {
      if (camel in e) {
        if (!(snake in e)) e[snake] = e[camel]
        delete e[camel]
      }
    }
    out[name] = e
  }
  return out
}

const OptionalText = Schema.optionalKey(Schema.NullOr(Schema.String))

/** `metadata.json` (ERC-721 style, kinode-semantics §7), as the installer uses it (both forms read into it). */
export const Metadata = Schema.Struct({
  name: OptionalText,
  description: OptionalText,
  image: OptionalText,
  external_url: OptionalText,
  animation_url: OptionalText,
  properties: Schema.Struct({
    package_name: Schema.String,
    publisher: Schema.String,
    current_version: Schema.String,
    mirrors: Schema.Array(Schema.String),
    code_hashes: Schema.Record(Schema.String, Schema.String),
    license: OptionalText,
    screenshots: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String))),
    wit_version: Schema.optionalKey(Schema.NullOr(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)))),
    dependencies: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String))),
    api_includes: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String)))
  })
})
export type Metadata = typeof Metadata.Type

const Natural = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
/** `[major, minor, patch]`: a `wit_version` (or `version`) of Kinode 0.5 to 0.8. */
const Triple = Schema.Tuple([Natural, Natural, Natural])

/** The current form as a file may hold it: `wit_version` a number, or a triple (0.6 to 0.8). */
const MetadataFile = Schema.Struct({
  ...Metadata.fields,
  properties: Schema.Struct({
    ...Metadata.fields.properties.fields,
    wit_version: Schema.optionalKey(Schema.NullOr(Schema.Union([Natural, Triple])))
  })
})

/** The older form (Kinode 0.5, `PackageMetadata` of `kinode_process_lib` 0.5), inside the zip. */
export const LegacyMetadata = Schema.Struct({
  package: Schema.String,
  publisher: Schema.String,
  version: Schema.Union([Triple, Schema.String]),
  wit_version: Schema.optionalKey(Schema.NullOr(Schema.Union([Natural, Triple]))),
  description: OptionalText,
  website: OptionalText
})
export type LegacyMetadata = typeof LegacyMetadata.Type

const witNumber = (w: number | ReadonlyArray<number> | null | undefined) => (typeof w === "number" ? { wit_version: w } : {})

/** The older form in the current one: package and publisher, the version as `a.b.c`, no mirrors or hashes. */
const fromLegacy = (m: LegacyMetadata): Metadata => ({
  ...(m.description === undefined ? {} : { description: m.description }),
  ...(m.website === undefined ? {} : { external_url: m.website }),
  properties: {
    package_name: m.package,
    publisher: m.publisher,
    current_version: typeof m.version === "string" ? m.version : m.version.join("."),
    mirrors: [],
    code_hashes: {},
    ...witNumber(m.wit_version)
  }
})

/** `package:publisher`. */
export const PackageId = Schema.Struct({ package: Schema.String, publisher: Schema.String })
export type PackageId = typeof PackageId.Type
export const packageText = (p: PackageId) => `${p.package}:${p.publisher}`

export class ZipUnreadable extends Schema.TaggedError<ZipUnreadable>()("ZipUnreadable", {
  package: Schema.String,
  reason: Schema.String
}) {}

/** A zip over one of the limits of `ZIP_LIMITS` (PackageZip.ts). */
export class ZipLimitExceeded extends Schema.TaggedError<ZipLimitExceeded>()("ZipLimitExceeded", {
  package: Schema.String,
  limit: Schema.Literals(["zip-bytes", "entries", "entry-bytes", "total-bytes"]),
  /** The entry that crossed the limit; `""` (or `"api.zip/"`) for the zip as a whole. */
  entry: Schema.String,
  size: Schema.Number,
  max: Schema.Number
}) {}

/** A zip entry that is not a plain file or directory, or cannot be written beside the others. */
export class ZipEntryRefused extends Schema.TaggedError<ZipEntryRefused>()("ZipEntryRefused", {
  package: Schema.String,
  entry: Schema.String,
  /**
   * `symlink`, `special file`, `duplicate name`, `compression method <n>`, `encrypted`,
   * `<dir> is a file`, or data that differs from its header (size, CRC-32).
   */
  reason: Schema.String
}) {}

/** `scripts.json`, `metadata.json` or `api.zip` that is present but unusable. */
export class PackageFileInvalid extends Schema.TaggedError<PackageFileInvalid>()("PackageFileInvalid", {
  package: Schema.String,
  file: Schema.Literals(["scripts.json", "metadata.json", "api.zip"]),
  /** JSON path of the offending field, `""` for the whole file. */
  field: Schema.String,
  issue: Schema.String
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
  /** `init`: it crashed or ended while the install watched its start (`InstallOptions.watchMs`). */
  step: Schema.Literals(["initialize", "run", "init"]),
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

export type InstallError =
  | InvalidPackageId
  | ZipUnreadable
  | ZipLimitExceeded
  | ZipEntryRefused
  | ManifestMissing
  | ManifestInvalid
  | PackageFileInvalid
  | PathEscapes
  | VfsFailed
  | ProcessFailed

const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

export const fieldPath = (path: ReadonlyArray<unknown>): string =>
  path.map((seg) => {
    // Standard Schema paths hold keys or `{ key }` segments.
    const k = typeof seg === "object" && seg !== null && "key" in seg ? (seg as { key: unknown }).key : seg
    return typeof k === "number" ? `[${k}]` : `.${String(k)}`
  }).join("").replace(/^\./, "")

const decodeManifest = Schema.decodeUnknownResult(Manifest)
const decodeScriptsStrict = Schema.decodeUnknownResult(Scripts)
const decodeScripts = (u: unknown) => decodeScriptsStrict(snakeScripts(u))
const decodeMetadataFile = Schema.decodeUnknownResult(MetadataFile)
const decodeLegacyMetadata = Schema.decodeUnknownResult(LegacyMetadata)

/** Either form of `metadata.json`: the older one when it has `package` and no `properties`. */
const decodeMetadata = (u: unknown): Result.Result<Metadata, { readonly issue: SchemaIssue.Issue }> => {
  const legacy = typeof u === "object" && u !== null && "package" in u && !("properties" in u)
  if (legacy) return Result.map(decodeLegacyMetadata(u), fromLegacy)
  return Result.map(decodeMetadataFile(u), (m) => {
    const { wit_version, ...properties } = m.properties
    return { ...m, properties: { ...properties, ...witNumber(wit_version) } }
  })
}

/** The first issue of a schema failure: its JSON path and message. */
export const firstIssue = (issue: SchemaIssue.Issue): { readonly field: string; readonly issue: string } => {
  const first = formatIssue(issue).issues[0]
  return { field: fieldPath(first?.path ?? []), issue: first?.message ?? "invalid" }
}

/** JSON text, then a schema; on failure the first issue's path and message. */
const parseJson = <A>(
  text: string,
  decode: (u: unknown) => Result.Result<A, { readonly issue: SchemaIssue.Issue }>
): Result.Result<A, { readonly field: string; readonly issue: string }> => {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (e) {
    return Result.fail({ field: "", issue: `not JSON: ${e instanceof Error ? e.message : String(e)}` })
  }
  const r = decode(raw)
  return Result.isSuccess(r) ? Result.succeed(r.success) : Result.fail(firstIssue(r.failure.issue))
}

/** Parses and validates manifest text; the error names the first bad field. */
export const parseManifest = (pkg: string, text: string): Result.Result<Manifest, ManifestInvalid> =>
  Result.mapError(parseJson(text, decodeManifest), (e) => new ManifestInvalid({ package: pkg, ...e }))

export const parseScripts = (pkg: string, text: string): Result.Result<Scripts, PackageFileInvalid> =>
  Result.mapError(parseJson(text, decodeScripts), (e) => new PackageFileInvalid({ package: pkg, file: "scripts.json", ...e }))

export const parseMetadata = (pkg: string, text: string): Result.Result<Metadata, PackageFileInvalid> =>
  Result.mapError(parseJson(text, decodeMetadata), (e) => new PackageFileInvalid({ package: pkg, file: "metadata.json", ...e }))

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
