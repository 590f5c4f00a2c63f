/**
 * `sqlite:distro:sys` wire protocol (kinode-semantics §6.4): exact serde JSON shapes.
 *
 * Statement parameters travel in the request blob as a JSON array. Each element:
 * - `null` -> NULL; a boolean -> INTEGER 1/0 (as rusqlite binds it);
 * - an integral number -> INTEGER (i64, exact beyond 2^53 via BigInt-safe JSON);
 *   a fractional number -> REAL;
 * - a string -> TEXT, always. Kinode guesses "decodes as base64 => BLOB", which turns
 *   `"test"` into a blob [quirk]; here text stays text;
 * - a BLOB is explicit: `{"Blob": [0-255, ...]}` (the byte-array convention of §0)
 *   or `{"Blob": "<standard base64>"}`.
 * Anything else is `InvalidParameters`. Query results come back as a JSON array of
 * `{column: value}` objects, BLOBs as standard base64 strings (as Kinode does).
 */
import { Schema } from "effect"
import { U64 } from "../../src/Json.ts"

export const PackageIdJson = Schema.Struct({ package_name: Schema.String, publisher_node: Schema.String })
export type PackageIdJson = typeof PackageIdJson.Type

const TxId = Schema.optional(Schema.NullOr(U64))

export const SqliteAction = Schema.Union([
  Schema.Literals(["Open", "RemoveDb", "BeginTx"]),
  Schema.Struct({ Write: Schema.Struct({ statement: Schema.String, tx_id: TxId }) }),
  Schema.Struct({ Query: Schema.String }),
  Schema.Struct({ Commit: Schema.Struct({ tx_id: U64 }) })
])
export type SqliteAction = typeof SqliteAction.Type

export const SqliteRequest = Schema.Struct({ package_id: PackageIdJson, db: Schema.String, action: SqliteAction })
export type SqliteRequest = typeof SqliteRequest.Type

export const SqliteErrorBody = Schema.Union([
  Schema.Literals([
    "NoWriteCap",
    "NoReadCap",
    "MismatchingPackageId",
    "AddCapFailed",
    "NotAWriteKeyword",
    "NotAReadKeyword",
    "InvalidParameters",
    "MalformedRequest"
  ]),
  Schema.Struct({ NoDb: Schema.Tuple([PackageIdJson, Schema.String]) }),
  Schema.Struct({ NoTx: U64 }),
  Schema.Struct({ RusqliteError: Schema.String }),
  Schema.Struct({ IOError: Schema.String })
])
export type SqliteErrorBody = typeof SqliteErrorBody.Type

/** `"Ok"`, `"Read"` (rows in the blob), `{"BeginTx":{"tx_id":u64}}` or `{"Err":…}`. */
export const SqliteResponse = Schema.Union([
  Schema.Literals(["Ok", "Read"]),
  Schema.Struct({ BeginTx: Schema.Struct({ tx_id: U64 }) }),
  Schema.Struct({ Err: SqliteErrorBody })
])
export type SqliteResponse = typeof SqliteResponse.Type

/** One statement parameter, as the blob's JSON array carries it. */
export const SqlParam = Schema.Union([
  Schema.Null,
  Schema.Boolean,
  Schema.Number,
  Schema.BigInt,
  Schema.String,
  Schema.Struct({ Blob: Schema.Union([Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 }))), Schema.String]) })
])
export type SqlParam = typeof SqlParam.Type
export const SqlParams = Schema.Array(SqlParam)

export class SqliteFailure extends Schema.TaggedError<SqliteFailure>()("SqliteFailure", { error: SqliteErrorBody }) {}

/** Capability params issued by `sqlite:distro:sys` (same shape as kv's). */
export const capParams = (kind: "read" | "write", pkg: PackageIdJson, db: string): string =>
  JSON.stringify({ kind, db_key: [{ package_name: pkg.package_name, publisher_node: pkg.publisher_node }, db] })

/** First-word gates (Kinode's lists). */
export const READ_KEYWORDS: ReadonlySet<string> = new Set([
  "ANALYZE", "ATTACH", "BEGIN", "EXPLAIN", "PRAGMA", "SELECT", "VALUES", "WITH"
])
export const WRITE_KEYWORDS: ReadonlySet<string> = new Set([
  "ALTER", "ANALYZE", "COMMIT", "CREATE", "DELETE", "DETACH", "DROP", "END", "INSERT", "REINDEX",
  "RELEASE", "RENAME", "REPLACE", "ROLLBACK", "SAVEPOINT", "UPDATE", "VACUUM"
])
