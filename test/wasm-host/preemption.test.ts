/**
 * Containment of Wasm processes (issue #11), through the real kernel: a process whose
 * `init` is `loop br 0` is preempted every slice, so an echo keeps answering; it can
 * be killed (also by the `KillProcess` command) and then never runs again; the node
 * shuts down while it spins, and a home holding it with on-exit `Restart` boots to a
 * usable kernel; a guest spinning where
 * it cannot be suspended (inside jco's synchronous `cabi_realloc`) is stopped, its
 * exception handlers notwithstanding; linear memory stops growing at its cap.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { pid } from "../../src/Ids.ts"
import { Kernel } from "../../src/Kernel.ts"
import type { OnExit } from "../../src/Message.ts"
import { request, text } from "../../src/Message.ts"
import type { NativeApi } from "../../src/ProcessApi.ts"
import type { Printed } from "../../src/Printout.ts"
import { ComponentCache } from "../../src/wasm-host/ComponentCache.ts"
import { buildEcho, buildMemoryProbe, buildReallocSpinner, buildSpinner, buildTryTable } from "../fixtures/wasm/build.ts"
import { kernelCall } from "../src/helpers.ts"
import { at, once, PKG, putFile, session, startWasm, waitFor, wasmNode } from "./WasmNode.ts"

const ECHO = `echo:${PKG}`

const startEcho = Effect.gen(function*() {
  yield* startWasm(ECHO, { bytes: yield* once("echo", buildEcho) })
  const driver: NativeApi = yield* session(`echo-driver:${PKG}`, [ECHO])
  /** One round trip to the echo; its latency in ms. */
  const roundTrip = (body: string) =>
    Effect.gen(function*() {
      const t = performance.now()
      const r = yield* driver.sendAndAwaitEffect(at(ECHO), request({ body: text(body), expectsResponse: 5n }))
      assert.isTrue("message" in r && new TextDecoder().decode(r.message.body) === body, `echo answered ${JSON.stringify(r)}`)
      return performance.now() - t
    })
  yield* roundTrip("warm")
  return { roundTrip }
})

const onNode = <A, E, R>(body: (lines: Array<Printed>) => Effect.Effect<A, E, R>, home?: string) => {
  const node = wasmNode(home === undefined ? {} : { home })
  return body(node.lines).pipe(Effect.provide(node.layer), Effect.scoped) as Effect.Effect<A, E, never>
}

const printed = (lines: ReadonlyArray<Printed>, id: string, text: string) =>
  lines.some((l) => l.source === id && l.text === `${PKG}: ${text}`)

const quantile = (xs: ReadonlyArray<number>, q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!

/** CPU this OS process uses over `ms` of wall time (ms). */
const cpuOver = (ms: number) =>
  Effect.gen(function*() {
    const before = process.cpuUsage()
    yield* Effect.sleep(`${ms} millis`)
    const d = process.cpuUsage(before)
    return (d.user + d.system) / 1000
  })

describe("preemption", () => {
  it.live("an echo keeps answering while a process spins in `loop br 0`; kill stops the spinner for good", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        const echo = yield* startEcho
        const id = `spinner:${PKG}`
        yield* startWasm(id, { bytes: yield* once("spinner", buildSpinner) })
        yield* waitFor(() => printed(lines, id, "spinning"), "the spinner started")
        const latencies: Array<number> = []
        for (let i = 0; i < 100; i++) latencies.push(yield* echo.roundTrip(`ping ${i}`))
        const worst = Math.max(...latencies)
        assert.isBelow(worst, 1000, `each answer well within a second (worst ${worst.toFixed(1)} ms)`)
        assert.isBelow(quantile(latencies, 0.5), 50, "most answers take about one slice")
        assert.strictEqual(k.info(id)?.status, "running")
        // the spinner really runs between the answers: the node is busy
        assert.isAbove(yield* cpuOver(500), 150, "the spinner uses the CPU the echo leaves")
        assert.isTrue(yield* k.kill(id))
        assert.isUndefined(k.info(id))
        // and never again: the node goes idle
        yield* Effect.sleep("50 millis")
        assert.isBelow(yield* cpuOver(500), 150, "a killed spinner is never resumed")
        yield* echo.roundTrip("after the kill")
      })
    ), 60_000)

  it.live("KillProcess, as a kernel command, stops a spinning process", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        const echo = yield* startEcho
        const admin: NativeApi = yield* session(`admin:${PKG}`, ["kernel:distro:sys"])
        const id = `spinner:${PKG}`
        yield* startWasm(id, { bytes: yield* once("spinner", buildSpinner), onExit: { _tag: "Restart" } })
        yield* waitFor(() => printed(lines, id, "spinning"), "the spinner started")
        const t = performance.now()
        assert.deepStrictEqual(yield* kernelCall(admin, { KillProcess: id }), { KilledProcess: id })
        const took = performance.now() - t
        assert.isUndefined(k.info(id))
        assert.isBelow(took, 200, `the command is answered within a few slices (${took.toFixed(1)} ms)`)
        yield* Effect.sleep("50 millis")
        assert.isBelow(yield* cpuOver(500), 150, "a killed spinner is never resumed (nor restarted)")
        yield* echo.roundTrip("after the kill")
      })
    ), 60_000)

  it.live("a home holding a spinner with on-exit Restart boots to a usable kernel", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-ts-spin-home-"))
      const id = `spinner:${PKG}`
      let stopping = 0
      yield* onNode((lines) =>
        Effect.gen(function*() {
          const bytes = yield* once("spinner", buildSpinner)
          yield* putFile(`/${PKG}/pkg/spinner.wasm`, bytes)
          yield* startWasm(id, { bytes, onExit: { _tag: "Restart" } })
          yield* waitFor(() => printed(lines, id, "spinning"), "the spinner started")
          stopping = performance.now()
        }), home)
      // the node shuts down while the spinner spins
      const shutdown = performance.now() - stopping
      assert.isBelow(shutdown, 2000, `shutdown took ${shutdown.toFixed(0)} ms`)
      // the second boot starts the spinner again from its drive, and still serves
      yield* onNode((lines) =>
        Effect.gen(function*() {
          const k = yield* Kernel
          yield* k.boot
          yield* waitFor(() => printed(lines, id, "spinning"), "the spinner restarted at boot")
          assert.strictEqual(k.info(id)?.status, "running")
          const echo = yield* startEcho
          for (let i = 0; i < 20; i++) assert.isBelow(yield* echo.roundTrip(`ping ${i}`), 1000)
        }), home)
      fs.rmSync(home, { recursive: true, force: true })
    }), 60_000)

  it.live("a guest spinning where it cannot be suspended (jco's synchronous cabi_realloc) is stopped", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        const echo = yield* startEcho
        const id = `stuck:${PKG}`
        yield* startWasm(id, { bytes: yield* Effect.promise(buildReallocSpinner) })
        yield* waitFor(() => k.info(id) === undefined, "the stuck process is gone")
        const report = lines.find((l) => l.source === id && l.level === 0 && l.text.startsWith(`process ${id} crashed`))
        assert.isDefined(report)
        assert.include(report!.text, "was stopped: held the event loop for")
        assert.include(report!.text, "where it could not be preempted (limit 1000 ms)")
        yield* echo.roundTrip("after the stuck one")
      })
    ), 60_000)
})

/** initialize `id` from `bytes`, set its limits with the `SetLimits` kernel command, then run it. */
const startLimited = (id: string, bytes: Uint8Array, limits: Record<string, number | null>, onExit: OnExit = { _tag: "None" }) =>
  Effect.gen(function*() {
    const k = yield* Kernel
    const admin: NativeApi = yield* session(`admin-${id.split(":")[0]}:${PKG}`, ["kernel:distro:sys"])
    const p = pid(id)
    yield* k.initialize({
      id: p,
      handle: `/${PKG}/pkg/${p.processName}.wasm`,
      witVersion: 1,
      onExit,
      public: false,
      capabilities: [],
      bytes
    })
    const answer = yield* kernelCall(admin, { SetLimits: { target: id, ...limits } })
    yield* k.run(id)
    return answer
  })

describe("CPU budget", () => {
  it.live("a process past its CPU budget for one message is stopped with a printout, and its on-exit applies", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        const echo = yield* startEcho
        const id = `greedy:${PKG}`
        const answer = yield* startLimited(id, yield* once("spinner", buildSpinner), { cpu_per_message_ms: 300 }, { _tag: "Restart" })
        assert.deepStrictEqual(answer, { LimitsSet: { target: id, cpu_per_message_ms: 300, cpu_total_ms: null, memory_mib: null } })
        const crash = () => lines.find((l) => l.source === id && l.level === 0 && l.text.startsWith(`process ${id} crashed`))
        yield* waitFor(() => crash() !== undefined, "the greedy process was stopped")
        assert.match(crash()!.text, /was stopped: used \d+ ms of CPU on one message, past its budget of 300 ms/)
        // on-exit Restart: it runs again (and is stopped again)
        yield* waitFor(() => lines.filter((l) => l.source === id && l.text === `${PKG}: spinning`).length >= 2, "restarted")
        yield* echo.roundTrip("meanwhile")
        assert.isTrue(yield* k.kill(id))
      })
    ), 60_000)

  it.live("a total CPU budget stops a process too; on-exit None removes it", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        const id = `greedy:${PKG}`
        yield* startLimited(id, yield* once("spinner", buildSpinner), { cpu_total_ms: 200 })
        yield* waitFor(() => k.info(id) === undefined, "the greedy process is gone")
        const crash = lines.find((l) => l.source === id && l.level === 0 && l.text.startsWith(`process ${id} crashed`))
        assert.match(crash!.text, /was stopped: used \d+ ms of CPU in total, past its budget of 200 ms/)
      })
    ), 60_000)
})

describe("memory cap", () => {
  it.live("memory.grow fails inside the guest at the cap (256 MiB)", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        const id = `probe:${PKG}`
        const t = performance.now()
        yield* startWasm(id, { bytes: yield* Effect.promise(buildMemoryProbe) })
        yield* waitFor(() => lines.some((l) => l.source === id && l.text.startsWith(`${PKG}: pages `)), "the probe reported")
        const took = performance.now() - t
        const pages = Number(lines.find((l) => l.source === id && l.text.startsWith(`${PKG}: pages `))!.text.slice(-5))
        assert.isAtMost(pages, 4096)
        assert.isAbove(pages, 4096 - 16)
        assert.isBelow(took, 5000, `the probe is quick (${took.toFixed(0)} ms)`)
        yield* waitFor(() => k.info(id) === undefined, "the probe exited")
      })
    ), 60_000)

  it.live("SetLimits sets a process's own cap", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const id = `probe:${PKG}`
        yield* startLimited(id, yield* Effect.promise(buildMemoryProbe), { memory_mib: 16 })
        yield* waitFor(() => lines.some((l) => l.source === id && l.text.startsWith(`${PKG}: pages `)), "the probe reported")
        const pages = Number(lines.find((l) => l.source === id && l.text.startsWith(`${PKG}: pages `))!.text.slice(-5))
        assert.isAtMost(pages, 256)
        assert.isAbove(pages, 256 - 16)
      })
    ), 60_000)
})

describe("instrumentation", () => {
  it.live("fails closed: a module with an expression kind it cannot walk (try_table) is refused", () =>
    Effect.gen(function*() {
      const files = yield* FileSystem.FileSystem
      const dir = yield* files.makeTempDirectoryScoped({ prefix: "wasm-cache-" })
      const bytes = yield* Effect.promise(buildTryTable)
      const error = yield* Effect.flip(ComponentCache.use((c) => c.load(bytes)).pipe(
        Effect.provide(ComponentCache.layer({ cacheDir: dir }))
      ))
      assert.strictEqual(error.reason, "MeteringFailed")
      assert.include(error.detail, "unsupported expression kind")
      // without preemption the same component loads (and could hold the node)
      const loaded = yield* ComponentCache.use((c) => c.load(bytes)).pipe(
        Effect.provide(ComponentCache.layer({ cacheDir: dir, preemption: false }))
      )
      assert.isFalse(loaded.metered)
    }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)), 60_000)
})
