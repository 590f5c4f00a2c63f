/**
 * Shutdown as a user meets it (issue #13: "the node shuts down in under 2 s whatever apps
 * are doing"), through a real `node dist/main.js`: a home with a crash-looping app (traps
 * at init, on-exit Restart: trap.wat), a spinning app (`loop br 0` in init: spinner.wat),
 * an app blocked in send-and-await-response (waiter.wat: an hour's timer), 200 idle
 * processes (echo.wat) and an on-exit None app installed with `--install`. SIGTERM while the crash loop
 * is in its back-off, and Ctrl-D on the next boot, each end the node with exit 0 in under
 * 2 s; the boot after finds the process map consistent: the Restart apps still there,
 * the None process forgotten (Kinode's shutdown), nothing damaged.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { zipSync } from "fflate"
import * as fs from "node:fs"
import * as path from "node:path"
import { StorageLive } from "../../layers/Storage.ts"
import { testKernel } from "../../layers/TestLive.ts"
import { Lmdb } from "../../services/lmdb/Lmdb.ts"
import { Packages } from "../../services/packages/index.ts"
import { KernelStoreLmdb } from "../../services/kernel-store/index.ts"
import { Home } from "../../src/Home.ts"
import { Kernel } from "../../src/Kernel.ts"
import { KernelStore } from "../../src/KernelStore.ts"
import { buildComponent, buildEcho, buildSpinner, buildTrap, fixtureWat, witV1 } from "../fixtures/wasm/build.ts"
import { type Running, runNode } from "../support/NodeProcess.ts"
import { tempDirs } from "../support/TempDirs.ts"
import { startTestChain, type TestChain } from "../support/TestChain.ts"

let chain: TestChain
let pw: string
const dirs = tempDirs()

beforeAll(async () => {
  chain = await startTestChain()
  pw = path.join(dirs.mkdir("kinode-ts-pw-"), "pw")
  fs.writeFileSync(pw, "correct horse\n")
}, 30_000)
afterAll(async () => {
  await chain?.stop()
  dirs.removeAll()
})

const run = (home: string, extra: ReadonlyArray<string> = []): Running =>
  runNode(["--home", home, "--password-file", pw, "--chain-port", String(chain.port), "--offline", ...extra])

const utf8 = new TextEncoder()
const entry = (name: string, wasm: string, onExit: "None" | "Restart") => ({
  process_name: name,
  process_wasm_path: `/${wasm}`,
  on_exit: onExit,
  request_networking: false,
  request_capabilities: [],
  grant_capabilities: [],
  public: true
})
const zip = (manifest: ReadonlyArray<unknown>, files: Record<string, Uint8Array>) =>
  zipSync({ "manifest.json": utf8.encode(JSON.stringify(manifest)), ...files })

/**
 * Installs the apps into a stopped node's home through the package installer on the real
 * kernel (as that node, by name). `--install` refuses an app that traps at init, rightly:
 * a crash loop is what this test needs.
 */
const installApps = (home: string, node: string) =>
  Effect.gen(function*() {
    const kernel = yield* Kernel
    yield* kernel.boot
    const packages = yield* Packages
    const trap = yield* Effect.promise(buildTrap)
    const spinner = yield* Effect.promise(buildSpinner)
    const waiter = yield* Effect.promise(() => buildComponent(fixtureWat("waiter"), witV1(), "process-v1"))
    const echo = yield* Effect.promise(buildEcho)
    yield* packages.install({ package: "crasher", publisher: "sys" }, zip([entry("trap", "trap.wasm", "Restart")], { "trap.wasm": trap }))
    yield* packages.install({ package: "spinner", publisher: "sys" }, zip([entry("spinner", "spinner.wasm", "Restart")], { "spinner.wasm": spinner }))
    // Restart: None processes are forgotten when this installer's kernel stops.
    yield* packages.install({ package: "waiter", publisher: "sys" }, zip([entry("waiter", "waiter.wasm", "Restart")], { "waiter.wasm": waiter }))
    const many = Array.from({ length: 200 }, (_, i) => entry(`echo${i}`, "echo.wasm", "Restart"))
    yield* packages.install({ package: "many", publisher: "sys" }, zip(many, { "echo.wasm": echo }))
  }).pipe(
    Effect.scoped,
    Effect.provide(Layer.fresh(Packages.layer.pipe(
      Layer.provideMerge(StorageLive),
      Layer.provide(Lmdb.layer),
      Layer.provideMerge(testKernel({ home, node }).layer)
    )))
  )

/** From the signal (or end of input) to the process's exit: its code and milliseconds. */
const stop = async (node: Running, how: "SIGTERM" | "Ctrl-D") => {
  const t0 = performance.now()
  if (how === "SIGTERM") node.child.kill("SIGTERM")
  else node.child.stdin.end()
  const code = await node.exited
  return { code, ms: performance.now() - t0 }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("shutdown with busy apps", () => {
  it("SIGTERM and Ctrl-D stop the node in under 2 s with crash-looping, spinning, waiting and 200 idle apps; the next boot finds a consistent process map", async () => {
    const home = dirs.mkdir("kinode-ts-shutdown-")
    const name = `shutdown-${process.pid}.dev`
    const first = run(home, ["--name", name])
    first.child.stdin.end()
    assert.strictEqual(await first.exited, 0, first.output())
    await Effect.runPromise(installApps(home, name))
    // An on-exit None process, installed by the node itself: Kinode's shutdown forgets it.
    const gone = path.join(dirs.mkdir("kinode-ts-zip-"), "gone:sys.zip")
    fs.writeFileSync(gone, zip([entry("gone", "echo.wasm", "None")], { "echo.wasm": await buildEcho() }))

    const second = run(home, ["--install", gone])
    await second.waitFor(/node \S+ booted/, 60_000)
    await second.waitFor(/spinner:sys: spinning/)
    await second.waitFor(/process trap:crasher:sys crashed/)
    await sleep(1500) // the crash loop is in its back-off, the spinner spins, the waiter waits
    const byTerm = await stop(second, "SIGTERM")
    assert.strictEqual(byTerm.code, 0, second.output())
    assert.isBelow(byTerm.ms, 2000, `SIGTERM to exit took ${Math.round(byTerm.ms)} ms`)
    assert.notMatch(second.output(), /waiter:waiter:sys crashed|services were still closing/)

    // The process map as the next boot reads it: the Restart apps kept, the None one forgotten.
    const stored = await Effect.runPromise(Effect.scoped(Effect.provide(
      Effect.flatMap(KernelStore, (s) => s.load),
      Layer.fresh(KernelStoreLmdb.pipe(Layer.provide(Lmdb.layer), Layer.provide(Layer.succeed(Home, { path: home }))))
    )))
    assert.deepStrictEqual(stored.corrupt, [])
    const ids = new Set(stored.records.map((r) => r.id))
    for (const id of ["trap:crasher:sys", "spinner:spinner:sys", "waiter:waiter:sys", "echo0:many:sys", "echo199:many:sys"]) {
      assert.isTrue(ids.has(id), `${id} kept`)
    }
    assert.isFalse(ids.has("gone:gone:sys"), "the None process is forgotten")

    const third = run(home)
    await third.waitFor(/node \S+ booted/, 60_000)
    await third.waitFor(/spinner:sys: spinning/)
    await third.waitFor(/process trap:crasher:sys crashed/)
    await sleep(500)
    const byCtrlD = await stop(third, "Ctrl-D")
    assert.strictEqual(byCtrlD.code, 0, third.output())
    assert.isBelow(byCtrlD.ms, 2000, `Ctrl-D to exit took ${Math.round(byCtrlD.ms)} ms`)
    assert.notMatch(third.output(), /damaged|skipping stored process|couldn't reboot/)
  }, 240_000)
})
