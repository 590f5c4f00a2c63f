/**
 * The identity port: who this node is and what it knows of other nodes.
 *
 * - `name` and the networking key (Ed25519): the kernel signs capabilities with it,
 *   `net` proves it to peers. The key never leaves the layer that holds it.
 * - The PKI: for each known node name, its `~net-key` and how to reach it (direct
 *   `~ip` + ports, or indirect through `~routers`), as Kinode's `KnsUpdate` holds it.
 *   The KNS indexer fills it; `net` reads it and is told of every change.
 *
 * Layers: an ephemeral key with a given name (tests), a key file under `--home`,
 * the chain-backed identity (`services/identity`).
 */
import { Context, Schema } from "effect"

/** One node's PKI record, Kinode's `KnsUpdate` (§1.6): key as lowercase hex without `0x`. */
export class NodeRecord extends Schema.Class<NodeRecord>("NodeRecord")({
  name: Schema.String,
  publicKey: Schema.String,
  ips: Schema.Array(Schema.String),
  ports: Schema.Record(Schema.String, Schema.Number),
  routers: Schema.Array(Schema.String)
}) {}

/** Whether a record can be reached: a key plus (an ip and a port) or routers (Kinode's rule). */
export const isComplete = (r: NodeRecord): boolean =>
  r.publicKey !== "" && ((r.ips.length > 0 && Object.keys(r.ports).length > 0) || r.routers.length > 0)

export class Identity extends Context.Service<Identity, {
  /** This node's name (`alice.os`). */
  readonly name: string
  /** The raw 32-byte Ed25519 networking public key. */
  readonly publicKey: Uint8Array
  /** Ed25519 signature of `bytes` with the networking key (synchronous: it sits on send paths). */
  readonly sign: (bytes: Uint8Array) => Uint8Array
  /** Whether `signature` is this node's signature of `bytes`. */
  readonly verify: (bytes: Uint8Array, signature: Uint8Array) => boolean
  /** The PKI record of `name`, if known. */
  readonly lookup: (name: string) => NodeRecord | undefined
  /** Replaces the whole record of `record.name` (Kinode's `KnsUpdate` semantics). */
  readonly upsert: (record: NodeRecord) => void
  /** Forgets a name (a reorg removed it). */
  readonly remove: (name: string) => void
  /** Every known record. */
  readonly records: () => ReadonlyArray<NodeRecord>
  /** Calls `listener` on every upsert and removal (record undefined); returns the unsubscribe. */
  readonly subscribe: (listener: (name: string, record: NodeRecord | undefined) => void) => () => void
}>()("kernel/Identity") {}
