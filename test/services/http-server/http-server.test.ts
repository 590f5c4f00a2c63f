/**
 * http-server over real HTTP on 127.0.0.1 through the real kernel: binds, the app's
 * answers, the cookie, static content, limits and failures (kinode-semantics §6.7, §9).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as http from "node:http"
import { Kernel } from "../../../src/Kernel.ts"
import { address } from "../../../src/Ids.ts"
import { request } from "../../../src/Message.ts"
import { COOKIE_SECONDS, HttpServer, makeAuth } from "../../../services/http-server/index.ts"
import { action, answer, app, baseUrl, JWT_SECRET, next, NODE, PASSWORD_HASH, raw, serveWith, withHttp } from "./support.ts"

/** One request over node:http (fetch refuses to set `Host`, which secure binds need). */
const get = (url: string, init: { method?: string; body?: string | Uint8Array; headers?: Record<string, string> } = {}) =>
  Effect.promise(() =>
    new Promise<{ status: number; headers: Headers; text: string }>((resolve, reject) => {
      const req = http.request(url, { method: init.method ?? "GET", headers: init.headers ?? {}, agent: false }, (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () => {
          const headers = new Headers()
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(", ") : v)
          resolve({ status: res.statusCode!, headers, text: Buffer.concat(chunks).toString() })
        })
      })
      req.on("error", reject)
      req.end(init.body)
    })
  )

const cookie = Effect.map(HttpServer, (s) => s.cookie())
const isLoginPage = (text: string) => text.includes("<form id=\"login\"") && text.includes("/login/argon2.js")

describe("http-server", () => {
  it.live("Bind: the app gets IncomingHttpRequest with params, query, headers and body; its HttpResponse is the answer", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("shop:shop:sys")
      assert.deepStrictEqual(yield* action(api, { Bind: { path: "/item/:id", authenticated: false, local_only: false, cache: false } }), { Ok: null })
      const base = yield* baseUrl
      const pending = Effect.runPromise(get(`${base}/shop:shop:sys/item/42?color=red&size=9`, {
        method: "POST",
        body: "hello app",
        headers: { "x-test": "yes", "content-type": "text/plain" }
      }))
      const req = yield* next(api)
      const http = req.body["Http"]
      assert.strictEqual(http.method, "POST")
      assert.match(http.url, /^http:\/\/127\.0\.0\.1:\d+\/shop:shop:sys\/item\/42$/)
      assert.strictEqual(http.bound_path, "/shop:shop:sys/item/:id")
      assert.deepStrictEqual(http.url_params, { id: "42" })
      assert.deepStrictEqual(http.query_params, { color: "red", size: "9" })
      assert.strictEqual(http.headers["x-test"], "yes")
      assert.match(http.source_socket_addr, /^127\.0\.0\.1:\d+$/)
      assert.strictEqual(new TextDecoder().decode(req.blob!.bytes), "hello app")
      answer(api, 201, { "content-type": "application/json", "x-app": "shop" }, "{\"ok\":true}")
      const res = yield* Effect.promise(() => pending)
      assert.strictEqual(res.status, 201)
      assert.strictEqual(res.headers.get("x-app"), "shop")
      assert.strictEqual(res.text, "{\"ok\":true}")
    })))

  it.live("wildcards, the app root serving deeper paths, Unbind, unknown paths 404", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("files:files:sys")
      yield* action(api, { Bind: { path: "/", authenticated: false, local_only: false, cache: false } })
      yield* action(api, { Bind: { path: "/raw/*rest", authenticated: false, local_only: false, cache: false } })
      const seen: Array<{ path: string; params: unknown }> = []
      const serving = yield* serveWith(api, (r) => {
        seen.push({ path: r.body["Http"].bound_path, params: r.body["Http"].url_params })
        return { status: 200, body: "ok" }
      })
      const base = yield* baseUrl
      assert.strictEqual((yield* get(`${base}/files:files:sys/raw/a/b.txt`)).status, 200)
      assert.strictEqual((yield* get(`${base}/files:files:sys/some/spa/route`)).status, 200)
      assert.deepStrictEqual(seen, [
        { path: "/files:files:sys/raw/*rest", params: { rest: "a/b.txt" } },
        { path: "/files:files:sys", params: {} }
      ])
      assert.strictEqual((yield* get(`${base}/nobody:here:sys/x`)).status, 404)
      // One receiver per process: stop serving before awaiting action answers.
      yield* Fiber.interrupt(serving)
      assert.deepStrictEqual(yield* action(api, { Unbind: { path: "/raw/*rest" } }), { Ok: null })
      yield* action(api, { Unbind: { path: "/" } })
      assert.strictEqual((yield* get(`${base}/files:files:sys/raw/a`)).status, 404)
    })))

  it.live("cache: GET is served from the bound blob without the app; other methods go to the app; NoBlob without one", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("site:site:sys")
      assert.deepStrictEqual(
        yield* action(api, { Bind: { path: "/index.html", authenticated: false, local_only: false, cache: true } }, {
          mime: "text/html",
          bytes: new TextEncoder().encode("<h1>static</h1>")
        }),
        { Ok: null }
      )
      assert.deepStrictEqual(
        yield* action(api, { Bind: { path: "/nope", authenticated: false, local_only: false, cache: true } }),
        { Err: "NoBlob" }
      )
      const base = yield* baseUrl
      const page = yield* get(`${base}/site:site:sys/index.html`)
      assert.strictEqual(page.status, 200)
      assert.strictEqual(page.text, "<h1>static</h1>")
      assert.strictEqual(page.headers.get("content-type"), "text/html")
      yield* serveWith(api, (r) => ({ status: 200, body: `app saw ${r.body["Http"].method}` }))
      assert.strictEqual((yield* get(`${base}/site:site:sys/index.html`, { method: "PUT", body: "x" })).text, "app saw PUT")
    })))

  it.live("authenticated paths need this node's cookie: none, forged, expired or another node's get the login page", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("priv:priv:sys")
      yield* action(api, { Bind: { path: "/", authenticated: true, local_only: false, cache: false } })
      yield* serveWith(api, () => ({ status: 200, body: "secret" }))
      const base = yield* baseUrl
      const url = `${base}/priv:priv:sys`
      const none = yield* get(url)
      assert.strictEqual(none.status, 200)
      assert.isTrue(isLoginPage(none.text))
      assert.notInclude(none.text, "secret")
      const good = yield* cookie
      assert.strictEqual((yield* get(url, { headers: { cookie: good } })).text, "secret")
      const forged = makeAuth(NODE, new Uint8Array(32).fill(9)).setCookie(null).split(";")[0]!
      const expired = makeAuth(NODE, JWT_SECRET, () => Date.now() / 1000 - COOKIE_SECONDS - 10).setCookie(null).split(";")[0]!
      const otherNode = makeAuth("other.dev", JWT_SECRET).setCookie(null).split(";")[0]!.replace("kinode-auth_other.dev", `kinode-auth_${NODE}`)
      const tampered = good.slice(0, -3) + (good.endsWith("AAA") ? "BBB" : "AAA")
      for (const bad of [forged, expired, otherNode, tampered, `kinode-auth_${NODE}=not.a.jwt`]) {
        const r = yield* get(url, { headers: { cookie: bad } })
        assert.isTrue(isLoginPage(r.text), bad)
      }
    })))

  it.live("POST /login: the right password hash sets a 26-week HS256 cookie for this node; a wrong one is 401; logout clears it", () =>
    withHttp(Effect.gen(function*() {
      const base = yield* baseUrl
      const page = yield* get(`${base}/login`)
      assert.isTrue(isLoginPage(page.text))
      const script = yield* get(`${base}/login/argon2.js`)
      assert.include(script.text, "argon2id")
      const wrong = yield* get(`${base}/login`, { method: "POST", body: JSON.stringify({ password_hash: `0x${"cd".repeat(32)}` }) })
      assert.strictEqual(wrong.status, 401)
      assert.isNull(wrong.headers.get("set-cookie"))
      const ok = yield* get(`${base}/login`, { method: "POST", body: JSON.stringify({ password_hash: PASSWORD_HASH }) })
      assert.strictEqual(ok.status, 200)
      assert.isString(JSON.parse(ok.text))
      const setCookie = ok.headers.get("set-cookie")!
      assert.match(setCookie, new RegExp(`^kinode-auth_${NODE.replace(".", "\\.")}=[\\w-]+\\.[\\w-]+\\.[\\w-]+; Path=/; Max-Age=${COOKIE_SECONDS}`))
      const token = setCookie.split(";")[0]!.split("=")[1]!
      const [header, claims] = token.split(".").slice(0, 2).map((p) => JSON.parse(Buffer.from(p, "base64url").toString()))
      assert.strictEqual(header.alg, "HS256")
      assert.strictEqual(claims.username, NODE)
      assert.isNull(claims.subdomain)
      assert.approximately(claims.expiration, Date.now() / 1000 + COOKIE_SECONDS, 60)
      const redirected = yield* get(`${base}/login?redirect=/x`, { method: "POST", body: JSON.stringify({ password_hash: PASSWORD_HASH }) })
      assert.strictEqual(redirected.status, 303)
      assert.strictEqual(redirected.headers.get("location"), "/x")
      const out = yield* get(`${base}/logout`)
      assert.strictEqual(out.status, 303)
      assert.match(out.headers.get("set-cookie")!, /Max-Age=0/)
      const malformed = yield* get(`${base}/login`, { method: "POST", body: "{not json" })
      assert.strictEqual(malformed.status, 400)
    })))

  it.live("SecureBind: served only on the app's subdomain (307 there), with the app's own cookie", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("vault:vault-app:sys")
      yield* action(api, { SecureBind: { path: "/", cache: false } })
      yield* serveWith(api, () => ({ status: 200, body: "vault" }))
      const server = yield* HttpServer
      const base = server.url
      const moved = yield* get(`${base}/vault:vault-app:sys?x=1`, { headers: { host: `localhost:${server.port}` } })
      assert.strictEqual(moved.status, 307)
      assert.strictEqual(moved.headers.get("location"), `http://vault-app-sys.localhost:${server.port}/vault:vault-app:sys?x=1`)
      const onSub = { host: `vault-app-sys.localhost:${server.port}` }
      assert.isTrue(isLoginPage((yield* get(`${base}/vault:vault-app:sys`, { headers: onSub })).text))
      // The node's own cookie is not the app's.
      assert.isTrue(isLoginPage((yield* get(`${base}/vault:vault-app:sys`, { headers: { ...onSub, cookie: server.cookie() } })).text))
      const appCookie = server.cookie("vault:vault-app:sys")
      assert.strictEqual((yield* get(`${base}/vault:vault-app:sys`, { headers: { ...onSub, cookie: appCookie } })).text, "vault")
      // The login page on the subdomain asks for the app's cookie.
      const login = yield* get(`${base}/vault:vault-app:sys`, { headers: onSub })
      assert.include(login.text, "\"vault:vault-app:sys\"")
    })))

  it.live("an app that never answers is 408, garbage is 500, a refused delivery is 503 with the reason; others keep being served", () =>
    withHttp(Effect.gen(function*() {
      const silent = yield* app("silent:silent:sys")
      yield* action(silent, { Bind: { path: "/", authenticated: false, local_only: false, cache: false } })
      const garbage = yield* app("garbage:garbage:sys")
      yield* action(garbage, { Bind: { path: "/", authenticated: false, local_only: false, cache: false } })
      yield* Effect.forkScoped(Effect.forever(Effect.flatMap(next(garbage), () =>
        Effect.sync(() => garbage.sendResponse({ _tag: "Response", inherit: false, body: new TextEncoder().encode("]]not json"), metadata: undefined, capabilities: [], context: undefined }, undefined)))))
      const good = yield* app("good:good:sys")
      yield* action(good, { Bind: { path: "/", authenticated: false, local_only: false, cache: false } })
      yield* serveWith(good, () => ({ status: 200, body: "fine" }))
      const base = yield* baseUrl
      const [timedOut, fine] = yield* Effect.all([get(`${base}/silent:silent:sys`), get(`${base}/good:good:sys`)], { concurrency: 2 })
      assert.strictEqual(timedOut.status, 408)
      assert.include(timedOut.text, "silent:silent:sys did not answer")
      assert.strictEqual(fine.text, "fine")
      const bad = yield* get(`${base}/garbage:garbage:sys`)
      assert.strictEqual(bad.status, 500)
      assert.include(bad.text, "not an HttpResponse")
      // A process that bound a path and is gone: the kernel refuses delivery at once.
      yield* Effect.scoped(Effect.flatMap(app("ghost:ghost:sys"), (ghost) =>
        action(ghost, { Bind: { path: "/", authenticated: false, local_only: false, cache: false } })))
      const gone = yield* get(`${base}/ghost:ghost:sys`)
      assert.strictEqual(gone.status, 503)
      assert.include(gone.text, "ghost:ghost:sys cannot take the request")
      assert.strictEqual((yield* get(`${base}/good:good:sys`)).text, "fine")
    }), { appTimeoutMs: 400 }))

  it.live("bad input: 413 for big bodies, 431 for huge headers, 400 for malformed HTTP, traversal finds nothing; the server keeps serving", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("ok:ok:sys")
      yield* action(api, { Bind: { path: "/", authenticated: false, local_only: false, cache: false } })
      yield* action(api, { Bind: { path: "/page", authenticated: false, local_only: false, cache: true } }, { mime: "text/plain", bytes: new TextEncoder().encode("page") })
      yield* serveWith(api, (r) => ({ status: 200, body: `got ${r.blob?.bytes.length ?? 0}` }))
      const server = yield* HttpServer
      const base = server.url
      const big = yield* get(`${base}/ok:ok:sys`, { method: "POST", body: new Uint8Array(2048) })
      assert.strictEqual(big.status, 413)
      const chunked = yield* raw(server.port, "POST /ok:ok:sys HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + "400\r\n" + "a".repeat(1024) + "\r\n" + "400\r\n" + "a".repeat(1024) + "\r\n0\r\n\r\n")
      assert.match(chunked, /^HTTP\/1\.1 413/)
      const huge = yield* raw(server.port, `GET /ok:ok:sys HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`)
      assert.match(huge, /^HTTP\/1\.1 431/)
      const malformed = yield* raw(server.port, "GARBAGE\r\n\r\n")
      assert.match(malformed, /^HTTP\/1\.1 400/)
      for (const path of ["/ok:ok:sys/../../etc/passwd", "/ok:ok:sys/%2e%2e/%2e%2e/etc/passwd", "/../etc/passwd", "/ok:ok:sys/page/../../../etc/passwd"]) {
        const r = yield* raw(server.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
        assert.notInclude(r, "root:", path)
      }
      assert.strictEqual((yield* get(`${base}/ok:ok:sys/page`)).text, "page")
      assert.strictEqual((yield* get(`${base}/ok:ok:sys`, { method: "POST", body: "small" })).text, "got 5")
    }), { maxBodyBytes: 1024 }))

  it.live("local_only binds and the RPC path refuse clients from another address with 403", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("local:local:sys")
      yield* action(api, { Bind: { path: "/", authenticated: false, local_only: true, cache: false } })
      yield* serveWith(api, () => ({ status: 200, body: "local" }))
      const server = yield* HttpServer
      const os = yield* Effect.promise(() => import("node:os"))
      const external = Object.values(os.networkInterfaces()).flat().find((i) => i !== undefined && i.family === "IPv4" && !i.internal)
      assert.isDefined(external, "this test needs a non-loopback IPv4 address on the machine")
      const there = `http://${external!.address}:${server.port}`
      assert.strictEqual((yield* get(`http://127.0.0.1:${server.port}/local:local:sys`)).text, "local")
      assert.strictEqual((yield* get(`${there}/local:local:sys`)).status, 403)
      assert.strictEqual((yield* get(`${there}/rpc:distro:sys/message`, { method: "POST", body: "{}" })).status, 403)
    }), {}, "0.0.0.0"))

  it.live("RPC: a local tool's request reaches the process; its answer comes back with the blob's own bytes (not base64's ASCII)", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("rpcee:rpcee:sys")
      const base = yield* baseUrl
      const call = Effect.runPromise(get(`${base}/rpc:distro:sys/message`, {
        method: "POST",
        body: JSON.stringify({ process: "rpcee:rpcee:sys", body: "ping", expects_response: 5, data: Buffer.from([1, 2, 3]).toString("base64"), mime: "application/x-test" })
      }))
      const req = yield* next(api)
      void req
      api.sendResponse({ _tag: "Response", inherit: false, body: new TextEncoder().encode("pong"), metadata: undefined, capabilities: [], context: undefined }, {
        mime: "application/y",
        bytes: new Uint8Array([9, 8, 7])
      })
      const res = yield* Effect.promise(() => call)
      assert.strictEqual(res.status, 200)
      assert.deepStrictEqual(JSON.parse(res.text), { body: Array.from(new TextEncoder().encode("pong")), lazy_load_blob: { mime: "application/y", bytes: [9, 8, 7] } })
      const fire = yield* get(`${base}/rpc:distro:sys/message`, { method: "POST", body: JSON.stringify({ process: "rpcee:rpcee:sys", body: "fire" }) })
      assert.strictEqual(fire.status, 200)
      const got = yield* next(api)
      void got
      const badTarget = yield* get(`${base}/rpc:distro:sys/message`, { method: "POST", body: JSON.stringify({ process: "no colons" }) })
      assert.strictEqual(badTarget.status, 400)
      const notJson = yield* get(`${base}/rpc:distro:sys/message`, { method: "POST", body: "][" })
      assert.strictEqual(notJson.status, 400)
    })))

  it.live("actions: malformed bodies and WebSocketOpen from an app are MalformedRequest; another node's actions are refused", () =>
    withHttp(Effect.gen(function*() {
      const api = yield* app("acts:acts:sys")
      assert.deepStrictEqual(yield* action(api, { Frobnicate: {} }), { Err: "MalformedRequest" })
      assert.deepStrictEqual(yield* action(api, { WebSocketOpen: { path: "/", channel_id: 1 } }), { Err: "MalformedRequest" })
      assert.deepStrictEqual(yield* action(api, { WebSocketPush: { channel_id: 77, message_type: "Text" } }), { Err: "WsChannelNotFound" })
      // Kinode takes http-server actions from any node [quirk]: here another node cannot bind our paths.
      const k = yield* Kernel
      k.route({
        id: 99n,
        source: address("evil.os@app:evil:evil.os"),
        target: address(`${NODE}@http-server:distro:sys`),
        rsvp: null,
        message: request({ body: new TextEncoder().encode(JSON.stringify({ Bind: { path: "/", authenticated: false, local_only: false, cache: false } })), expectsResponse: 5n }),
        blob: undefined
      })
      yield* Effect.sleep("50 millis")
      const server = yield* HttpServer
      assert.deepStrictEqual(server.httpBindings().filter((b) => b.process.includes("evil")), [])
    })))
})
