/**
 * `net:distro:sys`'s protocol (identity-and-network §2.7): `NetAction` requests and
 * `NetResponse`s, MessagePack bodies in Kinode's serde shapes (unit variants as
 * strings, data variants as `{Name: value}`).
 */
import { Schema } from "effect"

/** Kinode's `KnsUpdate`: a node's PKI record as the indexer sends it (key: hex, no `0x`). */
export const KnsUpdate = Schema.Struct({
  name: Schema.String,
  public_key: Schema.String,
  ips: Schema.Array(Schema.String),
  ports: Schema.Record(Schema.String, Schema.Number),
  routers: Schema.Array(Schema.String)
})
export type KnsUpdate = typeof KnsUpdate.Type

export const NodeRouting = Schema.Union([
  Schema.Struct({ Routers: Schema.Array(Schema.String) }),
  Schema.Struct({ Direct: Schema.Struct({ ip: Schema.String, ports: Schema.Record(Schema.String, Schema.Number) }) })
])

export const Identity = Schema.Struct({
  name: Schema.String,
  networking_key: Schema.String,
  routing: NodeRouting
})

export const NetAction = Schema.Union([
  Schema.Struct({ ConnectionRequest: Schema.String }),
  Schema.Struct({ KnsUpdate }),
  Schema.Struct({ KnsBatchUpdate: Schema.Array(KnsUpdate) }),
  Schema.Literals(["GetPeers", "GetDiagnostics", "Sign"]),
  Schema.Struct({ GetPeer: Schema.String }),
  Schema.Struct({ Verify: Schema.Struct({ from: Schema.String, signature: Schema.Array(Schema.Number) }) })
])
export type NetAction = typeof NetAction.Type

export const NetResponse = Schema.Union([
  Schema.Literals(["Accepted", "Rejected", "Signed"]),
  Schema.Struct({ Peers: Schema.Array(Identity) }),
  Schema.Struct({ Peer: Schema.NullOr(Identity) }),
  Schema.Struct({ Diagnostics: Schema.String }),
  Schema.Struct({ Verified: Schema.Boolean })
])
export type NetResponse = typeof NetResponse.Type
