/**
 * `http-client:distro:sys` WebSocket client channels through the real kernel to a real
 * `ws` server on loopback: open, push both ways, close both ways, re-open, every error,
 * limits, back-pressure under a flood, and owners that are gone.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Clock, Effect, Exit, Scope } from "effect"
import { bodyOf, clientNode, dec, enc, eventually, proc, Servers, type WsConnection } from "./support.ts"

const node = clientNode(() => ({ maxChannelsPerProcess: 3, sweepInterval: "200 millis" }))

const ACK = { Ok: "WebSocketAck" }
const open = (url: string, channel_id: number, headers: Record<string, string> = {}) => ({ WebSocketOpen: { url, headers, channel_id } })
const push = (channel_id: number, message_type: string) => ({ WebSocketPush: { channel_id, message_type } })
const close = (channel_id: number) => ({ WebSocketClose: { channel_id } })
const connectionAt = (conns: ReadonlyArray<WsConnection>, tag: string) => conns.find((c) => c.url.includes(tag))

describe("http-client: WebSocket channels", () => {
  layer(node.layer, { excludeTestServices: true, timeout: 30_000 })((it) => {
    it.effect("open with headers; Text and Binary pushes out and frames in, with their mime types", () =>
      Effect.gen(function*() {
        const s = yield* Servers
        const p = yield* proc("ws-basic:app:pub.os")
        assert.deepStrictEqual(bodyOf(yield* p.call(open(`${s.ws.base}/echo?t=basic`, 1, { "X-Token": "abc" }))), ACK)
        const conn = connectionAt(s.ws.connections, "t=basic")!
        assert.strictEqual(conn.headers["x-token"], "abc")
        assert.deepStrictEqual(bodyOf(yield* p.call(push(1, "Text"), { blob: enc("hello") })), ACK)
        const text = (yield* p.nextPush())!
        assert.deepStrictEqual(text.body, { WebSocketPush: { channel_id: 1, message_type: "Text" } })
        assert.strictEqual(dec(text.blob!.bytes), "hello")
        assert.strictEqual(text.blob!.mime, "text/plain")
        assert.deepStrictEqual(bodyOf(yield* p.call(push(1, "Binary"), { blob: new Uint8Array([1, 2, 255]) })), ACK)
        const binary = (yield* p.nextPush())!
        assert.deepStrictEqual(binary.body, { WebSocketPush: { channel_id: 1, message_type: "Binary" } })
        assert.deepStrictEqual(Array.from(binary.blob!.bytes), [1, 2, 255])
        assert.strictEqual(binary.blob!.mime, "application/octet-stream")
        assert.deepStrictEqual(conn.received, [{ data: "hello", isBinary: false }, { data: "0102ff", isBinary: true }])
        assert.deepStrictEqual(bodyOf(yield* p.call(close(1))), ACK)
      }))

    it.effect("Ping and Pong: ours out (the server answers Pong), the server's in, without blob", () =>
      Effect.gen(function*() {
        const s = yield* Servers
        const p = yield* proc("ws-ping:app:pub.os")
        assert.deepStrictEqual(bodyOf(yield* p.call(open(`${s.ws.base}/echo?t=ping`, 2))), ACK)
        assert.deepStrictEqual(bodyOf(yield* p.call(push(2, "Ping"))), ACK)
        const pong = (yield* p.nextPush())!
        assert.deepStrictEqual(pong.body, { WebSocketPush: { channel_id: 2, message_type: "Pong" } })
        assert.isUndefined(pong.blob)
        yield* p.call(push(2, "Text"), { blob: enc("ping-me") })
        const ping = (yield* p.nextPush())!
        assert.deepStrictEqual(ping.body, { WebSocketPush: { channel_id: 2, message_type: "Ping" } })
        assert.isUndefined(ping.blob)
      }))

    it.effect("the server closes: the owner gets WebSocketClose after the frames before it; the channel is gone", () =>
      Effect.gen(function*() {
        const s = yield* Servers
        const p = yield* proc("ws-server-close:app:pub.os")
        yield* p.call(open(`${s.ws.base}/echo?t=server-close`, 3))
        yield* p.call(push(3, "Text"), { blob: enc("before") })
        yield* p.call(push(3, "Text"), { blob: enc("close-me") })
        const before = (yield* p.nextPush())!
        assert.strictEqual(dec(before.blob!.bytes), "before")
        assert.deepStrictEqual((yield* p.nextPush())!.body, { WebSocketClose: { channel_id: 3 } })
        assert.deepStrictEqual(bodyOf(yield* p.call(push(3, "Text"), { blob: enc("late") })), { Err: { WsPushUnknownChannel: { channel_id: 3 } } })
        assert.deepStrictEqual(bodyOf(yield* p.call(close(3))), { Err: { WsCloseFailed: { channel_id: 3 } } })
      }))

    it.effect("the owner closes: Ack, the server sees a normal close, the owner is told nothing more", () =>
      Effect.gen(function*() {
        const s = yield* Servers
        const p = yield* proc("ws-owner-close:app:pub.os")
        yield* p.call(open(`${s.ws.base}/echo?t=owner-close`, 4))
        assert.deepStrictEqual(bodyOf(yield* p.call(close(4))), ACK)
        const conn = connectionAt(s.ws.connections, "t=owner-close")!
        assert.isTrue(yield* eventually(() => conn.closed !== undefined))
        assert.strictEqual(conn.closed!.code, 1000)
        assert.isUndefined(yield* p.nextPush("300 millis"))
        assert.deepStrictEqual(bodyOf(yield* p.call(close(4))), { Err: { WsCloseFailed: { channel_id: 4 } } })
        // a Close push sends a close frame; the server's answer closes the channel, said as Kinode does
        yield* p.call(open(`${s.ws.base}/echo?t=push-close`, 5))
        assert.deepStrictEqual(bodyOf(yield* p.call(push(5, "Close"))), ACK)
        assert.deepStrictEqual((yield* p.nextPush())!.body, { WebSocketClose: { channel_id: 5 } })
      }))

    it.effect("re-opening a key replaces the socket: the old one is closed and says nothing more", () =>
      Effect.gen(function*() {
        const s = yield* Servers
        const p = yield* proc("ws-reopen:app:pub.os")
        yield* p.call(open(`${s.ws.base}/echo?t=first`, 7))
        assert.deepStrictEqual(bodyOf(yield* p.call(open(`${s.ws.base}/echo?t=second`, 7))), ACK)
        const first = connectionAt(s.ws.connections, "t=first")!
        const second = connectionAt(s.ws.connections, "t=second")!
        assert.isTrue(yield* eventually(() => first.closed !== undefined))
        assert.strictEqual(first.closed!.code, 1000)
        yield* p.call(push(7, "Text"), { blob: enc("to the new one") })
        const echoed = (yield* p.nextPush())!
        assert.deepStrictEqual(echoed.body, { WebSocketPush: { channel_id: 7, message_type: "Text" } })
        assert.strictEqual(dec(echoed.blob!.bytes), "to the new one")
        assert.deepStrictEqual(second.received, [{ data: "to the new one", isBinary: false }])
        assert.deepStrictEqual(first.received, [])
        assert.isUndefined(yield* p.nextPush("200 millis"))
        // a failed re-open leaves the working channel alone
        const failed = bodyOf(yield* p.call(open(`ws://127.0.0.1:${s.deadPort}/`, 7)))
        assert.deepStrictEqual(failed, { Err: { WsOpenFailed: { url: `ws://127.0.0.1:${s.deadPort}/` } } })
        yield* p.call(push(7, "Text"), { blob: enc("still here") })
        assert.strictEqual(dec((yield* p.nextPush())!.blob!.bytes), "still here")
        // channels are per process: another process's channel 7 is another channel
        const q = yield* proc("ws-reopen-other:app:pub.os")
        assert.deepStrictEqual(bodyOf(yield* q.call(push(7, "Text"), { blob: enc("x") })), { Err: { WsPushUnknownChannel: { channel_id: 7 } } })
      }))

    it.effect("each WebSocket error, as Kinode names it", () =>
      Effect.gen(function*() {
        const s = yield* Servers
        const p = yield* proc("ws-errors:app:pub.os")
        assert.deepStrictEqual(bodyOf(yield* p.call(push(99, "Text"), { blob: enc("x") })), { Err: { WsPushUnknownChannel: { channel_id: 99 } } })
        assert.deepStrictEqual(bodyOf(yield* p.call(close(99))), { Err: { WsCloseFailed: { channel_id: 99 } } })
        assert.deepStrictEqual(bodyOf(yield* p.call(open("not a url", 1))), { Err: { BadUrl: { url: "not a url" } } })
        assert.deepStrictEqual(bodyOf(yield* p.call(open(`http://127.0.0.1:${s.ws.port}/echo`, 1))), {
          Err: { WsOpenFailed: { url: `http://127.0.0.1:${s.ws.port}/echo` } }
        })
        assert.deepStrictEqual(bodyOf(yield* p.call(open(`ws://127.0.0.1:${s.deadPort}/x`, 1))), {
          Err: { WsOpenFailed: { url: `ws://127.0.0.1:${s.deadPort}/x` } }
        })
        assert.deepStrictEqual(bodyOf(yield* p.call(open(`${s.ws.base}/echo?t=errors`, 1))), ACK)
        assert.deepStrictEqual(bodyOf(yield* p.call(push(1, "Text"))), { Err: "WsPushNoBlob" })
        assert.deepStrictEqual(bodyOf(yield* p.call(push(1, "Binary"))), { Err: "WsPushNoBlob" })
        assert.deepStrictEqual(bodyOf(yield* p.call(push(1, "Text"), { blob: new Uint8Array([0xc3, 0x28]) })), { Err: "WsPushBadText" })
        // WebSocket actions answer even when no response was expected (Kinode); nothing breaks
        yield* p.send(push(1, "Text"), enc("unexpected"))
        assert.strictEqual(dec((yield* p.nextPush())!.blob!.bytes), "unexpected")
      }))

    it.effect("a process may hold a bounded number of channels; re-opening an open key is not another", () =>
      Effect.gen(function*() {
        const s = yield* Servers
        const p = yield* proc("ws-limit:app:pub.os")
        for (const id of [1, 2, 3]) assert.deepStrictEqual(bodyOf(yield* p.call(open(`${s.ws.base}/silent?t=limit${id}`, id))), ACK)
        assert.deepStrictEqual(bodyOf(yield* p.call(open(`${s.ws.base}/silent?t=limit4`, 4))), { Err: { WsOpenFailed: { url: `${s.ws.base}/silent?t=limit4` } } })
        assert.isUndefined(connectionAt(s.ws.connections, "t=limit4"))
        assert.deepStrictEqual(bodyOf(yield* p.call(open(`${s.ws.base}/silent?t=limit3b`, 3))), ACK)
        assert.isTrue(node.lines.some((l) => l.text.includes("3 channels per process")))
        yield* p.call(close(1))
        assert.deepStrictEqual(bodyOf(yield* p.call(open(`${s.ws.base}/silent?t=limit4b`, 4))), ACK)
      }))

    it.effect("a flooding server waits for a slow owner (back-pressure, nothing dropped) while others are served", () =>
      Effect.gen(function*() {
        const s = yield* Servers
        const slow = yield* proc("ws-slow:app:pub.os")
        const other = yield* proc("ws-other:app:pub.os")
        const n = 3000
        assert.deepStrictEqual(bodyOf(yield* slow.call(open(`${s.ws.base}/echo?t=flood`, 1))), ACK)
        // the owner stops reading, then has the server flood: its mailbox (1,024
        // messages) fills, and the channel waits for room
        slow.pause()
        yield* slow.send(push(1, "Text"), enc(`flood:${n}`))
        yield* Effect.sleep("300 millis")
        const started = yield* Clock.currentTimeMillis
        const served = bodyOf(yield* other.call({ Http: { method: "GET", version: null, url: `${s.http.base}/echo?t=flood`, headers: {} } }))
        assert.strictEqual((served as { Ok: { Http: { status: number } } }).Ok.Http.status, 200)
        assert.isBelow((yield* Clock.currentTimeMillis) - started, 1000)
        slow.resume()
        const got: Array<string> = []
        for (let i = 0; i < n; i++) {
          const pushed = yield* slow.nextPush()
          if (pushed === undefined) break
          got.push(dec(pushed.blob!.bytes))
        }
        assert.strictEqual(got.length, n)
        assert.deepStrictEqual(got, Array.from({ length: n }, (_, i) => String(i)))
        assert.isFalse(node.lines.some((l) => l.text.includes("frames dropped") || l.text.includes("frames refused")))
      }))

    it.effect("a frame larger than a message can carry closes the channel", () =>
      Effect.gen(function*() {
        const s = yield* Servers
        const p = yield* proc("ws-big:app:pub.os")
        assert.deepStrictEqual(bodyOf(yield* p.call(open(`${s.ws.base}/big`, 1))), ACK)
        assert.deepStrictEqual((yield* p.nextPush())!.body, { WebSocketClose: { channel_id: 1 } })
        const conn = s.ws.connections.find((c) => c.url === "/big")!
        assert.isTrue(yield* eventually(() => conn.closed !== undefined))
        assert.strictEqual(conn.closed!.code, 1009)
      }))

    it.effect("an owner that is gone has its channels closed: at its next frame, or by the sweep", () =>
      Effect.gen(function*() {
        const s = yield* Servers
        const scope = yield* Scope.make()
        const p = yield* proc("ws-gone:app:pub.os").pipe(Scope.provide(scope))
        assert.deepStrictEqual(bodyOf(yield* p.call(open(`${s.ws.base}/tick?t=gone`, 1))), ACK)
        assert.deepStrictEqual(bodyOf(yield* p.call(open(`${s.ws.base}/silent?t=gone`, 2))), ACK)
        yield* Scope.close(scope, Exit.void)
        const ticking = connectionAt(s.ws.connections, "tick?t=gone")!
        const silent = connectionAt(s.ws.connections, "silent?t=gone")!
        assert.isTrue(yield* eventually(() => ticking.closed !== undefined && silent.closed !== undefined, "2 seconds"))
        assert.strictEqual(ticking.closed!.code, 1001)
        assert.strictEqual(silent.closed!.code, 1001)
      }))
  })
})
