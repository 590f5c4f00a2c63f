/**
 * Net: a native process asking a native process on another in-process node over real
 * libp2p on 127.0.0.1 (real kernels on LMDB, TCP + Noise + Yamux via `NetLibp2p`),
 * beside bare libp2p hosts of the same stack in the same run, so figures read as ratios:
 *
 *   - one request outstanding: round trips/s, p50/p99;
 *   - 1,000 requests in flight, each answered: completed round trips/s (msg/s = 2×);
 *   - a request carrying a 1 MiB blob, small answer, one outstanding: MB/s of blob;
 *   - time to the first answer over a cold dial (fresh nodes each sample, p50);
 *   - one outstanding and cold dial through a router (client → router → indirect node).
 *
 * The bare baseline echoes 4-byte length-prefixed frames the size of our frame for the
 * same small request, on one long-lived stream, driven by plain callbacks, one send per
 * frame as our peer table does; a second stream sends each tick's frames as one send
 * (`coalesced`) to show what per-send cost libp2p has. Steady-state figures alternate
 * bare and ours in slices, so load from elsewhere on the machine hits both alike.
 */
import { noise } from "@chainsafe/libp2p-noise"
import { yamux } from "@chainsafe/libp2p-yamux"
import { circuitRelayServer, circuitRelayTransport } from "@libp2p/circuit-relay-v2"
import { identify } from "@libp2p/identify"
import type { Libp2p, Stream } from "@libp2p/interface"
import { ping } from "@libp2p/ping"
import { tcp } from "@libp2p/tcp"
import { type Multiaddr, multiaddr } from "@multiformats/multiaddr"
import { Context, Effect, Layer, Result, type Scope } from "effect"
import { createLibp2p } from "libp2p"
import { testKernel } from "../../layers/TestLive.ts"
import { freePort } from "../../services/chain/index.ts"
import { generate, identityFromKey, type NetworkingKey } from "../../services/identity/index.ts"
import { encodeFrame, makeFrameReader, NetLibp2p, type NetReach, NetStatus } from "../../services/net/index.ts"
import { Identity, NodeRecord } from "../../src/Identity.ts"
import { address } from "../../src/Ids.ts"
import { Kernel, networkCap } from "../../src/Kernel.ts"
import { inBatch } from "../../src/Mailbox.ts"
import { type Received, request, response } from "../../src/Message.ts"
import { forEachReceived } from "../../src/NativeLoop.ts"
import type { NativeApi } from "../../src/ProcessApi.ts"
import { percentile, type Row } from "../Row.ts"

const SUITE = "net"
const ROUND_TRIPS = Number(process.env["NET_BENCH_RT"] ?? 10_000)
const PIPELINED = Number(process.env["NET_BENCH_PIPELINED"] ?? 30_000)
const ROUTED_ROUND_TRIPS = Number(process.env["NET_BENCH_ROUTED_RT"] ?? 3_000)
const IN_FLIGHT = 1_000
const BLOBS = 120
const BLOB_BYTES = 1024 * 1024
const COLD_SAMPLES = 5
const BODY = new Uint8Array(8)
const CLIENT = "client:bench:pub.os"
const SERVER = "server:bench:pub.os"

// ---- bare libp2p ---------------------------------------------------------------

/** Echoes each frame as it comes (small ones as they are, big ones answered with a small one). */
const ECHO = "/bench/echo/1.0.0"
/** The same, but the answers to one chunk go out as one send. */
const ECHO_COALESCED = "/bench/echo-coalesced/1.0.0"

const frameOf = (payload: Uint8Array): Uint8Array => {
  const out = new Uint8Array(4 + payload.byteLength)
  new DataView(out.buffer).setUint32(0, payload.byteLength)
  out.set(payload, 4)
  return out
}

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  if (parts.length === 1) return parts[0]!
  let n = 0
  for (const p of parts) n += p.byteLength
  const out = new Uint8Array(n)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

const chunk = (data: Uint8Array | { subarray(): Uint8Array }): Uint8Array => data instanceof Uint8Array ? data : data.subarray()

const BIG_BUFFER = 64 * 1024 * 1024

interface BareOptions {
  readonly listen?: ReadonlyArray<string>
  /** Offers relay slots (a router). */
  readonly relay?: boolean
}

/** A host of our stack (TCP, Noise, Yamux, identify, ping, circuit relay transport) answering `ECHO` and `ECHO_COALESCED`. */
const bareHost = async (small: Uint8Array, options: BareOptions = {}): Promise<Libp2p> => {
  const node = await createLibp2p({
    addresses: { listen: [...(options.listen ?? ["/ip4/127.0.0.1/tcp/0"])] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      ping: ping(),
      ...(options.relay === true ? { relay: circuitRelayServer({ reservations: { applyDefaultLimit: false } }) } : {})
    }
  }) as Libp2p
  const answer = (p: Uint8Array) => p.byteLength > small.byteLength ? frameOf(small) : frameOf(p)
  const serveWith = (coalesce: boolean) => (stream: Stream) => {
    stream.maxWriteBufferLength = BIG_BUFFER
    const reader = makeFrameReader()
    stream.addEventListener("message", (e) => {
      const frames = reader.push(chunk(e.data))
      if (Result.isFailure(frames)) return stream.abort(new Error("bad frame"))
      if (coalesce) {
        if (frames.success.length > 0) stream.send(concat(frames.success.map(answer)))
      } else for (const p of frames.success) stream.send(answer(p))
    })
  }
  await node.handle(ECHO, serveWith(false), { runOnLimitedConnection: true })
  await node.handle(ECHO_COALESCED, serveWith(true), { runOnLimitedConnection: true })
  return node
}

/**
 * `n` exchanges of `frame` on `stream` with `window` outstanding (latency per exchange
 * when `window` is 1). `coalesce`: the frames sent for one arriving chunk go as one send.
 */
const exchange = (stream: Stream, frame: Uint8Array, n: number, window: number, coalesce = false) =>
  new Promise<{ perS: number; sorted: Array<number> }>((resolve) => {
    const reader = makeFrameReader()
    const lat = window === 1 ? new Float64Array(n) : undefined
    let sent = 0
    let done = 0
    let t = performance.now()
    const t0 = t
    const onMessage = (e: { data: Uint8Array | { subarray(): Uint8Array } }) => {
      const frames = reader.push(chunk(e.data))
      if (Result.isFailure(frames)) throw new Error("bad frame")
      let more = 0
      for (let k = 0; k < frames.success.length; k++) {
        done++
        if (lat !== undefined) lat[done - 1] = performance.now() - t
        if (done === n) {
          stream.removeEventListener("message", onMessage)
          return resolve({ perS: (n / (performance.now() - t0)) * 1000, sorted: lat === undefined ? [] : Array.from(lat).sort((x, y) => x - y) })
        }
        if (sent < n) {
          t = performance.now()
          sent++
          if (coalesce) more++
          else stream.send(frame)
        }
      }
      if (more > 0) stream.send(concat(Array.from({ length: more }, () => frame)))
    }
    stream.addEventListener("message", onMessage)
    const first = Math.min(window, n)
    sent = first
    if (coalesce) stream.send(concat(Array.from({ length: first }, () => frame)))
    else for (let k = 0; k < first; k++) stream.send(frame)
  })

const dialEcho = async (from: Libp2p, to: Multiaddr | string, protocol = ECHO) => {
  const stream = await from.dialProtocol(typeof to === "string" ? multiaddr(to) : to, protocol, { runOnLimitedConnection: true })
  stream.maxWriteBufferLength = BIG_BUFFER
  return stream
}

/** Polls `f` every 50 ms, up to 10 s. */
const until = async (what: string, f: () => boolean) => {
  for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 50))
  if (!f()) throw new Error(`timed out waiting for ${what}`)
}

/** Two hosts talking directly, and a third reached through a relay (the bare baseline). */
const bareWorld = async (small: Uint8Array) => {
  const a = await bareHost(small)
  const b = await bareHost(small)
  const relay = await bareHost(small, { relay: true })
  const relayAt = relay.getMultiaddrs()[0]!.toString()
  const hidden = await bareHost(small, { listen: [`${relayAt}/p2p-circuit`] })
  await until("a relay reservation", () => hidden.getMultiaddrs().some((m) => m.toString().includes("/p2p-circuit")))
  const circuit = `${relayAt}/p2p-circuit/p2p/${hidden.peerId}`
  return {
    direct: await dialEcho(a, b.getMultiaddrs()[0]!),
    coalesced: await dialEcho(a, b.getMultiaddrs()[0]!, ECHO_COALESCED),
    routed: await dialEcho(a, circuit),
    circuit,
    stop: () => Promise.all([a.stop(), b.stop(), hidden.stop(), relay.stop()])
  }
}

/** A fresh pair of hosts (or a fresh client to `circuit`): ms from dial to the first answer. */
const bareCold = async (small: Uint8Array, smallFrame: Uint8Array, circuit?: string) => {
  const c = await bareHost(small)
  const d = circuit === undefined ? await bareHost(small) : undefined
  const t = performance.now()
  await exchange(await dialEcho(c, d === undefined ? circuit! : d.getMultiaddrs()[0]!), smallFrame, 1, 1)
  const dt = performance.now() - t
  await Promise.all([c.stop(), d?.stop()])
  return dt
}

// ---- kinode-ts nodes -----------------------------------------------------------

interface Planned {
  readonly name: string
  readonly key: NetworkingKey
  readonly reach: NetReach
  readonly record: NodeRecord
}

const plan = (name: string, reach: NetReach) =>
  Effect.map(generate, (key): Planned => ({
    name,
    key,
    reach,
    record: new NodeRecord({
      name,
      publicKey: Buffer.from(key.publicKey).toString("hex"),
      ips: reach._tag === "Direct" ? [reach.ip] : [],
      ports: reach._tag === "Direct" ? { tcp: reach.tcpPort } : {},
      routers: reach._tag === "Indirect" ? reach.routers : []
    })
  }))

const direct = (name: string) => Effect.flatMap(freePort, (tcpPort) => plan(name, { _tag: "Direct", ip: "127.0.0.1", tcpPort }))

/** Boots `p` in the current scope, its PKI already holding `known` (so an indirect node reserves at once). */
const boot = (p: Planned, known: ReadonlyArray<Planned>) =>
  Effect.gen(function*() {
    const identity = identityFromKey(p.name, p.key)
    for (const k of known) identity.upsert(k.record)
    const t = testKernel({ node: p.name, identity: Layer.succeed(Identity, identity), net: NetLibp2p({ seed: p.key.seed, reach: p.reach }) })
    const ctx = yield* Layer.build(t.layer)
    const kernel = Context.get(ctx, Kernel)
    const session = (id: string) => kernel.session(id, { capabilities: [networkCap(p.name)], public: true })
    return { ...p, identity, status: Context.get(ctx, NetStatus), session }
  })
type Booted = Effect.Success<ReturnType<typeof boot>>

/** Answers every request with its body and no blob. */
const serve = (node: Booted) =>
  Effect.flatMap(node.session(SERVER), (api) =>
    Effect.forkScoped(forEachReceived(api, (item) => {
      if (item._tag === "Message" && item.message._tag === "Request") api.sendResponse(response({ body: item.message.body }), undefined)
    })))

const expectAnswer = (r: Received) =>
  r._tag === "Message" && r.message._tag === "Response" ? Effect.void : Effect.die(new Error(`no answer: ${r._tag === "SendError" ? r.error.kind : r._tag}`))

/** `n` requests to `server@SERVER`, one outstanding (with a blob when given). */
const oneOutstanding = (api: NativeApi, server: string, n: number, blob?: Uint8Array) =>
  Effect.gen(function*() {
    const target = address(`${server}@${SERVER}`)
    const req = request({ body: BODY, expectsResponse: 30n })
    const lazy = blob === undefined ? undefined : { mime: undefined, bytes: blob }
    const lat = new Float64Array(n)
    const t0 = performance.now()
    for (let i = 0; i < n; i++) {
      const s = performance.now()
      api.sendRequest(target, req, undefined, lazy)
      yield* expectAnswer(yield* api.receiveEffect)
      lat[i] = performance.now() - s
    }
    const dt = performance.now() - t0
    return { perS: (n / dt) * 1000, sorted: Array.from(lat).sort((x, y) => x - y) }
  })

/** `n` requests with `IN_FLIGHT` outstanding; completed round trips/s. */
const pipelined = (api: NativeApi, server: string, n: number) =>
  Effect.gen(function*() {
    const target = address(`${server}@${SERVER}`)
    const req = request({ body: BODY, expectsResponse: 30n })
    const t0 = performance.now()
    let sent = 0
    for (; sent < IN_FLIGHT; sent++) api.sendRequest(target, req, undefined, undefined)
    let received = 0
    let failed: Received | undefined
    while (received < n) {
      const first = yield* api.receiveEffect
      inBatch(() => {
        for (let item: Received | undefined = first; item !== undefined; item = api.tryReceive()) {
          if (item._tag !== "Message") failed = item
          received++
          if (sent < n) {
            api.sendRequest(target, req, undefined, undefined)
            sent++
          }
        }
      })
      if (failed !== undefined) return yield* Effect.die(new Error(`no answer: ${failed._tag === "SendError" ? failed.error.kind : failed._tag}`))
    }
    return (n / (performance.now() - t0)) * 1000
  })

/** Until `node` holds a relay slot on its router. */
const reserved = (node: Booted) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200; i++) {
      if (node.status.listenAddresses().some((a) => a.includes("/p2p-circuit"))) return
      yield* Effect.sleep("50 millis")
    }
    return yield* Effect.die(new Error(`${node.name} got no relay slot`))
  })

/** Boots fresh nodes in a scope of their own: ms from the client's first send to the answer. */
const oursCold = (server: string, others: ReadonlyArray<Booted>, fresh: Effect.Effect<ReadonlyArray<Booted>, unknown, Scope.Scope>) =>
  Effect.scoped(Effect.gen(function*() {
    const nodes = yield* fresh
    for (const o of [...others, ...nodes]) for (const n of nodes) o.identity.upsert(n.record)
    const api = yield* nodes[0]!.session(CLIENT)
    const t = performance.now()
    yield* oneOutstanding(api, server, 1)
    return performance.now() - t
  }))

/** alice → bob directly; alice → router.os → carol.os (indirect, reserved on her router). */
const ourWorld = Effect.gen(function*() {
  const router = yield* direct("router.os")
  const bob = yield* direct("bob.os")
  const alice = yield* direct("alice.os")
  const carol = yield* plan("carol.os", { _tag: "Indirect", routers: ["router.os"] })
  const all = [router, bob, alice, carol]
  const r = yield* boot(router, all)
  const b = yield* boot(bob, all)
  const a = yield* boot(alice, all)
  const c = yield* boot(carol, all)
  yield* serve(b)
  yield* serve(c)
  yield* reserved(c)
  let sample = 0
  return {
    api: yield* a.session(CLIENT),
    bob: bob.name,
    carol: carol.name,
    /** A fresh direct pair. */
    cold: Effect.suspend(() => {
      const i = sample++
      return oursCold("server.os", [], Effect.gen(function*() {
        const client = yield* direct(`cold${i}.os`)
        const server = yield* direct("server.os")
        const booted = [yield* boot(client, [client, server]), yield* boot(server, [client, server])]
        yield* serve(booted[1]!)
        return booted
      }))
    }),
    /** A fresh client to carol through her router. */
    coldRouted: Effect.suspend(() => {
      const i = sample++
      return oursCold(carol.name, [r, c], Effect.flatMap(direct(`coldr${i}.os`), (p) => Effect.map(boot(p, all), (n) => [n])))
    })
  }
})

interface Rate {
  readonly perS: number
  readonly sorted: ReadonlyArray<number>
}

const ROUNDS = 6

/**
 * The bare figure and ours over `n` exchanges each, measured in `ROUNDS` alternating
 * slices (bare, ours, ours, bare, ...) so both see the same machine load (other work on
 * the machine swings single runs by ±30%). Rates are over all slices; latencies pooled.
 */
const paired = (bareRun: (n: number) => Promise<Rate>, ourRun: (n: number) => Effect.Effect<Rate>, n: number) =>
  Effect.gen(function*() {
    const slice = Math.ceil(n / ROUNDS)
    const bare: Array<Rate> = []
    const ours: Array<Rate> = []
    for (let i = 0; i < ROUNDS; i++) {
      if (i % 2 === 0) {
        bare.push(yield* Effect.promise(() => bareRun(slice)))
        ours.push(yield* ourRun(slice))
      } else {
        ours.push(yield* ourRun(slice))
        bare.push(yield* Effect.promise(() => bareRun(slice)))
      }
    }
    const pool = (rs: ReadonlyArray<Rate>): Rate => ({
      perS: (rs.length * slice) / rs.reduce((t, r) => t + slice / r.perS, 0),
      sorted: rs.flatMap((r) => r.sorted).sort((x, y) => x - y)
    })
    return { bare: pool(bare), ours: pool(ours) }
  })

const measure = (smallFrame: Uint8Array) =>
  Effect.gen(function*() {
    const small = smallFrame.subarray(4)
    const bw = yield* Effect.acquireRelease(Effect.promise(() => bareWorld(small)), (w) => Effect.promise(() => w.stop()))
    const ow = yield* ourWorld
    const { api } = ow
    const blobFrame = frameOf(new Uint8Array(BLOB_BYTES))
    const blobBytes = new Uint8Array(BLOB_BYTES)

    yield* Effect.promise(() => exchange(bw.direct, smallFrame, 2_000, 1))
    yield* oneOutstanding(api, ow.bob, 2_000)
    const one = yield* paired((n) => exchange(bw.direct, smallFrame, n, 1), (n) => oneOutstanding(api, ow.bob, n), ROUND_TRIPS)
    const piped = yield* paired(
      (n) => exchange(bw.direct, smallFrame, n, IN_FLIGHT),
      (n) => Effect.map(pipelined(api, ow.bob, n), (perS): Rate => ({ perS, sorted: [] })),
      PIPELINED
    )
    const coalesced = yield* Effect.promise(() => exchange(bw.coalesced, smallFrame, PIPELINED, IN_FLIGHT, true))
    yield* oneOutstanding(api, ow.bob, 5, blobBytes)
    const blob = yield* paired((n) => exchange(bw.direct, blobFrame, n, 1), (n) => oneOutstanding(api, ow.bob, n, blobBytes), BLOBS)

    yield* Effect.promise(() => exchange(bw.routed, smallFrame, 500, 1))
    yield* oneOutstanding(api, ow.carol, 500)
    const routed = yield* paired(
      (n) => exchange(bw.routed, smallFrame, n, 1),
      (n) => oneOutstanding(api, ow.carol, n),
      ROUTED_ROUND_TRIPS
    )

    const cold = { bare: [] as Array<number>, ours: [] as Array<number> }
    const coldRouted = { bare: [] as Array<number>, ours: [] as Array<number> }
    for (let i = 0; i < COLD_SAMPLES; i++) {
      cold.bare.push(yield* Effect.promise(() => bareCold(small, smallFrame)))
      cold.ours.push(yield* ow.cold)
      coldRouted.bare.push(yield* Effect.promise(() => bareCold(small, smallFrame, bw.circuit)))
      coldRouted.ours.push(yield* ow.coldRouted)
    }
    for (const xs of [cold.bare, cold.ours, coldRouted.bare, coldRouted.ours]) xs.sort((x, y) => x - y)
    return { one, piped, coalesced, blob, routed, cold, coldRouted }
  })

/** The frame our wire puts on the stream for the small request. */
const frameFor = (from: string, to: string): Uint8Array =>
  encodeFrame({
    id: 1_000_000n,
    source: address(`${from}@${CLIENT}`),
    target: address(`${to}@${SERVER}`),
    rsvp: null,
    message: request({ body: BODY, expectsResponse: 30n }),
    blob: undefined
  })

export const run = async (): Promise<ReadonlyArray<Row>> => {
  const smallFrame = frameFor("alice.os", "bob.os")
  const m = await Effect.runPromise(Effect.scoped(measure(smallFrame)))
  const us = (ms: number) => ms * 1000
  const mbps = (perS: number) => (perS * BLOB_BYTES) / 1e6
  const p50 = (xs: ReadonlyArray<number>) => percentile(xs, 50)
  const p99 = (xs: ReadonlyArray<number>) => percentile(xs, 99)
  const row = (metric: string, value: number, unit: string): Row => ({ suite: SUITE, metric, value, unit })
  return [
    row("small request frame", smallFrame.byteLength, "B"),
    row("1 outstanding", m.one.ours.perS, "rt/s"),
    row("1 outstanding p50 (goal<=1000)", us(p50(m.one.ours.sorted)), "us"),
    row("1 outstanding p99", us(p99(m.one.ours.sorted)), "us"),
    row("bare 1 outstanding", m.one.bare.perS, "rt/s"),
    row("bare 1 outstanding p50", us(p50(m.one.bare.sorted)), "us"),
    row("bare 1 outstanding p99", us(p99(m.one.bare.sorted)), "us"),
    row("1 outstanding vs bare (goal>=0.7)", m.one.ours.perS / m.one.bare.perS, "x"),
    row("1000 in flight", m.piped.ours.perS, "rt/s"),
    row("1000 in flight msgs (goal>=50k)", m.piped.ours.perS * 2, "msg/s"),
    row("bare 1000 in flight", m.piped.bare.perS, "rt/s"),
    row("bare 1000 in flight, coalesced", m.coalesced.perS, "rt/s"),
    row("1000 in flight vs bare", m.piped.ours.perS / m.piped.bare.perS, "x"),
    row("1 MiB blob", mbps(m.blob.ours.perS), "MB/s"),
    row("bare 1 MiB frame", mbps(m.blob.bare.perS), "MB/s"),
    row("1 MiB blob vs bare", m.blob.ours.perS / m.blob.bare.perS, "x"),
    row("cold dial to 1st answer p50", p50(m.cold.ours), "ms"),
    row("bare cold dial to 1st answer p50", p50(m.cold.bare), "ms"),
    row("routed 1 outstanding", m.routed.ours.perS, "rt/s"),
    row("routed p50", us(p50(m.routed.ours.sorted)), "us"),
    row("routed p99", us(p99(m.routed.ours.sorted)), "us"),
    row("bare routed 1 outstanding", m.routed.bare.perS, "rt/s"),
    row("bare routed p50", us(p50(m.routed.bare.sorted)), "us"),
    row("routed vs direct (goal>=0.5)", m.routed.ours.perS / m.one.ours.perS, "x"),
    row("bare routed vs bare direct", m.routed.bare.perS / m.one.bare.perS, "x"),
    row("routed vs bare routed", m.routed.ours.perS / m.routed.bare.perS, "x"),
    row("routed cold dial p50", p50(m.coldRouted.ours), "ms"),
    row("bare routed cold dial p50", p50(m.coldRouted.bare), "ms")
  ]
}
