/**
 * The node's HTTP side as a user meets it from the command line: `node dist/main.js`
 * prints the URL to open; a busy `--port` moves to the next free port and says so; bad
 * `--bind` and `--http-allow` values are refused before anything starts (exit 2); an
 * address that is not this machine's fails the boot (exit 6); a page asked for without
 * the cookie is the login page; `curl`-like RPC (`POST /rpc:distro:sys/message`) reaches
 * the bundled counter and brings back its answer. One booted node serves most cases
 * (a first boot costs seconds).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { type Running, runNode } from "../support/NodeProcess.ts"
import { tempDirs } from "../support/TempDirs.ts"
import { startTestChain, type TestChain } from "../support/TestChain.ts"

/** A plain TCP server holding a port on 127.0.0.1 (picked by the OS), as another program would. */
const occupyPort = () =>
  new Promise<net.Server>((resolve, reject) => {
    const server = net.createServer((socket) => socket.destroy())
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve(server))
  })
const portOf = (server: net.Server) => (server.address() as net.AddressInfo).port

const dirs = tempDirs()
let chain: TestChain
let pw: string

/** Flags refused at parse time (each run loads the node's modules: ~1 s of CPU). */
const REFUSED = [
  { args: ["--bind", "garbage"], line: /^--bind takes an IP address \(127\.0\.0\.1, 0\.0\.0\.0, ::1 \.\.\.\), not garbage$/m },
  { args: ["--http-allow", "example.com,not a host"], line: /^--http-allow: not a host\[:port\]: "not a host"$/m },
  { args: ["--port", "http"], line: /^--port takes a port number 1-65535, not http$/m }
]
let refusedHome: string
let refused: Array<Running & { readonly line: RegExp }>

/** The node most cases share, first booted with `--port` on a port another program holds. */
let busy: net.Server
let node: Running
let name: string
let home: string
let bootStarted: number

const run = (args: ReadonlyArray<string>): Running =>
  runNode(["--chain-port", String(chain.port), "--password-file", pw, ...args], { env: { KINODE_PASSWORD: "" } })

// Everything starts at once: the refused runs, the chain, then the boot.
beforeAll(async () => {
  bootStarted = Date.now()
  refusedHome = dirs.mkdir("kinode-ts-http-")
  refused = REFUSED.map((c) => ({ ...runNode(["--home", refusedHome, ...c.args]), line: c.line }))
  chain = await startTestChain()
  pw = path.join(dirs.mkdir("kinode-ts-pw-"), "pw")
  fs.writeFileSync(pw, "http test\n")
  busy = await occupyPort()
  home = dirs.mkdir("kinode-ts-http-")
  name = `http-${process.pid}-${Math.floor(Math.random() * 1e6)}.dev`
  node = run(["--home", home, "--name", name, "--port", String(portOf(busy)), "--detached"])
}, 30_000)
afterAll(async () => {
  if (node !== undefined && node.child.exitCode === null && node.child.signalCode === null) {
    node.child.kill("SIGKILL")
    await node.exited
  }
  busy?.close()
  await chain?.stop()
  dirs.removeAll()
})

describe("flags refused before the node starts", () => {
  it("--bind with something that is not an IP address, a bad --http-allow entry, a bad --port: exit 2 with the reason", async () => {
    for (const r of refused) {
      assert.strictEqual(await r.exited, 2, r.output())
      assert.match(r.output(), r.line)
    }
    // refused before the home is touched
    assert.deepStrictEqual(fs.readdirSync(refusedHome), [])
  }, 30_000)
})

describe("a booted node's HTTP", () => {
  let url: string

  beforeAll(async () => {
    await node.waitFor(/in a browser and log in with your password.*\n/, 60_000)
    url = /open (http:\/\/\S+) in a browser/.exec(node.output())![1]!
    console.log(`first boot to the printed URL: ${Date.now() - bootStarted} ms (chain start included)`)
  }, 90_000)

  const rpc = async (body: unknown) => {
    const res = await fetch(`${url}/rpc:distro:sys/message`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    return { status: res.status, text: await res.text() }
  }
  const counter = async (request: unknown) => {
    const r = await rpc({ process: "counter:counter:sys", body: JSON.stringify(request), expects_response: 5 })
    assert.strictEqual(r.status, 200, r.text)
    const answer = JSON.parse(r.text) as { body: Array<number>; lazy_load_blob: unknown }
    assert.isNull(answer.lazy_load_blob)
    return JSON.parse(Buffer.from(answer.body).toString("utf8")) as unknown
  }

  it("prints the URL at boot; --port taken by another program: the next free port, and it says so", async () => {
    const taken = portOf(busy)
    const line = /^open http:\/\/127\.0\.0\.1:(\d+) in a browser and log in with your password \(port (\d+) was taken\)$/m.exec(node.output())
    assert.isNotNull(line, node.output())
    const port = Number(line![1])
    assert.strictEqual(Number(line![2]), taken)
    assert.isAbove(port, taken)
    assert.isAtMost(port, taken + 100)
    assert.strictEqual(url, `http://127.0.0.1:${port}`)
    // the URL comes after the node booted, and answers
    assert.isBelow(node.output().indexOf(`node ${name} booted`), node.output().indexOf(`open ${url}`))
    const res = await fetch(`${url}/our`)
    assert.strictEqual(res.status, 200)
    assert.strictEqual(await res.text(), name)
  })

  it("a page asked for without the cookie (or with a forged one) is the login page", async () => {
    for (const p of ["/", "/processes", "/install", "/counter:counter:sys/", "/counter:counter:sys/api"]) {
      for (const cookie of [undefined, `kinode-auth_${name}=eyJhbGciOiJIUzI1NiJ9.e30.AAAA`]) {
        const res = await fetch(`${url}${p}`, cookie === undefined ? {} : { headers: { cookie } })
        const page = await res.text()
        assert.strictEqual(res.status, 200, p)
        assert.strictEqual(res.headers.get("content-type"), "text/html; charset=utf-8", p)
        assert.isNull(res.headers.get("set-cookie"), p)
        assert.include(page, `<h1>Log in to <span id="node">${name}</span></h1>`, p)
        assert.include(page, `<script src="/login/argon2.js"></script>`, p)
        assert.notInclude(page, "Installed packages", p)
      }
    }
    const script = await fetch(`${url}/login/argon2.js`)
    assert.strictEqual(script.status, 200)
    assert.include(await script.text(), "argon2id")
  })

  it("RPC POST /rpc:distro:sys/message reaches the counter and answers with the count", async () => {
    assert.deepStrictEqual(await counter("Get"), { count: 0 })
    assert.deepStrictEqual(await counter({ Add: 5 }), { count: 5 })
    assert.deepStrictEqual(await counter("Get"), { count: 5 })
    assert.deepStrictEqual(await counter({ Add: "five" }), { error: "bad body (expected {\"Add\": n}, \"Get\" or \"Reset\"): {\"Add\":\"five\"}" })
    // Without expects_response: accepted at once, and the request still arrives.
    assert.deepStrictEqual(await rpc({ process: "counter:counter:sys", body: JSON.stringify({ Add: 1 }) }), { status: 200, text: "" })
    const t0 = Date.now()
    while ((await counter("Get") as { count: number }).count !== 6) {
      assert.isBelow(Date.now() - t0, 5000, "the fire-and-forget Add arrives")
      await new Promise((r) => setTimeout(r, 50))
    }
    assert.deepStrictEqual(await counter("Reset"), { count: 0 })
    // Refusals are plain answers.
    assert.strictEqual((await rpc({ process: "no colons" })).status, 400)
    const gone = await rpc({ process: "nobody:nowhere:sys", body: "\"Get\"", expects_response: 5 })
    assert.deepStrictEqual(gone, { status: 503, text: "refused: NoSuchProcess" })
  })

  it("SIGTERM stops it with exit 0; booting it again on an address that is not this machine's fails with exit 6", async () => {
    node.child.kill("SIGTERM")
    assert.strictEqual(await node.exited, 0, node.output())
    const again = run(["--home", home, "--bind", "192.0.2.1", "--port", "8080", "--detached"])
    assert.strictEqual(await again.exited, 6, again.output())
    assert.match(again.output(), /^http: cannot listen on 192\.0\.2\.1:8080 \(EADDRNOTAVAIL\); pick another with --port, or another address with --bind$/m)
  }, 60_000)
})
