/**
 * Pins the browser harness (test/support/Browser.ts): a real headless Chromium loads a
 * page from a real Node HTTP server, fills a form, talks to the server over a
 * WebSocket (`ws`) from the page, and the test reads the DOM and takes a screenshot.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import { newPage, scopedBrowser, screenshot } from "../support/Browser.ts"
import { scopedPageSite } from "../support/PageSite.ts"

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>harness</title>
<style>body { font-family: sans-serif; margin: 2em } #reply { margin-top: 1em; font-weight: bold }</style>
</head><body>
<h1>Browser harness</h1>
<p>socket: <span id="status">connecting</span></p>
<form id="f"><input id="name" name="name" placeholder="your name"> <button type="submit">Greet</button></form>
<div id="reply"></div>
<script>
  const ws = new WebSocket(\`ws://\${location.host}/ws\`)
  ws.onopen = () => { document.getElementById("status").textContent = "open" }
  ws.onmessage = (e) => { document.getElementById("reply").textContent = JSON.parse(e.data).greeting }
  document.getElementById("f").addEventListener("submit", (e) => {
    e.preventDefault()
    ws.send(JSON.stringify({ hello: document.getElementById("name").value }))
  })
</script>
</body></html>`

/** The page at `/` and a WebSocket at `/ws` that greets; closed with the scope. */
const pageServer = Effect.gen(function*() {
  const received: Array<string> = []
  const site = yield* scopedPageSite((req, res) => {
    if (req.url !== "/") return void res.writeHead(404).end()
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(PAGE)
  }, "/ws", (socket) => {
    socket.on("message", (data) => {
      const text = data.toString()
      received.push(text)
      const { hello } = JSON.parse(text) as { hello: string }
      socket.send(JSON.stringify({ greeting: `hello, ${hello}` }))
    })
  })
  return { url: `http://127.0.0.1:${site.port}/`, received }
})

describe("browser harness", () => {
  it.live("fills a form, exchanges a WebSocket message in the page, reads the DOM, takes a screenshot", () =>
    Effect.gen(function*() {
      const site = yield* pageServer
      const browser = yield* scopedBrowser()
      const page = yield* Effect.promise(() => newPage(browser))
      yield* Effect.promise(async () => {
        await page.goto(site.url)
        await page.waitForFunction(() => document.getElementById("status")?.textContent === "open")
        await page.type("#name", "Ada")
        await page.click("button[type=submit]")
        await page.waitForFunction(() => document.getElementById("reply")?.textContent !== "")
      })
      const reply = yield* Effect.promise(() => page.$eval("#reply", (e) => e.textContent))
      assert.strictEqual(reply, "hello, Ada")
      assert.deepStrictEqual(site.received, [JSON.stringify({ hello: "Ada" })])
      const png = yield* Effect.promise(() => screenshot(page, "browser-harness"))
      const bytes = fs.readFileSync(png)
      // A PNG signature and more than a blank page's worth of pixels.
      assert.deepStrictEqual([...bytes.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47])
      assert.isAbove(bytes.length, 2_000)
    }).pipe(Effect.scoped), 60_000)
})
