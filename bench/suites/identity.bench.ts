/**
 * Identity: the KNS indexer catching up over a chain with 10,000 registered names,
 * `NodeInfo` asked of it through the kernel, and boots of `node dist/main.js` with
 * registration and login (and where a later boot's time goes), on a bench-owned anvil
 * with our Kimap-compatible registry.
 *
 * The catch-up and lookup figures come from `test/services/kns-indexer/catchup.measure.ts`,
 * run as a child: its chain holds the names in a registry emitting Kimap's exact events
 * (a Mint and four Notes each, 100 names a transaction), and a process on a real kernel
 * asks the hosted indexer for indexed names. Later boots are the median of
 * `LATER_BOOTS`; "identity" is their chain connect plus login, what a node without a
 * name on a chain would not spend (the keyfile's derivations run in a worker while the
 * modules load, so they are in neither phase).
 *
 * Last run (2-core machine shared with other jobs, load ~2-3; boot rows swing ±30%):
 *
 *   indexer catch-up, 10000 names, depth 0      22,503 events/s   (complete in 2,222 ms)
 *   indexer catch-up, 10000 names, depth 12     22,717 events/s   (complete in 2,201 ms)
 *   NodeInfo lookup through the kernel p50          36 us
 *   NodeInfo lookup through the kernel p99         119 us
 *   first boot to prompt (registers)             6,889 ms
 *   later boot to prompt                         2,989 ms
 *   later boot: identity (chain + login)           298 ms   (chain 230, login 73)
 *   later boot: rest (kernel, apps)              1,092 ms
 *   later boot: process start + modules          1,481 ms
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { startTestChain } from "../../test/support/TestChain.ts"
import type { Row } from "../Row.ts"
import { bootToPrompt } from "./wasm.bench.ts"

const SUITE = "identity"
/** Names on the catch-up chain (`IDENTITY_BENCH_NAMES` for a quick run). */
const NAMES = Number(process.env["IDENTITY_BENCH_NAMES"] ?? 10_000)
const LATER_BOOTS = 5

const median = (xs: ReadonlyArray<number>): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0

/** The `boot: ... ms` phases line a node prints at verbosity 2. */
const bootPhases = (home: string, flags: ReadonlyArray<string>) =>
  new Promise<Record<string, number>>((resolve, reject) => {
    const child = spawn(process.execPath, [path.resolve(import.meta.dirname, "../../dist/main.js"), "--home", home, "-v", "2", ...flags], { stdio: ["pipe", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString()
      const m = /boot: (.*); prompt at (\d+) ms/.exec(out)
      if (m !== null) {
        const phases: Record<string, number> = { prompt: Number(m[2]) }
        for (const part of m[1]!.split(", ")) {
          const [name, ms] = part.split(" ")
          phases[name!] = Number(ms)
        }
        child.stdin.end()
        child.on("exit", () => resolve(phases))
      }
    })
    setTimeout(() => reject(new Error(`no boot line: ${out.slice(-400)}`)), 60_000)
  })

export async function run(): Promise<Array<Row>> {
  const rows: Array<Row> = []
  const chain = await startTestChain()
  try {
    // Catch-up over 10,000 names, measured by the indexer's measurement script in a
    // process of its own (each name a Mint + 4 Notes, 100 names a transaction).
    const measured = spawnSync(process.execPath, [path.resolve(import.meta.dirname, "../../test/services/kns-indexer/catchup.measure.ts"), String(NAMES)], { encoding: "utf8", timeout: 600_000 })
    for (const m of measured.stdout.matchAll(/confirmations (\d+)\): (\d+) events, \d+ ranges, \d+ RPC calls in (\d+) ms = (\d+) events\/s/g)) {
      rows.push({ suite: SUITE, metric: `indexer catch-up, ${NAMES} names, depth ${m[1]}`, value: Number(m[4]), unit: "events/s" })
      rows.push({ suite: SUITE, metric: `indexer time to complete index, depth ${m[1]}`, value: Number(m[3]), unit: "ms" })
    }
    const lookup = /NodeInfo through the kernel .*: p50 (\d+) us, p99 (\d+) us/.exec(measured.stdout)
    if (lookup === null) throw new Error(`no NodeInfo figures from catchup.measure.ts: ${measured.stderr.slice(-400)}`)
    rows.push({ suite: SUITE, metric: "NodeInfo lookup through the kernel p50", value: Number(lookup[1]), unit: "us" })
    rows.push({ suite: SUITE, metric: "NodeInfo lookup through the kernel p99", value: Number(lookup[2]), unit: "us" })
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-idboot-"))
    const pw = `${home}.pw`
    fs.writeFileSync(pw, "bench password\n")
    const flags = ["--password-file", pw, "--chain-port", String(chain.port)]
    try {
      rows.push({ suite: SUITE, metric: "first boot to prompt (registers)", value: await bootToPrompt(home, [...flags, "--name", `idbench-${process.pid}.os`]), unit: "ms" })
      const walls: Array<number> = []
      const boots: Array<Record<string, number>> = []
      for (let i = 0; i < LATER_BOOTS; i++) {
        walls.push(await bootToPrompt(home, flags))
        boots.push(await bootPhases(home, flags))
      }
      const phase = (name: string) => median(boots.map((p) => p[name] ?? 0))
      const rest = median(boots.map((p) => (p["prompt"] ?? 0) - (p["chain"] ?? 0) - (p["login"] ?? 0) - (p["start"] ?? 0)))
      rows.push({ suite: SUITE, metric: "later boot to prompt", value: median(walls), unit: "ms" })
      rows.push({ suite: SUITE, metric: "later boot: identity (chain + login)", value: median(boots.map((p) => (p["chain"] ?? 0) + (p["login"] ?? 0))), unit: "ms" })
      rows.push({ suite: SUITE, metric: "later boot: chain connect", value: phase("chain"), unit: "ms" })
      rows.push({ suite: SUITE, metric: "later boot: login (keyfile + chain)", value: phase("login"), unit: "ms" })
      rows.push({ suite: SUITE, metric: "later boot: rest (kernel, apps)", value: rest, unit: "ms" })
      rows.push({ suite: SUITE, metric: "later boot: process start + modules", value: phase("start"), unit: "ms" })
    } finally {
      fs.rmSync(home, { recursive: true, force: true })
      fs.rmSync(pw, { force: true })
    }
  } finally {
    await chain.stop()
  }
  return rows
}
