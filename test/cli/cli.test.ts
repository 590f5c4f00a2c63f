/**
 * The node as a user runs it: `node dist/main.js --home <dir>` in a child process,
 * commands typed on stdin, answers read from stdout; stop it, start it again.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

import { type Running, runNode } from "../support/NodeProcess.ts"
import { startTestChain, type TestChain } from "../support/TestChain.ts"


// Every node of this file registers on one test-owned anvil; each home gets its own name.
let chain: TestChain
let passwordFile: string
beforeAll(async () => {
  chain = await startTestChain()
  passwordFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "kinode-ts-pw-")), "pw")
  fs.writeFileSync(passwordFile, "correct horse\n")
}, 30_000)
afterAll(async () => {
  await chain?.stop()
})

const names = new Map<string, string>()
const nameFor = (home: string) => {
  let name = names.get(home)
  if (name === undefined) names.set(home, name = `cli-${names.size}-${process.pid}.dev`)
  return name
}

const start = (home: string, extra: ReadonlyArray<string> = [], node = "node"): Running => {
  const identity = ["--name", nameFor(home), "--password-file", passwordFile, "--chain-port", String(chain.port)]
  return runNode(["--home", home, ...identity, ...extra], { node })
}

const initEcho = JSON.stringify({
  InitializeProcess: {
    id: "echo:test:sys",
    wasm_bytes_handle: "native:echo",
    wit_version: null,
    on_exit: "Restart",
    initial_capabilities: [],
    public: true
  }
})

describe("node dist/main.js", () => {
  it("boots, answers m through a started echo actor, and keeps it across a restart", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-ts-cli-"))
    try {
      const first = start(home)
      const name = (await first.waitFor(/node (\S+) booted/)).split(" ")[1]!
      await first.waitFor(new RegExp(`${name.replace(/\./g, "\\.")} > `))
      first.child.stdin.write(`m our@kernel:distro:sys ${initEcho} -a 5\n`)
      await first.waitFor(/"InitializedProcess"/)
      first.child.stdin.write("m our@kernel:distro:sys {\"RunProcess\":\"echo:test:sys\"} -a 5\n")
      await first.waitFor(/"StartedProcess"/)
      first.child.stdin.write("m our@echo:test:sys 'hello from the terminal' -a 5\n")
      await first.waitFor(/^terminal:sys: hello from the terminal$/m)
      first.child.stdin.write("top\n")
      await first.waitFor(/echo:test:sys\s+running\s+public\s+on-exit Restart\s+caps\s+\d+\s+native:echo/)
      first.child.stdin.write("m not-an-address x\n")
      await first.waitFor(/Invalid address: "not-an-address"/)
      first.child.stdin.end() // Ctrl-D
      assert.strictEqual(await first.exited, 0)

      const second = start(home)
      await second.waitFor(new RegExp(`node ${name.replace(/\./g, "\\.")} booted`))
      second.child.stdin.write("m our@echo:test:sys 'still here' -a 5\n")
      await second.waitFor(/still here$/m)
      second.child.kill("SIGTERM")
      await second.exited
      assert.match(second.output(), /still here/)
    } finally {
      fs.rmSync(home, { recursive: true, force: true })
    }
  }, 60_000)

  it("--safe-mode boots with stored processes paused: top lists them, RunProcess starts one", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-ts-cli-"))
    try {
      const first = start(home)
      await first.waitFor(/booted/)
      first.child.stdin.write(`m our@kernel:distro:sys ${initEcho} -a 5\n`)
      await first.waitFor(/"InitializedProcess"/)
      first.child.stdin.write("m our@kernel:distro:sys {\"RunProcess\":\"echo:test:sys\"} -a 5\n")
      await first.waitFor(/"StartedProcess"/)
      first.child.stdin.end()
      assert.strictEqual(await first.exited, 0)

      const safe = start(home, ["--safe-mode"])
      await safe.waitFor(/safe mode: \d+ processes not started/)
      await safe.waitFor(/booted/)
      // The terminal app is paused too: the node's own commands answer.
      safe.child.stdin.write("top echo:test:sys\n")
      await safe.waitFor(/echo:test:sys\s+paused/)
      safe.child.stdin.write("m our@kernel:distro:sys {\"RunProcess\":\"echo:test:sys\"} -a 5\n")
      await safe.waitFor(/"StartedProcess"/)
      safe.child.stdin.write("m our@echo:test:sys awake -a 5\n")
      await safe.waitFor(/awake$/m)
      safe.child.stdin.end()
      assert.strictEqual(await safe.exited, 0)
    } finally {
      fs.rmSync(home, { recursive: true, force: true })
    }
  }, 60_000)

  it("--detached runs without a terminal and stops cleanly on SIGTERM; with two malloc arenas", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-ts-cli-"))
    try {
      const node = start(home, ["--detached"])
      await node.waitFor(/booted/)
      // Started without MALLOC_ARENA_MAX, the node replaced itself (same pid) with it set
      // (layers/main.ts); one the user set is kept.
      const environ = fs.readFileSync(`/proc/${node.child.pid}/environ`, "utf8").split("\0")
      assert.include(environ, `MALLOC_ARENA_MAX=${process.env["MALLOC_ARENA_MAX"] ?? "2"}`)
      node.child.kill("SIGTERM")
      await node.exited
      assert.notMatch(node.output(), /Error/)
    } finally {
      fs.rmSync(home, { recursive: true, force: true })
    }
  }, 30_000)

  it("--help lists the flags; bad flags are explained", async () => {
    const help = start("x", ["--help"])
    await help.exited
    assert.match(help.output(), /--home <dir>/)
    assert.match(help.output(), /--detached/)
    const bad = start("x", ["--bogus"])
    assert.strictEqual(await bad.exited, 2)
    assert.match(bad.output(), /unknown argument --bogus/)
  }, 30_000)

  it("started by the system Node (no JSPI) it re-execs with the bundled Node 24", async () => {
    const systemNode = ["/usr/local/bin/node", "/usr/bin/node"].find((p) => fs.existsSync(p))
    assert.isDefined(systemNode, "a system node is needed to test the re-exec")
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-ts-cli-"))
    try {
      const node = start(home, [], systemNode!)
      await node.waitFor(/booted/)
      node.child.stdin.end()
      assert.strictEqual(await node.exited, 0)
    } finally {
      fs.rmSync(home, { recursive: true, force: true })
    }
  }, 30_000)
})
