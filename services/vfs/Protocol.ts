/**
 * `vfs:distro:sys` wire protocol (kinode-semantics §6.1): exact serde JSON shapes.
 */
import { Schema, SchemaGetter } from "effect"
import { U64 } from "../../src/Json.ts"

/** An i64 from BigInt-safe JSON. */
export const I64 = Schema.Union([Schema.BigInt, Schema.Int]).pipe(
  Schema.decodeTo(Schema.BigInt, {
    decode: SchemaGetter.transform((n: bigint | number) => BigInt(n)),
    encode: SchemaGetter.transform((n: bigint) => n as bigint | number)
  }),
  Schema.check(Schema.makeFilter((n: bigint) => n >= -(2n ** 63n) && n < 2n ** 63n ? undefined : "expected an i64"))
)

export const UNIT_ACTIONS = [
  "CreateDrive", "CreateDir", "CreateDirAll", "CreateFile", "CloseFile", "Write", "WriteAll", "Append", "SyncAll",
  "Read", "ReadDir", "ReadToEnd", "ReadToString", "RemoveFile", "RemoveDir", "RemoveDirAll", "Metadata", "AddZip",
  "Len", "Hash"
] as const

export const SeekFrom = Schema.Union([
  Schema.Struct({ Start: U64 }),
  Schema.Struct({ End: I64 }),
  Schema.Struct({ Current: I64 })
])
export type SeekFrom = typeof SeekFrom.Type

export const VfsAction = Schema.Union([
  Schema.Literals(UNIT_ACTIONS),
  Schema.Struct({ OpenFile: Schema.Struct({ create: Schema.Boolean }) }),
  Schema.Struct({ ReadExact: Schema.Struct({ length: U64 }) }),
  Schema.Struct({ Seek: SeekFrom }),
  Schema.Struct({ Rename: Schema.Struct({ new_path: Schema.String }) }),
  Schema.Struct({ CopyFile: Schema.Struct({ new_path: Schema.String }) }),
  Schema.Struct({ SetLen: U64 })
])
export type VfsAction = typeof VfsAction.Type

export const VfsRequest = Schema.Struct({ path: Schema.String, action: VfsAction })
export type VfsRequest = typeof VfsRequest.Type

export const FileType = Schema.Literals(["File", "Directory", "Symlink", "Other"])
export type FileType = typeof FileType.Type

export const VfsErrorBody = Schema.Union([
  Schema.Literals(["NoWriteCap", "NoReadCap", "AddCapFailed", "MalformedRequest", "NoBlob", "UnzipError"]),
  Schema.Struct({ ParseError: Schema.Struct({ error: Schema.String, path: Schema.String }) }),
  Schema.Struct({ IOError: Schema.String })
])
export type VfsErrorBody = typeof VfsErrorBody.Type

export const DirEntry = Schema.Struct({ path: Schema.String, file_type: FileType })
export type DirEntry = typeof DirEntry.Type

export const VfsResponse = Schema.Union([
  Schema.Literals(["Ok", "Read"]),
  Schema.Struct({ Err: VfsErrorBody }),
  Schema.Struct({ SeekFrom: Schema.Struct({ new_offset: U64 }) }),
  Schema.Struct({ ReadDir: Schema.Array(DirEntry) }),
  Schema.Struct({ ReadToString: Schema.String }),
  Schema.Struct({ Metadata: Schema.Struct({ file_type: FileType, len: U64 }) }),
  Schema.Struct({ Len: U64 }),
  Schema.Struct({ Hash: Schema.Array(Schema.Int) })
])
export type VfsResponse = typeof VfsResponse.Type

export class VfsFailure extends Schema.TaggedError<VfsFailure>()("VfsFailure", { error: VfsErrorBody }) {}

/** Capability params issued by `vfs:distro:sys`. */
export const driveCap = (kind: "read" | "write", drive: string): string => JSON.stringify({ kind, drive })
export const ROOT_CAP = JSON.stringify({ root: true })
