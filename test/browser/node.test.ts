/**
 * Issue #12 end to end, as a user meets it: `node dist/main.js` boots a new node (name,
 * password file, a test-owned anvil) and prints its URL; headless Chromium opens it and
 * gets the login page; a wrong password is refused there (no cookie); the right one,
 * typed into the form and hashed in the page (Argon2id), logs in and lands on the
 * homepage (node name, the Counter tile, the bundled packages); the Counter tile opens
 * the counter app's own UI, whose "Add 1" goes over its WebSocket to the app and the
 * count it pushes back shows; logging out brings the login page back. SIGTERM stops the
 * node with exit code 0. Screenshots of each step go to test-artifacts/screenshots/.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { freePort } from "../../services/chain/index.ts"
import { newPage, scopedBrowser, screenshot } from "../support/Browser.ts"
import { runNode } from "../support/NodeProcess.ts"
import { tempDirs } from "../support/TempDirs.ts"
import { startTestChain } from "../support/TestChain.ts"

const PASSWORD = "correct horse"
const COUNTER = "/counter:counter:sys/"

const scopedChain = Effect.acquireRelease(Effect.promise(startTestChain), (chain) => Effect.promise(chain.stop))

const scopedDirs = Effect.acquireRelease(Effect.sync(tempDirs), (dirs) => Effect.sync(dirs.removeAll))

/** A node process, killed at the end of the scope if the test did not stop it. */
const scopedNode = (args: ReadonlyArray<string>) =>
  Effect.acquireRelease(Effect.sync(() => runNode(args, { env: { KINODE_PASSWORD: "" } })), (node) =>
    Effect.promise(async () => {
      if (node.child.exitCode === null && node.child.signalCode === null) {
        node.child.kill("SIGKILL")
        await node.exited
      }
    }))

describe("a node in the browser (issue #12)", () => {
  it.live("login page, wrong and right password, homepage, the counter's UI over its WebSocket, logout; SIGTERM exits 0", () =>
    Effect.gen(function*() {
      const t0 = Date.now()
      const chain = yield* scopedChain
      const dirs = yield* scopedDirs
      const pwFile = path.join(dirs.mkdir("kinode-ts-pw-"), "pw")
      fs.writeFileSync(pwFile, `${PASSWORD}\n`)
      const name = `web-${process.pid}-${Math.floor(Math.random() * 1e6)}.dev`
      const node = yield* scopedNode([
        "--home", dirs.mkdir("kinode-ts-web-"), "--name", name, "--password-file", pwFile,
        "--chain-port", String(chain.port), "--port", String(yield* freePort)
      ])
      const printed = yield* Effect.promise(() => node.waitFor(/open (http:\/\/127\.0\.0\.1:\d+) in a browser and log in with your password/, 60_000))
      const url = /http:\/\/\S+/.exec(printed)![0]
      const booted = Date.now()

      const browser = yield* scopedBrowser()
      const page = yield* Effect.promise(() => newPage(browser))
      const authCookies = () => browser.cookies().then((cs) => cs.filter((c) => c.name.startsWith("kinode-auth_")))
      const text = (selector: string) => page.$eval(selector, (e) => e.textContent ?? "")
      const shots: Array<string> = []

      // The printed URL: the login page, for this node.
      const login = yield* Effect.promise(async () => {
        await page.goto(url)
        await page.waitForSelector("form#login #password")
        shots.push(await screenshot(page, "node-login"))
        return { node: await text("#node"), title: await page.title() }
      })
      assert.deepStrictEqual(login, { node: name, title: `${name}: log in` })

      // A wrong password: the page says so, and no cookie is set.
      const wrong = yield* Effect.promise(async () => {
        await page.type("#password", "wrong horse")
        await page.click("#submit")
        await page.waitForFunction(() => {
          const s = document.getElementById("status")?.textContent ?? ""
          return s !== "" && s !== "checking..."
        })
        shots.push(await screenshot(page, "node-login-wrong-password"))
        return { status: await text("#status"), cookies: await authCookies(), path: new URL(page.url()).pathname }
      })
      assert.deepStrictEqual(wrong, { status: "wrong password", cookies: [], path: "/" })

      // The right password, typed into the form: the page hashes it and reloads into the homepage.
      const home = yield* Effect.promise(async () => {
        await page.$eval("#password", (e) => ((e as HTMLInputElement).value = ""))
        await page.type("#password", PASSWORD)
        await page.click("#submit")
        await page.waitForSelector("#key", { timeout: 30_000 })
        shots.push(await screenshot(page, "node-homepage"))
        const tiles = await page.$$eval("a.tile", (as) =>
          as.map((a) => ({ label: a.children[1]?.textContent, id: a.children[2]?.textContent, href: a.getAttribute("href") })))
        const packages = await page.$$eval("table tbody tr", (rows) =>
          rows.filter((r) => r.querySelector("form[action='/uninstall']") !== null).map((r) => ({
            id: r.cells[0]!.textContent,
            processes: Array.from(r.cells[1]!.querySelectorAll("li"), (li) => li.textContent),
            ui: r.cells[2]!.querySelector("a")?.getAttribute("href") ?? r.cells[2]!.textContent
          })))
        return {
          header: await text("header .node"),
          h1: await text("main h1"),
          key: await text("#key"),
          tiles,
          packages,
          cookies: await authCookies()
        }
      })
      assert.strictEqual(home.header, name)
      assert.strictEqual(home.h1, name)
      assert.match(home.key, /^0x[0-9a-f]{64}$/)
      assert.include(node.output(), `networking key ${home.key} (new)`)
      assert.deepStrictEqual(home.tiles, [{ label: "Counter", id: "counter:counter:sys", href: COUNTER }])
      assert.deepStrictEqual(home.packages, [
        { id: "counter:sys", processes: ["counter:counter:sys running"], ui: COUNTER },
        { id: "echo:sys", processes: ["echo:echo:sys running"], ui: "no UI" },
        { id: "spawner:sys", processes: ["spawner:spawner:sys running"], ui: "no UI" },
        { id: "terminal:sys", processes: ["terminal:terminal:sys running"], ui: "no UI" }
      ])
      assert.strictEqual(home.cookies.length, 1)
      assert.strictEqual(home.cookies[0]!.name, `kinode-auth_${name}`)
      assert.isTrue(home.cookies[0]!.httpOnly)

      // The Counter tile: the counter app's page, live over its WebSocket; each "Add 1" is
      // sent to the app, and the count it pushes back is what the page shows.
      const counter = yield* Effect.promise(async () => {
        await Promise.all([page.waitForNavigation(), page.click(`a.tile[href="${COUNTER}"]`)])
        await page.waitForFunction(() => document.getElementById("status")?.textContent === "live" && /^\d+$/.test(document.getElementById("count")?.textContent ?? ""))
        const before = Number(await text("#count"))
        const shown: Array<number> = []
        for (const n of [before + 1, before + 2]) {
          await page.click("#add")
          await page.waitForFunction((want: string) => document.getElementById("count")?.textContent === want, {}, String(n))
          shown.push(Number(await text("#count")))
        }
        shots.push(await screenshot(page, "node-counter"))
        const api = await page.evaluate(() => fetch("api").then((r) => r.json() as Promise<unknown>))
        return { path: new URL(page.url()).pathname, title: await page.title(), before, shown, api }
      })
      assert.deepStrictEqual(counter, { path: COUNTER, title: "Counter", before: 0, shown: [1, 2], api: { count: 2 } })

      // Log out: the cookie goes, and the homepage and the counter's page are the login page again.
      const out = yield* Effect.promise(async () => {
        await page.goto(url)
        await page.waitForSelector("#key")
        await Promise.all([page.waitForNavigation(), page.click("a[href='/logout']")])
        const afterLogout = new URL(page.url()).pathname
        const cookies = await authCookies()
        await page.goto(url)
        await page.waitForSelector("form#login")
        shots.push(await screenshot(page, "node-logged-out"))
        const homeIsLogin = { node: await text("#node"), key: await page.$("#key") }
        await page.goto(`${url}${COUNTER}`)
        await page.waitForSelector("form#login")
        return { afterLogout, cookies, homeIsLogin, counterIsLogin: await text("#node") }
      })
      assert.deepStrictEqual(out, { afterLogout: "/login", cookies: [], homeIsLogin: { node: name, key: null }, counterIsLogin: name })

      node.child.kill("SIGTERM")
      assert.strictEqual(yield* Effect.promise(() => node.exited), 0, node.output())
      assert.notMatch(node.output(), /counter: .* failed/)
      assert.strictEqual(shots.length, 5)
      console.log(`node booted in ${booted - t0} ms (chain included); browser steps and stop in ${Date.now() - booted} ms`)
    }).pipe(Effect.scoped), { timeout: 120_000 })
})
