/**
 * A hostile peer against a real node (real kernel, real libp2p on 127.0.0.1): malformed
 * and lying frames close its connection with one log line, fuzzed frames crash nothing,
 * forged capabilities are dropped, and a flood from one peer does not starve another.
 * After each case a legitimate node still gets an answer from the victim.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Result } from "effect"
import { freePort } from "../../../services/chain/index.ts"
import { encodeFrame, encodeHello, MAX_FRAME_BYTES, type NetLimits } from "../../../services/net/index.ts"
import { decodeMessageFrame } from "../../../services/net/Wire.ts"
import { signingBytes } from "../../../src/Capabilities.ts"
import { address } from "../../../src/Ids.ts"
import { type KernelMessage, request, type SignedCapability, text } from "../../../src/Message.ts"
import type { Printed } from "../../../src/Printout.ts"
import { framed, fuzzHello, fuzzMessage, hex, prng, type Verdict } from "./fuzz.ts"
import { type Hostile, hostile, type HostileStream } from "./hostile.ts"
import { app, ask, introduce, type NetNode, netNode, serveEcho } from "./support.ts"

const direct = (tcpPort: number) => ({ _tag: "Direct" as const, ip: "127.0.0.1", tcpPort })

const message = (fields: {
  readonly source: string
  readonly target: string
  readonly id?: bigint
  readonly body?: string
  readonly expects?: bigint
  readonly capabilities?: ReadonlyArray<SignedCapability>
}): KernelMessage => ({
  id: fields.id ?? 1n,
  source: address(fields.source),
  target: address(fields.target),
  rsvp: null,
  message: request({
    body: text(fields.body ?? "hi"),
    expectsResponse: fields.expects,
    capabilities: fields.capabilities ?? []
  }),
  blob: undefined
})

const ECHO = "victim.os@echo:test:pub.os"
const FROM = "mallory.os@hostile:test:pub.os"

/** The victim (with an echo server and `limits`) and a friend already talking to it. */
const sceneWith = (limits: Partial<NetLimits>) => Effect.gen(function*() {
  const victim = yield* netNode("victim.os", direct(yield* freePort), { limits })
  const friend = yield* netNode("friend.os", direct(yield* freePort))
  introduce([victim, friend])
  yield* serveEcho(yield* app(victim, "echo:test:pub.os"), "victim says ")
  const client = yield* app(friend, "client:test:pub.os")
  // connected before the hostile peer starts (the victim's libp2p rate-limits new
  // inbound connections per remote IP, and everyone here is 127.0.0.1)
  assert.deepStrictEqual(yield* ask(client, ECHO, "hello"), { text: "victim says hello", blob: undefined })
  const stillServes = Effect.gen(function*() {
    assert.deepStrictEqual(yield* ask(client, ECHO, "still there?"), { text: "victim says still there?", blob: undefined })
  })
  return { victim, friend, client, stillServes }
})
const scene = sceneWith({})

/** The victim's net lines saying it closed a connection, printed since line `from`. */
const closings = (node: NetNode, from: number): ReadonlyArray<Printed> =>
  node.lines.slice(from).filter((l) => l.source === "net" && l.text.includes("connection closed"))

const show = (node: NetNode, from: number) =>
  node.lines.slice(from).filter((l) => l.source === "net").map((l) => `[${l.level}] ${l.text}`).join("\n")

/**
 * Opens a stream from a fresh hostile peer (`mallory.os`), writes `frames`, then runs
 * `after`, and asserts: the victim closes the stream (and the whole connection once the
 * peer is bound to a name by its hello), prints one closing line matching `reason`, and
 * still answers the friend.
 */
const refused = (options: {
  readonly frames: ReadonlyArray<Uint8Array>
  readonly reason: RegExp
  readonly bound: boolean
  readonly after?: (conn: HostileStream, h: Hostile) => Effect.Effect<void>
}) =>
  Effect.gen(function*() {
    const s = yield* scene
    const h = yield* hostile(s.victim)
    const from = s.victim.lines.length
    const conn = yield* h.open
    for (const f of options.frames) yield* conn.write(f)
    if (options.after !== undefined) yield* options.after(conn, h)
    assert.isTrue(yield* conn.awaitClose(5000), `the victim did not close the stream; it printed:\n${show(s.victim, from)}`)
    if (options.bound) {
      for (let i = 0; i < 100 && h.connections() > 0; i++) yield* Effect.sleep("20 millis")
      assert.strictEqual(h.connections(), 0, "the victim closed the connection")
    }
    yield* s.stillServes
    const lines = closings(s.victim, from)
    assert.strictEqual(lines.length, 1, `one closing line expected; the victim printed:\n${show(s.victim, from)}`)
    assert.match(lines[0]!.text, options.reason)
  })

const HELLO = encodeHello("mallory.os")
const closedBecause = (why: string, bound = true) =>
  new RegExp(`^${bound ? "mallory\\.os: " : "12D3KooW\\w+: "}connection closed: ${why}`)

describe("a hostile peer's connection is closed", () => {
  it.live("garbage bytes instead of a hello", () =>
    refused({
      frames: [framed(prng(1).bytes(61)), prng(2).bytes(200)],
      reason: closedBecause("frame is not MessagePack", false),
      bound: false
    }), { timeout: 30_000 })

  it.live("an HTTP request instead of frames: its first four bytes are an oversized length", () =>
    refused({
      frames: [text("GET / HTTP/1.1\r\nHost: victim.os\r\n\r\n")],
      reason: closedBecause(`frame of ${0x47455420} bytes is over the ${MAX_FRAME_BYTES}-byte limit`, false),
      bound: false
    }), { timeout: 30_000 })

  it.live("garbage bytes after the hello", () =>
    refused({
      frames: [HELLO, framed(Uint8Array.of(0xc1, ...prng(3).bytes(40)))],
      reason: closedBecause("frame is not MessagePack"),
      bound: true
    }), { timeout: 30_000 })

  it.live("a truncated frame, then the hostile side closes the stream", () =>
    refused({
      frames: [HELLO, framed(text("partial"), 100)],
      reason: closedBecause("stream ended inside a frame \\(7 bytes of it read\\)$"),
      bound: true,
      after: (conn) => Effect.promise(() => conn.stream.close().catch(() => undefined))
    }), { timeout: 30_000 })

  it.live("a truncated header, then the hostile side closes the stream", () =>
    refused({
      frames: [HELLO, Uint8Array.of(0, 0)],
      reason: closedBecause("stream ended inside a frame \\(2 bytes of it read\\)$"),
      bound: true,
      after: (conn) => Effect.promise(() => conn.stream.close().catch(() => undefined))
    }), { timeout: 30_000 })

  it.live("a truncated frame, then the hostile side closes the connection", () =>
    Effect.gen(function*() {
      const s = yield* scene
      const h = yield* hostile(s.victim)
      const from = s.victim.lines.length
      const conn = yield* h.open
      yield* conn.write(HELLO)
      yield* conn.write(framed(text("partial"), 100))
      yield* Effect.sleep("100 millis")
      yield* Effect.promise(() => Promise.all(h.host.getConnections().map((c) => c.close().catch(() => undefined))))
      for (let i = 0; i < 100 && closings(s.victim, from).length === 0; i++) yield* Effect.sleep("20 millis")
      yield* s.stillServes
      assert.deepStrictEqual(closings(s.victim, from).map((l) => l.text), [
        "mallory.os: connection closed: stream ended inside a frame (7 bytes of it read)"
      ])
    }), { timeout: 30_000 })

  it.live("an empty frame (length 0) after the hello", () =>
    refused({
      frames: [HELLO, framed(new Uint8Array(0))],
      reason: closedBecause("frame is not MessagePack"),
      bound: true
    }), { timeout: 30_000 })

  it.live("an empty frame (length 0) instead of a hello", () =>
    refused({ frames: [framed(new Uint8Array(0))], reason: closedBecause("frame is not MessagePack", false), bound: false }),
    { timeout: 30_000 })

  it.live("an oversized length header, refused from the header alone", () =>
    refused({
      frames: [HELLO, framed(new Uint8Array(0), MAX_FRAME_BYTES + 1)],
      reason: closedBecause(`frame of ${MAX_FRAME_BYTES + 1} bytes is over the ${MAX_FRAME_BYTES}-byte limit$`),
      bound: true
    }), { timeout: 30_000 })

  it.live("a message frame before any hello", () =>
    refused({
      frames: [encodeFrame(message({ source: FROM, target: ECHO }))],
      reason: closedBecause("malformed frame: not a hello", false),
      bound: false
    }), { timeout: 30_000 })

  it.live("a hello naming a node whose chain key is not the peer's", () =>
    refused({
      frames: [encodeHello("friend.os")],
      reason: closedBecause("friend\\.os's key on chain is not the key this peer proved$", false),
      bound: false
    }), { timeout: 30_000 })

  it.live("a hello naming a node the PKI does not know", () =>
    refused({ frames: [encodeHello("nobody.os")], reason: closedBecause("nobody\\.os is not in the PKI$", false), bound: false }),
    { timeout: 30_000 })

  it.live("a frame whose source node is not the peer's name", () =>
    refused({
      frames: [HELLO, encodeFrame(message({ source: "friend.os@client:test:pub.os", target: ECHO }))],
      reason: closedBecause("message claims source node friend\\.os, the peer is mallory\\.os$"),
      bound: true
    }), { timeout: 30_000 })

  it.live("a frame from an unsafe source process id", () =>
    refused({
      frames: [HELLO, encodeFrame(message({ source: "mallory.os@Bad_Proc:x:y", target: ECHO }))],
      reason: closedBecause("malformed frame: unsafe source process mallory\\.os@Bad_Proc:x:y$"),
      bound: true
    }), { timeout: 30_000 })

  it.live("a message addressed to another node", () =>
    refused({
      frames: [HELLO, encodeFrame(message({ source: FROM, target: "friend.os@echo:test:pub.os" }))],
      reason: closedBecause("message for friend\\.os sent to victim\\.os$"),
      bound: true
    }), { timeout: 30_000 })
})

describe("capabilities from a peer", () => {
  it.live("one claiming the victim as issuer with a bad signature is dropped before delivery; others pass", () =>
    Effect.gen(function*() {
      const s = yield* scene
      const inbox = yield* app(s.victim, "inbox:test:pub.os")
      const h = yield* hostile(s.victim)
      const cap = (issuer: string, params: string, signature: Uint8Array): SignedCapability => ({
        issuer: address(issuer),
        params,
        signature
      })
      const issued = (issuer: string, params: string): SignedCapability => {
        const c = { issuer: address(issuer), params }
        return { ...c, signature: s.victim.identity.sign(signingBytes(c)) }
      }
      const rng = prng(7)
      const genuine = issued("victim.os@echo:test:pub.os", "\"messaging\"")
      const caps = [
        cap("victim.os@kernel:distro:sys", "\"network\"", rng.bytes(64)), // forged
        genuine,
        cap("victim.os@vfs:distro:sys", "{\"kind\":\"write\",\"drive\":\"/\"}", new Uint8Array(0)), // unsigned
        { ...genuine, params: "\"root\"" }, // the victim's signature, of another capability
        cap("mallory.os@hostile:test:pub.os", "\"anything\"", rng.bytes(64)), // mallory's own: not checkable here
        cap("friend.os@client:test:pub.os", "\"x\"", new Uint8Array(0))
      ]
      const from = s.victim.lines.length
      const conn = yield* h.open
      yield* conn.write(encodeHello("mallory.os"))
      yield* conn.write(encodeFrame(message({ source: FROM, target: "victim.os@inbox:test:pub.os", capabilities: caps })))
      const got = yield* Effect.timeout(inbox.receiveEffect, "5 seconds")
      assert.strictEqual(got._tag, "Message")
      if (got._tag !== "Message") return
      assert.deepStrictEqual(got.message.capabilities.map((c) => [c.issuer.toString(), c.params]), [
        ["victim.os@echo:test:pub.os", "\"messaging\""],
        ["mallory.os@hostile:test:pub.os", "\"anything\""],
        ["friend.os@client:test:pub.os", "\"x\""]
      ])
      const dropped = s.victim.lines.slice(from).filter((l) => l.source === "net" && l.text.includes("dropped"))
      assert.deepStrictEqual(dropped.map((l) => l.text), [
        "mallory.os: dropped 3 capabilities claiming victim.os as issuer with a bad signature"
      ])
      assert.isTrue(conn.isOpen(), "a dropped capability is not a reason to close the connection")
      assert.strictEqual(closings(s.victim, from).length, 0)
      yield* s.stillServes
    }), { timeout: 30_000 })
})

/** Lets the event loop run I/O (the victim shares this process). */
const macrotask = Effect.callback<void>((resume) => void setImmediate(() => resume(Effect.void)))

/**
 * Writes one-way requests to `target` on `conn` (1,000-frame batches encoded once, so the
 * hostile, which shares the process, is not the bottleneck; back-pressure respected) until
 * `stop` and at least `min` are sent.
 */
const flood = (conn: HostileStream, target: string, min: number) =>
  Effect.gen(function*() {
    const BATCH = 1000
    const frames = Array.from({ length: BATCH }, (_, i) =>
      encodeFrame(message({ source: FROM, target, id: BigInt(i + 1), body: `flood ${i}` })))
    const batch = new Uint8Array(frames.reduce((k, f) => k + f.byteLength, 0))
    let at = 0
    for (const f of frames) {
      batch.set(f, at)
      at += f.byteLength
    }
    let sent = 0
    let stop = false
    const fiber = yield* Effect.forkScoped(Effect.gen(function*() {
      while (!stop || sent < min) {
        if (!(yield* conn.write(batch))) return
        sent += BATCH
        yield* macrotask
      }
    }))
    return { sent: () => sent, stop: Effect.suspend(() => (stop = true, Fiber.join(fiber))) }
  })

/** The victim's kernel drops what a full mailbox cannot take, one line each. */
const refusedFor = (node: NetNode, process: string) =>
  node.lines.filter((l) => l.source === "kernel" && l.text.includes(`${process} refused`)).length

// A small per-peer queue, so the flood pauses and resumes the flooding peer's streams
// many times (at the default 1,024 the kernel here keeps up and never pauses it).
const FLOOD_LIMITS = { maxQueuedPerPeer: 64 }

describe("a flood from one peer", () => {
  it.live("does not starve another peer's request to another process", () =>
    Effect.gen(function*() {
      const s = yield* sceneWith(FLOOD_LIMITS)
      yield* app(s.victim, "sink:test:pub.os") // never reads
      const h = yield* hostile(s.victim)
      const conn = yield* h.open
      yield* conn.write(encodeHello("mallory.os"))
      const f = yield* flood(conn, "victim.os@sink:test:pub.os", 20_000)
      while (refusedFor(s.victim, "sink:test:pub.os") < 2000) yield* Effect.sleep("5 millis")
      const before = refusedFor(s.victim, "sink:test:pub.os")
      const t0 = performance.now()
      const r = yield* ask(s.client, ECHO, "under flood", 5n)
      const ms = performance.now() - t0
      const during = refusedFor(s.victim, "sink:test:pub.os")
      yield* f.stop
      assert.deepStrictEqual(r, { text: "victim says under flood", blob: undefined })
      assert.isBelow(ms, 5000, `answered in ${Math.round(ms)} ms`)
      assert.isAbove(during, before, "the victim was taking the flood while answering")
      assert.isAtLeast(f.sent(), 20_000)
      assert.isTrue(
        conn.isOpen(),
        `a flood of well-formed messages is not a fault (${conn.closeReason()}); the victim printed:\n${show(s.victim, 0)}`
      )
      yield* s.stillServes
    }), { timeout: 60_000 })

  // libp2p throws when a stream whose readable end has closed is paused or resumed: the
  // flood's pause (or the kernel's resume) must skip the half-closed stream.
  it.live("beside a stream the peer half-closed does not stop the node taking messages", () =>
    Effect.gen(function*() {
      const s = yield* sceneWith(FLOOD_LIMITS)
      yield* app(s.victim, "sink:test:pub.os") // never reads
      const h = yield* hostile(s.victim)
      const quiet = yield* h.open
      yield* quiet.write(encodeHello("mallory.os"))
      const loud = yield* h.open
      yield* loud.write(encodeHello("mallory.os"))
      yield* Effect.promise(() => quiet.stream.close().catch(() => undefined))
      const f = yield* flood(loud, "victim.os@sink:test:pub.os", 20_000)
      while (f.sent() < 20_000 && loud.isOpen()) yield* Effect.sleep("10 millis")
      yield* f.stop
      assert.isTrue(loud.isOpen(), `the flooding stream was closed (${loud.closeReason()})`)
      yield* s.stillServes
    }), { timeout: 60_000 })
})

const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20_261_201)
const FUZZ_FRAMES = Number(process.env.FUZZ_FRAMES ?? 10_000)
const FUZZ_HOSTS = 10
const FUZZ_BUDGET_MS = Number(process.env.FUZZ_BUDGET_MS ?? 45_000)

interface FuzzStats {
  frames: number
  connections: number
  streams: number
  closedByVictim: number
  pings: number
  readonly kinds: Record<string, number>
  readonly mismatches: Array<string>
}

/**
 * One hostile host's fuzzing loop. Per connection: a few streams whose fuzzed first frame
 * must be refused (only the stream closes), then a stream with the hello and a run of
 * fuzzed frames the decoders accept (mutations that still decode, and valid frames with
 * random fields), then one they refuse. Every 16 accepted frames, and before the refused
 * one, a ping to the echo server must be answered on that stream (so the victim read them
 * all and kept it); after the refused one the connection must close.
 */
const fuzzHost = (h: Hostile, seed: number, others: ReadonlyArray<string>, stats: FuzzStats, deadline: number) =>
  Effect.gen(function*() {
    const r = prng(seed)
    const dials: Array<number> = []
    let pings = 0
    const fail = (text: string) => {
      if (stats.mismatches.length < 10) stats.mismatches.push(`${h.name} (seed ${seed}): ${text}`)
    }
    const more = () => stats.frames < FUZZ_FRAMES && performance.now() < deadline && stats.mismatches.length === 0
    const count = (kind: string) => {
      stats.frames++
      stats.kinds[kind] = (stats.kinds[kind] ?? 0) + 1
    }
    /** The victim must close `conn` after `what`. */
    const expectClose = (conn: HostileStream, what: string) =>
      Effect.map(conn.awaitClose(5000), (closed) => {
        if (closed) stats.closedByVictim++
        else fail(`the victim kept the stream open after a refused frame: ${what}`)
      })
    /** The victim must answer a ping on `conn`: it read and accepted everything before. */
    const ping = (conn: HostileStream, since: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const body = `ping ${h.name} ${++pings}`
        yield* conn.write(encodeFrame(message({ source: `${h.name}@hostile:test:pub.os`, target: ECHO, id: BigInt(pings), body, expects: 5n })))
        const answered = yield* conn.awaitFrame((payload) => {
          const m = decodeMessageFrame(payload)
          return Result.isSuccess(m) && new TextDecoder().decode(m.success.message.body) === `victim says ${body}`
        }, 5000)
        stats.pings++
        if (!answered) {
          fail(`${conn.isOpen() ? "no answer to a ping" : `the stream closed (${conn.closeReason()})`} after frames the decoders accept:\n  ${since.join("\n  ")}`)
        }
        return answered
      })
    /** The next fuzzed frame with a verdict in `want` (others are drawn and dropped). */
    const draw = <A>(gen: () => { readonly verdict: Verdict } & A, want: ReadonlyArray<Verdict>): A => {
      for (;;) {
        const f = gen()
        if (want.includes(f.verdict)) return f
      }
    }

    while (more()) {
      // the victim takes at most 5 new connections a second from one IP
      while (dials.length >= 4 && performance.now() - dials[dials.length - 4]! < 1050) yield* Effect.sleep("20 millis")
      yield* h.hangUp
      dials.push(performance.now())
      stats.connections++

      // a stream refused before any hello takes its whole connection with it: one such
      // stream every other connection (each costs a new connection against the rate limit)
      if (r.chance(0.5) && more()) {
        const f = draw(() => fuzzHello(r, h.name, others), ["lethal"])
        const conn = yield* h.open
        stats.streams++
        yield* conn.write(f.bytes)
        count(f.kind)
        yield* expectClose(conn, `${f.kind} ${hex(f.bytes)}`)
        continue
      }

      const conn = yield* h.open
      stats.streams++
      const hello = r.chance(0.2) ? draw(() => fuzzHello(r, h.name, others), ["fine"]) : undefined
      yield* conn.write(hello?.bytes ?? encodeHello(h.name))
      if (hello !== undefined) count(hello.kind)
      const since: Array<string> = []
      let alive = true
      for (let n = 4 + r.int(40); n > 0 && alive && more(); n--) {
        const f = draw(() => fuzzMessage(r, h.name), ["fine"])
        yield* conn.write(f.bytes)
        count(f.kind)
        since.push(`${f.kind} ${hex(f.bytes, 48)}`)
        if (since.length >= 16) {
          alive = yield* ping(conn, since)
          since.length = 0
        }
      }
      if (!alive || !more()) break
      if (!(yield* ping(conn, since))) break
      const last = draw(() => fuzzMessage(r, h.name), ["lethal", "unknown"])
      yield* conn.write(last.bytes)
      count(last.kind)
      if (last.verdict === "lethal") yield* expectClose(conn, `${last.kind} ${hex(last.bytes)}`)
      else conn.stream.abort(new Error("fuzz: a lying length, what follows is undefined"))
    }
  })

describe("fuzzed frames", () => {
  it.live(`${FUZZ_FRAMES} fuzzed frames into live connections crash nothing (seed from FUZZ_SEED)`, () =>
    Effect.gen(function*() {
      const s = yield* scene
      yield* app(s.victim, "inbox:test:pub.os")
      const names = Array.from({ length: FUZZ_HOSTS }, (_, i) => `fuzz${i}.os`)
      // each from its own loopback address (Linux routes all of 127/8 to lo): the victim's
      // libp2p takes at most 5 new connections a second from one IP
      const hosts = yield* Effect.forEach(names, (name, i) => hostile(s.victim, { name, localAddress: `127.0.0.${20 + i}` }))
      const stats: FuzzStats = { frames: 0, connections: 0, streams: 0, closedByVictim: 0, pings: 0, kinds: {}, mismatches: [] }
      const t0 = performance.now()
      yield* Effect.forEach(
        hosts,
        (h, i) => fuzzHost(h, FUZZ_SEED + i, names.filter((n) => n !== h.name).concat("friend.os"), stats, t0 + FUZZ_BUDGET_MS),
        { concurrency: "unbounded", discard: true }
      )
      const seconds = ((performance.now() - t0) / 1000).toFixed(1)
      console.log(
        `fuzz seed ${FUZZ_SEED}: ${stats.frames} frames in ${seconds} s over ${stats.connections} connections, ${stats.streams} streams; ` +
          `${stats.closedByVictim} refused frames closed by the victim; ${stats.pings} pings\n` +
          Object.entries(stats.kinds).sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k} ${n}`).join(", ")
      )
      assert.deepStrictEqual(stats.mismatches, [])
      assert.isAtLeast(stats.frames, FUZZ_FRAMES, `only ${stats.frames} frames in ${seconds} s`)
      yield* s.stillServes
    }), { timeout: 90_000 })
})
