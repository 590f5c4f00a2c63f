/**
 * The terminal as Kinode has it, through a real `node dist/main.js` (npm run build and
 * npm run build:apps first): each typed line goes to the terminal app
 * `terminal:terminal:sys` (apps/terminal, a bundled package), which runs the script the
 * line names; what the scripts print comes back on the node's output as
 * `terminal:sys: ...`. Every script of Kinode's terminal package, aliases kept across a
 * restart, refusals said at once, a script that traps, and the node's own commands when
 * the app cannot take lines (safe mode, killed).
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { zipSync } from "fflate"
import * as fs from "node:fs"
import * as path from "node:path"
import { buildTrap } from "../fixtures/wasm/build.ts"
import { type Running, runNode } from "../support/NodeProcess.ts"
import { tempDirs } from "../support/TempDirs.ts"
import { startTestChain, type TestChain } from "../support/TestChain.ts"

const dirs = tempDirs()
let chain: TestChain
let pw: string
let trapper: string
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
const utf8 = new TextEncoder()

beforeAll(async () => {
  const chainStarted = startTestChain()
  pw = path.join(dirs.mkdir("kinode-ts-pw-"), "pw")
  fs.writeFileSync(pw, "terminal test\n")
  // A package with one script, `boom`, that traps (WAT, panics with a message on stderr).
  trapper = path.join(dirs.mkdir("kinode-ts-zips-"), "trapper:test.dev.zip")
  const script = { root: false, public: false, request_networking: false, request_capabilities: [], grant_capabilities: [], wit_version: 1 }
  fs.writeFileSync(trapper, zipSync({
    "manifest.json": utf8.encode("[]"),
    "scripts.json": utf8.encode(JSON.stringify({ "boom.wasm": script })),
    "boom.wasm": await buildTrap()
  }))
  chain = await chainStarted
}, 60_000)
afterAll(async () => {
  await chain?.stop()
  dirs.removeAll()
})

const boot = (args: ReadonlyArray<string>): Running =>
  runNode(["--chain-port", String(chain.port), "--password-file", pw, ...args], { env: { KINODE_PASSWORD: "" } })

/** Types a line and waits for `pattern` in what the node prints after it; the match and the ms it took. */
const type = async (node: Running, line: string, pattern: RegExp, ms = 20_000) => {
  const from = node.output().length
  const t0 = Date.now()
  node.child.stdin.write(`${line}\n`)
  while (Date.now() - t0 < ms) {
    const m = pattern.exec(node.output().slice(from))
    if (m !== null) return { text: m[0], ms: Date.now() - t0 }
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`typed ${JSON.stringify(line)}: no ${pattern} within ${ms} ms; output after it:\n${node.output().slice(from)}`)
}

describe("the terminal app and its scripts, through node dist/main.js", () => {
  it("every script from the prompt; aliases kept across a restart; refusals and traps said at once", async () => {
    const name = `term-${process.pid}-${Math.floor(Math.random() * 1e4)}.os`
    const home = dirs.mkdir("kinode-ts-term-")
    const node = boot(["--home", home, "--name", name, "--install", trapper])
    try {
      await node.waitFor(new RegExp(`${esc(name)} > `), 60_000)
      await type(node, "echo hello from the terminal", /^terminal:sys: hello from the terminal$/m)
      // m: Kinode's syntax; -a anywhere, quoted JSON, `our`; replies printed; refusals at once.
      await type(node, "m our@echo:echo:sys 'hi there' -a 5", /^terminal:sys: hi there$/m)
      await type(node, `m -a 5 our@kernel:distro:sys '{"Debug": {"Process": "echo:echo:sys"}}'`, /"wasm_bytes_handle":"\/echo:sys\/pkg\/echo\.wasm"/)
      const refused = await type(node, "m our@nobody:nowhere:sys hi -a 30", /^terminal:sys: refused: no process nobody:nowhere:sys on this node$/m)
      assert.isBelow(refused.ms, 5000, "said at once, not after the 30 s wait")
      await type(node, "m", /Send a request to a process\.\n.*Usage:.*m <target> <body> \[-a <await_time>\]/)
      await type(node, "m our@echo:echo:sys hello -a abc", /Failed to parse args: invalid value 'abc'/)
      // top: all processes and the count; one process with its capabilities.
      await type(node, "top", /^top: \d+ running processes$/m)
      const caps = await type(node, "top terminal:terminal:sys", /capabilities \(\d+\):\n(\s+\S+\n)+/)
      assert.include(caps.text, `${name}@kernel:distro:sys("messaging")`)
      // aliases
      await type(node, "alias say echo:terminal:sys", /^terminal:sys: alias say set for echo:terminal:sys$/m)
      await type(node, "say aliased", /^terminal:sys: aliased$/m)
      await type(node, "alias gone nothing:here:sys", /^terminal:sys: alias gone set for nothing:here:sys$/m)
      await type(node, "gone x", /^terminal:sys: error calling script: no scripts manifest in package here:sys/m)
      await type(node, "nope", /^terminal:sys: error calling script: 'nope' not found, either as an alias or process ID$/m)
      // hi to ourselves: printed here as a hello, answered ack.
      await type(node, "hi our hello me", new RegExp(`^terminal:sys: response from ${esc(name)}: ack$`, "m"))
      assert.match(node.output(), new RegExp(`^${esc(name)}: hello me$`, "m"))
      await type(node, "cat /terminal:sys/pkg/scripts.json", /"echo\.wasm": \{/)
      await type(node, "kill spawner:spawner:sys", /^terminal:sys: killed process spawner:spawner:sys$/m)
      await type(node, "kill spawner:spawner:sys", /^terminal:sys: kill: no process spawner:spawner:sys$/m)
      await type(node, "help", /Kinode Terminal Help/)
      await type(node, "peers", /^terminal:sys: identities of current connected peers: none$/m)
      await type(node, `peer ${name}`, new RegExp(`peer identity for ${esc(name)}:\\n    networking key: 0x[0-9a-f]{64}\\n    routing: direct at 127\\.0\\.0\\.1 with tcp \\d+`))
      await type(node, "peer nobody-at-all.os", /no PKI entry found with name nobody-at-all\.os/)
      await type(node, "net-diagnostics", /peers \(0\/32\)/)
      await type(node, `kns ${name}`, new RegExp(`${esc(name)}\\nnetworking key 0x[0-9a-f]{64}\\ndirect, 127\\.0\\.0\\.1 tcp \\d+`))
      await type(node, "kfetch", /\d+ running processes/)
      // A script that traps: its message, and the prompt answers on.
      await type(node, "boom:trapper:test.dev", /panicked at src\/lib\.rs:1: fixture failure/)
      await type(node, "echo still here", /^terminal:sys: still here$/m)
      node.child.stdin.end()
      assert.strictEqual(await node.exited, 0)

      const again = boot(["--home", home])
      try {
        await again.waitFor(new RegExp(`${esc(name)} > `), 60_000)
        await type(again, "say kept across a restart", /^terminal:sys: kept across a restart$/m)
        await type(again, "alias say", /^terminal:sys: alias say removed$/m)
        await type(again, "say x", /'say' not found, either as an alias or process ID/)
      } finally {
        again.child.stdin.end()
        assert.strictEqual(await again.exited, 0)
      }
    } finally {
      node.child.kill("SIGKILL")
    }
  }, 240_000)

  it("without a working terminal app the node's own commands answer: safe mode, then the app killed", async () => {
    const name = `term-safe-${process.pid}-${Math.floor(Math.random() * 1e4)}.os`
    const home = dirs.mkdir("kinode-ts-term-")
    const first = boot(["--home", home, "--name", name])
    await first.waitFor(new RegExp(`${esc(name)} > `), 60_000)
    first.child.stdin.end()
    assert.strictEqual(await first.exited, 0)

    const safe = boot(["--home", home, "--safe-mode"])
    try {
      await safe.waitFor(new RegExp(`${esc(name)} > `), 60_000)
      await type(safe, "echo x", /the terminal app terminal:terminal:sys is paused; the node's own commands answer instead: m, top, quit, help/)
      await type(safe, "top terminal:terminal:sys", /terminal:terminal:sys\s+paused/)
      await type(safe, `m our@kernel:distro:sys '{"RunProcess": "terminal:terminal:sys"}' -a 5`, /"StartedProcess"/)
      await type(safe, "echo back", /^terminal:sys: back$/m)
      await type(safe, "kill terminal:terminal:sys", /^terminal:sys: killed process terminal:terminal:sys$/m)
      await type(safe, "top kernel:distro:sys", /the terminal app terminal:terminal:sys is not installed; the node's own commands answer instead(.|\n)*kernel:distro:sys\s+runtime/)
      safe.child.stdin.write("quit\n")
      assert.strictEqual(await safe.exited, 0)
    } finally {
      safe.child.kill("SIGKILL")
    }
  }, 180_000)
})
