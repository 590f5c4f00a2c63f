/**
 * From a PKI record to the multiaddrs that reach the node (identity-and-network §3.3):
 * a direct node at `/ip4/<ip>/tcp/<port>/p2p/<PeerId>`, an indirect one through each
 * of its routers as `<router's direct address>/p2p-circuit/p2p/<PeerId>`. The trailing
 * `/p2p/<PeerId>` makes libp2p refuse a remote that cannot prove the key the chain holds.
 */
import { type Multiaddr, multiaddr } from "@multiformats/multiaddr"
import type { NodeRecord } from "../../src/Identity.ts"
import { peerIdOfKey } from "./Keys.ts"

/** Why a record cannot be dialled. */
export type Unroutable = "NoKey" | "NoAddress" | "NoKnownRouter"

const ipPart = (ip: string): string | undefined => {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) return `/ip4/${ip}`
  if (ip.includes(":")) return `/ip6/${ip}`
  return undefined
}

/** The direct address of a record without the `/p2p` part (routers are reached at theirs). */
export const directAddress = (record: NodeRecord): string | undefined => {
  const port = record.ports["tcp"]
  const ip = record.ips[0]
  if (port === undefined || port === 0 || ip === undefined) return undefined
  const host = ipPart(ip)
  return host === undefined ? undefined : `${host}/tcp/${port}`
}

/**
 * Where to dial `record`'s node, routers shuffled (Kinode tries them in random order).
 * `lookup` finds routers' records; routers without a direct address are skipped.
 */
export const routesOf = (
  record: NodeRecord,
  lookup: (name: string) => NodeRecord | undefined,
  self: string
): ReadonlyArray<Multiaddr> | Unroutable => {
  const peer = peerIdOfKey(record.publicKey)
  if (peer === undefined) return "NoKey"
  const direct = directAddress(record)
  if (direct !== undefined) return [multiaddr(`${direct}/p2p/${peer}`)]
  if (record.routers.length === 0) return "NoAddress"
  const out: Array<Multiaddr> = []
  for (const name of shuffled(record.routers)) {
    if (name === self) continue
    const router = lookup(name)
    if (router === undefined) continue
    const routerPeer = peerIdOfKey(router.publicKey)
    const at = directAddress(router)
    if (routerPeer === undefined || at === undefined) continue
    out.push(multiaddr(`${at}/p2p/${routerPeer}/p2p-circuit/p2p/${peer}`))
  }
  return out.length === 0 ? "NoKnownRouter" : out
}

/** The listen address that reserves a slot on a router: `<router>/p2p/<id>/p2p-circuit`. */
export const reservationAddress = (router: NodeRecord): Multiaddr | undefined => {
  const routerPeer = peerIdOfKey(router.publicKey)
  const at = directAddress(router)
  return routerPeer === undefined || at === undefined ? undefined : multiaddr(`${at}/p2p/${routerPeer}/p2p-circuit`)
}

const shuffled = <A>(items: ReadonlyArray<A>): Array<A> => {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}
