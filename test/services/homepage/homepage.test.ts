/**
 * `homepage:homepage:sys` on a real node: the real kernel on LMDB, the storage modules,
 * the package installer, the real http-server on 127.0.0.1 (a free port) and the
 * homepage module; pages are fetched over HTTP with and without the login cookie. Apps
 * that add tiles are kernel sessions; the package installed through the browser flow is
 * the WAT echo component (milliseconds to build and start).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { zipSync } from "fflate"
import { StorageLive } from "../../../layers/Storage.ts"
import { testKernel, type TestNodeOptions } from "../../../layers/TestLive.ts"
import { freePort } from "../../../services/chain/index.ts"
import { Identity } from "../../../src/Identity.ts"
import { localAddress } from "../../../src/Ids.ts"
import * as Json from "../../../src/Json.ts"
import { Kernel, messagingCap, networkCap } from "../../../src/Kernel.ts"
import { request } from "../../../src/Message.ts"
import type { NativeApi } from "../../../src/ProcessApi.ts"
import { Homepage, HOMEPAGE_PROCESS } from "../../../services/homepage/index.ts"
import { HttpServer } from "../../../services/http-server/index.ts"
import { generate, identityFromKey } from "../../../services/identity/index.ts"
import { Lmdb } from "../../../services/lmdb/index.ts"
import { NetLibp2p } from "../../../services/net/index.ts"
import { Packages } from "../../../services/packages/index.ts"
import { entry, watPackage } from "../../apps/support/AppNode.ts"
import { app as netApp, ask as netAsk, netNode, recordOf, serveEcho } from "../net/support.ts"

const NODE = "test.dev"
const PKG = "hello:test.dev"
const ECHO = "echo:hello:test.dev"

const node = (options: TestNodeOptions = {}) => {
  const kernel = testKernel({ node: NODE, ...options })
  const server = HttpServer.layer({
    port: 0,
    exactPort: true,
    jwtSecret: new Uint8Array(32).fill(9),
    login: () => Promise.resolve(undefined)
  })
  return Homepage.layer.pipe(
    Layer.provideMerge(server),
    Layer.provideMerge(Packages.layer),
    Layer.provideMerge(StorageLive),
    Layer.provide(Lmdb.layer),
    Layer.provideMerge(kernel.layer)
  )
}

/** Runs a test on a fresh node with its server and homepage; closed at the end. */
const run = <A, E>(body: Effect.Effect<A, E, any>, options: TestNodeOptions = {}) =>
  Effect.scoped(Effect.provide(body, node(options))) as Effect.Effect<A, E, never>

interface Page {
  readonly status: number
  readonly headers: Headers
  readonly text: string
}

const http = (path: string, init: RequestInit & { readonly cookie?: boolean } = {}) =>
  Effect.gen(function*() {
    const server = yield* HttpServer
    const headers = new Headers(init.headers)
    if (init.cookie !== false) headers.set("cookie", server.cookie())
    return yield* Effect.promise(async (): Promise<Page> => {
      const r = await fetch(`${server.url}${path}`, { ...init, headers, redirect: "manual" })
      return { status: r.status, headers: r.headers, text: await r.text() }
    })
  })

const form = (fields: Record<string, string | ReadonlyArray<string>>) => {
  const body = new URLSearchParams()
  for (const [k, v] of Object.entries(fields)) for (const x of typeof v === "string" ? [v] : v) body.append(k, x)
  return { method: "POST", body, headers: { "content-type": "application/x-www-form-urlencoded" } }
}

const hiddenField = (html: string, name: string): string => {
  const m = new RegExp(`name="${name}" value="([^"]+)"`).exec(html)
  return m === null ? assert.fail(`no ${name} field in the page`) : m[1]!
}

/** The form token of the node's pages. */
const csrfToken = Effect.map(http("/install"), (p) => hiddenField(p.text, "csrf"))

/** An app: a session that may message the homepage (public, so the homepage can answer it). */
const app = (id: string) => Effect.flatMap(Kernel, (k) => k.session(id, { capabilities: [messagingCap(k.node, HOMEPAGE_PROCESS)], public: true }))

const tell = (api: NativeApi, body: unknown) =>
  Effect.gen(function*() {
    const r = yield* api.sendAndAwaitEffect(localAddress(NODE, HOMEPAGE_PROCESS), request({ body: Json.toBytes(body), expectsResponse: 5n }))
    if (!("message" in r && "source" in r)) return assert.fail(`no answer from the homepage: ${r.kind}`)
    return JSON.parse(new TextDecoder().decode(r.message.body)) as unknown
  })

const metadata = (pkg = "hello", publisher = "test.dev") =>
  new TextEncoder().encode(JSON.stringify({
    name: "Hello",
    properties: { package_name: pkg, publisher, current_version: "0.1.0", mirrors: [], code_hashes: {} }
  }))

const upload = (zip: Uint8Array, csrf: string, fields: Record<string, string> = {}) => {
  const body = new FormData()
  body.set("csrf", csrf)
  for (const [k, v] of Object.entries(fields)) body.set(k, v)
  body.set("package", new Blob([new Uint8Array(zip)], { type: "application/zip" }), "hello.zip")
  return http("/install", { method: "POST", body })
}

describe("homepage", () => {
  it.live("without the login cookie every page is the login page", () =>
    run(Effect.gen(function*() {
      for (const path of ["/", "/processes", "/install"]) {
        const p = yield* http(path, { cookie: false })
        assert.strictEqual(p.status, 200)
        assert.include(p.text, `id="login"`)
        assert.notInclude(p.text, "Networking key")
      }
      const posted = yield* http("/uninstall", { ...form({ package: "x:y", confirm: "yes" }), cookie: false })
      assert.include(posted.text, `id="login"`)
      // Kinode's unauthenticated files.
      assert.strictEqual((yield* http("/our", { cookie: false })).text, NODE)
      assert.strictEqual((yield* http("/amionline", { cookie: false })).text, "yes")
      assert.strictEqual((yield* http("/kinode.css", { cookie: false })).headers.get("content-type"), "text/css")
    })))

  it.live("shows the node's name and key, an app's tile after Add, and peers as offline", () =>
    run(Effect.gen(function*() {
      const identity = yield* Identity
      const before = yield* http("/")
      assert.strictEqual(before.status, 200)
      assert.include(before.text, NODE)
      assert.include(before.text, `0x${Buffer.from(identity.publicKey).toString("hex")}`)
      assert.include(before.text, "offline")
      assert.include(before.text, `href="/logout"`)
      assert.include(before.headers.get("content-security-policy") ?? "", "default-src 'none'")

      const api = yield* app("ui:hello:test.dev")
      assert.deepStrictEqual(yield* tell(api, { Add: { label: "Hello World", icon: null, path: "/", widget: null } }), { Ok: null })
      const after = yield* http("/")
      assert.include(after.text, "Hello World")
      assert.include(after.text, `href="/ui:hello:test.dev/"`)

      // GetApps lists it as Kinode's App; Remove takes it away.
      const listed = (yield* tell(api, "GetApps")) as { GetApps: Array<Record<string, unknown>> }
      assert.deepInclude(listed.GetApps[0], { id: "ui:hello:test.dev", label: "Hello World", path: "/ui:hello:test.dev/", package_name: "hello" })
      assert.deepStrictEqual(JSON.parse((yield* http("/apps")).text), listed.GetApps)
      yield* tell(api, "Remove")
      assert.notInclude((yield* http("/")).text, "Hello World")
    })))

  it.live("escapes every string an app gives it", () =>
    run(Effect.gen(function*() {
      const api = yield* app("evil:evil:test.dev")
      const hostile = `<script>alert("x")</script><img src=x onerror=alert(1)>'&`
      yield* tell(api, { Add: { label: hostile, icon: "javascript:alert(1)", path: `"><script>alert(2)</script>`, widget: "<script>parent.x=1</script>" } })
      const p = yield* http("/")
      assert.include(p.text, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&#39;&amp;")
      assert.notInclude(p.text, "<script")
      assert.notInclude(p.text, "<img src=x")
      assert.notInclude(p.text, "javascript:")
      assert.include(p.text, `href="/evil:evil:test.dev/&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"`)
      // The widget is framed, sandboxed, from a document of its own.
      assert.include(p.text, `<iframe sandbox="allow-scripts"`)
      const w = yield* http(`/widget?process=${encodeURIComponent("evil:evil:test.dev")}`)
      assert.strictEqual(w.text, "<script>parent.x=1</script>")
      assert.include(w.headers.get("content-security-policy") ?? "", "sandbox allow-scripts")
      // Without the capability, RemoveOther is refused.
      const other = yield* app("other:other:test.dev")
      assert.deepStrictEqual(yield* tell(other, { RemoveOther: "evil:evil:test.dev" }), { Err: "NoCapability" })
      assert.include((yield* http("/")).text, "&lt;script&gt;alert(&quot;x&quot;)")
    })))

  it.live("lists every process with its status and capabilities", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      yield* packages.install({ package: "hello", publisher: "test.dev" }, yield* Effect.promise(() => watPackage([entry({ request_capabilities: ["kv:distro:sys"] })])))
      const p = yield* http("/processes")
      assert.strictEqual(p.status, 200)
      for (const id of [ECHO, "http-server:distro:sys", HOMEPAGE_PROCESS, "vfs:distro:sys"]) assert.include(p.text, `<code>${id}</code>`)
      assert.include(p.text, "read the drive /hello:test.dev/pkg")
      assert.include(p.text, `<code>${NODE}@vfs:distro:sys</code> <code>{&quot;kind&quot;:&quot;write&quot;,&quot;drive&quot;:&quot;/hello:test.dev/pkg&quot;}</code>`)
      assert.include(p.text, `<code>${NODE}@kv:distro:sys</code> <code>&quot;messaging&quot;</code>`)
      assert.include(p.text, "send messages to kv:distro:sys")
      assert.match(p.text, new RegExp(`<code>${ECHO}</code>.*?<span class="st-running">running</span>`, "s"))
      // The homepage lists the package, with its uninstall button.
      const home = yield* http("/")
      assert.include(home.text, `<td class="mono">${PKG}</td>`)
      assert.include(home.text, `name="package" value="${PKG}"`)
    })))

  it.live("installs from the browser with the approved capabilities, then uninstalls after a confirm step", () =>
    run(Effect.gen(function*() {
      const kernel = yield* Kernel
      const csrf = yield* csrfToken
      const zip = yield* Effect.promise(() =>
        watPackage([entry({ request_capabilities: ["kv:distro:sys", { process: "vfs:distro:sys", params: { root: true } }] })], {
          "metadata.json": metadata()
        })
      )
      const review = yield* upload(zip, csrf)
      assert.strictEqual(review.status, 200)
      assert.include(review.text, `Install ${PKG}`)
      assert.include(review.text, "send messages to kv:distro:sys")
      assert.include(review.text, "read and write every file of the node")
      assert.include(review.text, `name="cap" value="0" checked`)
      assert.include(review.text, `name="cap" value="1" checked`)
      assert.isUndefined(kernel.info(ECHO), "nothing is installed before the confirmation")

      const token = hiddenField(review.text, "upload")
      const result = yield* http("/install/confirm", form({ csrf, upload: token, cap: ["0"] }))
      assert.strictEqual(result.status, 200)
      assert.include(result.text, `Installed ${PKG}`)
      assert.match(result.text, new RegExp(`<code>${ECHO}</code> <span class="st-running">running</span>`))
      assert.match(result.text, /Withheld capabilities<\/h2><ul><li><code>echo:hello:test.dev<\/code>: read and write every file/)
      const info = kernel.info(ECHO)!
      assert.strictEqual(info.status, "running")
      const params = info.capabilities.map((c) => `${c.issuer.process} ${c.params}`)
      assert.include(params, `kv:distro:sys "messaging"`)
      assert.notInclude(params, `vfs:distro:sys {"root":true}`)
      // The process answers.
      const driver = yield* kernel.session("driver:test:sys", { capabilities: [messagingCap(NODE, ECHO)], public: true })
      const echoed = yield* driver.sendAndAwaitEffect(localAddress(NODE, ECHO), request({ body: new TextEncoder().encode("hi"), expectsResponse: 5n }))
      assert.strictEqual("source" in echoed ? new TextDecoder().decode(echoed.message.body) : echoed.kind, "hi")
      // The upload was used up.
      const again = yield* http("/install/confirm", form({ csrf, upload: token }))
      assert.strictEqual(again.status, 410)
      assert.include(again.text, "upload the zip again")

      // Uninstall: a confirm page first, then the uninstall.
      const ask = yield* http("/uninstall", form({ csrf, package: PKG }))
      assert.strictEqual(ask.status, 200)
      assert.include(ask.text, `Uninstall ${PKG}?`)
      assert.include(ask.text, `name="confirm" value="yes"`)
      assert.strictEqual(kernel.info(ECHO)?.status, "running", "asking changes nothing")
      const gone = yield* http("/uninstall", form({ csrf, package: PKG, confirm: "yes" }))
      assert.strictEqual(gone.status, 200)
      assert.include(gone.text, `Uninstalled ${PKG}`)
      assert.include(gone.text, `<code>${ECHO}</code>`)
      assert.isUndefined(kernel.info(ECHO))
      assert.notInclude((yield* http("/")).text, `<td class="mono">${PKG}</td>`)
    })))

  it.live("a zip without metadata takes the package id from the form; cancel forgets the upload", () =>
    run(Effect.gen(function*() {
      const csrf = yield* csrfToken
      const zip = yield* Effect.promise(() => watPackage())
      const missing = yield* upload(zip, csrf)
      assert.strictEqual(missing.status, 400)
      assert.include(missing.text, "type the package id (package:publisher)")
      const review = yield* upload(zip, csrf, { package_id: PKG })
      assert.strictEqual(review.status, 200)
      assert.include(review.text, "This package asks for no capabilities.")
      const token = hiddenField(review.text, "upload")
      const cancelled = yield* http("/install/cancel", form({ csrf, upload: token }))
      assert.strictEqual(cancelled.status, 303)
      assert.strictEqual((yield* http("/install/confirm", form({ csrf, upload: token }))).status, 410)
      assert.isUndefined((yield* Kernel).info(ECHO))
    })))

  it.live("an upload that is not a package gives a clear error and installs nothing", () =>
    run(Effect.gen(function*() {
      const kernel = yield* Kernel
      const packages = yield* Packages
      const csrf = yield* csrfToken
      const count = kernel.processes().length

      const notZip = yield* upload(new TextEncoder().encode("just some text, not a zip"), csrf, { package_id: PKG })
      assert.strictEqual(notZip.status, 400)
      assert.include(notZip.text, "The file is not a zip archive")
      assert.include(notZip.text, `enctype="multipart/form-data"`, "the form is shown again")

      const noManifest = yield* upload(zipSync({ "readme.txt": new TextEncoder().encode("hi") }), csrf, { package_id: PKG })
      assert.strictEqual(noManifest.status, 400)
      assert.include(noManifest.text, "no manifest.json at its root, so it is not a Kinode package")

      const badManifest = yield* upload(zipSync({ "manifest.json": new TextEncoder().encode("[{\"process_name\": 1}]"), "metadata.json": metadata() }), csrf)
      assert.strictEqual(badManifest.status, 400)
      assert.include(badManifest.text, "manifest.json is invalid at [0].process_name")

      assert.strictEqual(kernel.processes().length, count)
      assert.isUndefined(yield* packages.installedHash({ package: "hello", publisher: "test.dev" }))
    })))

  it.live("a form from elsewhere (no token, or another origin) changes nothing", () =>
    run(Effect.gen(function*() {
      const kernel = yield* Kernel
      const packages = yield* Packages
      yield* packages.install({ package: "hello", publisher: "test.dev" }, yield* Effect.promise(() => watPackage()))
      const csrf = yield* csrfToken
      const noToken = yield* http("/uninstall", form({ package: PKG, confirm: "yes" }))
      assert.strictEqual(noToken.status, 403)
      const otherOrigin = yield* http("/uninstall", { ...form({ csrf, package: PKG, confirm: "yes" }), headers: { "content-type": "application/x-www-form-urlencoded", origin: "http://evil.example" } })
      assert.strictEqual(otherOrigin.status, 403)
      const sandboxed = yield* http("/uninstall", { ...form({ csrf, package: PKG, confirm: "yes" }), headers: { "content-type": "application/x-www-form-urlencoded", origin: "null" } })
      assert.strictEqual(sandboxed.status, 403)
      assert.strictEqual(kernel.info(ECHO)?.status, "running")
      assert.strictEqual((yield* http("/uninstall", { method: "DELETE" })).status, 405)
    })))

  it.live("with a network, lists the peers: connected or not", () =>
    Effect.gen(function*() {
      const key = yield* generate
      const reach = { _tag: "Direct" as const, ip: "127.0.0.1", tcpPort: yield* freePort }
      const bob = yield* netNode("bob.os", { _tag: "Direct", ip: "127.0.0.1", tcpPort: yield* freePort })
      const server = yield* netApp(bob, "server:test:pub.os")
      yield* serveEcho(server)
      return yield* run(
        Effect.gen(function*() {
          const identity = yield* Identity
          identity.upsert(bob.record)
          identity.upsert(recordOf("carol.os", yield* generate, { _tag: "Direct", ip: "127.0.0.1", tcpPort: 9 }))
          bob.identity.upsert(recordOf(NODE, key, reach))
          const client = yield* (yield* Kernel).session("client:test:pub.os", { capabilities: [networkCap(NODE)], public: true })
          assert.deepStrictEqual(yield* netAsk(client, "bob.os@server:test:pub.os", "hi"), { text: "hi", blob: undefined })
          const p = yield* http("/")
          assert.notInclude(p.text, "offline")
          assert.match(p.text, /<td class="mono">bob\.os<\/td><td class="st-running">connected<\/td>/)
          assert.match(p.text, /<td class="mono">carol\.os<\/td><td class="muted">not connected<\/td>/)
        }),
        { identity: Layer.succeed(Identity, identityFromKey(NODE, key)), net: NetLibp2p({ seed: key.seed, reach }) }
      )
    }), { timeout: 30_000 })
})
