/**
 * What a client gets when an app answers: a Wasm app (the http bench's WAT fixture,
 * through the real program loader) binding its root and answering, and how the app's
 * blob is framed on the wire (its length said, not chunked, unless the app frames it).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { HttpServer } from "../../../services/http-server/index.ts"
import { HELLO_BODY, startHttpHello } from "../../fixtures/wasm/http-hello.ts"
import { action, app, raw, serveWith, withHttp } from "./support.ts"

/** The raw answer to one GET (head and body as the wire has them). */
const rawGet = (port: number, path: string, method = "GET") =>
  raw(port, `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)

describe("http-server: app answers", () => {
  it.live("a Wasm app binds / at init and answers: 200, its content type, Content-Length, its blob", () =>
    withHttp(Effect.gen(function*() {
      const server = yield* HttpServer
      const id = "hello:httpbench:bench"
      yield* startHttpHello(id)
      assert.deepStrictEqual(server.httpBindings().map((b) => [b.process, b.path, b.authenticated, b.static]), [[id, `/${id}`, false, null]])
      for (let i = 0; i < 3; i++) {
        const r = yield* rawGet(server.port, `/${id}`)
        assert.match(r, /^HTTP\/1\.1 200 OK\r\n/)
        assert.match(r, /\r\ncontent-type: text\/plain\r\n/i)
        assert.match(r, /\r\ncontent-length: 13\r\n/i)
        assert.notMatch(r, /transfer-encoding/i)
        assert.isTrue(r.endsWith(`\r\n\r\n${HELLO_BODY}`))
      }
    })))

  it.live("framing: the blob's length unless the app sent Content-Length or Transfer-Encoding itself; none for 204, 304, or HEAD without a blob", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("frame:frame:sys")
      yield* action(api, { Bind: { path: "/*what", authenticated: false, local_only: false, cache: false } })
      yield* serveWith(api, (r) => {
        const what = r.body["Http"].url_params.what as string
        if (what === "empty") return { status: 200 }
        if (what === "own-length") return { status: 200, headers: { "Content-Length": "5" }, body: "hello" }
        if (what === "chunked") return { status: 200, headers: { "transfer-encoding": "chunked" }, body: "hello" }
        if (what === "204") return { status: 204 }
        if (what === "304") return { status: 304 }
        if (what === "head-no-blob") return { status: 200 }
        return { status: 200, body: "héllo" }
      })
      const server = yield* HttpServer
      const get = (what: string, method?: string) => rawGet(server.port, `/frame:frame:sys/${what}`, method)
      const utf8 = yield* get("utf8")
      assert.match(utf8, /\r\ncontent-length: 6\r\n/i)
      assert.notMatch(utf8, /transfer-encoding/i)
      assert.match(yield* get("empty"), /\r\ncontent-length: 0\r\n/i)
      const own = yield* get("own-length")
      assert.strictEqual(own.match(/content-length/gi)?.length, 1)
      assert.isTrue(own.endsWith("\r\n\r\nhello"))
      const chunked = yield* get("chunked")
      assert.notMatch(chunked, /content-length/i)
      assert.isTrue(chunked.endsWith("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
      for (const status of ["204", "304"]) {
        const r = yield* get(status)
        assert.match(r, new RegExp(`^HTTP/1\\.1 ${status} `))
        assert.notMatch(r, /content-length/i)
      }
      const head = yield* get("utf8", "HEAD")
      assert.match(head, /\r\ncontent-length: 6\r\n/i)
      assert.isTrue(head.endsWith("\r\n\r\n"))
      // HEAD answered without a blob: no length is made up.
      assert.notMatch(yield* get("head-no-blob", "HEAD"), /content-length/i)
    })))
})
