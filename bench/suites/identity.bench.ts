/**
 * Identity: the KNS indexer catching up over a chain with 10,000 registered names, and
 * boots of `node dist/main.js` with registration and login (and where a later boot's
 * time goes), on a bench-owned anvil with our Kimap-compatible registry.
 *
 * The catch-up figure comes from `test/services/kns-indexer/catchup.measure.ts`, run as
 * a child: its chain holds the names in a registry emitting Kimap's exact events (a
 * Mint and four Notes each, 100 names a transaction).
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
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-idboot-"))
    const pw = `${home}.pw`
    fs.writeFileSync(pw, "bench password\n")
    const flags = ["--password-file", pw, "--chain-port", String(chain.port)]
    try {
      rows.push({ suite: SUITE, metric: "first boot to prompt (registers)", value: await bootToPrompt(home, [...flags, "--name", `idbench-${process.pid}.os`]), unit: "ms" })
      rows.push({ suite: SUITE, metric: "later boot to prompt", value: await bootToPrompt(home, flags), unit: "ms" })
      const phases = await bootPhases(home, flags)
      rows.push({ suite: SUITE, metric: "later boot: chain connect", value: phases["chain"] ?? 0, unit: "ms" })
      rows.push({ suite: SUITE, metric: "later boot: login (keyfile + chain)", value: phases["login"] ?? 0, unit: "ms" })
      rows.push({ suite: SUITE, metric: "later boot: rest (kernel, apps)", value: (phases["prompt"] ?? 0) - (phases["chain"] ?? 0) - (phases["login"] ?? 0) - (phases["start"] ?? 0), unit: "ms" })
      rows.push({ suite: SUITE, metric: "later boot: process start + modules", value: phases["start"] ?? 0, unit: "ms" })
    } finally {
      fs.rmSync(home, { recursive: true, force: true })
      fs.rmSync(pw, { force: true })
    }
  } finally {
    await chain.stop()
  }
  return rows
}
