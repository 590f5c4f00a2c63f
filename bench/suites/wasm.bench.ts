/**
 * Wasm processes through the real kernel (testKernel: router, caps, LMDB, vfs):
 *   - WAT echo component: sequential request/response round trips from a driver
 *     session (p50/p99 per round trip), spawn latency (initialize+run from the
 *     component cache), instantiate time, memory per idle process;
 *   - Wasm<->Wasm: the WAT pinger (test/fixtures/wasm/pinger.wat) does n round
 *     trips with the WAT echo through the router, timing each with the guest's
 *     monotonic clock (p50/p99) in a second run;
 *   - the TypeScript echo app (componentize-js): round trips, instantiate time;
 *   - the same WAT echo without the kernel (bench/WasmGlue.ts): bare jco glue
 *     and our host alone, so the kernel's cost reads as a ratio;
 *   - cold boot of `node dist/main.js --home <tmp>` until its prompt;
 *   - timer and eth (issue #13, bench/TimerEth.ts): 5 ms timer set-to-fire jitter,
 *     eth_blockNumber through the kernel beside bare viem to the same anvil;
 *   - the terminal (issue #13, bench/TerminalLine.ts): a line typed at the prompt to
 *     its script's printed answer (echo; m -a 5 to the TS echo app), p50/p99;
 *   - lean TS apps (issue #14, bench/AppFootprint.ts; goals: a node with the bundled
 *     apps <= 200 MB RSS, <= 20 MB per idle TS app): the TS echo's component size
 *     (and deflated in its zip) beside the WAT echo's; RSS per idle TS echo app (N=10
 *     on a real kernel in a fresh process) beside the WAT echo's; node RSS with the
 *     bundled apps up (first and later boot of a real node) beside the same home in
 *     safe mode; `kit-ts start-package` of a freshly built TS package to its first
 *     answer, beside a WAT package;
 *   - containment (issue #11): Wasm<->Wasm rt/s with preemption instrumentation
 *     on beside off (fresh kernels alternated in the same run, medians of 5
 *     each), and the same for the WAT echo under our host alone, driver->WAT echo latency while one process spins in `loop br 0`,
 *     and `KillProcess` of a spinning process until it is gone.
 */
import { NodeServices } from "@effect/platform-node"
import { spawn as spawnChild } from "node:child_process"
import { Cause, Effect, Fiber, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { buildApp } from "../../apps/build.ts"
import { StorageLive } from "../../layers/Storage.ts"
import { testKernel } from "../../layers/TestLive.ts"
import { address, pid } from "../../src/Ids.ts"
import { Kernel, messagingCap } from "../../src/Kernel.ts"
import { request, text } from "../../src/Message.ts"
import type { NativeApi } from "../../src/ProcessApi.ts"
import { Lmdb } from "../../services/lmdb/Lmdb.ts"
import { Packages } from "../../services/packages/index.ts"
import { WasmHostOptions } from "../../services/program-loader/index.ts"
import { buildEcho, buildSpinner } from "../../test/fixtures/wasm/build.ts"
import { startTestChain } from "../../test/support/TestChain.ts"
import { buildPinger, pingerStart } from "../../test/fixtures/wasm/pinger.ts"
import { ComponentCache } from "../../src/wasm-host/ComponentCache.ts"
import { componentSizes, idleAppFigures, nodeFigures } from "../AppFootprint.ts"
import { terminalFigures } from "../TerminalLine.ts"
import { timerEthFigures } from "../TimerEth.ts"
import { bareJcoGlue, hostEcho } from "../WasmGlue.ts"
import { percentile, type Row } from "../Row.ts"
import { zipSync } from "fflate"

const repo = path.resolve(import.meta.dirname, "..", "..")
const SUITE = "wasm"

const roundTrips = (api: NativeApi, target: string, n: number) =>
  Effect.gen(function*() {
    const to = address(`${api.our.node}@${target}`)
    const samples: Array<number> = []
    const body = text("x")
    const t0 = performance.now()
    for (let i = 0; i < n; i++) {
      const t = performance.now()
      const r = yield* api.sendAndAwaitEffect(to, request({ body, expectsResponse: 5n }))
      if (!("message" in r && "source" in r)) return yield* Effect.die(new Error(`no answer from ${target}`))
      samples.push(performance.now() - t)
    }
    const total = performance.now() - t0
    samples.sort((a, b) => a - b)
    return { rate: n / (total / 1000), p50: percentile(samples, 50) * 1000, p99: percentile(samples, 99) * 1000 }
  })

const kernelFigures = Effect.gen(function*() {
  const rows: Array<Row> = []
  const kernel = yield* Kernel
  const packages = yield* Packages
  const watBytes = yield* Effect.promise(buildEcho)
  const watZip = zipSync({
    "manifest.json": new TextEncoder().encode(JSON.stringify([{
      process_name: "echo", process_wasm_path: "/echo.wasm", on_exit: "None", request_networking: false,
      request_capabilities: [], grant_capabilities: [], public: true
    }])),
    "echo.wasm": watBytes
  })
  let t = performance.now()
  yield* packages.install({ package: "watecho", publisher: "bench" }, watZip)
  rows.push({ suite: SUITE, metric: "install+instantiate WAT echo (cold)", value: performance.now() - t, unit: "ms" })
  const api = yield* kernel.session("driver:bench:sys", {
    capabilities: [
      messagingCap(kernel.node, "echo:watecho:bench"),
      messagingCap(kernel.node, "echo:echo:sys"),
      messagingCap(kernel.node, "pinger:watecho:bench")
    ],
    public: true
  })
  yield* roundTrips(api, "echo:watecho:bench", 2000)
  const wat = yield* roundTrips(api, "echo:watecho:bench", 50_000)
  rows.push({ suite: SUITE, metric: "driver->WAT echo round trips", value: wat.rate, unit: "rt/s" })
  rows.push({ suite: SUITE, metric: "driver->WAT echo p50", value: wat.p50, unit: "us" })
  rows.push({ suite: SUITE, metric: "driver->WAT echo p99", value: wat.p99, unit: "us" })
  rows.push(...(yield* wasmToWasm(api, watBytes)))

  // Spawn latency: what the `spawn` import does (file check through vfs, register,
  // capabilities, one synced LMDB commit overlapped with loading the cached
  // component), then, separately, until the child answers its first message.
  const parent = yield* kernel.session("parent:watecho:bench", { capabilities: [], public: false })
  const spawnSamples: Array<number> = []
  const firstAnswer: Array<number> = []
  const N = 100 // under the default spawn limits (128 live children, a burst of 128)
  const rss0 = process.memoryUsage()
  for (let i = 0; i < N; i++) {
    const t1 = performance.now()
    const child = yield* kernel.spawn(parent.our, {
      name: `idle${i}`,
      wasmPath: "/watecho:bench/pkg/echo.wasm",
      onExit: { _tag: "None" },
      requestCapabilities: [],
      grantCapabilities: [],
      public: false
    }).pipe(Effect.orDie)
    const t2 = performance.now()
    const r = yield* parent.sendAndAwaitEffect(address(`${kernel.node}@${child.toString()}`), request({ body: text("x"), expectsResponse: 5n }))
    if (!("message" in r)) return yield* Effect.die(new Error("the spawned echo did not answer"))
    spawnSamples.push(t2 - t1)
    firstAnswer.push(performance.now() - t1)
  }
  yield* Effect.sleep("200 millis")
  globalThis.gc?.()
  const rss1 = process.memoryUsage()
  spawnSamples.sort((a, b) => a - b)
  firstAnswer.sort((a, b) => a - b)
  rows.push({ suite: SUITE, metric: "spawn WAT p50", value: percentile(spawnSamples, 50) * 1000, unit: "us" })
  rows.push({ suite: SUITE, metric: "spawn WAT p99", value: percentile(spawnSamples, 99) * 1000, unit: "us" })
  rows.push({ suite: SUITE, metric: "spawn WAT to first answer p50", value: percentile(firstAnswer, 50) * 1000, unit: "us" })
  rows.push({ suite: SUITE, metric: "RSS per idle WAT process", value: (rss1.rss - rss0.rss) / N / 1024, unit: "KiB" })
  rows.push({ suite: SUITE, metric: "heap per idle WAT process", value: (rss1.heapUsed - rss0.heapUsed) / N / 1024, unit: "KiB" })

  // The TypeScript echo app (apps/echo through the SDK; componentize-qjs). If it cannot
  // answer, its rows are left out with the reason, and the suite goes on.
  const tsRows = yield* Effect.exit(Effect.gen(function*() {
    const out: Array<Row> = []
    const echoZip = new Uint8Array(fs.readFileSync(path.join(repo, "apps", "dist", "echo.zip")))
    t = performance.now()
    yield* packages.install({ package: "echo", publisher: "sys" }, echoZip)
    yield* roundTrips(api, "echo:echo:sys", 1)
    out.push({ suite: SUITE, metric: "install+first answer TS echo (cold)", value: performance.now() - t, unit: "ms" })
    // Warm: V8 compiles QuickJS's hot functions with TurboFan in the background over the
    // first few thousand messages; then the median of three runs.
    yield* roundTrips(api, "echo:echo:sys", 5000)
    const runs = [yield* roundTrips(api, "echo:echo:sys", 5000), yield* roundTrips(api, "echo:echo:sys", 5000), yield* roundTrips(api, "echo:echo:sys", 5000)]
    const ts = runs.sort((x, y) => x.rate - y.rate)[1]!
    out.push({ suite: SUITE, metric: "driver->TS echo app round trips", value: ts.rate, unit: "rt/s" })
    out.push({ suite: SUITE, metric: "driver->TS echo app p50", value: ts.p50, unit: "us" })
    out.push({ suite: SUITE, metric: "driver->TS echo app p99", value: ts.p99, unit: "us" })
    return out
  }))
  if (tsRows._tag === "Success") rows.push(...tsRows.value)
  else process.stderr.write(`wasm bench: the TS echo app gave no answer, its rows are missing: ${Cause.pretty(tsRows.cause)}\n`)
  return rows
})

/** The WAT pinger drives the WAT echo through the router; the driver only starts it. */
const wasmToWasm = (driver: NativeApi, echoBytes: Uint8Array) =>
  Effect.gen(function*() {
    const kernel = yield* Kernel
    yield* kernel.initialize({
      id: pid("pinger:watecho:bench"),
      handle: "/watecho:bench/pkg/pinger.wasm",
      witVersion: 1,
      onExit: { _tag: "None" },
      public: false,
      capabilities: [messagingCap(kernel.node, "echo:watecho:bench")],
      bytes: yield* Effect.promise(buildPinger)
    })
    // Responses are capability-checked too: the echo may answer the pinger.
    yield* kernel.grant("echo:watecho:bench", [messagingCap(kernel.node, "pinger:watecho:bench")])
    yield* kernel.run("pinger:watecho:bench")
    const pinger = address(`${kernel.node}@pinger:watecho:bench`)
    const start = (n: number, timed: boolean) =>
      Effect.gen(function*() {
        const r = yield* driver.sendAndAwaitEffect(pinger, request({ body: pingerStart(n, timed), expectsResponse: 120n }))
        if (!("message" in r && "source" in r)) return yield* Effect.die(new Error(`the pinger did not answer: ${JSON.stringify(r, (_k, v) => typeof v === "bigint" ? String(v) : v)}`))
        return r.message.body
      })
    yield* start(5_000, false) // warm the JIT on both sides
    const n = 100_000
    const t = performance.now()
    const answered = new DataView((yield* start(n, false)).buffer).getUint32(0, true)
    const seconds = (performance.now() - t) / 1000
    if (answered !== n) return yield* Effect.die(new Error(`the echo answered ${answered} of ${n} pings`))
    const timedBody = yield* start(50_000, true)
    const durations = new BigUint64Array(timedBody.buffer.slice(timedBody.byteOffset, timedBody.byteOffset + timedBody.length))
    const us = Array.from(durations, (ns) => Number(ns) / 1000).sort((a, b) => a - b)
    const glue = yield* Effect.promise(() => bareJcoGlue(echoBytes, 200_000))
    yield* hostEcho(echoBytes, 50_000, true) // warm
    const host = yield* hostEcho(echoBytes, 200_000, true)
    const rate = n / seconds
    return [
      { suite: SUITE, metric: "Wasm<->Wasm (WAT pinger->WAT echo) rt/s", value: rate, unit: "rt/s" },
      { suite: SUITE, metric: "Wasm<->Wasm p50", value: percentile(us, 50), unit: "us" },
      { suite: SUITE, metric: "Wasm<->Wasm p99", value: percentile(us, 99), unit: "us" },
      { suite: SUITE, metric: "WAT echo, bare jco glue, no kernel", value: glue, unit: "rt/s" },
      { suite: SUITE, metric: "WAT echo, our host, no kernel", value: host, unit: "rt/s" },
      { suite: SUITE, metric: "Wasm<->Wasm / bare jco glue", value: rate / glue, unit: "ratio" }
    ] satisfies Array<Row>
  }).pipe(Effect.provide(ComponentCache.layer({ cacheDir: fs.mkdtempSync(path.join(os.tmpdir(), "bench-wasm-cache-")) })),
    Effect.provide(NodeServices.layer)
  )

// ---- containment ------------------------------------------------------------------

/** A kernel running the WAT echo and the pinger (it may message the echo); `preemption` on or off. */
const pingerKernel = (preemption: boolean) => {
  const k = testKernel({})
  return StorageLive.pipe(
    Layer.provide(Lmdb.layer),
    Layer.provideMerge(k.layer),
    Layer.provide(Layer.succeed(WasmHostOptions, { preemption }))
  )
}

const startPingPair = Effect.gen(function*() {
  const kernel = yield* Kernel
  const echo = pid("echo:pair:bench")
  const pinger = pid("pinger:pair:bench")
  yield* kernel.initialize({
    id: echo, handle: "/pair:bench/pkg/echo.wasm", witVersion: 1, onExit: { _tag: "None" }, public: false, capabilities: [],
    bytes: yield* Effect.promise(buildEcho)
  })
  yield* kernel.initialize({
    id: pinger, handle: "/pair:bench/pkg/pinger.wasm", witVersion: 1, onExit: { _tag: "None" }, public: false,
    capabilities: [messagingCap(kernel.node, echo.toString())], bytes: yield* Effect.promise(buildPinger)
  })
  yield* kernel.grant(echo.toString(), [messagingCap(kernel.node, pinger.toString())])
  yield* kernel.run(echo.toString())
  yield* kernel.run(pinger.toString())
  const driver = yield* kernel.session("driver:pair:bench", {
    capabilities: [messagingCap(kernel.node, pinger.toString()), messagingCap(kernel.node, echo.toString()),
      messagingCap(kernel.node, "kernel:distro:sys")],
    public: true
  })
  /** `n` pinger->echo round trips; rt/s. */
  const pings = (n: number) =>
    Effect.gen(function*() {
      const t = performance.now()
      const r = yield* driver.sendAndAwaitEffect(address(`${kernel.node}@${pinger}`), request({ body: pingerStart(n, false), expectsResponse: 300n }))
      if (!("message" in r)) return yield* Effect.die(new Error("the pinger did not answer"))
      return n / ((performance.now() - t) / 1000)
    })
  // Warm both guests' hot functions into the optimizing tier (V8 has no on-stack replacement for Wasm).
  for (let i = 0; i < 4; i++) yield* pings(10_000)
  return { kernel, driver, pings, echo: echo.toString() }
})

/** Runs `body` on a fresh pinger kernel (preemption on or off). */
const onPairKernel = <A, E>(preemption: boolean, body: (pair: Effect.Success<typeof startPingPair>) => Effect.Effect<A, E, Kernel>) =>
  Effect.flatMap(startPingPair, body).pipe(Effect.provide(pingerKernel(preemption), { local: true }), Effect.scoped, Effect.orDie)

export const containmentFigures = Effect.gen(function*() {
  const rows: Array<Row> = []
  // Instrumentation cost: kernels with preemption off and on, alternated; medians of 5
  // (on a shared 2-core machine single runs swing by half, best-of follows the outliers).
  const rates = yield* alternate(100_000)
  const mid = { on: median(rates.on), off: median(rates.off) }
  rows.push({ suite: SUITE, metric: "Wasm<->Wasm rt/s, preemption off", value: mid.off, unit: "rt/s" })
  rows.push({ suite: SUITE, metric: "Wasm<->Wasm rt/s, preemption on", value: mid.on, unit: "rt/s" })
  rows.push({ suite: SUITE, metric: "Wasm<->Wasm preemption on / off", value: mid.on / mid.off, unit: "ratio" })
  // The same cost without the kernel's noise: the WAT echo under our host alone.
  const echoBytes = yield* Effect.promise(buildEcho)
  const host = { on: [] as Array<number>, off: [] as Array<number> }
  for (let i = 0; i < 5; i++) {
    for (const preemption of [false, true]) {
      const rate = yield* Effect.gen(function*() {
        yield* hostEcho(echoBytes, 50_000, true)
        return yield* hostEcho(echoBytes, 200_000, true)
      }).pipe(
        Effect.provide(ComponentCache.layer({ cacheDir: fs.mkdtempSync(path.join(os.tmpdir(), "bench-wasm-cache-")), preemption })),
        Effect.provide(NodeServices.layer),
        Effect.orDie
      )
      host[preemption ? "on" : "off"].push(rate)
    }
  }
  rows.push({ suite: SUITE, metric: "WAT echo, our host, preemption off", value: median(host.off), unit: "rt/s" })
  rows.push({ suite: SUITE, metric: "WAT echo, our host, preemption on", value: median(host.on), unit: "rt/s" })
  rows.push({ suite: SUITE, metric: "our host preemption on / off", value: median(host.on) / median(host.off), unit: "ratio" })

  // Latency and kill while a process spins (preemption on).
  rows.push(...(yield* onPairKernel(true, (pair) =>
    Effect.gen(function*() {
      const out: Array<Row> = []
      const spinnerBytes = yield* Effect.promise(buildSpinner)
      const echoAt = address(`${pair.kernel.node}@${pair.echo}`)
      /**
       * Echo round trips started by a timer every 5 ms, as requests from outside arrive:
       * latency from when the timer was due to the answer (so waiting for a slice counts).
       */
      const echoLatencies = (count: number) =>
        Effect.gen(function*() {
          const samples: Array<number> = []
          for (let i = 0; i < count; i++) {
            const due = performance.now() + 5
            yield* Effect.sleep("5 millis")
            const r = yield* pair.driver.sendAndAwaitEffect(echoAt, request({ body: text("x"), expectsResponse: 5n }))
            if (!("message" in r)) return yield* Effect.die(new Error("the echo did not answer"))
            samples.push(performance.now() - due)
          }
          return samples.sort((a, b) => a - b)
        })
      const idle = yield* echoLatencies(300)
      const spin = (name: string) =>
        Effect.gen(function*() {
          const id = pid(`${name}:pair:bench`)
          yield* pair.kernel.initialize({
            id, handle: `/pair:bench/pkg/${name}.wasm`, witVersion: 1, onExit: { _tag: "None" }, public: false,
            capabilities: [], bytes: spinnerBytes
          })
          yield* pair.kernel.run(id.toString())
          yield* Effect.sleep("100 millis")
          return id.toString()
        })
      const spinner = yield* spin("spinner")
      const busy = yield* echoLatencies(300)
      out.push({ suite: SUITE, metric: "echo latency p50, idle", value: percentile(idle, 50), unit: "ms" })
      out.push({ suite: SUITE, metric: "echo latency p99, idle", value: percentile(idle, 99), unit: "ms" })
      out.push({ suite: SUITE, metric: "echo latency p50, 1 process spinning", value: percentile(busy, 50), unit: "ms" })
      out.push({ suite: SUITE, metric: "echo latency p99, 1 process spinning", value: percentile(busy, 99), unit: "ms" })
      out.push({ suite: SUITE, metric: "echo latency max, 1 process spinning", value: busy[busy.length - 1]!, unit: "ms" })
      /** From the command sent (at a timer) to its answer, which comes once the process is gone. */
      const killCommand = (id: string) =>
        pair.driver.sendAndAwaitEffect(address(`${pair.kernel.node}@kernel:distro:sys`), request({
          body: new TextEncoder().encode(JSON.stringify({ KillProcess: id })),
          expectsResponse: 5n
        }))
      yield* killCommand(spinner)
      const gone: Array<number> = []
      const answered: Array<number> = []
      for (let i = 0; i < 20; i++) {
        const id = yield* spin(`spinner${i}`)
        const due = performance.now() + 5
        yield* Effect.sleep("5 millis")
        const command = yield* Effect.forkChild(killCommand(id))
        while (pair.kernel.info(id) !== undefined) yield* Effect.yieldNow
        gone.push(performance.now() - due)
        yield* Fiber.join(command)
        answered.push(performance.now() - due)
      }
      gone.sort((a, b) => a - b)
      answered.sort((a, b) => a - b)
      out.push({ suite: SUITE, metric: "KillProcess to gone p50, spinning", value: percentile(gone, 50), unit: "ms" })
      out.push({ suite: SUITE, metric: "KillProcess to gone max, spinning", value: gone[gone.length - 1]!, unit: "ms" })
      out.push({ suite: SUITE, metric: "KillProcess answered p50, spinning", value: percentile(answered, 50), unit: "ms" })
      out.push({ suite: SUITE, metric: "KillProcess answered max, spinning", value: answered[answered.length - 1]!, unit: "ms" })
      return out
    }))))
  return rows
})

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!

/**
 * `n` pings on a fresh kernel with preemption off, then one with it on, five times
 * (one kernel up at a time: two at once halved both rates).
 */
const alternate = (n: number) =>
  Effect.gen(function*() {
    const rates = { on: [] as Array<number>, off: [] as Array<number> }
    for (let i = 0; i < 5; i++) {
      rates.off.push(yield* onPairKernel(false, (pair) => pair.pings(n)))
      rates.on.push(yield* onPairKernel(true, (pair) => pair.pings(n)))
    }
    return rates
  })

/** `node dist/main.js --home <tmp> ...` until the prompt appears on stdout. */
export const bootToPrompt = (home: string, flags: ReadonlyArray<string> = []): Promise<number> =>
  new Promise((resolve, reject) => {
    const t = performance.now()
    const child = spawnChild(process.execPath, [path.join(repo, "dist", "main.js"), "--home", home, ...flags], { stdio: ["pipe", "pipe", "pipe"] })
    let out = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`no prompt in 60 s: ${out.slice(-500)}`))
    }, 60_000)
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString()
      if (/ > $/m.test(out) || out.includes("> ")) {
        const ms = performance.now() - t
        clearTimeout(timer)
        child.stdin.end()
        child.on("exit", () => resolve(ms))
      }
    })
    child.on("error", reject)
  })

export async function run(): Promise<Array<Row>> {
  await Promise.all(["echo"].map((a) => buildApp(a)))
  const k = testKernel({})
  const layer = Packages.layer.pipe(Layer.provideMerge(StorageLive), Layer.provide(Lmdb.layer), Layer.provideMerge(k.layer))
  const rows = await Effect.runPromise(kernelFigures.pipe(Effect.provide(layer), Effect.scoped))
  rows.push(...await Effect.runPromise(containmentFigures))
  rows.push(...await timerEthFigures())
  // The terminal's rows are skipped, said, when its scripts give no answer, so the rows after them still come.
  rows.push(...await terminalFigures().catch((e: unknown) => {
    process.stderr.write(`wasm bench: no terminal rows: ${e instanceof Error ? e.message : String(e)}\n`)
    return []
  }))
  rows.push(...await componentSizes())
  rows.push(...await idleAppFigures())
  if (fs.existsSync(path.join(repo, "dist", "main.js"))) {
    // A node is its name on a chain: boots register on a bench-owned anvil.
    const chain = await startTestChain()
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-boot-"))
    const pw = path.join(home, "..", `${path.basename(home)}.pw`)
    fs.writeFileSync(pw, "bench password\n")
    const flags = ["--password-file", pw, "--chain-port", String(chain.port)]
    try {
      const name = `bench-${process.pid}.os`
      rows.push({ suite: SUITE, metric: "boot to prompt (first boot)", value: await bootToPrompt(home, [...flags, "--name", name]), unit: "ms" })
      rows.push({ suite: SUITE, metric: "boot to prompt (second boot)", value: await bootToPrompt(home, flags), unit: "ms" })
      rows.push(...await nodeFigures(chain.port))
    } finally {
      fs.rmSync(home, { recursive: true, force: true })
      fs.rmSync(pw, { force: true })
      await chain.stop()
    }
  }
  return rows
}
