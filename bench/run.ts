/**
 * `npm run bench [-- SUITE...]`: runs `bench/suites/<suite>.bench.ts` (all by default),
 * prints one table, and writes `bench/results/latest.json` (array of
 * `{suite, metric, value, unit}`) so runs can be compared by machine.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { Row } from "./Row.ts"

const here = path.dirname(fileURLToPath(import.meta.url))
const suitesDir = path.join(here, "suites")
const available = fs.readdirSync(suitesDir).filter((f) => f.endsWith(".bench.ts")).map((f) => f.replace(/\.bench\.ts$/, "")).sort()
const wanted = process.argv.slice(2).filter((a) => !a.startsWith("-"))
const unknown = wanted.filter((w) => !available.includes(w))
if (unknown.length > 0) {
  process.stderr.write(`unknown suite(s): ${unknown.join(", ")}; available: ${available.join(", ")}\n`)
  process.exit(2)
}
const suites = wanted.length > 0 ? wanted : available

const rows: Array<Row> = []
for (const suite of suites) {
  process.stdout.write(`running ${suite} ...\n`)
  const mod = (await import(path.join(suitesDir, `${suite}.bench.ts`))) as { run: () => Promise<ReadonlyArray<Row>> }
  rows.push(...(await mod.run()))
}

const fmt = (v: number) => (Math.abs(v) >= 100 ? Math.round(v).toLocaleString("en-US") : v.toFixed(2))
const widths = [10, 34, 16, 10]
const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => (i === 2 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ")
process.stdout.write(`\n${line(["suite", "metric", "value", "unit"])}\n${"-".repeat(78)}\n`)
for (const r of rows) process.stdout.write(`${line([r.suite, r.metric, fmt(r.value), r.unit])}\n`)

const out = path.join(here, "results")
fs.mkdirSync(out, { recursive: true })
fs.writeFileSync(path.join(out, "latest.json"), `${JSON.stringify(rows, null, 2)}\n`)
process.stdout.write(`\nwrote bench/results/latest.json (${rows.length} rows)\n`)
process.exit(0)
