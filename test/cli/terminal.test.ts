/**
 * The terminal as Kinode has it, through a real `node dist/main.js` (npm run build and
 * npm run build:apps first): each typed line goes to the terminal app
 * `terminal:terminal:sys` (apps/terminal, a bundled package), which runs the script the
 * line names; what the scripts print comes back on the node's output as
 * `terminal:sys: ...`. Every script of Kinode's terminal package, aliases kept across a
 * restart, refusals said at once (no process, offline node, more than a message may
 * carry), usage lines, `top` with each process's status, `v 3`'s kernel events, a
 * script that traps, the first boot's progress lines, and the node's own commands when
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
  // A package with one script, `boom`, that traps (WAT, panics with a message on stderr),
  // and a file more than a message may carry (11 MiB, for m -b).
  trapper = path.join(dirs.mkdir("kinode-ts-zips-"), "trapper:test.dev.zip")
  const script = { root: false, public: false, request_networking: false, request_capabilities: [], grant_capabilities: [], wit_version: 1 }
  fs.writeFileSync(trapper, zipSync({
    "manifest.json": utf8.encode("[]"),
    "scripts.json": utf8.encode(JSON.stringify({ "boom.wasm": script })),
    "boom.wasm": await buildTrap(),
    "big.bin": new Uint8Array(11 * 1024 * 1024)
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
      // A first boot says what it is doing before each long step, at the default verbosity.
      const bootOutput = node.output()
      const steps = [
        new RegExp(`^first boot: making ${esc(name)}'s networking key and registering it on ${esc(chain.url)} \\.\\.\\.$`, "m"),
        new RegExp(`^registered ${esc(name)} on `, "m"),
        /^installing bundled apps: terminal:sys, echo:sys, counter:sys, spawner:sys \(compiling each app's Wasm takes seconds\)$/m,
        /^ {2}installing terminal:sys \(1\/4\) \.\.\.$/m,
        /^ {2}installing echo:sys \(2\/4\) \.\.\.$/m,
        /^ {2}installing counter:sys \(3\/4\) \.\.\.$/m,
        /^ {2}installing spawner:sys \(4\/4\) \.\.\.$/m,
        /^installed bundled apps: terminal:sys, echo:sys, counter:sys, spawner:sys \(\d+\.\d s\)$/m,
        new RegExp(`^installing trapper:test\\.dev from ${esc(trapper)} \\.\\.\\.$`, "m"),
        new RegExp(`^kinode-ts node ${esc(name)} booted`, "m")
      ]
      const at = steps.map((re) => bootOutput.search(re))
      assert.deepStrictEqual(at.map((i, n) => i >= 0 ? "found" : `missing ${steps[n]}`), steps.map(() => "found"), bootOutput)
      assert.deepStrictEqual([...at].sort((a, b) => a - b), at, `progress lines out of order:\n${bootOutput}`)

      await type(node, "echo hello from the terminal", /^terminal:sys: hello from the terminal$/m)
      // m: Kinode's syntax; -a anywhere, quoted JSON, `our`; replies printed; refusals at once.
      await type(node, "m our@echo:echo:sys 'hi there' -a 5", /^terminal:sys: hi there$/m)
      await type(node, `m -a 5 our@kernel:distro:sys '{"Debug": {"Process": "echo:echo:sys"}}'`, /"wasm_bytes_handle":"\/echo:sys\/pkg\/echo\.wasm"/)
      const refused = await type(node, "m our@nobody:nowhere:sys hi -a 30", /^terminal:sys: refused: no process nobody:nowhere:sys on this node$/m)
      assert.isBelow(refused.ms, 5000, "said at once, not after the 30 s wait")
      // Another node that does not exist: offline, said at once, not after the 30 s wait.
      const offline = await type(node, "m nobody-anywhere.os@echo:echo:sys hi -a 30", /^terminal:sys: Failed to send message because the target is offline$/m)
      assert.isBelow(offline.ms, 8000)
      // More than a message may carry: said at once, nothing sent.
      const tooLarge = await type(node, "m our@echo:echo:sys hi -b /trapper:test.dev/pkg/big.bin -a 30", /^terminal:sys: blob file .*$/m)
      assert.strictEqual(tooLarge.text, "terminal:sys: blob file /trapper:test.dev/pkg/big.bin is 11.5 MB, more than a message may carry (10 MiB with the body)")
      assert.isBelow(tooLarge.ms, 5000)
      await type(node, "m", /Send a request to a process\.\n.*Usage:.*m <target> <body> \[-a <await_time>\]/)
      // A bad -a value is a usage error, not part of the body.
      const badAwait = await type(node, "m our@echo:echo:sys hello -a abc", /Failed to parse args: invalid value 'abc'.*\n.*Usage:.*/)
      assert.notMatch(node.output(), /^terminal:sys: hello -a abc$/m)
      assert.isBelow(badAwait.ms, 5000)
      // top: all processes with their status, and the count; one process with its capabilities.
      const top = await type(node, "top", /^top: \d+ running processes$/m)
      const listed = node.output().slice(node.output().length - 20_000)
      assert.match(listed, /^\s+echo:echo:sys\s+running\s+public\s+on-exit Restart\s+caps\s+\d+\s+\/echo:sys\/pkg\/echo\.wasm$/m, top.text)
      assert.match(listed, /^\s+vfs:distro:sys\s+running\s+private\s+on-exit None\s+caps\s+\d+\s+\(runtime\)$/m)
      const caps = await type(node, "top terminal:terminal:sys", /capabilities \(\d+\):\n(\s+\S+\n)+/)
      assert.include(caps.text, `${name}@kernel:distro:sys("messaging")`)
      assert.include(caps.text, `${name}@vfs:distro:sys({"root":true})`)
      assert.match(node.output(), /^ {4}status: running$/m)

      // v 3: every kernel event, one short line each; v 0: none again.
      await type(node, "v 3", /^verbosity 3$/m)
      const events = await type(node, "echo traced", /^terminal:sys: traced$/m)
      const traced = node.output().slice(node.output().lastIndexOf("verbosity 3"))
      assert.match(traced, /^\d+ Request terminal:terminal:sys -> terminal:terminal:sys: 'echo traced'$/m)
      assert.match(traced, /^\d+ Request terminal:terminal:sys -> vfs:distro:sys \(expects 5s\): '\{"path":"\/terminal:sys\/pkg\/scripts\.json","action":"Read"\}'$/m)
      assert.match(traced, /^\d+ Response vfs:distro:sys -> terminal:terminal:sys: '"Read"' \[blob \d+ B application\/octet-stream\]$/m)
      assert.match(traced, /^process \d+:terminal:sys (initialized|spawned by terminal:terminal:sys) from \/terminal:sys\/pkg\/.*$/m)
      assert.match(traced, /^process \d+:terminal:sys started$/m)
      assert.match(traced, /^\d+ Request terminal:terminal:sys -> \d+:terminal:sys: 'traced'$/m)
      assert.isBelow(Math.max(...traced.split("\n").map((l) => l.length)), 300, "event lines are short")
      assert.isBelow(events.ms, 10_000)
      const refusedTraced = await type(node, "m our@nobody:nowhere:sys hi", /REFUSED NoSuchProcess/)
      assert.match(refusedTraced.text, /REFUSED NoSuchProcess/)
      await type(node, "v 0", /^verbosity 0$/m)
      const quietFrom = node.output().length
      await type(node, "echo quiet", /^terminal:sys: quiet$/m)
      assert.notMatch(node.output().slice(quietFrom), /^\d+ (Request|Response) /m)
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
        // Nothing to install on a later boot, nothing said about it.
        assert.notMatch(again.output(), /installing|first boot/)
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
      // The node's own m: usage lines, a refusal's reason at once.
      await type(safe, "m", /^usage: m <address> <body> \[-a <seconds>\]/m)
      await type(safe, "m our@echo:echo:sys hello -a abc", /^m: -a takes a number of seconds, not abc\nusage: m /m)
      const refused = await type(safe, "m our@nobody:nowhere:sys hi -a 30", /^m: no process nobody:nowhere:sys on this node$/m)
      assert.isBelow(refused.ms, 5000)
      await type(safe, `m our@kernel:distro:sys '{"RunProcess": "terminal:terminal:sys"}' -a 5`, /"StartedProcess"/)
      await type(safe, "echo back", /^terminal:sys: back$/m)
      // The app's top shows each process's status: the others are still paused.
      await type(safe, "top", /^top: \d+ running processes$/m)
      assert.match(safe.output(), /^\s+echo:echo:sys\s+paused\s+public\s+on-exit Restart/m)
      assert.match(safe.output(), /^\s+terminal:terminal:sys\s+running\s+private\s+on-exit Restart/m)
      await type(safe, "kill terminal:terminal:sys", /^terminal:sys: killed process terminal:terminal:sys$/m)
      await type(safe, "top kernel:distro:sys", /the terminal app terminal:terminal:sys is not installed; the node's own commands answer instead(.|\n)*kernel:distro:sys\s+runtime/)
      safe.child.stdin.write("quit\n")
      assert.strictEqual(await safe.exited, 0)
    } finally {
      safe.child.kill("SIGKILL")
    }
  }, 180_000)
})
