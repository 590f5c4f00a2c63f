/**
 * Two nodes started by two commands (`node dist/main.js`) on one real anvil chain say
 * `hi` to each other from their terminals. One is killed with SIGKILL mid-conversation:
 * the other says at once that it is offline; once it is booted again, `hi` works again
 * without restarting the first.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { type Running, runNode } from "../support/NodeProcess.ts"
import { tempDirs } from "../support/TempDirs.ts"
import { startTestChain, type TestChain } from "../support/TestChain.ts"

let chain: TestChain
let pw: string
const dirs = tempDirs()
const mkdir = dirs.mkdir

beforeAll(async () => {
  chain = await startTestChain()
  pw = path.join(mkdir("kinode-ts-pw-"), "pw")
  fs.writeFileSync(pw, "net test\n")
}, 30_000)
afterAll(async () => {
  await chain?.stop()
  dirs.removeAll()
})

const boot = (args: ReadonlyArray<string>): Running =>
  runNode(["--chain-port", String(chain.port), "--password-file", pw, ...args], { env: { KINODE_PASSWORD: "" } })
const esc = (s: string) => s.replace(/\./g, "\\.")

/** Says `hi` until the answer matches (the other node's indexer may not have seen us yet). */
const hiUntil = async (from: Running, to: string, text: string, answer: RegExp, ms = 30_000) => {
  const t0 = Date.now()
  let seen = from.output().length
  while (Date.now() - t0 < ms) {
    from.child.stdin.write(`hi ${to} ${text}\n`)
    const deadline = Date.now() + 3000
    while (Date.now() < deadline) {
      const fresh = from.output().slice(seen)
      if (answer.test(fresh)) return
      if (/terminal:sys: (message to .* timed out|.* is offline or does not exist).*\n/.test(fresh)) break
      await new Promise((r) => setTimeout(r, 50))
    }
    seen = from.output().length
    await new Promise((r) => setTimeout(r, 300))
  }
  throw new Error(`no ${answer} after ${ms} ms; output:\n${from.output()}`)
}

describe("two nodes from two commands", () => {
  it("say hi to each other; a killed node is offline at once and answers again once rebooted", async () => {
    const id = `${process.pid}${Math.floor(Math.random() * 1e4)}`
    const a = `ann-${id}.os`
    const b = `ben-${id}.os`
    const benHome = mkdir("kinode-ts-net-")
    const ann = boot(["--home", mkdir("kinode-ts-net-"), "--name", a])
    let ben = boot(["--home", benHome, "--name", b])
    try {
      await ann.waitFor(new RegExp(`${esc(a)} > `), 60_000)
      await ben.waitFor(new RegExp(`${esc(b)} > `), 60_000)
      await hiUntil(ann, b, "hello ben", new RegExp(`response from ${esc(b)}: ack`))
      await ben.waitFor(new RegExp(`${esc(a)}: hello ben`))
      await hiUntil(ben, a, "hello ann", new RegExp(`response from ${esc(a)}: ack`))
      await ann.waitFor(new RegExp(`${esc(b)}: hello ann`))

      ann.child.stdin.write("peers\n")
      await ann.waitFor(new RegExp(`identities of current connected peers \\(1\\):\\n${esc(b)}:`))
      ann.child.stdin.write(`peer ${b}\n`)
      await ann.waitFor(new RegExp(`peer identity for ${esc(b)}:\\n    networking key: 0x[0-9a-f]{64}\\n    routing: direct at 127\\.0\\.0\\.1 with tcp \\d+`))
      ann.child.stdin.write("net-diagnostics\n")
      await ann.waitFor(/peers \(1\/32\):/)
      ann.child.stdin.write(`m ${b}@net:distro:sys 'sent with m' -a 5\n`)
      await ben.waitFor(new RegExp(`${esc(a)}: sent with m`))
      await ann.waitFor(/^terminal:sys: ack$/m)

      ben.child.kill("SIGKILL")
      await ben.exited
      const t0 = Date.now()
      await hiUntil(ann, b, "are you there", new RegExp(`terminal:sys: ${esc(b)} is offline or does not exist`), 15_000)
      assert.isBelow(Date.now() - t0, 8000, "offline is said within the dial timeout, not after the 10 s hi timeout")

      ben = boot(["--home", benHome])
      await ben.waitFor(new RegExp(`${esc(b)} > `), 60_000)
      await hiUntil(ann, b, "welcome back", new RegExp(`response from ${esc(b)}: ack`))
      await ben.waitFor(new RegExp(`${esc(a)}: welcome back`))
    } finally {
      ann.child.stdin.end()
      ben.child.stdin.end()
      assert.strictEqual(await ann.exited, 0, ann.output())
      await ben.exited
    }
  }, 180_000)
})
