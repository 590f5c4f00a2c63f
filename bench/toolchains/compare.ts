/**
 * The toolchain study (issue 14, "Lean TypeScript apps"):
 *
 *   node bench/toolchains/compare.ts [--reps N] [--only id,id] [--no-share]
 *
 * builds the same echo app (apps/echo + apps/sdk) with each toolchain of builders.ts,
 * then measures each in fresh Node processes (measure.ts, --expose-gc), preemption on
 * as in a node:
 *   size          the component, and deflated (what a package zip carries)
 *   RSS           N=10 idle instances of the echo in one process: the first instance
 *                 (its compiled code included), each further one, and delta / N
 *   first answer  instantiate -> first reply: the first instance, and the median of
 *                 instances 2..10 (the component already compiled)
 *   rt/s          echo round trips: under our host alone (hostEcho of bench/WasmGlue.ts)
 *                 and driver -> echo through a real kernel (the wasm bench's
 *                 `driver->TS echo app round trips`); medians of 3 in each run
 * then, unless --no-growth, the linear memory of one echo after 300k round trips (cjs,
 * qjs, qjs-async), and, unless --no-share, the engine-sharing prototype (SharedEngineCache.ts): four
 * distinct apps (the echo and three generated ones) built with componentize-js and
 * with componentize-qjs, one instance each, under the real component cache and the
 * prototype. Every timing row runs in `--reps` processes (default 3) and is printed as
 * median (min-max): the machine is shared. Figures are written to results.json here.
 */
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { deflateSync } from "fflate"
import { GLUE_VERSION } from "../../src/wasm-host/ComponentCache.ts"
import { build, ECHO, here, repo, syntheticApp, type Variant, VARIANTS } from "./builders.ts"

const argv = process.argv.slice(2)
const flag = (name: string) => {
  const i = argv.indexOf(name)
  return i < 0 ? undefined : argv[i + 1]
}
const REPS = Number(flag("--reps") ?? 3)
const ONLY = flag("--only")?.split(",")
const SHARE = !argv.includes("--no-share")
const N = 10

const log = (s: string) => process.stderr.write(`${s}\n`)

/** Runs measure.ts in a fresh process; its last stdout line is JSON. */
const measure = (...args: Array<string>): any => measureIn({}, ...args)
/** The same with extra environment (MALLOC_ARENA_MAX=1: one glibc arena, see README). */
const measureIn = (env: Record<string, string>, ...args: Array<string>): any => {
  const r = spawnSync(process.execPath, ["--expose-gc", path.join(here, "measure.ts"), ...args], {
    cwd: repo,
    env: { ...process.env, ...env },
    encoding: "utf8",
    timeout: 15 * 60_000,
    maxBuffer: 64 * 2 ** 20
  })
  const last = r.stdout.trim().split("\n").at(-1) ?? ""
  if (r.status !== 0 || !last.startsWith("{") && !last.startsWith("\"")) {
    throw new Error(`measure ${args.join(" ")} failed (${r.status ?? r.signal}): ${(r.stderr ?? "").split("\n").filter((l) => !/^\s+at /.test(l)).slice(-6).join(" | ")}`)
  }
  return JSON.parse(last)
}

const median = (xs: ReadonlyArray<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const range = (xs: ReadonlyArray<number>, digits = 1, scale = 1) => {
  if (xs.length === 0) return "-"
  const f = (x: number) => (x / scale).toFixed(digits)
  const lo = Math.min(...xs)
  const hi = Math.max(...xs)
  return xs.length === 1 || f(lo) === f(hi) ? f(median(xs)) : `${f(median(xs))} (${f(lo)}-${f(hi)})`
}

interface Row {
  variant: Variant
  file?: string
  failed?: string
  bytes?: number
  deflated?: number
  buildMs?: number
  modules?: Array<{ name: string; bytes: number; sha: string }>
  rssFirst: Array<number>
  rssPerInstance: Array<number>
  rssPerN: Array<number>
  /** The same under MALLOC_ARENA_MAX=1. */
  rssFirstArena1: Array<number>
  rssPerNArena1: Array<number>
  loadMs: Array<number>
  firstAnswer1: Array<number>
  firstAnswerWarm: Array<number>
  hostRate: Array<number>
  kernelRate: Array<number>
  errors: Array<string>
}

/** The core modules of a component as the real cache transpiled them. */
const coreModules = (file: string) => {
  const hash = createHash("sha256").update(fs.readFileSync(file)).digest("hex")
  const dir = path.join(here, ".cache", "wasm", `${hash}-${GLUE_VERSION}`)
  const meta = JSON.parse(fs.readFileSync(path.join(dir, "meta.json"), "utf8")) as { modules: Array<string> }
  return meta.modules.map((name) => {
    const b = fs.readFileSync(path.join(dir, name))
    return { name, bytes: b.length, sha: createHash("sha256").update(b).digest("hex").slice(0, 12) }
  })
}

const variants = VARIANTS.filter((v) => ONLY === undefined || ONLY.includes(v.id))
const rows: Array<Row> = []
for (const v of variants) {
  const row: Row = {
    variant: v, rssFirst: [], rssPerInstance: [], rssPerN: [], rssFirstArena1: [], rssPerNArena1: [], loadMs: [], firstAnswer1: [], firstAnswerWarm: [],
    hostRate: [], kernelRate: [], errors: []
  }
  rows.push(row)
  log(`build ${v.id}`)
  try {
    const b = await build(v, v.app ?? ECHO)
    const bytes = fs.readFileSync(b.file)
    row.file = b.file
    row.bytes = bytes.length
    row.deflated = deflateSync(bytes, { level: 6 }).length
    if (b.buildMs !== undefined) row.buildMs = b.buildMs
    measure("prepare", "real", b.file)
    row.modules = coreModules(b.file)
  } catch (e) {
    row.failed = (e instanceof Error ? e.message : String(e)).split("\n").filter((l) => l.trim() !== "").slice(0, 3).join(" ")
    log(`  ${v.id}: ${row.failed}`)
  }
}

for (let rep = 0; rep < REPS; rep++) {
  for (const row of rows) {
    if (row.file === undefined) continue
    log(`rep ${rep + 1}/${REPS} ${row.variant.id}`)
    try {
      const idle = measure("idle", "real", String(N), row.file)
      const app = idle.apps[0]
      row.rssFirst.push(app.rssAfterFirst - idle.rss0)
      row.rssPerInstance.push((app.rssAfterAll - app.rssAfterFirst) / (N - 1))
      row.rssPerN.push((app.rssAfterAll - idle.rss0) / N)
      row.loadMs.push(app.loadMs)
      row.firstAnswer1.push(app.firstAnswerMs[0])
      row.firstAnswerWarm.push(median(app.firstAnswerMs.slice(1)))
      const one = measureIn({ MALLOC_ARENA_MAX: "1" }, "idle", "real", String(N), row.file)
      row.rssFirstArena1.push(one.apps[0].rssAfterFirst - one.rss0)
      row.rssPerNArena1.push((one.apps[0].rssAfterAll - one.rss0) / N)
      const rate = measure("rate", row.file)
      row.hostRate.push(median(rate.hostEcho))
      row.kernelRate.push(median(rate.kernel))
    } catch (e) {
      row.errors.push(e instanceof Error ? e.message : String(e))
      log(`  ${row.variant.id}: ${row.errors.at(-1)}`)
    }
  }
}

// ---- linear memory after many messages ---------------------------------------------------

const GROWTH_N = 300_000
const growthRows: Array<{ id: string; mib: Record<string, number> }> = []
if (!argv.includes("--no-growth")) {
  for (const row of rows.filter((r) => ["cjs", "qjs", "qjs-async"].includes(r.variant.id) && r.file !== undefined)) {
    log(`growth ${row.variant.id}`)
    growthRows.push({ id: row.variant.id, mib: measure("growth", row.file!, String(GROWTH_N)) })
  }
}

// ---- engine sharing -----------------------------------------------------------------

interface ShareRow {
  toolchain: string
  cache: string
  total: Array<number>
  totalArena1: Array<number>
  first: Array<number>
  further: Array<number>
  warmAnswer: Array<number>
  hostRate: Array<number>
}
const shareRows: Array<ShareRow> = []
if (SHARE) {
  for (const id of ["cjs", "qjs"]) {
    const v = VARIANTS.find((x) => x.id === id)!
    log(`share: build ${id} apps`)
    const files = [(await build(v, ECHO)).file]
    for (const k of [1, 2, 3]) files.push((await build(v, syntheticApp(k))).file)
    for (const cache of ["real", "shared"]) {
      measure("prepare", cache, ...files)
      const sr: ShareRow = { toolchain: id, cache, total: [], totalArena1: [], first: [], further: [], warmAnswer: [], hostRate: [] }
      shareRows.push(sr)
      for (let rep = 0; rep < REPS; rep++) {
        log(`share rep ${rep + 1}/${REPS} ${id} ${cache}`)
        const r = measure("idle", cache, "1", ...files)
        sr.total.push(r.rssEnd - r.rss0)
        sr.first.push(r.apps[0].rssAfterAll - r.rss0)
        sr.further.push((r.rssEnd - r.apps[0].rssAfterAll) / (files.length - 1))
        sr.totalArena1.push((({ rssEnd, rss0 }) => rssEnd - rss0)(measureIn({ MALLOC_ARENA_MAX: "1" }, "idle", cache, "1", ...files)))
        sr.warmAnswer.push(median(r.apps.slice(1).map((a: { firstAnswerMs: Array<number> }) => a.firstAnswerMs[0]!)))
        if (cache === "shared") sr.hostRate.push(median(measure("rate-shared", files[0]!).hostEcho))
      }
    }
  }
}

// ---- report ---------------------------------------------------------------------------

const mb = (b: number | undefined) => (b === undefined ? "-" : (b / 1e6).toFixed(2))
const lines: Array<string> = []
lines.push(`Toolchains: the echo app, ${REPS} runs each (median (min-max)); RSS in MiB, N=${N} idle instances; preemption on.`)
lines.push("")
lines.push("| variant | component MB | deflated MB | core modules (largest MB) | RSS first instance | RSS per further instance | RSS delta / N | same, 1 arena: first / delta/N | first answer, 1st ms | first answer, warm ms | host rt/s (k) | kernel rt/s (k) |")
lines.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for (const r of rows) {
  if (r.failed === undefined && r.hostRate.length === 0 && r.errors.length > 0) {
    const m = /failed to start: ([^)]*)\)/.exec(r.errors[0]!)
    r.failed = `does not run in our host: ${m?.[1] ?? r.errors[0]!.slice(0, 120)}`
  }
  if (r.failed !== undefined) {
    lines.push(`| ${r.variant.id} | fails: ${r.failed.replace(/\|/g, "/").slice(0, 160)} | | | | | | | | | | |`)
    continue
  }
  const largest = Math.max(...(r.modules ?? []).map((m) => m.bytes))
  lines.push(`| ${r.variant.id} | ${mb(r.bytes)} | ${mb(r.deflated)} | ${r.modules?.length} (${mb(largest)}) | ${range(r.rssFirst)} | ${range(r.rssPerInstance, 2)} | ${range(r.rssPerN)} | ${range(r.rssFirstArena1)} / ${range(r.rssPerNArena1)} | ${range(r.firstAnswer1, 0)} | ${range(r.firstAnswerWarm, 1)} | ${range(r.hostRate, 1, 1000)} | ${range(r.kernelRate, 1, 1000)} |`)
}
lines.push("")
for (const v of variants) lines.push(`- ${v.id}: ${v.label}`)
if (growthRows.length > 0) {
  lines.push("", `Linear memory (MiB) of one echo instance after k round trips (it never shrinks):`, "")
  const ks = Object.keys(growthRows[0]!.mib)
  lines.push(`| variant | ${ks.map((k) => `${Number(k) / 1000}k`).join(" | ")} |`, `| --- | ${ks.map(() => "---").join(" | ")} |`)
  for (const g of growthRows) lines.push(`| ${g.id} | ${ks.map((k) => g.mib[k]?.toFixed(1) ?? "-").join(" | ")} |`)
}
if (shareRows.length > 0) {
  lines.push("")
  lines.push("Engine sharing: 4 distinct apps (echo + 3 generated), one idle instance each; RSS in MiB.")
  lines.push("")
  lines.push("| toolchain | cache | RSS total | RSS total, 1 arena | first app | each further app | first answer of apps 2-4, ms | host rt/s (k) |")
  lines.push("| --- | --- | --- | --- | --- | --- | --- | --- |")
  for (const s of shareRows) {
    lines.push(`| ${s.toolchain} | ${s.cache === "real" ? "ComponentCache (per component)" : "shared engine (prototype)"} | ${range(s.total)} | ${range(s.totalArena1)} | ${range(s.first)} | ${range(s.further)} | ${range(s.warmAnswer, 1)} | ${s.hostRate.length === 0 ? "-" : range(s.hostRate, 1, 1000)} |`)
  }
}
const errors = rows.filter((r) => r.hostRate.length > 0).flatMap((r) => [...new Set(r.errors)].map((e) => `${r.variant.id}: ${e}`))
if (errors.length > 0) lines.push("", "Errors:", ...errors.map((e) => `- ${e}`))
process.stdout.write(`${lines.join("\n")}\n`)
fs.writeFileSync(path.join(here, "results.json"), `${JSON.stringify({
  date: new Date().toISOString(),
  node: process.version,
  reps: REPS,
  n: N,
  rows: rows.map(({ variant, file: _file, ...r }) => ({ id: variant.id, label: variant.label, ...r })),
  share: shareRows,
  growth: growthRows
}, null, 1)}\n`)
