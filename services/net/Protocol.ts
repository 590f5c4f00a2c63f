/**
 * `net:distro:sys`'s protocol (identity-and-network §2.7, kinode-semantics §6.8):
 * `NetAction` requests and `NetResponse`s as MessagePack bodies in Kinode's serde shapes
 * (unit variants as strings, data variants as `{Name: value}`). Kinode's Rust apps encode
 * structs as arrays (rmp-serde's default); `fromRmp` turns those into the objects these
 * Schemas read, so both forms are accepted. Replies are written with maps, which
 * rmp-serde reads as well.
 */
import { Schema } from "effect"

/** Kinode's `KnsUpdate`: a node's PKI record as the indexer sends it. */
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
  Schema.Struct({ Direct: Schema.Struct({ ip: Schema.String, ports: Schema.Record(Schema.String, Schema.Number) }) }),
  Schema.Struct({
    Both: Schema.Struct({ ip: Schema.String, ports: Schema.Record(Schema.String, Schema.Number), routers: Schema.Array(Schema.String) })
  })
])

/** Kinode's `Identity`: a peer as `GetPeers`/`GetPeer` report it. */
export const Identity = Schema.Struct({
  name: Schema.String,
  networking_key: Schema.String,
  routing: NodeRouting
})
export type Identity = typeof Identity.Type

/** A signature as bytes (bin) or, as rmp-serde writes `Vec<u8>`, an array of integers. */
const Bytes = Schema.Union([Schema.Uint8Array, Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 })))])

export const NetAction = Schema.Union([
  Schema.Struct({ ConnectionRequest: Schema.String }),
  Schema.Struct({ KnsUpdate }),
  Schema.Struct({ KnsBatchUpdate: Schema.Array(KnsUpdate) }),
  Schema.Literals(["GetPeers", "GetDiagnostics", "Sign"]),
  Schema.Struct({ GetPeer: Schema.String }),
  Schema.Struct({ Verify: Schema.Struct({ from: Schema.String, signature: Bytes }) })
])
export type NetAction = typeof NetAction.Type

export const NetResponse = Schema.Union([
  Schema.Struct({ Accepted: Schema.String }),
  Schema.Struct({ Rejected: Schema.String }),
  Schema.Literal("Signed"),
  Schema.Struct({ Peers: Schema.Array(Identity) }),
  Schema.Struct({ Peer: Schema.NullOr(Identity) }),
  Schema.Struct({ Diagnostics: Schema.String }),
  Schema.Struct({ Verified: Schema.Boolean })
])
export type NetResponse = typeof NetResponse.Type

const kns = (v: unknown): unknown =>
  Array.isArray(v) && v.length === 5 ? { name: v[0], public_key: v[1], ips: v[2], ports: v[3], routers: v[4] } : v

/** rmp-serde's struct-as-array forms → the map forms the Schemas read. */
export const fromRmp = (value: unknown): unknown => {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value
  const entries = Object.entries(value as Record<string, unknown>)
  if (entries.length !== 1) return value
  const [tag, inner] = entries[0]!
  switch (tag) {
    case "KnsUpdate":
      return { KnsUpdate: kns(inner) }
    case "KnsBatchUpdate":
      return { KnsBatchUpdate: Array.isArray(inner) ? inner.map(kns) : inner }
    case "Verify":
      return { Verify: Array.isArray(inner) && inner.length === 2 ? { from: inner[0], signature: inner[1] } : inner }
    default:
      return value
  }
}
