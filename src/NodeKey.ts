/**
 * The node's Ed25519 networking key, as a port: the kernel signs capabilities with
 * it and verifies the ones presented to it. `services/identity` provides the
 * implementation (a key file under `--home`).
 */
import { Context } from "effect"

export class NodeKey extends Context.Service<NodeKey, {
  readonly publicKey: Uint8Array
  /** Ed25519 signature of `bytes` (synchronous: signing sits on the send path). */
  readonly sign: (bytes: Uint8Array) => Uint8Array
  /** Whether `signature` is this node's signature of `bytes`. */
  readonly verify: (bytes: Uint8Array, signature: Uint8Array) => boolean
}>()("kernel/NodeKey") {}
