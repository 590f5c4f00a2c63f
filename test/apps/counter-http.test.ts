/**
 * The counter app's web side (apps/counter, apps/sdk/http.ts) against the http-server
 * protocol of kinode-semantics §6.7, with this test playing `http-server:distro:sys`
 * and `homepage:homepage:sys` as sessions: at start the counter binds its UI files
 * (cached, read from its package drive through vfs), `/api` and the WebSocket
 * `/updates`, each awaiting `{"Ok": null}`, and adds its homepage tile; then it answers
 * `{Http}` requests with an `HttpResponse` body and the HTTP body as blob, greets a new
 * WebSocket channel with the count, applies text frames, and pushes every change
 * (also those from other processes) to the open channels until they close. Counter
 * requests from http-server (the RPC path) are answered as counter requests.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { beforeAll } from "vitest"
import { buildApp } from "../../apps/build.ts"
import { Packages } from "../../services/packages/index.ts"
import { address } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { Kernel } from "../../src/Kernel.ts"
import { type LazyLoadBlob, request, response } from "../../src/Message.ts"
import type { NativeApi } from "../../src/ProcessApi.ts"
import { appNode, askJson, driver } from "./support/AppNode.ts"

const repo = path.resolve(import.meta.dirname, "..", "..")
const C = "counter:counter:sys"
const utf8 = new TextDecoder()

beforeAll(async () => {
  await buildApp("counter")
}, 180_000)

interface Seen {
  readonly body: unknown
  readonly blob: LazyLoadBlob | undefined
}

/** The next request to a session (dies after `seconds`). */
const next = (api: NativeApi, seconds = 10) =>
  api.receiveEffect.pipe(
    Effect.flatMap((r) =>
      r._tag === "Message" && r.message._tag === "Request"
        ? Effect.succeed({ body: JSON.parse(utf8.decode(r.message.body)) as unknown, blob: api.getBlob(), expects: r.message.expectsResponse })
        : Effect.die(new Error(`unexpected ${JSON.stringify(r)}`))
    ),
    Effect.timeoutOption(`${seconds} seconds`)
  )

/** Plays http-server: records binds, answers each `{"Ok": null}`. */
const answerBinds = (server: NativeApi, count: number) =>
  Effect.gen(function*() {
    const seen: Array<Seen> = []
    while (seen.length < count) {
      const m = yield* next(server)
      if (m._tag === "None") return yield* Effect.die(new Error(`only ${seen.length} binds: ${JSON.stringify(seen)}`))
      seen.push({ body: m.value.body, blob: m.value.blob })
      assert.isDefined(m.value.expects, "binds await an answer")
      server.sendResponse(response({ body: Json.toBytes({ Ok: null }) }), undefined)
    }
    return seen
  })

const httpRequest = (method: string, boundPath: string) => ({
  Http: {
    source_socket_addr: "127.0.0.1:5555",
    method,
    url: `http://localhost:8080${boundPath}`,
    bound_path: boundPath,
    headers: {},
    url_params: {},
    query_params: {}
  }
})

describe("counter over http-server", () => {
  it.live("binds its UI, /api and /updates, answers HTTP, and pushes the count to open WebSockets", () =>
    Effect.gen(function*() {
      const kernel = yield* Kernel
      const node = kernel.node
      const server = yield* kernel.session("http-server:distro:sys", { capabilities: [], public: false })
      const homepage = yield* kernel.session("homepage:homepage:sys", { capabilities: [], public: false })
      const binds = yield* Effect.forkChild(answerBinds(server, 4))
      const zip = new Uint8Array(fs.readFileSync(path.join(repo, "apps", "dist", "counter.zip")))
      const installed = yield* (yield* Packages).install({ package: "counter", publisher: "sys" }, zip)
      assert.deepStrictEqual(installed.skippedGrants, [])
      const seen = yield* Fiber.join(binds)

      // The UI, read from pkg/ui through vfs, cached at /index.html and /; then /api and /updates.
      const page = new Uint8Array(fs.readFileSync(path.join(repo, "apps", "counter", "pkg", "ui", "index.html")))
      const html = { mime: "text/html; charset=utf-8", bytes: page }
      assert.deepStrictEqual(seen.map((s) => s.body), [
        { Bind: { path: "/", authenticated: true, local_only: false, cache: true } },
        { Bind: { path: "/index.html", authenticated: true, local_only: false, cache: true } },
        { Bind: { path: "/api", authenticated: true, local_only: false, cache: false } },
        { WebSocketBind: { path: "/updates", authenticated: true, extension: false } }
      ])
      for (const s of seen.slice(0, 2)) {
        assert.strictEqual(s.blob?.mime, html.mime)
        assert.deepStrictEqual([...s.blob!.bytes], [...html.bytes])
      }
      const tile = yield* next(homepage)
      assert.deepStrictEqual(tile._tag === "Some" ? tile.value.body : undefined, {
        Add: { label: "Counter", icon: null, path: "/counter:counter:sys/", widget: null }
      })

      const counter = address(`${node}@${C}`)
      const http = (method: string, boundPath: string) =>
        Effect.gen(function*() {
          const r = yield* server.sendAndAwaitEffect(counter, request({ body: Json.toBytes(httpRequest(method, boundPath)), expectsResponse: 15n }), {
            mime: undefined,
            bytes: new Uint8Array()
          })
          if (!("message" in r)) return yield* Effect.die(new Error(`no answer: ${JSON.stringify(r)}`))
          return { head: JSON.parse(utf8.decode(r.message.body)) as unknown, body: utf8.decode(server.getBlob()?.bytes ?? new Uint8Array()) }
        })
      assert.deepStrictEqual(yield* http("GET", `/${C}/api`), { head: { status: 200, headers: { "Content-Type": "application/json" } }, body: "{\"count\":0}" })
      assert.deepStrictEqual((yield* http("POST", `/${C}/api`)).head, { status: 405, headers: { Allow: "GET" } })

      // A page opens /updates: it is greeted with the count, and its frames change it.
      const push = (body: unknown, frame?: string) =>
        server.sendRequest(counter, request({ body: Json.toBytes(body) }), undefined, frame === undefined ? undefined : {
          mime: undefined,
          bytes: new TextEncoder().encode(frame)
        })
      const nextPush = Effect.gen(function*() {
        const m = yield* next(server, 5)
        if (m._tag === "None") return undefined
        return { body: m.value.body, frame: utf8.decode(m.value.blob?.bytes ?? new Uint8Array()) }
      })
      const pushed = (count: number) => ({ body: { WebSocketPush: { channel_id: 7, message_type: "Text" } }, frame: JSON.stringify({ count }) })
      push({ WebSocketOpen: { path: "/updates", channel_id: 7 } })
      assert.deepStrictEqual(yield* nextPush, pushed(0))
      push({ WebSocketPush: { channel_id: 7, message_type: "Text" } }, JSON.stringify({ Add: 1 }))
      assert.deepStrictEqual(yield* nextPush, pushed(1))
      // A change by another process reaches the page too.
      const api = yield* driver([C])
      assert.deepStrictEqual(yield* askJson(api, C, { Add: 2 }), { count: 3 })
      assert.deepStrictEqual(yield* nextPush, pushed(3))
      push({ WebSocketPush: { channel_id: 7, message_type: "Text" } }, JSON.stringify("Reset"))
      assert.deepStrictEqual(yield* nextPush, pushed(0))
      // A bad frame is answered on its channel; the count stays.
      push({ WebSocketPush: { channel_id: 7, message_type: "Text" } }, "{\"Add\":\"x\"}")
      const bad = yield* nextPush
      assert.match(JSON.parse(bad?.frame ?? "{}").error, /bad body/)
      // Closed: no more pushes.
      push({ WebSocketClose: 7 })
      assert.deepStrictEqual(yield* askJson(api, C, { Add: 5 }), { count: 5 })
      assert.deepStrictEqual(yield* askJson(api, C, "\"Get\""), { count: 5 })
      const none = yield* next(server, 0.5)
      assert.strictEqual(none._tag, "None")
      // RPC (`POST /rpc:distro:sys/message`) also comes from http-server: a counter
      // request, not an HTTP one, answered as from any other process.
      const rpc = yield* server.sendAndAwaitEffect(counter, request({ body: Json.toBytes({ Add: 1 }), expectsResponse: 5n }))
      assert.deepStrictEqual("message" in rpc ? JSON.parse(utf8.decode(rpc.message.body)) : rpc, { count: 6 })
    }).pipe(Effect.provide(appNode().layer), Effect.scoped), 120_000)
})
