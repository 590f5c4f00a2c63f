/**
 * Issue 14's footprint rows (lean TypeScript apps; goals: a node with the bundled apps
 * <= 200 MB RSS, <= 20 MB RSS per idle TS app), run by the wasm suite, each beside a bare
 * baseline measured in the same run:
 *
 * - `componentSizes`: the TS echo app's component (`apps/echo/pkg/echo.wasm`) and its
 *   deflated size in `apps/dist/echo.zip`, beside the WAT echo fixture
 *   (test/fixtures/wasm/echo.wat) as a component, deflated alike;
 * - `idleAppFigures`: in a fresh Node process (`--expose-gc`, so nothing else this run
 *   did sits in its heap), a real kernel (`testKernel`: router, caps, LMDB, our Wasm
 *   host with preemption on, as a node runs it) starts N instances of the TS echo, each
 *   answers one request from a driver session and then idles in `receive`; RSS after a
 *   GC before the first, after the first and after the last: the first instance's cost
 *   (its compiled code included: what each distinct app costs), each further one's, and
 *   (after - before) / N. The same for the WAT echo in another fresh process. As a
 *   node runs an installed app: the component's transpiled glue and instrumented
 *   modules are on disk already (a first process filled the cache); each process
 *   starts one WAT echo first (what any first Wasm process loads: its own row); one
 *   malloc arena (`IDLE_ENV`), for figures that hold from run to run;
 * - `nodeFigures`: a real node (`node dist/main.js` on a pipe, as the CLI tests boot one:
 *   a password file, `--name` and `--tcp-port` at the first boot, the caller's test
 *   chain): its RSS (`/proc/<pid>/status` VmRSS) a settle period after its bundled apps
 *   answered (the counter over the RPC path; at the prompt, the terminal app running `m`
 *   to echo, counter and spawner), at the first boot (peak VmHWM too) and at a later
 *   boot of the same home; beside the same home booted `--safe-mode` (no process
 *   started). On the later boot, `kit-ts start-package` (the real CLI, as a user runs
 *   it) of a package `kit-ts new` made and `kit-ts build` built beforehand (while the
 *   node boots), until the new process answers over the RPC path (as
 *   test/kit/kit.test.ts does); the TS template beside the WAT one.
 *
 * Nothing here builds apps/ or cares which toolchain did: it reads apps/echo/pkg,
 * apps/dist and dist/main.js as they are (`npm run build:apps`, `npm run build`).
 *
 *   node bench/AppFootprint.ts                                   these rows alone
 *   node --expose-gc bench/AppFootprint.ts idle <home> <file.wasm|wat> <n>   one idle measurement (JSON line)
 */
import { spawn } from "node:child_process"
import { Effect } from "effect"
import { deflateSync } from "fflate"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { rpc } from "../kit/Rpc.ts"
import { testKernel } from "../layers/TestLive.ts"
import { freePort as chainFreePort } from "../services/chain/index.ts"
import { address, pid, type ProcessId } from "../src/Ids.ts"
import { Kernel, messagingCap } from "../src/Kernel.ts"
import { request, text } from "../src/Message.ts"
import type { NativeApi } from "../src/ProcessApi.ts"
import { buildEcho } from "../test/fixtures/wasm/build.ts"
import { mainJs, type Running, runNode } from "../test/support/NodeProcess.ts"
import type { Row } from "./Row.ts"

const SUITE = "wasm"
const repo = path.resolve(import.meta.dirname, "..")
const echoWasm = path.join(repo, "apps", "echo", "pkg", "echo.wasm")
const echoZip = path.join(repo, "apps", "dist", "echo.zip")
const MiB = 2 ** 20
const IDLE_N = 10
/**
 * One glibc malloc arena in the idle processes: with one per thread (V8 compiles on
 * background threads) RSS moves by up to ~20 MB at random and the first instance's cost
 * read 6-24 MiB from run to run; with one, within ~2 MiB (as in bench/toolchains).
 */
const IDLE_ENV = { MALLOC_ARENA_MAX: "1" }
/** The longest a booted node is left alone before its RSS is read (`rssAfterSettle`). */
const SETTLE_MS = 25_000

const warn = (line: string) => void process.stderr.write(`wasm bench: ${line}\n`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

// ---- component size ----------------------------------------------------------------

/** Compressed size of the entry named `name` (any folder) in a zip, from its central directory. */
export const deflatedInZip = (zip: Uint8Array, name: string): number | undefined => {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength)
  let eocd = -1
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i
      break
    }
  }
  if (eocd < 0) return undefined
  const entries = view.getUint16(eocd + 10, true)
  let at = view.getUint32(eocd + 16, true)
  for (let e = 0; e < entries && view.getUint32(at, true) === 0x02014b50; e++) {
    const compressed = view.getUint32(at + 20, true)
    const nameLength = view.getUint16(at + 28, true)
    const entry = new TextDecoder().decode(zip.subarray(at + 46, at + 46 + nameLength))
    if (path.posix.basename(entry) === name) return compressed
    at += 46 + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true)
  }
  return undefined
}

export const componentSizes = async (): Promise<Array<Row>> => {
  if (!fs.existsSync(echoWasm) || !fs.existsSync(echoZip)) {
    warn(`no ${path.relative(repo, echoWasm)} or ${path.relative(repo, echoZip)} (npm run build:apps): no component size rows`)
    return []
  }
  const ts = fs.statSync(echoWasm).size
  const deflated = deflatedInZip(new Uint8Array(fs.readFileSync(echoZip)), "echo.wasm")
  const wat = await buildEcho()
  const rows: Array<Row> = [
    { suite: SUITE, metric: "TS echo app component", value: ts / 1e6, unit: "MB" },
    { suite: SUITE, metric: "WAT echo component (baseline)", value: wat.length, unit: "bytes" }
  ]
  if (deflated === undefined) warn(`${path.relative(repo, echoZip)} holds no echo.wasm`)
  else rows.push({ suite: SUITE, metric: "TS echo app component, deflated in echo.zip", value: deflated / 1e6, unit: "MB" })
  rows.push({ suite: SUITE, metric: "WAT echo component, deflated (baseline)", value: deflateSync(wat).length, unit: "bytes" })
  return rows
}

// ---- RSS per idle app (child process) ------------------------------------------------

interface IdleResult {
  readonly n: number
  /**
   * RSS in bytes after a GC: with the kernel up (`loaded`), then after one WAT echo warmed
   * the host (`before`), after the first instance answered, after all answered.
   */
  readonly loaded: number
  readonly before: number
  readonly first: number
  readonly after: number
  /** From InitializeProcess to the answer, per instance (ms). */
  readonly firstAnswerMs: ReadonlyArray<number>
}

/** RSS after three full GCs a little apart (the collector frees in the background too). */
const settledRss = Effect.gen(function*() {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.()
    yield* Effect.sleep("100 millis")
  }
  return process.memoryUsage.rss()
})

/** `n` processes from `bytes` on a real kernel, each answering one request, then idle. */
const idleInstances = (bytes: Uint8Array, n: number) =>
  Effect.gen(function*() {
    const kernel = yield* Kernel
    const ids = Array.from({ length: n }, (_, i) => pid(`idle${i}:footprint:bench`))
    const driver = yield* kernel.session("driver:footprint:bench", {
      capabilities: [...ids, pid("warm:footprint:bench")].map((id) => messagingCap(kernel.node, id.toString())),
      public: true
    })
    // What the first Wasm process of any kind loads (the host's modules, its glue) is
    // loaded by one WAT echo first, so the rows are per app.
    const loaded = yield* settledRss
    yield* startAndAsk(driver, pid("warm:footprint:bench"), yield* Effect.promise(buildEcho))
    const before = yield* settledRss
    let first = before
    const firstAnswerMs: Array<number> = []
    for (const [i, id] of ids.entries()) {
      firstAnswerMs.push(yield* startAndAsk(driver, id, bytes))
      if (i === 0) first = yield* settledRss
    }
    const after = yield* settledRss
    return { n, loaded, before, first, after, firstAnswerMs } satisfies IdleResult
  })

/** Initializes and runs `id` from `bytes`, and asks it once: ms to its answer. */
const startAndAsk = (driver: NativeApi, id: ProcessId, bytes: Uint8Array) =>
  Effect.gen(function*() {
    const kernel = yield* Kernel
    const t = performance.now()
    yield* kernel.initialize({
      id,
      handle: `/footprint:bench/pkg/${id.toString().split(":")[0]}.wasm`,
      witVersion: 1,
      onExit: { _tag: "None" },
      public: true,
      capabilities: [],
      bytes
    })
    yield* kernel.run(id.toString())
    const r = yield* driver.sendAndAwaitEffect(address(`${kernel.node}@${id}`), request({ body: text("x"), expectsResponse: 60n }))
    if (!("message" in r)) return yield* Effect.die(new Error(`${id} did not answer: ${JSON.stringify(r, (_k, v) => typeof v === "bigint" ? String(v) : v)}`))
    return performance.now() - t
  })

/** `idle` in a fresh `node --expose-gc` over `home`; `app` is a component file or `wat` (the WAT echo fixture). */
const idleChild = (home: string, app: string, n: number): Promise<IdleResult> =>
  new Promise((resolve, reject) => {
    const args = ["--expose-gc", "--disable-warning=ExperimentalWarning", import.meta.filename, "idle", home, app, String(n)]
    const child = spawn(process.execPath, args, { cwd: repo, env: { ...process.env, ...IDLE_ENV }, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    let err = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr.on("data", (d: Buffer) => (err += d.toString()))
    child.on("error", reject)
    child.on("exit", (code) => {
      const line = out.trim().split("\n").at(-1) ?? ""
      if (code !== 0 || !line.startsWith("{")) return reject(new Error(`idle ${app} exited ${code}: ${(err || out).slice(-1500)}`))
      resolve(JSON.parse(line) as IdleResult)
    })
  })

/**
 * `n` idle instances of `app` as a node runs them once installed: the component was
 * transpiled at install (a first process fills `<home>/.cache`), so the measured
 * process starts from a fresh home holding only that cache. (Transpiling in-process
 * leaves jco's grown linear memory behind: a first boot's cost, seen in its row.)
 */
const idleInChild = async (app: string, n: number): Promise<IdleResult> => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "bench-idle-"))
  try {
    const installed = path.join(work, "installed")
    const measured = path.join(work, "measured")
    fs.mkdirSync(installed)
    await idleChild(installed, app, 1)
    fs.cpSync(path.join(installed, ".cache"), path.join(measured, ".cache"), { recursive: true })
    return await idleChild(measured, app, n)
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }
}

export const idleAppFigures = async (n = IDLE_N): Promise<Array<Row>> => {
  const rows: Array<Row> = []
  const wat = await idleInChild("wat", n).catch((e: unknown) => {
    warn(`idle WAT echo: ${e instanceof Error ? e.message : String(e)}`)
    return undefined
  })
  const ts = fs.existsSync(echoWasm)
    ? await idleInChild(echoWasm, n).catch((e: unknown) => {
      warn(`idle TS echo: ${e instanceof Error ? e.message : String(e)}`)
      return undefined
    })
    : undefined
  const perInstance = (r: IdleResult) => (r.after - r.before) / r.n / MiB
  const firstCost = (r: IdleResult) => (r.first - r.before) / MiB
  // TS beside WAT, row by row (a WAT echo's share is within the noise: no ratio).
  const pair = (ts: Row | undefined, wat: Row | undefined) => rows.push(...[ts, wat].filter((r) => r !== undefined))
  const row = (r: IdleResult | undefined, metric: string, value: (r: IdleResult) => number, unit = "MiB") =>
    r === undefined ? undefined : { suite: SUITE, metric, value: value(r), unit }
  pair(row(ts, `RSS per idle TS echo app, N=${n} (goal <= 20 MB)`, perInstance), row(wat, `RSS per idle WAT echo, N=${n} (baseline)`, perInstance))
  pair(row(ts, "RSS of the first TS echo instance (its code incl.)", firstCost), row(wat, "RSS of the first WAT echo instance (baseline)", firstCost))
  pair(row(ts, "RSS per further TS echo instance", (r) => (r.after - r.first) / (r.n - 1) / MiB), undefined)
  pair(
    row(ts, "first TS echo instance: start to first answer", (r) => r.firstAnswerMs[0]!, "ms"),
    row(wat, "first WAT echo instance: start to first answer", (r) => r.firstAnswerMs[0]!, "ms")
  )
  pair(row(wat, "RSS of a kernel process before any Wasm", (r) => r.loaded / MiB), undefined)
  pair(row(wat, "RSS of the first Wasm process there (a WAT echo)", (r) => (r.before - r.loaded) / MiB), undefined)
  return rows
}

// ---- a real node: RSS with the bundled apps, start-package to first answer ------------------

const freePort = () => Effect.runPromise(chainFreePort)

/** VmRSS and VmHWM (peak) of a process, in bytes; undefined off Linux. */
export const procRss = (processId: number): { readonly rss: number; readonly peak: number } | undefined => {
  const status = (() => {
    try {
      return fs.readFileSync(`/proc/${processId}/status`, "utf8")
    } catch {
      return undefined
    }
  })()
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status ?? "")?.[1] ?? NaN) * 1024
  return status === undefined ? undefined : { rss: kb("VmRSS"), peak: kb("VmHWM") }
}

const answerText = async (url: string, process: string, body: string, timeout = 30) =>
  new TextDecoder().decode((await rpc(url, { process, body, timeout })).body)

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** What the terminal prints when it could not run a line. */
const TERMINAL_FAILED = /^terminal:sys: (error|refused|.*timed out)/m

/** Types `line` at the node's prompt and waits for `pattern` in what it prints after it. */
const type = async (node: Running, line: string, pattern: RegExp, ms = 30_000) => {
  const from = node.output().length
  const t0 = performance.now()
  node.child.stdin.write(`${line}\n`)
  for (;;) {
    const printed = node.output().slice(from)
    if (pattern.test(printed)) return
    const failed = TERMINAL_FAILED.exec(printed)
    if (failed !== null) throw new Error(`typed ${JSON.stringify(line)}: ${printed.slice(failed.index).split("\n")[0]}`)
    if (performance.now() - t0 > ms) throw new Error(`typed ${JSON.stringify(line)}: no ${pattern} in ${ms} ms`)
    await sleep(20)
  }
}

interface Booted {
  readonly node: Running
  readonly url: string
}

/** `node dist/main.js --home <home> ...` on a pipe, until its prompt. */
const boot = async (home: string, name: string, flags: ReadonlyArray<string>): Promise<Booted> => {
  const node = runNode(["--home", home, "--port", String(await freePort()), ...flags], { node: process.execPath, env: { KINODE_PASSWORD: "" } })
  try {
    await node.waitFor(new RegExp(`${esc(name)} > `), 120_000)
    const url = /open (http:\/\/\S+) in a browser/.exec(node.output())?.[1]
    if (url === undefined) throw new Error("no URL printed")
    return { node, url }
  } catch (e) {
    await stop(node)
    throw e
  }
}

/** Ctrl-D, as a user stops it; killed if it has not exited in 10 s. */
const stop = async (node: Running) => {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return
  node.child.stdin.end()
  const timer = setTimeout(() => node.child.kill("SIGKILL"), 10_000)
  await node.exited
  clearTimeout(timer)
}

/**
 * Waits until the bundled apps answer: the counter over the RPC path, then, at the
 * prompt, the terminal app running `m` to echo, counter and spawner. The node's own
 * apps are what is measured, whatever they print: a terminal that cannot run `m` is
 * said (the rows are still read, the counter having answered).
 */
const bundledUp = async (b: Booted) => {
  await answerText(b.url, "counter:counter:sys", JSON.stringify("Get"))
  await (async () => {
    await type(b.node, "m our@echo:echo:sys footprint -a 10", /^terminal:sys: footprint$/m)
    await type(b.node, `m our@counter:counter:sys '"Get"' -a 10`, /"count"/)
    await type(b.node, `m our@spawner:spawner:sys '"Ping"' -a 10`, /BadBody/)
  })().catch((e: unknown) => {
    warn(`the bundled apps did not all answer at the prompt (${e instanceof Error ? e.message : String(e)}); node RSS read anyway`)
  })
}

/**
 * The node's RSS once it has settled after its bundled apps answered (or after the
 * prompt in safe mode: nothing started). V8's memory reducer shrinks the heap some
 * 7-12 s after the last busy spell, by 50-70 MB here, so RSS is read each second
 * until it has dropped 5% below its highest and held for two more seconds (or
 * `SETTLE_MS` passed): the idle node a user leaves running.
 */
const rssAfterSettle = async (b: Booted, apps: boolean) => {
  if (apps) await bundledUp(b)
  const samples: Array<number> = []
  let dropped = -1
  for (let t = 0; t < SETTLE_MS && (dropped < 0 || samples.length - dropped < 3); t += 1000) {
    await sleep(1000)
    const now = procRss(b.node.child.pid!)
    if (now === undefined) return undefined
    samples.push(now.rss)
    if (dropped < 0 && now.rss < 0.95 * Math.max(...samples)) dropped = samples.length - 1
  }
  if (process.env["DEBUG_RSS"] !== undefined) warn(`RSS each second (MiB): ${samples.map((x) => Math.round(x / MiB)).join(" ")}`)
  return procRss(b.node.child.pid!)
}

/** `kit-ts <args>` (kit/bin.js on this Node) in `cwd` to its end; throws with its output unless it exits 0. */
const kitTs = (args: ReadonlyArray<string>, cwd: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const env = { ...process.env }
    delete env["KINODE_PASSWORD"]
    const child = spawn(process.execPath, [path.join(repo, "kit", "bin.js"), ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr.on("data", (d: Buffer) => (out += d.toString()))
    child.on("error", reject)
    child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`kit-ts ${args.join(" ")} exited ${code}:\n${out.slice(-1500)}`))))
  })

interface Template {
  readonly dir: string
  /** Its one process, the body sent and the answer expected. */
  readonly process: string
  readonly body: string
  readonly answer: string
}

/** `kit-ts new <name> [--template wat]`, then `kit-ts build`, in `work`. */
const newAndBuild = async (work: string, name: string, template: "ts" | "wat"): Promise<Template> => {
  await kitTs(["new", name, "--template", template], work)
  const dir = path.join(work, name)
  await kitTs(["build"], dir)
  return {
    dir,
    process: `${name}:${name}:template.os`,
    body: "kinode",
    answer: template === "ts" ? "hello, kinode" : "kinode"
  }
}

/** ms from `kit-ts start-package` until the package's process answers over the RPC path. */
const startToAnswer = async (url: string, t: Template): Promise<number> => {
  const t0 = performance.now()
  await kitTs(["start-package", "--url", url], t.dir)
  const got = await answerText(url, t.process, t.body)
  if (got !== t.answer) throw new Error(`${t.process} answered ${JSON.stringify(got)}, not ${JSON.stringify(t.answer)}`)
  return performance.now() - t0
}

/**
 * Boots a node three times in one home on the chain at `chainPort` (first boot, a later
 * boot with start-package, safe mode); the packages for start-package build meanwhile.
 */
export const nodeFigures = async (chainPort: number): Promise<Array<Row>> => {
  if (!fs.existsSync(mainJs)) {
    warn(`no ${path.relative(repo, mainJs)} (npm run build): no node RSS or start-package rows`)
    return []
  }
  const rows: Array<Row> = []
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "bench-footprint-"))
  const home = path.join(work, "home")
  const pw = path.join(work, "pw")
  fs.writeFileSync(pw, "bench password\n")
  const name = `footprint-${process.pid}.dev`
  const flags = ["--chain-port", String(chainPort), "--password-file", pw]
  const templates = Promise.all([newAndBuild(work, "hello", "ts"), newAndBuild(work, "watecho", "wat")])
  templates.catch(() => undefined)
  const stopAfter = async <A>(b: Booted, f: (b: Booted) => Promise<A>): Promise<A> => {
    try {
      return await f(b)
    } finally {
      await stop(b.node)
    }
  }
  try {
    const first = await stopAfter(await boot(home, name, [...flags, "--name", name, "--tcp-port", String(await freePort())]), (b) => rssAfterSettle(b, true))
    if (first === undefined) {
      warn("no /proc/<pid>/status here: no node RSS rows")
      return rows
    }
    rows.push({ suite: SUITE, metric: "node RSS, bundled apps up, first boot (goal <= 200 MB)", value: first.rss / MiB, unit: "MiB" })
    rows.push({ suite: SUITE, metric: "node peak RSS (VmHWM), first boot", value: first.peak / MiB, unit: "MiB" })
    const started: Array<Row> = []
    const later = await stopAfter(await boot(home, name, flags), async (b) => {
      const rss = await rssAfterSettle(b, true)
      const built = await templates.catch((e: unknown) => {
        warn(`kit-ts new/build: ${e instanceof Error ? e.message : String(e)}`)
        return undefined
      })
      if (built !== undefined) {
        const [ts, wat] = built
        // WAT first: the node's first install over the app store warms its path for both.
        const watMs = await startToAnswer(b.url, wat)
        const tsMs = await startToAnswer(b.url, ts)
        started.push({ suite: SUITE, metric: "kit-ts start-package -> first answer, TS template", value: tsMs, unit: "ms" })
        started.push({ suite: SUITE, metric: "kit-ts start-package -> first answer, WAT template (baseline)", value: watMs, unit: "ms" })
        started.push({ suite: SUITE, metric: "start-package -> first answer, TS / WAT", value: tsMs / watMs, unit: "ratio" })
      }
      return rss!
    })
    const safe = await stopAfter(await boot(home, name, [...flags, "--safe-mode"]), (b) => rssAfterSettle(b, false))
    rows.push({ suite: SUITE, metric: "node RSS, bundled apps up, later boot (goal <= 200 MB)", value: later.rss / MiB, unit: "MiB" })
    rows.push({ suite: SUITE, metric: "node RSS, --safe-mode: no app started (baseline)", value: safe!.rss / MiB, unit: "MiB" })
    rows.push({ suite: SUITE, metric: "node RSS, later boot / safe mode", value: later.rss / safe!.rss, unit: "ratio" })
    rows.push(...started)
    return rows
  } catch (e) {
    warn(`node figures: ${e instanceof Error ? e.message : String(e)}`)
    return rows
  } finally {
    await templates.catch(() => undefined)
    fs.rmSync(work, { recursive: true, force: true })
  }
}

// ---- entry points ----------------------------------------------------------------------

if (import.meta.main) {
  const [mode, home, app, n] = process.argv.slice(2)
  if (mode === "idle") {
    const bytes = app === "wat" ? await buildEcho() : new Uint8Array(fs.readFileSync(app!))
    const k = testKernel({ home: home! })
    const result = await Effect.runPromise(idleInstances(bytes, Number(n ?? IDLE_N)).pipe(Effect.provide(k.layer), Effect.scoped, Effect.orDie))
    process.stdout.write(`${JSON.stringify(result)}\n`)
    process.exit(0)
  }
  const { startTestChain } = await import("../test/support/TestChain.ts")
  const chain = await startTestChain()
  const t0 = performance.now()
  try {
    const rows = [...await componentSizes(), ...await idleAppFigures(), ...await nodeFigures(chain.port)]
    for (const r of rows) process.stdout.write(`${r.metric.padEnd(64)} ${r.value.toFixed(2).padStart(10)} ${r.unit}\n`)
    process.stdout.write(`(${((performance.now() - t0) / 1000).toFixed(0)} s)\n`)
  } finally {
    await chain.stop()
  }
  process.exit(0)
}
