/**
 * The peer table: one entry per node this node talks to, and everything that happens on
 * their streams. Plain JavaScript on purpose: `send` sits on the send path of every
 * remote message and answers synchronously (the `Net` port's contract).
 *
 * - **Out**: a message for `bob.os` is framed at once (an oversized one is refused), then
 *   written to bob's stream, or queued while the stream is being opened. One stream per
 *   peer carries a sender's messages, so they arrive in the order they were sent. A dial
 *   that fails or takes longer than the dial timeout fails every queued message
 *   (`offline`: the kernel hands that to each waiting requester).
 * - **In**: the dialler's first frame names it (`Hello`); the name's key on the chain
 *   must be the key the peer proved in Noise, else the connection closes. After that every
 *   frame must be a well-formed message from that node to this one; anything else closes
 *   the connection with one log line. Capabilities claiming this node as issuer must carry
 *   this node's valid signature (others cannot be checked here and pass as they are).
 * - **Fairness**: each peer may have at most `maxQueuedPerPeer` messages waiting for the
 *   kernel; beyond that its streams are paused (TCP back-pressure reaches the sender), so
 *   a flood from one peer cannot starve the others.
 * - **Limits**: at most `maxPeers` peers; a new one evicts the least recently active.
 *   Peers silent for `idleMs` are closed (no hard lifetime: Kinode's 30-minute cut of busy
 *   connections is a [quirk]). A changed or removed key closes the peer's connection.
 */
import type { Connection, Libp2p, PeerId, Stream } from "@libp2p/interface"
import { peerIdFromString } from "@libp2p/peer-id"
import { Result } from "effect"
import { signingBytes } from "../../src/Capabilities.ts"
import type { Identity, NodeRecord } from "../../src/Identity.ts"
import { isComplete } from "../../src/Identity.ts"
import type { KernelMessage, SendErrorKind, SignedCapability } from "../../src/Message.ts"
import type { NetInbound } from "../../src/Net.ts"
import type { RefusalReason } from "../../src/ProcessApi.ts"
import { peerIdOfKey } from "./Keys.ts"
import { routesOf } from "./Routes.ts"
import {
  decodeHelloFrame,
  decodeMessageFrame,
  describeFault,
  encodeFrame,
  encodeHello,
  type FrameFault,
  makeFrameReader,
  MAX_FRAME_BYTES,
  PROTOCOL
} from "./Wire.ts"

export interface NetLimits {
  /** Peers kept connected at once; a new one evicts the least recently active (Kinode: 32). */
  readonly maxPeers: number
  /** A peer with no traffic for this long is disconnected (0: never). */
  readonly idleMs: number
  /** Dial plus handshake (Kinode: 5 s). */
  readonly dialTimeoutMs: number
  /** Messages from one peer waiting for the kernel before its streams are paused. */
  readonly maxQueuedPerPeer: number
}

export const defaultLimits: NetLimits = {
  maxPeers: 32,
  idleMs: 30 * 60 * 1000,
  dialTimeoutMs: 5000,
  maxQueuedPerPeer: 1024
}

interface Queued {
  readonly frame: Uint8Array
  readonly km: KernelMessage
}

export interface Peer {
  readonly name: string
  /** The PeerId its key gives, as the PKI held it when the peer was bound. */
  peerId: string
  /** The stream this node writes to the peer on. */
  out: Stream | undefined
  readonly streams: Set<Stream>
  /** Messages not yet handed to a stream: while dialling, or waiting for the stream to drain. */
  pending: Array<Queued>
  pendingBytes: number
  flushScheduled: boolean
  awaitingDrain: boolean
  dialing: boolean
  lastActive: number
  /** Messages from this peer not yet taken by the kernel. */
  waiting: number
  paused: boolean
}

export interface PeerView {
  readonly name: string
  readonly secondsSinceActive: number
  /** The connection goes through a relay (this node or the peer is indirect). */
  readonly relayed: boolean
  /** The peer reserved a relay slot on this node (this node routes for it). */
  readonly routing: boolean
}

export interface PeerTableDeps {
  readonly node: Libp2p
  readonly identity: Identity["Service"]
  readonly limits: NetLimits
  readonly print: (level: number, text: string) => void
  /** Hands an inbound item to the kernel's queue. */
  readonly deliver: (item: NetInbound, from: Peer | undefined) => void
  /** Names of the nodes that reserved a relay slot here. */
  readonly routingFor: () => ReadonlySet<string>
  /** Whether the connection to this node carries a relay slot (ours on it, or its on us). */
  readonly keepConnection: (name: string) => boolean
}

/** Small frames are handed to a stream together up to this many bytes. */
const BATCH_BYTES = 256 * 1024
/** Bytes waiting for one peer (dialling, or a slow reader) beyond which sends are refused `MailboxFull`. */
const OUTBOX_BYTES = 2 * MAX_FRAME_BYTES

const concatFrames = (queued: ReadonlyArray<Queued>, from: number, to: number, bytes: number): Uint8Array => {
  const out = new Uint8Array(bytes)
  let at = 0
  for (let k = from; k < to; k++) {
    out.set(queued[k]!.frame, at)
    at += queued[k]!.frame.byteLength
  }
  return out
}

const readChunks = (data: Uint8Array | { subarray(): Uint8Array }): Uint8Array =>
  data instanceof Uint8Array ? data : data.subarray()

export const makePeerTable = (deps: PeerTableDeps) => {
  const { identity, limits, print } = deps
  const self = identity.name
  const peers = new Map<string, Peer>()
  const maxWriteBuffer = 4 * MAX_FRAME_BYTES
  // A stream paused for fairness still receives what yamux's window already allowed, up
  // to yamux's largest stream window (16 MiB by default); its read buffer must hold that,
  // or libp2p resets the stream (read buffer default: 4 MiB).
  const maxReadBuffer = 16 * 1024 * 1024

  const now = () => performance.now()

  const newPeer = (name: string, peerId: string): Peer => {
    if (peers.size >= limits.maxPeers) evictLeastActive()
    const peer: Peer = {
      name,
      peerId,
      out: undefined,
      streams: new Set(),
      pending: [],
      pendingBytes: 0,
      flushScheduled: false,
      awaitingDrain: false,
      dialing: false,
      lastActive: now(),
      waiting: 0,
      paused: false
    }
    peers.set(name, peer)
    return peer
  }

  const evictLeastActive = () => {
    let oldest: Peer | undefined
    for (const p of peers.values()) {
      if (p.dialing || p.pending.length > 0) continue
      if (oldest === undefined || p.lastActive < oldest.lastActive) oldest = p
    }
    if (oldest !== undefined) {
      disconnect(oldest, `evicted: more than ${limits.maxPeers} peers, least recently active`, 1)
      release(oldest)
    }
  }

  /** Fails what waits for `peer` and forgets it; its streams are closed. */
  const disconnect = (peer: Peer, why: string, level: number) => {
    if (peers.get(peer.name) === peer) peers.delete(peer.name)
    print(level, `${peer.name}: disconnected (${why})`)
    failPending(peer, "offline")
    for (const s of peer.streams) s.abort(new Error(why))
    peer.streams.clear()
    peer.out = undefined
  }

  const connectionsOf = (peer: Peer) => deps.node.getConnections(peerIdFromString(peer.peerId))

  /** Closes the libp2p connection of a peer that is dropped, unless a relay slot rides on it. */
  const release = (peer: Peer) => {
    if (deps.keepConnection(peer.name)) return
    deps.node.hangUp(peerIdFromString(peer.peerId)).catch(() => undefined)
  }

  const failPending = (peer: Peer, kind: SendErrorKind) => {
    const pending = peer.pending
    peer.pending = []
    peer.pendingBytes = 0
    failQueued(pending, kind)
  }

  // Only a requester waiting for an answer can be told; other messages are lost, as in Kinode.
  const failQueued = (queued: ReadonlyArray<Queued>, kind: SendErrorKind) => {
    for (const q of queued) {
      if (q.km.message._tag === "Request" && q.km.message.expectsResponse !== undefined) {
        deps.deliver({ _tag: "Undelivered", message: q.km, kind }, undefined)
      }
    }
  }

  const hangUp = (peer: Peer, fault: string) => {
    print(0, `${peer.name}: connection closed: ${fault}`)
    const connections = connectionsOf(peer)
    disconnect(peer, fault, 2)
    for (const c of connections) c.abort(new Error(fault))
  }

  // ---- inbound -----------------------------------------------------------------

  /** Checks a message from `peer` and hands it on; a fault closes the connection. */
  const receive = (peer: Peer, payload: Uint8Array): string | undefined => {
    const decoded = decodeMessageFrame(payload)
    if (Result.isFailure(decoded)) return describeFault(decoded.failure)
    let km = decoded.success
    if (km.source.node !== peer.name) return `message claims source node ${km.source.node}, the peer is ${peer.name}`
    if (km.target.node !== self) return `message for ${km.target.node} sent to ${self}`
    const caps = km.message.capabilities as ReadonlyArray<SignedCapability>
    if (caps.length > 0) {
      const kept = caps.filter((c) => c.issuer.node !== self || identity.verify(signingBytes(c), c.signature))
      if (kept.length !== caps.length) {
        print(1, `${peer.name}: dropped ${caps.length - kept.length} capabilities claiming ${self} as issuer with a bad signature`)
        km = { ...km, message: { ...km.message, capabilities: kept } }
      }
    }
    peer.lastActive = now()
    peer.waiting++
    if (peer.waiting >= limits.maxQueuedPerPeer && !peer.paused && !resuming) pause(peer)
    deps.deliver({ _tag: "Message", message: km }, peer)
    return undefined
  }

  // libp2p throws when a stream whose readable end has closed is paused or resumed.
  const readable = (s: Stream) => s.readStatus === "readable" || s.readStatus === "paused"
  const pause = (peer: Peer) => {
    peer.paused = true
    for (const s of peer.streams) if (readable(s)) s.pause()
  }
  // libp2p's `resume` hands over what the stream buffered and only then re-opens yamux's
  // window, undoing a pause made meanwhile: so the peer is paused again after `resume`.
  let resuming = false

  /** The kernel took one of `peer`'s messages. */
  const taken = (peer: Peer) => {
    peer.waiting--
    if (peer.paused && peer.waiting <= limits.maxQueuedPerPeer / 2) {
      peer.paused = false
      resuming = true
      for (const s of peer.streams) if (readable(s)) s.resume()
      resuming = false
      if (peer.waiting >= limits.maxQueuedPerPeer) pause(peer)
    }
  }

  /**
   * Reads frames off `stream`. An inbound stream starts unbound: its first frame must be
   * the dialler's hello, checked by `bind`.
   */
  const read = (stream: Stream, bound: Peer | undefined, bind: (name: string) => Peer | string, connection?: Connection) => {
    const reader = makeFrameReader()
    let peer = bound
    const fault = (why: string) => {
      if (peer !== undefined) hangUp(peer, why)
      else {
        // Not yet named: the whole connection goes (a peer must not retry for free on it).
        print(0, `${connection?.remotePeer.toString() ?? "a peer"}: connection closed: ${why}`)
        stream.abort(new Error(why))
        connection?.abort(new Error(why))
      }
    }
    stream.addEventListener("message", (event) => {
      const frames = reader.push(readChunks(event.data))
      if (Result.isFailure(frames)) return fault(describeFault(frames.failure as FrameFault))
      for (const payload of frames.success) {
        if (peer === undefined) {
          const hello = decodeHelloFrame(payload)
          if (Result.isFailure(hello)) return fault(describeFault(hello.failure))
          const bound = bind(hello.success)
          if (typeof bound === "string") return fault(bound)
          peer = bound
          continue
        }
        const why = receive(peer, payload)
        if (why !== undefined) return fault(why)
      }
    })
    // The peer ended the stream (or its connection) inside a frame: refused like a bad
    // frame. Not when this node aborted the stream: it has said why already.
    stream.addEventListener("end", () => {
      if (reader.partial && stream.status !== "aborted") fault(`stream ended inside a frame (${reader.buffered} bytes of it read)`)
    })
    stream.addEventListener("close", () => {
      if (peer === undefined) return
      peer.streams.delete(stream)
      if (peer.out === stream) {
        peer.out = [...peer.streams].find(writable)
        if (peer.pending.length > 0) scheduleFlush(peer)
      }
      if (peer.streams.size === 0 && !peer.dialing && peers.get(peer.name) === peer) {
        peers.delete(peer.name)
        failPending(peer, "offline")
        print(2, `${peer.name}: stream closed`)
      }
    })
  }

  /** A stream another node opened to us. */
  const accept = (stream: Stream, connection: Connection) => {
    stream.maxWriteBufferLength = maxWriteBuffer
    stream.maxReadBufferLength = maxReadBuffer
    const remote = connection.remotePeer.toString()
    read(stream, undefined, (name) => {
      const record = identity.lookup(name)
      if (record === undefined) return `${name} is not in the PKI`
      if (peerIdOfKey(record.publicKey) !== remote) return `${name}'s key on chain is not the key this peer proved`
      let peer = peers.get(name)
      if (peer !== undefined && peer.peerId !== remote) {
        disconnect(peer, "replaced by a connection with the chain's current key", 1)
        peer = undefined
      }
      peer ??= newPeer(name, remote)
      peer.streams.add(stream)
      if (peer.paused) stream.pause()
      if (peer.out === undefined) {
        peer.out = stream
        scheduleFlush(peer)
      }
      return peer
    }, connection)
  }

  // ---- outbound ----------------------------------------------------------------

  const writable = (s: Stream) => s.writeStatus === "writable" && s.status === "open"

  /**
   * Writes are gathered per event-loop task and handed to the stream together: one
   * Noise/Yamux frame and socket write for many small messages instead of one each
   * (a send costs far more than its bytes). Stops when the stream asks to drain, so
   * what a slow peer has not taken stays in `pending`, bounded by `OUTBOX_BYTES`.
   */
  const scheduleFlush = (peer: Peer) => {
    if (peer.flushScheduled) return
    peer.flushScheduled = true
    queueMicrotask(() => {
      peer.flushScheduled = false
      flush(peer)
    })
  }

  const flush = (peer: Peer) => {
    const out = peer.out
    if (peer.pending.length === 0 || peer.awaitingDrain) return
    if (out === undefined || !writable(out)) {
      peer.out = [...peer.streams].find(writable)
      if (peer.out !== undefined) return flush(peer)
      const record = identity.lookup(peer.name)
      if (!peer.dialing && record !== undefined && peers.get(peer.name) === peer) dial(peer, record)
      return
    }
    peer.lastActive = now()
    let i = 0
    const pending = peer.pending
    while (i < pending.length) {
      if (out.writableNeedsDrain) {
        peer.awaitingDrain = true
        out.addEventListener("drain", () => {
          peer.awaitingDrain = false
          flush(peer)
        }, { once: true })
        break
      }
      let end = i + 1
      let bytes = pending[i]!.frame.byteLength
      while (end < pending.length && bytes + pending[end]!.frame.byteLength <= BATCH_BYTES) bytes += pending[end++]!.frame.byteLength
      const chunk = end - i === 1 ? pending[i]!.frame : concatFrames(pending, i, end, bytes)
      try {
        out.send(chunk)
      } catch (e) {
        // The stream closed under us: what was in this chunk is lost with it, the rest waits for another stream.
        failQueued(pending.slice(i, end), "offline")
        i = end
        peer.out = undefined
        print(2, `${peer.name}: write failed (${e instanceof Error ? e.message : String(e)})`)
        break
      }
      for (let k = i; k < end; k++) peer.pendingBytes -= pending[k]!.frame.byteLength
      i = end
    }
    peer.pending = i === pending.length ? [] : pending.slice(i)
    if (peer.pending.length === 0) peer.pendingBytes = 0
    else if (!peer.awaitingDrain) scheduleFlush(peer)
  }

  const dial = (peer: Peer, record: NodeRecord) => {
    // A live connection to the peer (it dialled us, or holds a relay slot here) is reused;
    // otherwise its addresses from the PKI (a router does not dial through itself).
    const connected = connectionsOf(peer).length > 0
    const routes = connected ? peerIdFromString(peer.peerId) : routesOf(record, identity.lookup, self)
    if (typeof routes === "string") {
      print(1, `${peer.name}: cannot be reached (${routes})`)
      peers.delete(peer.name)
      failPending(peer, "offline")
      return
    }
    peer.dialing = true
    const started = now()
    deps.node.dialProtocol(Array.isArray(routes) ? [...routes] : routes as PeerId, PROTOCOL, {
      signal: AbortSignal.timeout(limits.dialTimeoutMs),
      runOnLimitedConnection: true
    }).then(
      (stream) => {
        peer.dialing = false
        if (peers.get(peer.name) !== peer) return void stream.abort(new Error("peer dropped while dialling"))
        stream.maxWriteBufferLength = maxWriteBuffer
        stream.maxReadBufferLength = maxReadBuffer
        peer.streams.add(stream)
        read(stream, peer, () => "unexpected hello")
        stream.send(encodeHello(self))
        if (peer.out === undefined) peer.out = stream
        print(2, `${peer.name}: connected in ${Math.round(now() - started)} ms`)
        scheduleFlush(peer)
      },
      (e: unknown) => {
        peer.dialing = false
        print(1, `${peer.name}: offline (${e instanceof Error ? e.message.split("\n")[0] : String(e)})`)
        if (peer.out !== undefined) return scheduleFlush(peer) // it dialled us meanwhile
        if (peers.get(peer.name) === peer) peers.delete(peer.name)
        failPending(peer, "offline")
      }
    )
  }

  /** The `Net` port's `send`. */
  const send = (km: KernelMessage): RefusalReason | undefined => {
    const name = km.target.node
    const record = identity.lookup(name)
    if (record === undefined || !isComplete(record)) return "Offline"
    const frame = encodeFrame(km)
    if (frame.byteLength - 4 > MAX_FRAME_BYTES) return "MessageTooLarge"
    let peer = peers.get(name)
    if (peer === undefined) {
      const peerId = peerIdOfKey(record.publicKey)
      if (peerId === undefined) return "Offline"
      peer = newPeer(name, peerId)
    }
    if (peer.pendingBytes > 0 && peer.pendingBytes + frame.byteLength > OUTBOX_BYTES) return "MailboxFull"
    peer.pending.push({ frame, km })
    peer.pendingBytes += frame.byteLength
    if (peer.out !== undefined || peer.dialing) scheduleFlush(peer)
    else dial(peer, record)
    return undefined
  }

  /** Opens a connection to `name` with nothing to send yet. */
  const connect = (name: string) => {
    if (peers.has(name)) return
    const record = identity.lookup(name)
    const peerId = record === undefined ? undefined : peerIdOfKey(record.publicKey)
    if (record === undefined || peerId === undefined || !isComplete(record)) return
    dial(newPeer(name, peerId), record)
  }

  /** The PKI changed for `name`: a connection proven with another key is closed. */
  const keyChanged = (name: string, record: NodeRecord | undefined) => {
    const peer = peers.get(name)
    if (peer === undefined) return
    const expected = record === undefined ? undefined : peerIdOfKey(record.publicKey)
    if (expected !== peer.peerId) {
      hangUp(peer, record === undefined ? `${name} left the PKI` : `${name}'s key changed on chain`)
    }
  }

  const sweepIdle = () => {
    if (limits.idleMs <= 0) return
    const cutoff = now() - limits.idleMs
    for (const p of [...peers.values()]) {
      if (p.lastActive < cutoff && !p.dialing && p.pending.length === 0) {
        disconnect(p, `idle for ${Math.round(limits.idleMs / 1000)} s`, 2)
        release(p)
      }
    }
  }

  const view = (): ReadonlyArray<PeerView> => {
    const t = now()
    const routing = deps.routingFor()
    return [...peers.values()].filter((p) => p.out !== undefined).map((p) => ({
      name: p.name,
      secondsSinceActive: Math.round((t - p.lastActive) / 1000),
      relayed: connectionsOf(p).some((c) => !c.direct),
      routing: routing.has(p.name)
    }))
  }

  return { send, accept, connect, taken, keyChanged, sweepIdle, view, size: () => peers.size }
}

export type PeerTable = ReturnType<typeof makePeerTable>
