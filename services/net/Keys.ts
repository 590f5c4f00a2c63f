/**
 * The networking key as libp2p sees it: the node's Ed25519 `~net-key` is its libp2p
 * identity, so a PeerId proven in the Noise handshake is a proof of the key the chain
 * holds for a name (identity-and-network §3.2).
 */
import { privateKeyFromRaw, publicKeyFromRaw } from "@libp2p/crypto/keys"
import type { PrivateKey } from "@libp2p/interface"
import { peerIdFromPublicKey } from "@libp2p/peer-id"

/** libp2p's private key from the 32-byte seed and public key (64 raw bytes: a 32-byte input would be secp256k1). */
export const libp2pKeyOf = (seed: Uint8Array, publicKey: Uint8Array): PrivateKey => {
  const raw = new Uint8Array(64)
  raw.set(seed, 0)
  raw.set(publicKey, 32)
  return privateKeyFromRaw(raw)
}

const peerIds = new Map<string, string>()

/**
 * The PeerId text (`12D3KooW…`) of a `~net-key` given as hex (with or without `0x`);
 * undefined for a key that is not 32 bytes. Memoized: every send and handshake asks.
 */
export const peerIdOfKey = (hex: string): string | undefined => {
  const clean = hex.startsWith("0x") ? hex.slice(2) : hex
  let id = peerIds.get(clean)
  if (id !== undefined) return id
  if (!/^[0-9a-fA-F]{64}$/.test(clean)) return undefined
  id = peerIdFromPublicKey(publicKeyFromRaw(Buffer.from(clean, "hex"))).toString()
  if (peerIds.size > 65536) peerIds.clear()
  peerIds.set(clean, id)
  return id
}
