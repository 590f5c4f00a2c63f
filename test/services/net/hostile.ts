/**
 * A hostile peer for the fault tests: a bare libp2p host (TCP, Noise, Yamux, as
 * `services/net/Libp2pHost.ts`) with its own Ed25519 key, whose record is put in the
 * victim's PKI so the victim's gater lets it in. It opens net streams to the victim and
 * writes whatever bytes it likes; it reads the victim's frames back with `makeFrameReader`.
 */
import { noise } from "@chainsafe/libp2p-noise"
import { yamux } from "@chainsafe/libp2p-yamux"
import type { Libp2p, Stream } from "@libp2p/interface"
import { peerIdFromString } from "@libp2p/peer-id"
import { tcp } from "@libp2p/tcp"
import { multiaddr } from "@multiformats/multiaddr"
import { Effect, Result, Schedule } from "effect"
import { createLibp2p } from "libp2p"
import { generate, type NetworkingKey } from "../../../services/identity/index.ts"
import { libp2pKeyOf, makeFrameReader, peerIdOfKey, PROTOCOL } from "../../../services/net/index.ts"
import { recordOf, type NetNode } from "./support.ts"

export interface HostileStream {
  readonly stream: Stream
  /** Whether the stream still carries data both ways. */
  readonly isOpen: () => boolean
  /** Writes `bytes`, waiting for the stream to drain when libp2p asks; false if the stream is gone. */
  readonly write: (bytes: Uint8Array) => Effect.Effect<boolean>
  /** Waits until the stream closes (true), or `ms` pass (false). */
  readonly awaitClose: (ms: number) => Effect.Effect<boolean>
  /**
   * Waits for a frame from the victim satisfying `accept` (true), or the stream's close or
   * `ms` (false). Frames that arrived earlier and were not taken are looked at first.
   */
  readonly awaitFrame: (accept: (payload: Uint8Array) => boolean, ms: number) => Effect.Effect<boolean>
  /** How the stream closed, once it has. */
  readonly closeReason: () => string | undefined
}

export interface Hostile {
  readonly name: string
  readonly key: NetworkingKey
  readonly host: Libp2p
  /** Opens a fresh net stream to the victim (dialling a connection if none is up). */
  readonly open: Effect.Effect<HostileStream>
  /** Connections this host has to the victim. */
  readonly connections: () => number
  /** Drops this host's connections to the victim at once (a graceful close can take a second). */
  readonly hangUp: Effect.Effect<void>
}

export interface HostileOptions {
  /** Name in the victim's PKI (default `mallory.os`). */
  readonly name?: string
  /**
   * Local address the host dials from. The victim's libp2p accepts at most 5 new
   * inbound connections a second per remote IP, so a host that reconnects often dials
   * from its own 127.0.0.x.
   */
  readonly localAddress?: string
}

/** A hostile host in the current scope, known to `victim`'s PKI under `name`. */
export const hostile = (victim: NetNode, options: HostileOptions = {}) =>
  Effect.gen(function*() {
    const name = options.name ?? "mallory.os"
    const key = yield* generate
    // an address nobody listens on: the victim may know where mallory "is", never reaches it
    victim.identity.upsert(recordOf(name, key, { _tag: "Direct", ip: "127.0.0.1", tcpPort: 9 }))
    const host = yield* Effect.acquireRelease(
      Effect.promise(() =>
        createLibp2p({
          privateKey: libp2pKeyOf(key.seed, key.publicKey),
          // `localAddress` goes through to net.connect (libp2p's type lists only some socket options)
          transports: [tcp(options.localAddress === undefined ? {} : { dialOpts: { localAddress: options.localAddress } as object })],
          connectionEncrypters: [noise()],
          streamMuxers: [yamux()]
        }) as Promise<Libp2p>
      ),
      (h) => Effect.promise(() => Promise.resolve(h.stop())).pipe(Effect.timeout("5 seconds"), Effect.ignore)
    )
    if (victim.reach._tag !== "Direct") return yield* Effect.die("the victim must be direct")
    const victimPeer = peerIdOfKey(victim.record.publicKey)!
    const victimId = peerIdFromString(victimPeer)
    const target = multiaddr(`/ip4/${victim.reach.ip}/tcp/${victim.reach.tcpPort}/p2p/${victimPeer}`)
    const hangUp = Effect.sync(() => {
      for (const c of host.getConnections(victimId)) c.abort(new Error("hostile: hanging up"))
    })
    // The victim may have closed the last connection before this host noticed: then the
    // first dial fails on the dead muxer, and a hang-up plus a fresh dial is needed.
    const dial = Effect.tryPromise(() => host.dialProtocol(target, PROTOCOL, { signal: AbortSignal.timeout(5000) }))
    const open = dial.pipe(
      Effect.tapError(() => hangUp),
      Effect.retry({ times: 20, schedule: Schedule.spaced("20 millis") }),
      Effect.orDie,
      Effect.map(watch)
    )
    return {
      name,
      key,
      host,
      open,
      connections: () => host.getConnections().filter((c) => c.remotePeer.toString() === victimPeer).length,
      hangUp
    } satisfies Hostile
  })

const watch = (stream: Stream): HostileStream => {
  let closed = false
  let closeReason: string | undefined
  const onClose: Array<() => void> = []
  const onFrame: Array<() => void> = []
  const frames: Array<Uint8Array> = []
  const reader = makeFrameReader()
  stream.addEventListener("message", (event) => {
    const data = event.data instanceof Uint8Array ? event.data : event.data.subarray()
    const got = reader.push(data)
    if (Result.isSuccess(got)) frames.push(...got.success)
    for (const f of onFrame.splice(0)) f()
  })
  stream.addEventListener("close", (event) => {
    closed = true
    closeReason = event.error === undefined ? "closed" : `${event.local === true ? "aborted here" : "reset by the victim"}: ${event.error.message}`
    for (const f of onClose.splice(0)) f()
    for (const f of onFrame.splice(0)) f()
  })
  const isOpen = () => !closed && stream.status === "open" && stream.writeStatus === "writable"

  // libp2p keeps whatever `send` is given (its write buffer is unbounded here) and may say
  // "go on" while yamux's window is shut: so the writer also waits while much is queued.
  const MAX_QUEUED = 1024 * 1024
  const drained: Effect.Effect<boolean> = Effect.callback<boolean>((resume) => {
    const poll = () => {
      if (!isOpen()) return resume(Effect.succeed(false))
      if (stream.writeBufferLength <= MAX_QUEUED && !stream.writableNeedsDrain) return resume(Effect.succeed(true))
      setTimeout(poll, 2)
    }
    poll()
  })
  const write = (bytes: Uint8Array): Effect.Effect<boolean> =>
    Effect.suspend(() => {
      if (!isOpen()) return Effect.succeed(false)
      try {
        stream.send(bytes)
      } catch {
        return Effect.succeed(false)
      }
      return stream.writeBufferLength <= MAX_QUEUED && !stream.writableNeedsDrain ? Effect.succeed(true) : drained
    })

  const awaitClose = (ms: number): Effect.Effect<boolean> =>
    Effect.callback<boolean>((resume) => {
      if (closed) return resume(Effect.succeed(true))
      let done = false
      const finish = (value: boolean) => {
        if (done) return
        done = true
        clearTimeout(timer)
        resume(Effect.succeed(value))
      }
      const timer = setTimeout(() => finish(false), ms)
      onClose.push(() => finish(true))
    })

  const awaitFrame = (accept: (payload: Uint8Array) => boolean, ms: number): Effect.Effect<boolean> =>
    Effect.callback<boolean>((resume) => {
      let done = false
      const finish = (found: boolean) => {
        done = true
        clearTimeout(deadline)
        resume(Effect.succeed(found))
      }
      const deadline = setTimeout(() => finish(false), ms)
      const look = () => {
        if (done) return
        while (frames.length > 0) {
          if (accept(frames.shift()!)) return finish(true)
        }
        if (closed) return finish(false)
        onFrame.push(look)
      }
      look()
    })

  return { stream, isOpen, write, awaitClose, awaitFrame, closeReason: () => closeReason }
}
