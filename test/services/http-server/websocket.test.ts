/**
 * http-server's WebSockets over a real `ws` client against the real server and kernel:
 * binds, frames both ways, pushes and their errors, closes, who may upgrade, the bounds
 * (connections, flood, frame size), Unbind, and the extension protocol (named-form
 * MessagePack) (kinode-semantics §6.7).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { Packr } from "msgpackr"
import { randomBytes } from "node:crypto"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import { WebSocket } from "ws"
import { address } from "../../../src/Ids.ts"
import { request } from "../../../src/Message.ts"
import type { NativeApi } from "../../../src/ProcessApi.ts"
import { HTTP_SERVER, HttpServer, type WsMessageType } from "../../../services/http-server/index.ts"
import { action, app, type Incoming, next, NODE, tell, withHttp } from "./support.ts"

const packr = new Packr({ useRecords: false, mapsAsObjects: true })
const utf8 = new TextEncoder()
const text = (s: string) => ({ mime: "text/plain", bytes: utf8.encode(s) })
const bin = (...bytes: Array<number>) => ({ mime: "application/octet-stream", bytes: Uint8Array.from(bytes) })

interface Frame {
  readonly data: Buffer
  readonly binary: boolean
}
interface Closed {
  readonly code: number
  readonly reason: string
}

/** A `ws` client that keeps what arrives: frames in order, pings, and how it closed. */
class Client {
  private readonly frames: Array<Frame> = []
  private readonly waiting: Array<(f: Frame) => void> = []
  readonly pings: Array<Buffer> = []
  readonly closed: Promise<Closed>
  readonly ws: WebSocket
  constructor(ws: WebSocket) {
    this.ws = ws
    ws.on("message", (data: Buffer, binary: boolean) => {
      const f = { data, binary }
      const w = this.waiting.shift()
      if (w !== undefined) w(f)
      else this.frames.push(f)
    })
    ws.on("ping", (d: Buffer) => this.pings.push(d))
    ws.on("error", () => undefined)
    this.closed = new Promise((resolve) => ws.on("close", (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })))
  }
  /** The next frame the server sent (3 s at most). */
  readonly next: Effect.Effect<Frame> = Effect.promise(() => {
    const f = this.frames.shift()
    return f !== undefined ? Promise.resolve(f) : new Promise<Frame>((resolve) => this.waiting.push(resolve))
  }).pipe(Effect.timeout("3 seconds"), Effect.orDie)
  /** How the connection ended (3 s at most). */
  readonly close: Effect.Effect<Closed> = Effect.promise(() => this.closed).pipe(Effect.timeout("3 seconds"), Effect.orDie)
  readonly send = (data: string | Uint8Array, binary?: boolean) =>
    Effect.promise(() =>
      new Promise<void>((resolve) => this.ws.send(data, { binary: binary ?? typeof data !== "string" }, () => resolve()))
    )
}

type Attempt = Client | { readonly refused: number }

/** Opens a WebSocket (closed with the test's scope): the client, or the HTTP status that refused it. */
const attempt = (url: string, headers: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<Attempt>((resolve) => {
        const ws = new WebSocket(url, { headers })
        const client = new Client(ws)
        ws.once("open", () => resolve(client))
        ws.once("error", (e) => {
          const m = /Unexpected server response: (\d+)/.exec(e.message)
          resolve({ refused: m === null ? 0 : Number(m[1]) })
        })
      })
    ),
    (a) => Effect.sync(() => a instanceof Client && a.ws.terminate())
  )

const connect = (url: string, headers: Record<string, string> = {}) =>
  Effect.flatMap(attempt(url, headers), (a) =>
    a instanceof Client ? Effect.succeed(a) : Effect.die(new Error(`upgrade of ${url} refused: ${a.refused}`)))

const refusal = (url: string, headers: Record<string, string> = {}) =>
  Effect.flatMap(attempt(url, headers), (a) =>
    a instanceof Client ? Effect.die(new Error(`upgrade of ${url} was accepted`)) : Effect.succeed(a.refused))

/**
 * A bare TCP WebSocket client that ignores what the server sends, close frames
 * included: it keeps sending after the server closed (as a hostile client may).
 */
const stubborn = (port: number, path: string) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(port, "127.0.0.1", () =>
          s.write(
            `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
              `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`
          ))
        s.once("data", (d) => d.toString("latin1").startsWith("HTTP/1.1 101") ? resolve(s) : reject(new Error(d.toString("latin1"))))
        s.on("error", () => undefined)
      })
    ),
    (s) => Effect.sync(() => s.destroy())
  )

/** A masked text frame (mask key 0, so the payload is as given); short payloads only. */
const textFrame = (t: string) => {
  const payload = Buffer.from(t)
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload])
}

/** `ws://127.0.0.1:<port>` of the node's server. */
const wsBase = Effect.map(HttpServer, (s) => `ws://127.0.0.1:${s.port}`)
const nodeCookie = Effect.map(HttpServer, (s) => s.cookie())

const wsBind = (api: NativeApi, path: string, options: { authenticated?: boolean; extension?: boolean } = {}) =>
  action(api, { WebSocketBind: { path, authenticated: options.authenticated ?? false, extension: options.extension ?? false } })

const push = (api: NativeApi, channel: number, type: WsMessageType, blob?: { mime: string; bytes: Uint8Array }) =>
  action(api, { WebSocketPush: { channel_id: channel, message_type: type } }, blob)

/** The next request must be `name`; its payload and blob. */
const expect = (api: NativeApi, name: string) =>
  Effect.map(next(api), (m: Incoming) => {
    assert.deepStrictEqual(Object.keys(m.body), [name], JSON.stringify(m.body))
    return { value: m.body[name], blob: m.blob }
  })

/** The channel id of the next `WebSocketOpen`, whose path must be `path`. */
const opened = (api: NativeApi, path: string) =>
  Effect.map(expect(api, "WebSocketOpen"), ({ value }) => {
    assert.strictEqual(value.path, path)
    assert.isTrue(Number.isInteger(value.channel_id) && value.channel_id >= 0 && value.channel_id <= 0xffff_ffff)
    return value.channel_id as number
  })

const decoded = (b: Uint8Array | undefined) => new TextDecoder().decode(b)

/** The next push from `channel`; what came before it is kept in `skipped`. */
const pushFrom = (api: NativeApi, channel: number, skipped: Array<Incoming> = []): Effect.Effect<Incoming> =>
  Effect.flatMap(next(api), (m) =>
    m.body["WebSocketPush"]?.channel_id === channel ? Effect.succeed(m) : (skipped.push(m), pushFrom(api, channel, skipped)))

/** The next message of any kind (requests and responses). */
const received = (api: NativeApi) =>
  Effect.map(api.receiveEffect.pipe(Effect.timeout("3 seconds"), Effect.orDie), (r) => {
    assert.strictEqual(r._tag, "Message")
    const m = r._tag === "Message" ? r.message : undefined
    return { tag: m?._tag, body: m === undefined ? undefined : JSON.parse(decoded(m.body)), blob: api.getBlob() }
  })

/** A plain GET (the node keeps serving HTTP). */
const getStatus = (url: string) =>
  Effect.promise(() =>
    new Promise<number>((resolve, reject) => {
      http.get(url, { agent: false }, (res) => {
        res.resume()
        resolve(res.statusCode!)
      }).on("error", reject)
    })
  )

describe("http-server WebSockets", () => {
  it.live("WebSocketBind: open, frames both ways, pushes and their errors, closes from either side, Close pushes", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("chat:chat:sys")
      assert.deepStrictEqual(yield* wsBind(api, "/ws", { authenticated: true }), { Ok: null })
      assert.deepStrictEqual(yield* wsBind(api, "/open/"), { Ok: null })
      const base = yield* wsBase

      // Authenticated: the node cookie; the app sees the path as it bound it.
      const a = yield* connect(`${base}/chat:chat:sys/ws?x=1`, { cookie: yield* nodeCookie })
      const ca = yield* opened(api, "/ws")
      const b = yield* connect(`${base}/chat:chat:sys/open`)
      const cb = yield* opened(api, "/open")
      assert.notStrictEqual(ca, cb)

      yield* a.send("hello server")
      const t = yield* expect(api, "WebSocketPush")
      assert.deepStrictEqual(t.value, { channel_id: ca, message_type: "Text" })
      assert.strictEqual(t.blob?.mime, "text/plain")
      assert.strictEqual(decoded(t.blob?.bytes), "hello server")
      yield* b.send(Uint8Array.from([0, 1, 255]))
      const bi = yield* expect(api, "WebSocketPush")
      assert.deepStrictEqual(bi.value, { channel_id: cb, message_type: "Binary" })
      assert.strictEqual(bi.blob?.mime, "application/octet-stream")
      assert.deepStrictEqual(Array.from(bi.blob!.bytes), [0, 1, 255])

      // The app pushes back.
      assert.deepStrictEqual(yield* push(api, ca, "Text", text("hi client")), { Ok: null })
      const ft = yield* a.next
      assert.isFalse(ft.binary)
      assert.strictEqual(ft.data.toString(), "hi client")
      assert.deepStrictEqual(yield* push(api, ca, "Binary", bin(9, 8, 7)), { Ok: null })
      const fb = yield* a.next
      assert.isTrue(fb.binary)
      assert.deepStrictEqual(Array.from(fb.data), [9, 8, 7])
      assert.deepStrictEqual(yield* push(api, ca, "Ping", bin(1, 2)), { Ok: null })

      // Errors.
      assert.deepStrictEqual(yield* push(api, ca, "Text"), { Err: "NoBlob" })
      assert.deepStrictEqual(yield* push(api, ca, "Binary"), { Err: "NoBlob" })
      assert.deepStrictEqual(yield* push(api, ca, "Text", bin(0xff, 0xfe, 0x41)), { Err: "MalformedRequest" })
      assert.deepStrictEqual(yield* push(api, ca, "Ping", bin(...new Array(126).fill(1))), { Err: "WsPingPongTooLong" })
      assert.deepStrictEqual(yield* push(api, ca, "Pong", bin(...new Array(126).fill(1))), { Err: "WsPingPongTooLong" })
      assert.deepStrictEqual(yield* push(api, 12345, "Text", text("x")), { Err: "WsChannelNotFound" })
      const other = yield* app("other:other:sys")
      assert.deepStrictEqual(yield* push(other, ca, "Text", text("not yours")), { Err: "WsChannelNotFound" })
      assert.deepStrictEqual(yield* action(other, { WebSocketClose: ca }), { Err: "WsChannelNotFound" })
      // None of those reached the client; the ping did (ws answers it itself).
      assert.deepStrictEqual(yield* push(api, ca, "Text", text("still here")), { Ok: null })
      assert.strictEqual((yield* a.next).data.toString(), "still here")
      assert.deepStrictEqual(a.pings.map((p) => Array.from(p)), [[1, 2]])

      // The client closes: the app is told.
      b.ws.close(1000)
      assert.strictEqual((yield* b.close).code, 1000)
      assert.deepStrictEqual((yield* expect(api, "WebSocketClose")).value, cb)
      assert.deepStrictEqual(yield* push(api, cb, "Text", text("gone")), { Err: "WsChannelNotFound" })

      // The app closes: the client gets a normal close.
      assert.deepStrictEqual(yield* action(api, { WebSocketClose: ca }), { Ok: null })
      assert.strictEqual((yield* a.close).code, 1000)
      assert.deepStrictEqual(yield* push(api, ca, "Text", text("gone")), { Err: "WsChannelNotFound" })

      // A Close push closes the client gracefully (Kinode's module crashes here [quirk]);
      // the app learns the channel closed and the module keeps working.
      const c = yield* connect(`${base}/chat:chat:sys/open`)
      const cc = yield* opened(api, "/open")
      assert.deepStrictEqual(yield* push(api, cc, "Close"), { Ok: null })
      assert.strictEqual((yield* c.close).code, 1000)
      assert.deepStrictEqual((yield* expect(api, "WebSocketClose")).value, cc)
      const d = yield* connect(`${base}/chat:chat:sys/open`)
      const cd = yield* opened(api, "/open")
      assert.deepStrictEqual(yield* push(api, cd, "Text", text("after close")), { Ok: null })
      assert.strictEqual((yield* d.next).data.toString(), "after close")
      yield* d.send("and back")
      assert.strictEqual(decoded((yield* expect(api, "WebSocketPush")).blob?.bytes), "and back")
    })))

  it.live("who may upgrade: the cookie on authenticated binds (401), bound paths only (404), secure binds, loopback for extensions (403)", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("gate:gate:sys")
      yield* wsBind(api, "/auth", { authenticated: true })
      yield* wsBind(api, "/ext", { extension: true })
      const vault = yield* app("vault:vault-app:sys")
      assert.deepStrictEqual(yield* action(vault, { WebSocketSecureBind: { path: "/ws", extension: false } }), { Ok: null })
      const server = yield* HttpServer
      const base = `ws://127.0.0.1:${server.port}`

      assert.strictEqual(yield* refusal(`${base}/gate:gate:sys/auth`), 401)
      assert.strictEqual(yield* refusal(`${base}/gate:gate:sys/auth`, { cookie: `kinode-auth_test.dev=not.a.jwt` }), 401)
      // An app's own cookie is not the node's.
      assert.strictEqual(yield* refusal(`${base}/gate:gate:sys/auth`, { cookie: server.cookie("gate:gate:sys") }), 401)
      assert.strictEqual(yield* refusal(`${base}/nobody:here:sys/ws`), 404)
      assert.strictEqual(yield* refusal(`${base}/`), 404)
      yield* connect(`${base}/gate:gate:sys/auth`, { cookie: server.cookie() })
      yield* opened(api, "/auth")

      // Secure binds: the app's subdomain and the app's own cookie.
      const sub = { host: `vault-app-sys.localhost:${server.port}` }
      const appCookie = server.cookie("vault:vault-app:sys")
      assert.strictEqual(yield* refusal(`${base}/vault:vault-app:sys/ws`, { cookie: appCookie }), 401)
      assert.strictEqual(yield* refusal(`${base}/vault:vault-app:sys/ws`, { ...sub }), 401)
      assert.strictEqual(yield* refusal(`${base}/vault:vault-app:sys/ws`, { ...sub, cookie: server.cookie() }), 401)
      assert.strictEqual(yield* refusal(`${base}/vault:vault-app:sys/ws`, { host: `other.localhost:${server.port}`, cookie: appCookie }), 401)
      const v = yield* connect(`${base}/vault:vault-app:sys/ws`, { ...sub, cookie: appCookie })
      const cv = yield* opened(vault, "/ws")
      assert.deepStrictEqual(yield* push(vault, cv, "Text", text("secure")), { Ok: null })
      assert.strictEqual((yield* v.next).data.toString(), "secure")

      // Extension binds: loopback clients only.
      const external = Object.values(os.networkInterfaces()).flat().find((i) => i !== undefined && i.family === "IPv4" && !i.internal)
      assert.isDefined(external, "this test needs a non-loopback IPv4 address on the machine")
      assert.strictEqual(yield* refusal(`ws://${external!.address}:${server.port}/gate:gate:sys/ext`), 403)
      yield* connect(`${base}/gate:gate:sys/ext`)
      yield* opened(api, "/ext")
      // A plain bind takes clients from anywhere.
      yield* wsBind(api, "/any")
      yield* connect(`ws://${external!.address}:${server.port}/gate:gate:sys/any`)
      yield* opened(api, "/any")
    }), {}, "0.0.0.0"))

  it.live("at most maxWsConnections connections (then 503, HTTP still served); a freed slot can be taken again", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("many:many:sys")
      yield* wsBind(api, "/ws")
      const server = yield* HttpServer
      const base = yield* wsBase
      const clients: Array<Client> = []
      for (let i = 0; i < 4; i++) {
        clients.push(yield* connect(`${base}/many:many:sys/ws`))
        yield* opened(api, "/ws")
      }
      assert.strictEqual(yield* refusal(`${base}/many:many:sys/ws`), 503)
      assert.strictEqual(yield* getStatus(`http://127.0.0.1:${server.port}/login`), 200)
      clients[0]!.ws.close()
      yield* expect(api, "WebSocketClose")
      const again = yield* connect(`${base}/many:many:sys/ws`)
      const ch = yield* opened(api, "/ws")
      assert.deepStrictEqual(yield* push(api, ch, "Text", text("fifth")), { Ok: null })
      assert.strictEqual((yield* again.next).data.toString(), "fifth")
    }), { maxWsConnections: 4 }))

  it.live("a flooding client is closed with 1008 while another on the same path keeps working; an oversized frame closes with 1009", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("flood:flood:sys")
      yield* wsBind(api, "/ws")
      const base = yield* wsBase
      const flooder = yield* connect(`${base}/flood:flood:sys/ws`)
      const cf = yield* opened(api, "/ws")
      const calm = yield* connect(`${base}/flood:flood:sys/ws`)
      const cc = yield* opened(api, "/ws")
      for (let i = 0; i < 100; i++) flooder.ws.send(`frame ${i}`)
      assert.strictEqual((yield* flooder.close).code, 1008)
      // What got through before the cut, at most a second's worth; then the calm client's frame.
      yield* calm.send("calm")
      const skipped: Array<Incoming> = []
      const fromCalm = yield* pushFrom(api, cc, skipped)
      assert.strictEqual(decoded(fromCalm.blob?.bytes), "calm")
      const flooded = skipped.filter((m) => m.body["WebSocketPush"]?.channel_id === cf)
      assert.isAtMost(flooded.length, 40) // a second's worth, two if the burst straddles a second
      assert.isAbove(flooded.length, 0)
      assert.deepStrictEqual(yield* push(api, cc, "Text", text("still on")), { Ok: null })
      assert.strictEqual((yield* calm.next).data.toString(), "still on")

      // Frames over maxWsFrameBytes.
      const big = yield* connect(`${base}/flood:flood:sys/ws`)
      yield* opened(api, "/ws")
      big.ws.send(new Uint8Array(2048))
      assert.strictEqual((yield* big.close).code, 1009)
      yield* calm.send(new Uint8Array(1000))
      const ok = yield* pushFrom(api, cc)
      assert.strictEqual(ok.blob?.bytes.length, 1000)
    }), { maxWsFramesPerSecond: 20, maxWsFrameBytes: 1024 }))

  it.live("once the server closed a connection (the app closed it, or it flooded), frames the client still sends reach no app", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("late:late:sys")
      yield* wsBind(api, "/ws")
      const server = yield* HttpServer
      const marker = yield* connect(`ws://127.0.0.1:${server.port}/late:late:sys/ws`)
      const cm = yield* opened(api, "/ws")

      const closedByApp = yield* stubborn(server.port, "/late:late:sys/ws")
      const ca = yield* opened(api, "/ws")
      closedByApp.write(textFrame("before"))
      assert.strictEqual(decoded((yield* pushFrom(api, ca)).blob?.bytes), "before")
      assert.deepStrictEqual(yield* action(api, { WebSocketClose: ca }), { Ok: null })
      closedByApp.write(Buffer.concat([textFrame("after 1"), textFrame("after 2")]))

      const flooder = yield* stubborn(server.port, "/late:late:sys/ws")
      const cf = yield* opened(api, "/ws")
      flooder.write(Buffer.concat(Array.from({ length: 50 }, (_, i) => textFrame(`flood ${i}`))))
      // Past the flood's second, it goes on (a rate-limited trickle would be forwarded).
      yield* Effect.sleep("1100 millis")
      flooder.write(Buffer.concat(Array.from({ length: 5 }, (_, i) => textFrame(`later ${i}`))))
      yield* Effect.sleep("100 millis")

      yield* marker.send("marker")
      const skipped: Array<Incoming> = []
      yield* pushFrom(api, cm, skipped)
      const pushes = skipped.filter((m) => "WebSocketPush" in m.body)
      assert.deepStrictEqual(pushes.filter((m) => m.body["WebSocketPush"].channel_id === ca), [])
      const flooded = pushes.filter((m) => m.body["WebSocketPush"].channel_id === cf).map((m) => decoded(m.blob?.bytes))
      assert.isAtMost(flooded.length, 40) // a second's worth, two if the burst straddles a second
      assert.isFalse(flooded.some((t) => t.startsWith("later")), flooded.join(","))
      // The node's shutdown does not wait on clients that never answer its close (ws waits 30 s).
    }), { maxWsFramesPerSecond: 20 }).pipe(Effect.timeout("10 seconds"), Effect.orDie))

  it.live("WebSocketUnbind closes the path's open connections and later upgrades are 404", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("unb:unb:sys")
      yield* wsBind(api, "/a")
      yield* wsBind(api, "/b")
      const base = yield* wsBase
      const a1 = yield* connect(`${base}/unb:unb:sys/a`)
      yield* opened(api, "/a")
      const a2 = yield* connect(`${base}/unb:unb:sys/a`)
      yield* opened(api, "/a")
      const b = yield* connect(`${base}/unb:unb:sys/b`)
      const cb = yield* opened(api, "/b")
      assert.deepStrictEqual(yield* action(api, { WebSocketUnbind: { path: "/a" } }), { Ok: null })
      assert.strictEqual((yield* a1.close).code, 1001)
      assert.strictEqual((yield* a2.close).code, 1001)
      assert.strictEqual(yield* refusal(`${base}/unb:unb:sys/a`), 404)
      assert.deepStrictEqual(yield* push(api, cb, "Text", text("b stays")), { Ok: null })
      assert.strictEqual((yield* b.next).data.toString(), "b stays")
    })))

  it.live("extension protocol: pushes as named MessagePack, the client's Response answers the app's request, other frames are pushes", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("ext:ext:sys")
      yield* wsBind(api, "/ext", { extension: true })
      const base = yield* wsBase
      const c = yield* connect(`${base}/ext:ext:sys/ext`)
      const ch = yield* opened(api, "/ext")

      // Desired Request: the app gets Ok at once; the client gets the frame.
      assert.deepStrictEqual(
        yield* action(api, { WebSocketExtPushOutgoing: { channel_id: ch, message_type: "Binary", desired_reply_type: "Request" } }, bin(1, 2, 3)),
        { Ok: null }
      )
      const f1 = yield* c.next
      assert.isTrue(f1.binary)
      const d1 = packr.unpack(f1.data).WebSocketExtPushData
      assert.strictEqual(d1.kinode_message_type, "Request")
      assert.deepStrictEqual(Array.from(d1.blob as Uint8Array), [1, 2, 3])
      assert.isTrue(typeof d1.id === "bigint" || typeof d1.id === "number")

      // Desired Response: the client's frame with the same id is the answer.
      const target = address(`${NODE}@${HTTP_SERVER}`)
      const asking = yield* Effect.forkChild(api.sendAndAwaitEffect(
        target,
        request({ body: utf8.encode(JSON.stringify({ WebSocketExtPushOutgoing: { channel_id: ch, message_type: "Binary", desired_reply_type: "Response" } })), expectsResponse: 5n }),
        bin(4, 5)
      ).pipe(Effect.map((r) => ({ r, blob: api.getBlob() }))))
      const f2 = yield* c.next
      const d2 = packr.unpack(f2.data).WebSocketExtPushData
      assert.strictEqual(d2.kinode_message_type, "Response")
      assert.deepStrictEqual(Array.from(d2.blob as Uint8Array), [4, 5])
      // A wrong id answers nothing; a malformed one breaks nothing.
      yield* c.send(packr.pack({ WebSocketExtPushData: { id: BigInt(d2.id) + 1n, kinode_message_type: "Response", blob: Uint8Array.from([0]) } }))
      const notAnId = packr.pack({ WebSocketExtPushData: { id: 1.5, kinode_message_type: "Response", blob: Uint8Array.from([0]) } })
      yield* c.send(notAnId)
      yield* c.send(packr.pack({ WebSocketExtPushData: { id: d2.id, kinode_message_type: "Response", blob: Uint8Array.from([6, 7]) } }))
      const answered = yield* Fiber.join(asking)
      assert.isTrue("source" in answered.r, "the app got its answer (not a SendError)")
      if (!("source" in answered.r)) return
      assert.strictEqual(answered.r.message._tag, "Response")
      assert.deepStrictEqual(JSON.parse(decoded(answered.r.message.body)), { WebSocketPush: { channel_id: ch, message_type: "Binary" } })
      assert.deepStrictEqual(Array.from(answered.blob!.bytes), [6, 7])
      // The frame whose id is no integer was not the extension form: a plain push (it threw at the node before).
      const plain = yield* expect(api, "WebSocketPush")
      assert.deepStrictEqual(plain.value, { channel_id: ch, message_type: "Binary" })
      assert.deepStrictEqual(Array.from(plain.blob!.bytes), Array.from(notAnId))

      // Only the channel the push went to answers it: another extension client that
      // knows (or guesses: ids are sequential) the id is ignored.
      const c2 = yield* connect(`${base}/ext:ext:sys/ext`)
      const ch2 = yield* opened(api, "/ext")
      api.sendRequest(target, request({ body: utf8.encode(JSON.stringify({ WebSocketExtPushOutgoing: { channel_id: ch, message_type: "Binary", desired_reply_type: "Response" } })), expectsResponse: 5n }), undefined, bin(1))
      const d3 = packr.unpack((yield* c.next).data).WebSocketExtPushData
      yield* c2.send(packr.pack({ WebSocketExtPushData: { id: d3.id, kinode_message_type: "Response", blob: Uint8Array.from([66]) } }))
      yield* c2.send("c2 after")
      const after = yield* received(api)
      assert.strictEqual(after.tag, "Request")
      assert.deepStrictEqual(after.body, { WebSocketPush: { channel_id: ch2, message_type: "Text" } })
      yield* c.send(packr.pack({ WebSocketExtPushData: { id: d3.id, kinode_message_type: "Response", blob: Uint8Array.from([3]) } }))
      const answer = yield* received(api)
      assert.strictEqual(answer.tag, "Response")
      assert.deepStrictEqual(answer.body, { WebSocketPush: { channel_id: ch, message_type: "Binary" } })
      assert.deepStrictEqual(Array.from(answer.blob!.bytes), [3])

      // A client Request in that form becomes a push with its blob; other frames are plain pushes.
      yield* c.send(packr.pack({ WebSocketExtPushData: { id: 77n, kinode_message_type: "Request", blob: Uint8Array.from([8, 9]) } }))
      const p1 = yield* expect(api, "WebSocketPush")
      assert.deepStrictEqual(p1.value, { channel_id: ch, message_type: "Binary" })
      assert.deepStrictEqual(Array.from(p1.blob!.bytes), [8, 9])
      yield* c.send(Uint8Array.from([0xc1, 0x00]))
      const p2 = yield* expect(api, "WebSocketPush")
      assert.deepStrictEqual(p2.value, { channel_id: ch, message_type: "Binary" })
      assert.deepStrictEqual(Array.from(p2.blob!.bytes), [0xc1, 0x00])
      yield* c.send("plain text")
      const p3 = yield* expect(api, "WebSocketPush")
      assert.deepStrictEqual(p3.value, { channel_id: ch, message_type: "Text" })
      assert.strictEqual(decoded(p3.blob?.bytes), "plain text")

      // An app that did not expect a response gets none: the client's answer goes nowhere.
      yield* tell(api, { WebSocketExtPushOutgoing: { channel_id: ch, message_type: "Binary", desired_reply_type: "Response" } }, bin(2))
      const d4 = packr.unpack((yield* c.next).data).WebSocketExtPushData
      assert.strictEqual(d4.kinode_message_type, "Response")
      yield* c.send(packr.pack({ WebSocketExtPushData: { id: d4.id, kinode_message_type: "Response", blob: Uint8Array.from([5]) } }))
      yield* c.send("done")
      const done = yield* received(api)
      assert.strictEqual(done.tag, "Request")
      assert.deepStrictEqual(done.body, { WebSocketPush: { channel_id: ch, message_type: "Text" } })

      // Errors: no blob, another's channel.
      assert.deepStrictEqual(
        yield* action(api, { WebSocketExtPushOutgoing: { channel_id: ch, message_type: "Binary", desired_reply_type: "Request" } }),
        { Err: "NoBlob" }
      )
      const other = yield* app("other:other:sys")
      assert.deepStrictEqual(
        yield* action(other, { WebSocketExtPushOutgoing: { channel_id: ch, message_type: "Binary", desired_reply_type: "Request" } }, bin(1)),
        { Err: "WsChannelNotFound" }
      )
    })))
})
