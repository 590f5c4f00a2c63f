/**
 * `kv:distro:sys` wire protocol (kinode-semantics §6.3): the exact serde JSON shapes a
 * Kinode app sends and expects. Enums are externally tagged, keys are int arrays,
 * `PackageId` is an object and `tx_id`s are u64s kept exact (src/Json.ts parses them).
 */
import { Schema, SchemaGetter } from "effect"
import { U64 } from "../../src/Json.ts"

/** `Vec<u8>` on the wire: an array of ints 0-255; a `Uint8Array` inside. */
export const Bytes = Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 }))).pipe(
  Schema.decodeTo(Schema.Uint8Array, {
    decode: SchemaGetter.transform((a: ReadonlyArray<number>) => Uint8Array.from(a)),
    encode: SchemaGetter.transform((u: Uint8Array) => Array.from(u))
  })
)

/** `PackageId` as serde prints it: an object, not the `pkg:pub` string. */
export const PackageIdJson = Schema.Struct({ package_name: Schema.String, publisher_node: Schema.String })
export type PackageIdJson = typeof PackageIdJson.Type

/** serde reads a missing `Option` field as `None`, so `tx_id` may be absent or null. */
const TxId = Schema.optional(Schema.NullOr(U64))

export const KvAction = Schema.Union([
  Schema.Literals(["Open", "RemoveDb", "BeginTx"]),
  Schema.Struct({ Set: Schema.Struct({ key: Bytes, tx_id: TxId }) }),
  Schema.Struct({ Delete: Schema.Struct({ key: Bytes, tx_id: TxId }) }),
  Schema.Struct({ Get: Bytes }),
  Schema.Struct({ Commit: Schema.Struct({ tx_id: U64 }) })
])
export type KvAction = typeof KvAction.Type

export const KvRequest = Schema.Struct({ package_id: PackageIdJson, db: Schema.String, action: KvAction })
export type KvRequest = typeof KvRequest.Type

/** `KvError`, externally tagged. */
export const KvErrorBody = Schema.Union([
  Schema.Literals(["KeyNotFound", "NoWriteCap", "NoReadCap", "MismatchingPackageId", "AddCapFailed", "MalformedRequest"]),
  Schema.Struct({ NoDb: Schema.Tuple([PackageIdJson, Schema.String]) }),
  Schema.Struct({ NoTx: U64 }),
  Schema.Struct({ RocksDBError: Schema.String }),
  Schema.Struct({ IOError: Schema.String })
])
export type KvErrorBody = typeof KvErrorBody.Type

/** `KvResponse`: `"Ok"`, `{"BeginTx":{"tx_id":u64}}`, `{"Get":key}` (value in the blob), `{"Err":…}`. */
export const KvResponse = Schema.Union([
  Schema.Literal("Ok"),
  Schema.Struct({ BeginTx: Schema.Struct({ tx_id: U64 }) }),
  Schema.Struct({ Get: Bytes }),
  Schema.Struct({ Err: KvErrorBody })
])
export type KvResponse = typeof KvResponse.Type

/** A refused kv request; `error` is the body the app receives inside `{"Err":…}`. */
export class KvFailure extends Schema.TaggedError<KvFailure>()("KvFailure", { error: KvErrorBody }) {}

/** Capability params issued by `kv:distro:sys`, in Kinode's key order. */
export const capParams = (kind: "read" | "write", pkg: PackageIdJson, db: string): string =>
  JSON.stringify({ kind, db_key: [{ package_name: pkg.package_name, publisher_node: pkg.publisher_node }, db] })
