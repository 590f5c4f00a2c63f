/**
 * The homepage in a real browser against a real node (kernel, storage, packages,
 * http-server, homepage): the browser's own multipart upload from the file input, a
 * capability unchecked on the review page, the install, and an app's widget running
 * only inside its sandboxed frame (the page itself runs no script).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { StorageLive } from "../../layers/Storage.ts"
import { testKernel } from "../../layers/TestLive.ts"
import { localAddress } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { Kernel, messagingCap } from "../../src/Kernel.ts"
import { request } from "../../src/Message.ts"
import { Homepage, HOMEPAGE_PROCESS } from "../../services/homepage/index.ts"
import { HttpServer } from "../../services/http-server/index.ts"
import { Lmdb } from "../../services/lmdb/index.ts"
import { Packages } from "../../services/packages/index.ts"
import { entry, watPackage } from "../apps/support/AppNode.ts"
import { newPage, scopedBrowser, screenshot } from "../support/Browser.ts"

const NODE = "test.dev"
const ECHO = "echo:hello:test.dev"

const node = () =>
  Homepage.layer.pipe(
    Layer.provideMerge(HttpServer.layer({ port: 0, exactPort: true, jwtSecret: new Uint8Array(32).fill(9), login: () => Promise.resolve(undefined) })),
    Layer.provideMerge(Packages.layer),
    Layer.provideMerge(StorageLive),
    Layer.provide(Lmdb.layer),
    Layer.provideMerge(testKernel({ node: NODE }).layer)
  )

describe("homepage in a browser", () => {
  it.live("installs a package picked in the file input, with a capability withheld", () =>
    Effect.gen(function*() {
      const server = yield* HttpServer
      const kernel = yield* Kernel
      const tile = yield* kernel.session("ui:demo:test.dev", { capabilities: [messagingCap(NODE, HOMEPAGE_PROCESS)], public: true })
      const widget = `<p id="w">widget</p><script>document.getElementById("w").textContent = "widget ran"</script>`
      yield* tile.sendAndAwaitEffect(
        localAddress(NODE, HOMEPAGE_PROCESS),
        request({ body: Json.toBytes({ Add: { label: "Demo", path: "/", widget } }), expectsResponse: 5n })
      )
      const zip = yield* Effect.promise(() =>
        watPackage([entry({ request_capabilities: ["kv:distro:sys", { process: "vfs:distro:sys", params: { root: true } }] })], {
          "metadata.json": new TextEncoder().encode(JSON.stringify({
            properties: { package_name: "hello", publisher: NODE, current_version: "0.1.0", mirrors: [], code_hashes: {} }
          }))
        })
      )
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "homepage-ui-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const file = path.join(dir, "hello.zip")
      fs.writeFileSync(file, zip)

      const browser = yield* scopedBrowser()
      const page = yield* Effect.promise(() => newPage(browser))
      const [name, value] = server.cookie().split("=") as [string, string]
      const seen = yield* Effect.promise(async () => {
        await page.setCookie({ name, value, url: server.url })
        await page.goto(`${server.url}/`)
        const frame = await (await page.waitForSelector("iframe"))!.contentFrame()
        await frame.waitForFunction(() => document.getElementById("w")?.textContent === "widget ran")
        const tileText = await page.$eval("a.tile", (a) => `${a.textContent} ${a.getAttribute("href")}`)
        await page.goto(`${server.url}/install`)
        const input = await page.$("input[type=file]")
        await input!.uploadFile(file)
        await Promise.all([page.waitForNavigation(), page.click("button.primary")])
        const review = await page.$eval("h1", (h) => h.textContent)
        await page.click("input[name=cap][value='1']")
        await screenshot(page, "homepage-review")
        await Promise.all([page.waitForNavigation(), page.click("button.primary")])
        await screenshot(page, "homepage-installed")
        return { tileText, review, result: await page.$eval("main", (m) => m.textContent ?? "") }
      })
      assert.strictEqual(seen.tileText, "DDemoui:demo:test.dev /ui:demo:test.dev/")
      assert.strictEqual(seen.review, "Install hello:test.dev")
      assert.include(seen.result, "Installed hello:test.dev")
      assert.include(seen.result, "read and write every file of the node")
      assert.strictEqual(kernel.info(ECHO)?.status, "running")
      const params = kernel.info(ECHO)!.capabilities.map((c) => `${c.issuer.process} ${c.params}`)
      assert.include(params, `kv:distro:sys "messaging"`)
      assert.notInclude(params, `vfs:distro:sys {"root":true}`)
    }).pipe(Effect.provide(node()), Effect.scoped), { timeout: 60_000 })
})
