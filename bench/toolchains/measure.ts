/**
 * One measurement in a fresh Node process (run by compare.ts with --expose-gc;
 * prints one JSON line). Processes run under our Wasm host (src/wasm-host,
 * preemption on as in a node) through `loadWasmProgram`, with the real component
 * cache or the shared-engine prototype (SharedEngineCache.ts):
 *
 *   prepare <cache> <wasm...>      transpile + instrument into the on-disk caches
 *   idle <cache> <n> <wasm...>     per app: load (compile from the disk cache), then n
 *                                  instances, each answering one request and then idle
 *                                  in `receive`; RSS after a GC at each step, and each
 *                                  instance's first-answer time (instantiate -> reply)
 *   rate <wasm>                    echo round trips/s: our host alone (bench/WasmGlue.ts
 *                                  hostEcho, fast ABI) and driver -> echo through a real
 *                                  kernel (testKernel), as bench/suites/wasm.bench.ts
 *   rate-shared <wasm>             hostEcho under the shared-engine prototype
 *   growth <wasm> [n]              the guest's linear memory after 1k ... n round trips
 *
 * <cache> is `real` or `shared` (`shared-nosplit`: by-content compile cache only).
 */
import { NodeServices } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as v8 from "node:v8"
import { address } from "../../src/Ids.ts"
import * as Message from "../../src/Message.ts"
import type { ProcessApi } from "../../src/ProcessApi.ts"
import { ComponentCache, GLUE_VERSION } from "../../src/wasm-host/ComponentCache.ts"
import { loadWasmProgram } from "../../src/wasm-host/WasmProgram.ts"
import { sharedEngineCacheLayer } from "./SharedEngineCache.ts"

const here = import.meta.dirname
export const CACHE_DIR = path.join(here, ".cache")
const realDir = path.join(CACHE_DIR, "wasm")
const sharedDir = path.join(CACHE_DIR, "shared")
export const METERED_DIR = path.join(CACHE_DIR, "metered")
// The kernel's program loader reads instrumented modules from here too.
process.env.KINODE_TS_METERED_CACHE = METERED_DIR

const cacheLayer = (kind: string) =>
  (kind === "real"
    ? ComponentCache.layer({ cacheDir: realDir, meteredDir: METERED_DIR })
    : sharedEngineCacheLayer({ cacheDir: sharedDir, meteredDir: METERED_DIR, split: kind !== "shared-nosplit" }))
    .pipe(Layer.provide(NodeServices.layer))

const rssMb = async (): Promise<number> => {
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.()
    await new Promise((r) => setTimeout(r, 100))
  }
  if (process.env.MEASURE_DEBUG !== undefined) {
    const m = process.memoryUsage()
    const spaces = v8.getHeapSpaceStatistics().map((x) => `${x.space_name.replace("_space", "")} ${(x.space_size / 2 ** 20).toFixed(1)}`)
    process.stderr.write(`rss ${(m.rss / 2 ** 20).toFixed(1)} heap ${(m.heapTotal / 2 ** 20).toFixed(1)} external ${(m.external / 2 ** 20).toFixed(1)} | ${spaces.join(", ")}\n`)
  }
  return process.memoryUsage.rss() / 2 ** 20
}

const BODY = new Uint8Array([1, 2, 3])

/** A process that gets one request, answers it (`onAnswer`), then waits in receive forever. */
const idleApi = (name: string, onAnswer: () => void): ProcessApi => {
  let delivered = false
  const item = { _tag: "Message" as const, source: address("a.os@driver:bench:sys"), message: Message.request({ body: BODY }) }
  const unused = () => {
    throw new Error("not used by the echo")
  }
  return {
    our: address(`b.os@${name}:echo:sys`),
    printToTerminal: (level, line) => {
      if (level === 0) process.stderr.write(`${name}: ${line}\n`)
    },
    getOnExit: unused,
    setOnExit: unused,
    getState: unused,
    setState: unused,
    clearState: unused,
    spawn: unused,
    saveCapabilities: unused,
    dropCapabilities: unused,
    ourCapabilities: () => [],
    tryReceive: () => {
      if (delivered) return undefined
      delivered = true
      return item
    },
    receive: () => new Promise(() => {}),
    hasBlob: () => false,
    getBlob: () => undefined,
    lastBlob: () => undefined,
    sendRequest: unused,
    sendResponse: (response) => {
      if (response.body.length !== 3 || response.body[2] !== 3) throw new Error("wrong body")
      onAnswer()
      return undefined
    },
    sendAndAwaitResponse: unused
  }
}

const idle = (n: number, files: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const fibers: Array<unknown> = []
    const apps: Array<Record<string, unknown>> = []
    const rss0 = yield* Effect.promise(rssMb)
    let k = 0
    for (const file of files) {
      const bytes = new Uint8Array(fs.readFileSync(file))
      const t0 = performance.now()
      const program = yield* loadWasmProgram(bytes)
      const loadMs = performance.now() - t0
      const rssLoaded = yield* Effect.promise(rssMb)
      const firstAnswerMs: Array<number> = []
      const rssAfter: Array<number> = []
      for (let i = 0; i < n; i++) {
        let answered = () => {}
        let ended = (_: unknown) => {}
        const done = new Promise<void>((resolve, reject) => {
          answered = resolve
          ended = reject
        })
        const t = performance.now()
        const run = program(idleApi(`p${k++}`, () => answered())).pipe(
          Effect.onExit((exit) => Effect.sync(() => ended(new Error(`the process ended: ${String(exit)}`))))
        )
        fibers.push(yield* Effect.forkChild(run))
        yield* Effect.promise(() => done)
        firstAnswerMs.push(performance.now() - t)
        if (i === 0 || i === n - 1) rssAfter.push(yield* Effect.promise(rssMb))
      }
      apps.push({ file, bytes: bytes.length, loadMs, rssLoaded, firstAnswerMs, rssAfterFirst: rssAfter[0], rssAfterAll: rssAfter.at(-1) })
    }
    const rssEnd = yield* Effect.promise(rssMb)
    return { rss0, rssEnd, apps, fibers: fibers.length }
  })

const hostRates = (file: string) =>
  Effect.gen(function*() {
    const { hostEcho } = yield* Effect.promise(() => import("../WasmGlue.ts"))
    const bytes = new Uint8Array(fs.readFileSync(file))
    yield* hostEcho(bytes, 3000, true)
    const rates: Array<number> = []
    for (let i = 0; i < 3; i++) rates.push(yield* hostEcho(bytes, 20_000, true))
    return rates
  })

/** driver -> echo through a real kernel (the wasm bench's `driver->TS echo app round trips`). */
const kernelRates = async (file: string): Promise<Array<number>> => {
  const { testKernel } = await import("../../layers/TestLive.ts")
  const { Kernel, messagingCap } = await import("../../src/Kernel.ts")
  const { pid } = await import("../../src/Ids.ts")
  // A home whose wasm cache already holds the transpiled component (no jco in this process).
  const home = fs.mkdtempSync(path.join(CACHE_DIR, "home-"))
  fs.mkdirSync(path.join(home, ".cache"), { recursive: true })
  const bytes = new Uint8Array(fs.readFileSync(file))
  const hash = createHash("sha256").update(bytes).digest("hex")
  fs.cpSync(path.join(realDir, `${hash}-${GLUE_VERSION}`), path.join(home, ".cache", "wasm", `${hash}-${GLUE_VERSION}`), { recursive: true })
  try {
    const k = testKernel({ home })
    return await Effect.runPromise(Effect.gen(function*() {
      const kernel = yield* Kernel
      const id = pid("echo:tc:bench")
      yield* kernel.initialize({
        id, handle: "/tc:bench/pkg/echo.wasm", witVersion: 1, onExit: { _tag: "None" }, public: false, capabilities: [],
        bytes
      })
      yield* kernel.run(id.toString())
      const api = yield* kernel.session("driver:tc:bench", { capabilities: [messagingCap(kernel.node, id.toString())], public: true })
      const to = address(`${kernel.node}@${id}`)
      const body = Message.text("x")
      const trips = (n: number) =>
        Effect.gen(function*() {
          const t = performance.now()
          for (let i = 0; i < n; i++) {
            const r = yield* api.sendAndAwaitEffect(to, Message.request({ body, expectsResponse: 5n }))
            if (!("message" in r && "source" in r)) return yield* Effect.die(new Error("no answer from the echo"))
          }
          return n / ((performance.now() - t) / 1000)
        })
      yield* trips(1000)
      const rates: Array<number> = []
      for (let i = 0; i < 3; i++) rates.push(yield* trips(5000))
      return rates
    }).pipe(Effect.provide(k.layer), Effect.scoped, Effect.orDie))
  } finally {
    fs.rmSync(home, { recursive: true, force: true })
  }
}

/**
 * The guest's linear memory after 1k ... `n` echo round trips (one instance, our host):
 * memory never shrinks, so what a busy app grew to stays with it.
 */
const growth = (file: string, n: number) =>
  Effect.gen(function*() {
    const memories: Array<WebAssembly.Memory> = []
    const Instance = WebAssembly.Instance
    // Sees every instance the glue creates (the meter's instantiateCore uses this constructor).
    ;(WebAssembly as { Instance: unknown }).Instance = function(module: WebAssembly.Module, imports?: WebAssembly.Imports) {
      const instance = new Instance(module, imports)
      for (const v of Object.values(instance.exports)) if (v instanceof WebAssembly.Memory) memories.push(v)
      return instance
    }
    const marks = [1000, Math.round(n / 4), Math.round(n / 2), n]
    const out: Record<string, number> = {}
    let count = 0
    let done = () => {}
    const finished = new Promise<void>((r) => (done = r))
    const item = { _tag: "Message" as const, source: address("a.os@driver:bench:sys"), message: Message.request({ body: BODY }) }
    const api: ProcessApi = {
      ...idleApi("grower", () => {}),
      tryReceive: () => (count >= n ? undefined : item),
      receive: () => {
        done()
        return new Promise(() => {})
      },
      sendResponse: () => {
        count++
        if (marks.includes(count)) out[count] = memories.reduce((a, m) => a + m.buffer.byteLength, 0) / 2 ** 20
        return undefined
      }
    }
    const program = yield* loadWasmProgram(new Uint8Array(fs.readFileSync(file)))
    yield* Effect.forkChild(program(api))
    yield* Effect.promise(() => finished)
    ;(WebAssembly as { Instance: unknown }).Instance = Instance
    return out
  })

const [mode, ...args] = process.argv.slice(2)
const run = <A, E>(e: Effect.Effect<A, E, ComponentCache>, cache: string) =>
  Effect.runPromise(e.pipe(Effect.provide(cacheLayer(cache)), Effect.scoped, Effect.orDie) as Effect.Effect<A>)

let result: unknown
if (mode === "prepare") {
  const [cache, ...files] = args
  result = await run(Effect.forEach(files, (f) => loadWasmProgram(new Uint8Array(fs.readFileSync(f)))).pipe(Effect.as("ok")), cache!)
} else if (mode === "idle") {
  const [cache, n, ...files] = args
  result = await run(idle(Number(n), files), cache!)
} else if (mode === "rate") {
  const hostEchoRates = await run(hostRates(args[0]!), "real")
  const kernel = await kernelRates(args[0]!)
  result = { hostEcho: hostEchoRates, kernel }
} else if (mode === "growth") {
  result = await run(growth(args[0]!, Number(args[1] ?? 300_000)), "real")
} else if (mode === "rate-shared") {
  result = { hostEcho: await run(hostRates(args[0]!), "shared") }
} else {
  throw new Error(`unknown mode ${mode}`)
}
process.stdout.write(`${JSON.stringify(result)}\n`)
process.exit(0)
