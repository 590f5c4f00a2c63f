/**
 * Crash safety: a child node writes continuously through kv, state, vfs and sqlite and
 * prints every acknowledged write; it is SIGKILLed at a random moment, 20 times. Each
 * restart (the same driver, booting the real node on the same home) first verifies that
 * every write acknowledged so far is present and that the stores open uncorrupted.
 */
import { assert, describe, it } from "vitest"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const NODE = path.resolve("node_modules/.bin/node")
const DRIVER = path.resolve("test/services/support/crash-driver.ts")
const CYCLES = 20

interface Run {
  readonly lines: Array<string>
  readonly code: number | null
  readonly stderr: string
}

/** Runs the driver; with `killAfterMs`, SIGKILLs it that long after it printed `ready`. */
const runDriver = (home: string, acked: string, cycle: number, killAfterMs: number | undefined) =>
  new Promise<Run>((resolve, reject) => {
    const child = spawn(NODE, [DRIVER, home, acked, String(cycle), ...(killAfterMs === undefined ? ["verify-only"] : [])], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    let killTimer: NodeJS.Timeout | undefined
    const guard = setTimeout(() => child.kill("SIGKILL"), 30_000)
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
      if (killAfterMs !== undefined && killTimer === undefined && stdout.includes("ready\n")) {
        killTimer = setTimeout(() => child.kill("SIGKILL"), killAfterMs)
      }
    })
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(guard)
      if (killTimer !== undefined) clearTimeout(killTimer)
      // A line cut by the kill is not counted: only complete lines are acknowledgements.
      const complete = stdout.slice(0, stdout.lastIndexOf("\n") + 1)
      resolve({ lines: complete.split("\n").filter((l) => l.length > 0), code, stderr })
    })
  })

describe("crash safety", () => {
  it("every acknowledged write survives 20 random SIGKILLs", { timeout: 150_000 }, async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-crash-"))
    const ackedFile = path.join(home, "..", `${path.basename(home)}-acked.json`)
    const acked = { kv: [] as Array<string>, vfs: [] as Array<string>, sql: [] as Array<string>, state: -1 }
    let total = 0
    try {
      for (let cycle = 1; cycle <= CYCLES; cycle++) {
        fs.writeFileSync(ackedFile, JSON.stringify(acked))
        const run = await runDriver(home, ackedFile, cycle, 50 + Math.floor(Math.random() * 450))
        const failed = run.lines.find((l) => l.startsWith("FAILED"))
        assert.isUndefined(failed, `cycle ${cycle}: ${failed}\n${run.stderr}`)
        assert.ok(run.lines[0]?.startsWith("verified"), `cycle ${cycle} did not verify: ${run.lines.slice(0, 3).join(" | ")} ${run.stderr}`)
        for (const line of run.lines) {
          const [store, id] = line.split(" ") as [string, string]
          if (store === "kv") acked.kv.push(id)
          else if (store === "vfs") acked.vfs.push(id)
          else if (store === "sql") acked.sql.push(id)
          else if (store === "state") acked.state = Math.max(acked.state, Number(id))
          else continue
          total++
        }
      }
      fs.writeFileSync(ackedFile, JSON.stringify(acked))
      const final = await runDriver(home, ackedFile, CYCLES + 1, undefined)
      assert.strictEqual(final.code, 0, final.lines.join("\n") + final.stderr)
      assert.match(final.lines[0] ?? "", /^verified/)
      assert.ok(acked.kv.length > 0 && acked.vfs.length > 0 && acked.sql.length > 0 && acked.state >= 0)
      assert.ok(total > 100, `only ${total} acknowledged writes`)
    } finally {
      fs.rmSync(home, { recursive: true, force: true })
      fs.rmSync(ackedFile, { force: true })
    }
  })
})
