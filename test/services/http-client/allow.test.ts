/**
 * Restricted mode: `HttpClient.layer({ allow })` refuses hosts not in the list, for
 * `Http` (also on every redirect) and `WebSocketOpen`, before any connection is made.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Exit, Layer, Result } from "effect"
import { testKernel } from "../../../layers/TestLive.ts"
import { AllowList, HttpClient } from "../../../services/http-client/index.ts"
import { type Answer, bodyOf, clientNode, dec, proc, Servers } from "./support.ts"

// 127.0.0.1 on any port; 127.0.0.2 (the other servers) only on port 1, where nothing listens
const node = clientNode(() => ({ allow: ["127.0.0.1", "127.0.0.2:1"] }))

const get = (url: string) => ({ Http: { method: "GET", version: null, url, headers: {} } })

describe("http-client: allow-list", () => {
  layer(node.layer, { excludeTestServices: true, timeout: 30_000 })((it) => {
    it.effect("a listed host is reached; others are refused before connecting, naming host and port", () =>
      Effect.gen(function*() {
        const s = yield* Servers
        const p = yield* proc("allow:app:pub.os")
        const ok = (yield* p.call(get(`${s.http.base}/echo`))) as Answer
        assert.strictEqual((ok.body as { Ok: { Http: { status: number } } }).Ok.Http.status, 200)
        assert.deepStrictEqual(bodyOf(yield* p.call(get(`${s.other.base}/echo`))), {
          Err: { BuildRequestFailed: `not allowed: 127.0.0.2:${s.other.port}` }
        })
        // names are not resolved: localhost is not 127.0.0.1
        assert.deepStrictEqual(bodyOf(yield* p.call(get(`http://localhost:${s.http.port}/echo`))), {
          Err: { BuildRequestFailed: `not allowed: localhost:${s.http.port}` }
        })
        // the default port counts: https://example.com is example.com:443
        assert.deepStrictEqual(bodyOf(yield* p.call(get("https://Example.COM/x"))), { Err: { BuildRequestFailed: "not allowed: example.com:443" } })
        assert.deepStrictEqual(s.other.hits, [])
      }))

    it.effect("a redirect to a host not listed is refused, and not followed", () =>
      Effect.gen(function*() {
        const s = yield* Servers
        const p = yield* proc("allow-redirect:app:pub.os")
        const to = `${s.other.base}/echo`
        assert.deepStrictEqual(bodyOf(yield* p.call(get(`${s.http.base}/away?to=${encodeURIComponent(to)}`))), {
          Err: { ExecuteRequestFailed: `redirect to ${to} refused: not allowed: 127.0.0.2:${s.other.port}` }
        })
        assert.deepStrictEqual(s.other.hits, [])
        // a redirect within the list is followed
        const within = (yield* p.call(get(`${s.http.base}/redirect?n=2`))) as Answer
        assert.strictEqual((JSON.parse(dec(within.blob!.bytes)) as { url: string }).url, "/echo")
      }))

    it.effect("WebSocketOpen to a host not listed is refused before connecting; a listed one opens", () =>
      Effect.gen(function*() {
        const s = yield* Servers
        const p = yield* proc("allow-ws:app:pub.os")
        assert.deepStrictEqual(bodyOf(yield* p.call({ WebSocketOpen: { url: `${s.otherWs.base}/echo`, headers: {}, channel_id: 1 } })), {
          Err: { BuildRequestFailed: `not allowed: 127.0.0.2:${s.otherWs.port}` }
        })
        assert.deepStrictEqual(s.otherWs.connections, [])
        assert.deepStrictEqual(bodyOf(yield* p.call({ WebSocketOpen: { url: `${s.ws.base}/echo`, headers: {}, channel_id: 1 } })), { Ok: "WebSocketAck" })
      }))
  })
})

describe("http-client: allow-list entries", () => {
  it("parses host[:port] entries, normalised; refuses anything else", () => {
    const parsed = AllowList.parse(["API.Example.com", "127.0.0.1:8080", "[::1]:443", " spaced.org "])
    assert.deepStrictEqual(Result.getOrThrow(parsed), [
      { host: "api.example.com", port: undefined },
      { host: "127.0.0.1", port: 8080 },
      { host: "[::1]", port: 443 },
      { host: "spaced.org", port: undefined }
    ])
    for (const bad of ["", "http://x.org", "x.org/path", "x.org:0", "x.org:70000", "user@x.org", "x.org:port", "a b"]) {
      assert.isTrue(Result.isFailure(AllowList.parse([bad])), bad)
    }
    const list = Result.getOrThrow(AllowList.parse(["example.com:80"]))
    assert.isUndefined(AllowList.refusal(list, new URL("http://example.com/")))
    assert.isUndefined(AllowList.refusal(list, new URL("ws://EXAMPLE.com:80/")))
    assert.strictEqual(AllowList.refusal(list, new URL("https://example.com/")), "not allowed: example.com:443")
    assert.strictEqual(AllowList.refusal(list, new URL("http://sub.example.com/")), "not allowed: sub.example.com:80")
  })

  it.effect("a bad entry given to the layer is a defect when it is built, with the entry named", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Layer.build(HttpClient.layer({ allow: ["http://nope"] }).pipe(Layer.provide(testKernel().layer))).pipe(Effect.scoped))
      assert.isTrue(Exit.isFailure(exit))
      assert.match(String(Exit.isFailure(exit) ? exit.cause : ""), /http-client allow-list: not a host\[:port\]: "http:\/\/nope"/)
    }))
})
