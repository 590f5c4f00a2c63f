/**
 * The `Net` port over libp2p: the node's networking key is its libp2p identity, peers
 * are found in the PKI (`Identity`), messages go through the peer table (`Peers.ts`).
 *
 * The layer gives the kernel `Net` and gives the `net:distro:sys` process `NetStatus`
 * (peers, relay clients, listen addresses, dialling on request). It owns:
 * - the libp2p node (stopped when the layer's scope closes);
 * - the inbound queue the kernel takes from (`Net.inbound`);
 * - the re-listen loop of an indirect node: every 4 s (Kinode's period) each router
 *   that is known and has no reservation from us is asked for one, so a router that
 *   appears late or comes back is used again without a restart;
 * - the idle sweep, and the PKI subscription that closes peers whose key changed.
 */
import type { Libp2p, PeerId } from "@libp2p/interface"
import type { Multiaddr } from "@multiformats/multiaddr"
import { Context, Effect, Layer, Schedule } from "effect"
import { Identity } from "../../src/Identity.ts"
import { Mailbox } from "../../src/Mailbox.ts"
import { Net, type NetInbound } from "../../src/Net.ts"
import { Printout } from "../../src/Printout.ts"
import { libp2pKeyOf, peerIdOfKey } from "./Keys.ts"
import { makeHost } from "./Libp2pHost.ts"
import { defaultLimits, makePeerTable, type NetLimits, type Peer, type PeerView } from "./Peers.ts"
import { reservationAddress } from "./Routes.ts"
import { PROTOCOL } from "./Wire.ts"

/** How this node is reached, as registered on chain. */
export type NetReach =
  | { readonly _tag: "Direct"; readonly ip: string; readonly tcpPort: number }
  | { readonly _tag: "Indirect"; readonly routers: ReadonlyArray<string> }

export interface NetOptions {
  /** The networking key's 32-byte seed (its public half is `Identity.publicKey`). */
  readonly seed: Uint8Array
  /** Undefined: the chain could not say; the node dials out but cannot be reached. */
  readonly reach: NetReach | undefined
  /** Relay slots a direct node offers the nodes that list it as a router (0: none). */
  readonly maxPassthroughs?: number
  readonly limits?: Partial<NetLimits>
}

/** What `net:distro:sys` reads and asks of the network. */
export class NetStatus extends Context.Service<NetStatus, {
  readonly reach: NetReach | undefined
  readonly maxPassthroughs: number
  readonly limits: NetLimits
  readonly peers: () => ReadonlyArray<PeerView>
  /** Names of the nodes holding a relay slot here. */
  readonly routingFor: () => ReadonlySet<string>
  readonly listenAddresses: () => ReadonlyArray<string>
  /** Opens a connection to `name` ahead of traffic (a router's `ConnectionRequest`). */
  readonly connect: (name: string) => void
}>()("services/net/NetStatus") {}

const RELISTEN_EVERY = "4 seconds"

const listenAddressOf = (reach: NetReach | undefined): ReadonlyArray<string> => {
  if (reach?._tag !== "Direct") return []
  const v6 = reach.ip.includes(":")
  const loopback = reach.ip === "127.0.0.1" || reach.ip === "::1"
  const host = loopback ? reach.ip : v6 ? "::" : "0.0.0.0"
  return [`/${v6 ? "ip6" : "ip4"}/${host}/tcp/${reach.tcpPort}`]
}

/** The transport manager is not in libp2p's public type; re-listening needs it (§3.5). */
const relisten = (node: Libp2p, addresses: ReadonlyArray<Multiaddr>) =>
  (node as unknown as { components: { transportManager: { listen(a: Array<Multiaddr>): Promise<void> } } })
    .components.transportManager.listen([...addresses])

export const NetLibp2p = (options: NetOptions) =>
  Layer.effectContext(Effect.gen(function*() {
    const identity = yield* Identity
    const printout = yield* Printout
    const print = (level: number, text: string) => printout.print(level, "net", text)
    const limits: NetLimits = { ...defaultLimits, ...options.limits }
    const maxPassthroughs = options.reach?._tag === "Direct" ? options.maxPassthroughs ?? 64 : 0

    // PeerId → names whose chain key it is: who may connect, and who routes through us.
    const namesOf = (peer: PeerId): ReadonlyArray<string> => {
      const id = peer.toString()
      return identity.records().filter((r) => peerIdOfKey(r.publicKey) === id).map((r) => r.name)
    }
    const routing = new Map<string, ReadonlyArray<string>>() // PeerId → names holding a relay slot here
    const routingFor = () => new Set([...routing.values()].flat())

    const node = yield* makeHost({
      privateKey: libp2pKeyOf(options.seed, identity.publicKey),
      listen: listenAddressOf(options.reach),
      maxPassthroughs,
      dialTimeoutMs: limits.dialTimeoutMs,
      knownPeer: (peer) => namesOf(peer).length > 0,
      routesThroughUs: (peer) => {
        const names = namesOf(peer).filter((n) => identity.lookup(n)?.routers.includes(identity.name) === true)
        if (names.length === 0) {
          print(1, `refused a relay reservation from ${peer}: no node with that key lists ${identity.name} as a router`)
          return false
        }
        routing.set(peer.toString(), names)
        print(2, `routing for ${names.join(", ")}`)
        return true
      }
    })
    node.addEventListener("peer:disconnect", (event) => void routing.delete(event.detail.toString()))

    // What arrived, for the kernel's fiber. A kernel mailbox (unbounded through
    // `offerInternal`: each peer's share is bounded by its pause) wakes the fiber at once.
    const queue = new Mailbox<readonly [NetInbound, Peer | undefined]>(Number.MAX_SAFE_INTEGER)
    const table = makePeerTable({
      node,
      identity,
      limits,
      print,
      deliver: (item, from) => void queue.offerInternal([item, from]),
      routingFor,
      keepConnection: (name) =>
        routingFor().has(name) || (options.reach?._tag === "Indirect" && options.reach.routers.includes(name))
    })
    yield* Effect.promise(() =>
      node.handle(PROTOCOL, (stream, connection) => table.accept(stream, connection), {
        runOnLimitedConnection: true,
        maxInboundStreams: 64,
        maxOutboundStreams: 64
      })
    )
    const unsubscribe = identity.subscribe(table.keyChanged)
    yield* Effect.addFinalizer(() => Effect.sync(unsubscribe))

    if (options.reach?._tag === "Indirect") {
      const routers = options.reach.routers
      const reserved = (routerPeer: string) =>
        node.getMultiaddrs().some((ma) => ma.toString().includes(`/p2p/${routerPeer}/p2p-circuit`))
      const relistenOnce = Effect.forEach(routers, (name) => {
        const record = identity.lookup(name)
        const at = record === undefined ? undefined : reservationAddress(record)
        const routerPeer = record === undefined ? undefined : peerIdOfKey(record.publicKey)
        if (at === undefined || routerPeer === undefined || reserved(routerPeer)) return Effect.void
        return Effect.tryPromise(() => relisten(node, [at])).pipe(
          Effect.timeout(limits.dialTimeoutMs),
          Effect.tap(() => Effect.sync(() => print(1, `reserved a relay slot on ${name}`))),
          Effect.catchCause(() => Effect.sync(() => print(2, `router ${name} did not take a reservation; trying again in 4 s`)))
        )
      }, { discard: true, concurrency: "unbounded" })
      yield* Effect.forkScoped(Effect.repeat(relistenOnce, Schedule.spaced(RELISTEN_EVERY)))
    }
    if (limits.idleMs > 0) {
      yield* Effect.forkScoped(Effect.repeat(Effect.sync(table.sweepIdle), Schedule.spaced(Math.max(1000, limits.idleMs / 4))))
    }

    const listening = node.getMultiaddrs().map((m) => m.toString())
    print(1, listening.length > 0 ? `listening on ${listening.join(", ")}` : "listening nowhere yet (indirect: through routers)")

    const takeAll = () => {
      const items = queue.drain()
      const out: Array<NetInbound> = new Array(items.length)
      for (let i = 0; i < items.length; i++) {
        const [item, peer] = items[i]!
        if (peer !== undefined) table.taken(peer)
        out[i] = item
      }
      return out
    }
    const inbound: Effect.Effect<ReadonlyArray<NetInbound>> = Effect.suspend(() =>
      queue.size > 0 ? Effect.sync(takeAll) : Effect.flatMap(queue.awaitItem, () => Effect.sync(takeAll))
    )

    const net = Net.of({
      send: table.send,
      inbound
    })
    const status = NetStatus.of({
      reach: options.reach,
      maxPassthroughs,
      limits,
      peers: table.view,
      routingFor,
      listenAddresses: () => node.getMultiaddrs().map((m) => m.toString()),
      connect: (name) => table.connect(name)
    })
    return Context.make(Net, net).pipe(Context.add(NetStatus, status))
  }))
