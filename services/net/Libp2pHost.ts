/**
 * The libp2p node under `net`, configured per role (identity-and-network §3.4, §3.5):
 *
 * - every node: TCP, Noise, Yamux, identify, ping, and the circuit transport (needed to
 *   dial indirect nodes through their routers);
 * - a direct node listens on its registered `~ip`/`~tcp-port` (failing to bind is fatal:
 *   the chain sends peers there); it is also a router for the nodes that list it in their
 *   `~routers`, with no relay limits (the default 2 min / 128 KiB cut real messages);
 * - an indirect node listens nowhere itself and reserves a slot on its routers (the
 *   re-listen loop in `NetLibp2p.ts` adds routers as they appear or come back).
 *
 * The gater refuses, before any stream opens, peers whose key no PKI record holds, and
 * relay reservations from nodes that do not list this node as a router.
 */
import { noise } from "@chainsafe/libp2p-noise"
import { yamux } from "@chainsafe/libp2p-yamux"
import { circuitRelayServer, circuitRelayTransport } from "@libp2p/circuit-relay-v2"
import { identify } from "@libp2p/identify"
import { FaultTolerance, type Libp2p, type PeerId, type PrivateKey } from "@libp2p/interface"
import { ping } from "@libp2p/ping"
import { tcp } from "@libp2p/tcp"
import { Effect, Schema } from "effect"
import { createLibp2p } from "libp2p"

export interface HostOptions {
  readonly privateKey: PrivateKey
  /** `/ip4/<ip>/tcp/<port>` for a direct node; none for an indirect one. */
  readonly listen: ReadonlyArray<string>
  /** Relay slots for nodes that list this one as a router; 0: relays for nobody. */
  readonly maxPassthroughs: number
  readonly dialTimeoutMs: number
  /** Whether a connection from this key may be accepted (a PKI record holds it). */
  readonly knownPeer: (peer: PeerId) => boolean
  /** Whether this key's node lists us among its `~routers`. */
  readonly routesThroughUs: (peer: PeerId) => boolean
}

export class ListenFailed extends Schema.TaggedError<ListenFailed>()("ListenFailed", {
  addresses: Schema.Array(Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot listen on ${this.addresses.join(", ")}: ${this.reason}`
  }
}

/** A started libp2p node, stopped when the scope closes. */
export const makeHost = (options: HostOptions) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        createLibp2p({
          privateKey: options.privateKey,
          addresses: { listen: [...options.listen] },
          transports: [tcp(), circuitRelayTransport({ reservationCompletionTimeout: options.dialTimeoutMs })],
          connectionEncrypters: [noise()],
          streamMuxers: [yamux()],
          connectionGater: {
            denyInboundEncryptedConnection: (peer) => !options.knownPeer(peer),
            denyInboundRelayReservation: (peer) => !options.routesThroughUs(peer)
          },
          connectionManager: { dialTimeout: options.dialTimeoutMs, inboundUpgradeTimeout: options.dialTimeoutMs },
          transportManager: { faultTolerance: options.listen.length > 0 ? FaultTolerance.FATAL_ALL : FaultTolerance.NO_FATAL },
          services: {
            identify: identify(),
            ping: ping(),
            ...(options.maxPassthroughs > 0
              ? {
                relay: circuitRelayServer({
                  reservations: { maxReservations: options.maxPassthroughs, applyDefaultLimit: false }
                })
              }
              : {})
          }
        }) as Promise<Libp2p>,
      catch: (e) => new ListenFailed({ addresses: [...options.listen], reason: e instanceof Error ? e.message : String(e) })
    }),
    (node) => Effect.promise(() => Promise.resolve(node.stop())).pipe(Effect.timeout("5 seconds"), Effect.ignore)
  )
