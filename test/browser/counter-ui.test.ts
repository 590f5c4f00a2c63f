/**
 * The counter app's page (apps/counter/pkg/ui/index.html) in a real browser, served by
 * a stand-in for the node at the same paths (`/counter:counter:sys/`, `/api`, and the
 * WebSocket `/updates` speaking the app's frames): it shows the count, "Add 1" and
 * "Reset" send `{"Add":1}` / `"Reset"`, and pushed counts (also from elsewhere) show.
 * The page against the real node is tested with http-server.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { WebSocketServer } from "ws"
import { newPage, scopedBrowser, screenshot } from "../support/Browser.ts"
import { scopedPageSite } from "../support/PageSite.ts"

const PREFIX = "/counter:counter:sys"
const page = fs.readFileSync(path.resolve(import.meta.dirname, "..", "..", "apps", "counter", "pkg", "ui", "index.html"))

/** The app's side: a count, `GET /api`, and `/updates` applying frames and pushing the count to every socket. */
const standIn = Effect.gen(function*() {
  let count = 41
  const frames: Array<string> = []
  const broadcast = (wss: WebSocketServer) => {
    for (const c of wss.clients) c.send(JSON.stringify({ count }))
  }
  const site = yield* scopedPageSite((req, res) => {
    if (req.url === `${PREFIX}/` || req.url === PREFIX) return void res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(page)
    if (req.url === `${PREFIX}/api`) return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ count }))
    res.writeHead(404).end()
  }, `${PREFIX}/updates`, (socket, wss) => {
    socket.send(JSON.stringify({ count }))
    socket.on("message", (data) => {
      const text = data.toString()
      frames.push(text)
      const v = JSON.parse(text) as { Add: number } | "Reset"
      count = v === "Reset" ? 0 : count + v.Add
      broadcast(wss)
    })
  })
  return {
    url: `http://127.0.0.1:${site.port}${PREFIX}/`,
    frames,
    set: (n: number) => {
      count = n
      broadcast(site.wss)
    }
  }
})

describe("counter UI", () => {
  it.live("shows the count, Add 1 and Reset send frames, pushed counts show", () =>
    Effect.gen(function*() {
      const site = yield* standIn
      const browser = yield* scopedBrowser()
      const p = yield* Effect.promise(() => newPage(browser))
      const countIs = (n: number) =>
        Effect.promise(() => p.waitForFunction((want) => document.getElementById("count")?.textContent === want, { timeout: 5_000 }, String(n)))
      yield* Effect.promise(() => p.goto(site.url))
      yield* countIs(41)
      yield* Effect.promise(() => p.waitForFunction(() => !(document.getElementById("add") as HTMLButtonElement).disabled))
      yield* Effect.promise(() => p.click("#add"))
      yield* countIs(42)
      yield* Effect.promise(() => p.click("#add"))
      yield* countIs(43)
      yield* Effect.promise(() => screenshot(p, "counter-ui"))
      yield* Effect.promise(() => p.click("#reset"))
      yield* countIs(0)
      site.set(7)
      yield* countIs(7)
      assert.deepStrictEqual(site.frames, ["{\"Add\":1}", "{\"Add\":1}", "\"Reset\""])
      assert.strictEqual(yield* Effect.promise(() => p.$eval("#status", (e) => e.textContent)), "live")
    }).pipe(Effect.scoped), 60_000)
})
