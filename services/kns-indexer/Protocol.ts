/**
 * `kns-indexer:kns-indexer:sys` wire protocol (identity-and-network §1.8): the serde JSON
 * shapes Kinode's `kns-indexer:sys-v0` WIT interface gives apps, externally tagged.
 *
 * - `{"NamehashToName":{"hash","block"}}` → `{"Name": string | null}`
 * - `{"NodeInfo":{"name","block"}}`       → `{"NodeInfo": WitKnsUpdate | null}`
 * - `{"GetState":{"block"}}`              → `{"GetState": WitState}`
 * - `"Reset"`                             → `{"Reset": "Success" | {"Err": "NoRootCap" | {"DbError": string}}}`
 *
 * `block` is a u64 Kinode accepts and ignores; so do we. A body that is not one of these
 * gets `{"Err":{"BadRequest": reason}}` (Kinode logs and drops it; the requester waits
 * for its timeout).
 *
 * Our addition: `"Status"` → `{"Status": {status, last_block, final_block, head?, since?,
 * failures?, error?}}`, whether the indexer is following the chain or cannot reach it.
 */
import { Schema } from "effect"
import { U64 } from "../../src/Json.ts"

export const NamehashToName = Schema.Struct({
  NamehashToName: Schema.Struct({ hash: Schema.String, block: U64 })
})
export const NodeInfo = Schema.Struct({
  NodeInfo: Schema.Struct({ name: Schema.String, block: U64 })
})
export const GetState = Schema.Struct({
  GetState: Schema.Struct({ block: U64 })
})
export const Reset = Schema.Literal("Reset")
export const Status = Schema.Literal("Status")

export const IndexerRequest = Schema.Union([NamehashToName, NodeInfo, GetState, Reset, Status])
export type IndexerRequest = typeof IndexerRequest.Type

/** WIT `kns-update` as serde prints it: `ports` as `[label, port]` pairs (sorted by label). */
export const WitKnsUpdate = Schema.Struct({
  name: Schema.String,
  public_key: Schema.String,
  ips: Schema.Array(Schema.String),
  ports: Schema.Array(Schema.Tuple([Schema.String, Schema.Number])),
  routers: Schema.Array(Schema.String)
})
export type WitKnsUpdate = typeof WitKnsUpdate.Type

/** WIT `state`: the contract address as its 20 bytes, names and nodes as pairs. */
export const WitState = Schema.Struct({
  chain_id: Schema.Number,
  contract_address: Schema.Array(Schema.Number),
  names: Schema.Array(Schema.Tuple([Schema.String, Schema.String])),
  nodes: Schema.Array(Schema.Tuple([Schema.String, WitKnsUpdate])),
  last_block: Schema.Number
})
export type WitState = typeof WitState.Type

export const ResetError = Schema.Union([
  Schema.Literal("NoRootCap"),
  Schema.Struct({ DbError: Schema.String })
])
export type ResetError = typeof ResetError.Type

/** The follower's state (our addition). */
export const WitStatus = Schema.Struct({
  status: Schema.Literals(["Starting", "CatchingUp", "Live", "Unreachable"]),
  last_block: Schema.Number,
  final_block: Schema.Number,
  head: Schema.optional(Schema.Number),
  /** Unreachable: epoch ms of the first failure, failed rounds, the last error. */
  since: Schema.optional(Schema.Number),
  failures: Schema.optional(Schema.Number),
  error: Schema.optional(Schema.String)
})
export type WitStatus = typeof WitStatus.Type

/** A request we could not decode (our addition; Kinode drops it silently). */
export const IndexerError = Schema.Struct({ Err: Schema.Struct({ BadRequest: Schema.String }) })
export type IndexerError = typeof IndexerError.Type

export const IndexerResponse = Schema.Union([
  Schema.Struct({ Name: Schema.NullOr(Schema.String) }),
  Schema.Struct({ NodeInfo: Schema.NullOr(WitKnsUpdate) }),
  Schema.Struct({ GetState: WitState }),
  Schema.Struct({ Reset: Schema.Union([Schema.Literal("Success"), Schema.Struct({ Err: ResetError })]) }),
  Schema.Struct({ Status: WitStatus }),
  IndexerError
])
export type IndexerResponse = typeof IndexerResponse.Type
