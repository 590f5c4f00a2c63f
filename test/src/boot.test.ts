/**
 * Kinode's boot and shutdown (kinode-semantics §5.5 step 6, §5.6, §3.8) and its `Debug`
 * printouts (§5.7), on the real kernel over real LMDB:
 * - a process does nothing until it is run; what reaches it before is buffered, in order;
 * - boot loads and registers every stored process, then the kernel sends `Booted` to
 *   itself (which starts them), `KnsBatchUpdate` to net, and `[chain_id, "0x<contract>"]`
 *   to an installed Kinode 0.5-0.6 `kns_indexer` package (not to Kinode 1.0's `kns-indexer`);
 * - shutdown stops crash-looping, spinning, waiting and hundreds of idle processes at
 *   once, forgets `None` processes in one commit, and starts nothing afterwards;
 * - `Debug` without a response expected is printed as Kinode 0.7's kernel printed it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { KernelLive } from "../../layers/KernelLive.ts"
import { TempHome, testKernel } from "../../layers/TestLive.ts"
import { Home } from "../../src/Home.ts"
import { EMPTY_KNS_BATCH_UPDATE, Kernel, KernelConfig, type KnsContract } from "../../src/Kernel.ts"
import { KernelStore } from "../../src/KernelStore.ts"
import { type KernelMessage, bodyText, request, text } from "../../src/Message.ts"
import { ModuleHost } from "../../src/ModuleHost.ts"
import type { NativeProgram } from "../../src/ProcessApi.ts"
import { Printout } from "../../src/Printout.ts"
import { NativePrograms } from "../../src/ProgramLoader.ts"
import { EphemeralIdentity } from "../../services/identity/index.ts"
import { KernelStoreLmdb } from "../../services/kernel-store/index.ts"
import { Lmdb } from "../../services/lmdb/index.ts"
import { NetOfflinePort, readAction } from "../../services/net/index.ts"
import { echo, ProgramLoaderFs } from "../../services/program-loader/index.ts"
import { VfsDriveAccess } from "../../services/vfs/index.ts"
import { at, driver, json, kernelCall, NODE, pidOf } from "./helpers.ts"

/** What each `native:recorder` process received, by process id, in order. */
const received = new Map<string, Array<{ readonly source: string; readonly body: string }>>()
const recorder: NativeProgram = (api) =>
  Effect.gen(function*() {
    const log = received.get(api.our.process.toString()) ?? []
    received.set(api.our.process.toString(), log)
    log.push({ source: "self", body: "started" })
    while (true) {
      const r = yield* api.receiveEffect
      if (r._tag === "Message") log.push({ source: r.source.toString(), body: bodyText(r.message) })
    }
  })

/** Exits at once with a defect: with on-exit Restart, a crash loop with Kinode's back-off. */
const crasher: NativeProgram = () => Effect.die(new Error("crash at init"))
/** Never waits: yields to the scheduler and goes on, for ever. */
const spinner: NativeProgram = () => Effect.forever(Effect.yieldNow)
/** Asks itself something it never answers, giving it an hour. */
const waiter: NativeProgram = (api) =>
  Effect.asVoid(api.sendAndAwaitEffect(api.our, request({ body: text("answer me"), expectsResponse: 3600n })))

const programs = { recorder, crasher, spinner, waiter }

const store = (id: string, handle: string, onExit: "None" | "Restart" = "None") =>
  Effect.flatMap(KernelStore, (s) =>
    s.save({ id, handle: `native:${handle}`, witVersion: null, onExit: { _tag: onExit }, public: true, capabilities: [] }))

const sleep = (ms: number) => Effect.promise(() => new Promise((r) => setTimeout(r, ms)))

/** `testKernel`'s node with net replaced by a module that records what it is sent. */
const withRecordingNet = (options: { readonly knsContract?: KnsContract }) => {
  const toNet: Array<KernelMessage> = []
  const recordingNet = Layer.effectDiscard(Effect.flatMap(ModuleHost, (host) =>
    host.serve("net:distro:sys", { public: false }, (ctx) =>
      Effect.forever(Effect.map(ctx.takeBatch, (batch) => void toNet.push(...batch))))))
  const printout = Printout.memory()
  const layer = recordingNet.pipe(
    Layer.provideMerge(KernelLive),
    Layer.provideMerge(Layer.mergeAll(NetOfflinePort, VfsDriveAccess)),
    Layer.provide(ProgramLoaderFs),
    Layer.provide(NativePrograms.make({ echo, ...programs })),
    Layer.provideMerge(KernelStoreLmdb),
    Layer.provide(Lmdb.layer),
    Layer.provideMerge(EphemeralIdentity(NODE)),
    Layer.provideMerge(KernelConfig.layer(options)),
    Layer.provideMerge(printout.layer),
    Layer.provideMerge(TempHome)
  )
  return { layer, toNet, lines: printout.lines }
}

describe("boot (§5.5 step 6)", () => {
  it.live("a process does nothing until it is run; messages sent to it before are buffered and come first, in order", () => {
    const k = testKernel({ programs })
    return Effect.gen(function*() {
      const kernel = yield* Kernel
      const api = yield* driver("root:test:sys", ["kernel:distro:sys"], true)
      const init = { id: "rec:test:sys", wasm_bytes_handle: "native:recorder", wit_version: null, on_exit: "None", initial_capabilities: [], public: true }
      assert.strictEqual(yield* kernelCall(api, { InitializeProcess: init }), "InitializedProcess")
      for (const n of [1, 2, 3]) assert.isUndefined(api.sendRequest(at("rec:test:sys"), request({ body: text(`m${n}`) }), undefined, undefined))
      yield* sleep(50)
      assert.strictEqual(kernel.info("rec:test:sys")?.status, "waiting")
      assert.isUndefined(received.get("rec:test:sys"), "not started")
      assert.strictEqual(kernel.info("rec:test:sys")?.mailboxDepth, 3)
      assert.strictEqual(yield* kernelCall(api, { RunProcess: "rec:test:sys" }), "StartedProcess")
      yield* sleep(20)
      // No `run` message: the program starts, and the buffered messages follow in order.
      assert.deepStrictEqual(received.get("rec:test:sys")!.map((m) => m.body), ["started", "m1", "m2", "m3"])
    }).pipe(Effect.scoped, Effect.provide(k.layer))
  })

  it.live("boot registers stored processes, then Booted starts them; KnsBatchUpdate goes to net and the contract to an installed indexer package", () => {
    received.clear()
    const node = withRecordingNet({ knsContract: { chainId: 31337, address: "0x000000000033e5CCbC52Ec7BDa87dB768f9aA93F" } })
    return Effect.gen(function*() {
      const kernel = yield* Kernel
      yield* store("a:test:sys", "recorder")
      yield* store("kns_indexer:kns_indexer:sys", "recorder")
      // Kinode 1.0's indexer package has the address built in (and stops on a body it cannot parse).
      yield* store("kns-indexer:kns-indexer:sys", "recorder")
      yield* kernel.boot
      assert.strictEqual(kernel.info("a:test:sys")?.status, "running")
      assert.strictEqual(kernel.info("kns_indexer:kns_indexer:sys")?.status, "running")
      yield* sleep(20)
      assert.deepStrictEqual(received.get("kns_indexer:kns_indexer:sys"), [
        { source: "self", body: "started" },
        { source: `${NODE}@kernel:distro:sys`, body: "[31337,\"0x000000000033e5ccbc52ec7bda87db768f9aa93f\"]" }
      ])
      assert.deepStrictEqual(received.get("a:test:sys"), [{ source: "self", body: "started" }])
      assert.deepStrictEqual(received.get("kns-indexer:kns-indexer:sys"), [{ source: "self", body: "started" }])
      assert.strictEqual(node.toNet.length, 1)
      const batch = node.toNet[0]!
      assert.strictEqual(batch.source.toString(), `${NODE}@kernel:distro:sys`)
      assert.deepStrictEqual(Array.from(batch.message.body), Array.from(EMPTY_KNS_BATCH_UPDATE))
      assert.deepStrictEqual(readAction(batch.message.body), { KnsBatchUpdate: [] })
      assert.isTrue(batch.message._tag === "Request" && batch.message.expectsResponse === undefined)
    }).pipe(Effect.scoped, Effect.provide(node.layer))
  })

  it.live("Booted from a process starts processes initialized and not run; running ones are left alone", () => {
    received.clear()
    const k = testKernel({ programs })
    return Effect.gen(function*() {
      const kernel = yield* Kernel
      const api = yield* driver("root:test:sys", ["kernel:distro:sys"], true)
      const init = (id: string) => ({ InitializeProcess: { id, wasm_bytes_handle: "native:recorder", wit_version: null, on_exit: "None", initial_capabilities: [], public: true } })
      yield* kernelCall(api, init("b:test:sys"))
      yield* kernelCall(api, init("c:test:sys"))
      yield* kernelCall(api, { RunProcess: "c:test:sys" })
      assert.strictEqual(kernel.info("b:test:sys")?.status, "waiting")
      api.sendRequest(at("kernel:distro:sys"), request({ body: json("Booted") }), undefined, undefined)
      yield* sleep(50)
      assert.strictEqual(kernel.info("b:test:sys")?.status, "running")
      assert.deepStrictEqual(received.get("c:test:sys"), [{ source: "self", body: "started" }], "no second start, no run message")
    }).pipe(Effect.scoped, Effect.provide(k.layer))
  })

  it.live("a stored process whose code cannot be loaded is printed and stopped, and the rest boot", () => {
    const k = withRecordingNet({})
    return Effect.gen(function*() {
      const kernel = yield* Kernel
      yield* store("gone:test:sys", "no-such-program")
      yield* store("fine:test:sys", "recorder")
      yield* kernel.boot
      assert.strictEqual(kernel.info("fine:test:sys")?.status, "running")
      assert.strictEqual(kernel.info("gone:test:sys")?.status, "stopped")
      assert.match(kernel.info("gone:test:sys")?.stoppedBecause ?? "", /could not be loaded/)
      assert.isTrue(k.lines.some((l) => /couldn't reboot process gone:test:sys/.test(l.text)))
    }).pipe(Effect.scoped, Effect.provide(k.layer))
  })
})

describe("shutdown (§5.6)", () => {
  it.live("stops crash-looping, spinning, waiting and 500 idle processes at once; None entries are forgotten in one commit; nothing starts afterwards", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-ts-shutdown-"))
      const first = testKernel({ home, programs })
      yield* Effect.gen(function*() {
        const kernel = yield* Kernel
        const start = (id: string, program: string, onExit: "None" | "Restart") =>
          Effect.andThen(
            kernel.initialize({ id: pidOf(id), handle: `native:${program}`, witVersion: null, onExit: { _tag: onExit }, public: true, capabilities: [], bytes: undefined }),
            kernel.run(id)
          )
        yield* start("crash:test:sys", "crasher", "Restart")
        yield* start("spin:test:sys", "spinner", "Restart")
        yield* start("wait:test:sys", "waiter", "None")
        for (let i = 0; i < 500; i++) yield* start(`idle${i}:test:sys`, "echo", "None")
        yield* sleep(1200) // the crash loop is in its back-off, the spinner spins, the waiter waits
        assert.strictEqual(kernel.info("crash:test:sys")?.status, "restarting")
        const t0 = performance.now()
        yield* kernel.shutdown
        const ms = performance.now() - t0
        assert.isBelow(ms, 1000, `shutdown took ${Math.round(ms)} ms`)
        assert.strictEqual(kernel.info("spin:test:sys")?.status, "exited")
        const refused = yield* Effect.flip(kernel.run("crash:test:sys"))
        assert.match(refused.reason, /shutting down/)
        const spawned = yield* Effect.flip(kernel.spawn(at("spin:test:sys"), {
          name: "child",
          wasmPath: "native:echo",
          onExit: { _tag: "None" },
          requestCapabilities: [],
          grantCapabilities: [],
          public: false
        }))
        assert.strictEqual(spawned.reason, "no-file-at-path")
        yield* kernel.shutdown // idempotent
        yield* sleep(1100) // a restart back-off that was cut short starts nothing
        assert.strictEqual(kernel.info("crash:test:sys")?.status, "exited")
      }).pipe(Effect.scoped, Effect.provide(Layer.fresh(first.layer)))
      // A later boot sees the Restart processes and none of the None ones.
      const storeLayer = KernelStoreLmdb.pipe(Layer.provide(Lmdb.layer), Layer.provide(Layer.succeed(Home, { path: home })))
      const stored = yield* Effect.scoped(Effect.provide(Effect.flatMap(KernelStore, (s) => s.load), storeLayer))
      const ids = stored.records.map((r) => r.id).sort()
      assert.deepStrictEqual(ids, ["crash:test:sys", "spin:test:sys"])
      fs.rmSync(home, { recursive: true, force: true })
    }))
})

describe("the Shutdown command", () => {
  it.live("stops every process and tells the node's runner (Kinode's kernel then returns and the node stops)", () => {
    const k = testKernel({ programs })
    return Effect.gen(function*() {
      const kernel = yield* Kernel
      const api = yield* driver("root:test:sys", ["kernel:distro:sys"], true)
      yield* kernelCall(api, { InitializeProcess: { id: "s:test:sys", wasm_bytes_handle: "native:spinner", wit_version: null, on_exit: "Restart", initial_capabilities: [], public: true } })
      yield* kernelCall(api, { RunProcess: "s:test:sys" })
      assert.strictEqual(kernel.info("s:test:sys")?.status, "running")
      api.sendRequest(at("kernel:distro:sys"), request({ body: json("Shutdown") }), undefined, undefined)
      yield* kernel.shutdownRequested.pipe(Effect.timeout("2 seconds"))
      assert.strictEqual(kernel.info("s:test:sys")?.status, "exited")
    }).pipe(Effect.scoped, Effect.provide(k.layer))
  })
})

describe("Debug (§5.7)", () => {
  it.live("without a response expected the kernel prints it as Kinode 0.7's did; with one it answers instead", () => {
    const k = testKernel({ programs })
    return Effect.gen(function*() {
      const api = yield* driver("root:test:sys", ["kernel:distro:sys"], true)
      const init = { id: "e:test:sys", wasm_bytes_handle: "native:echo", wit_version: null, on_exit: "Restart", initial_capabilities: [], public: false }
      yield* kernelCall(api, { InitializeProcess: init })
      yield* kernelCall(api, { RunProcess: "e:test:sys" })
      yield* (yield* Kernel).grant("e:test:sys", [{ issuer: at("thing:test:sys"), params: "{\"b\": 1}" }])
      const printed = (body: unknown) =>
        Effect.gen(function*() {
          const before = k.lines.length
          api.sendRequest(at("kernel:distro:sys"), request({ body: json(body) }), undefined, undefined)
          yield* sleep(30)
          return k.lines.slice(before).filter((l) => l.source === "kernel").map((l) => l.text)
        })
      const [map] = yield* printed({ Debug: "ProcessMap" })
      assert.match(map!, /^kernel process map:\n/)
      assert.match(map!, /\nfound \d+ running processes$/)
      assert.include(map!, [
        "e:test:sys: Process {",
        "    wasm_bytes_handle: native:echo,",
        "    wit_version: 0,",
        "    on_exit: Restart,",
        "    public: false",
        "    capabilities: ["
      ].join("\n"))
      assert.include(map!, `\n        ${NODE}@thing:test:sys({"b":1})`)
      assert.include(map!, `\n        ${NODE}@e:test:sys("messaging")`)
      assert.include(map!, "kernel:distro:sys: Process {\n    wasm_bytes_handle: (none, this is a runtime process),")
      const [one] = yield* printed({ Debug: { Process: "e:test:sys" } })
      assert.match(one!, /^process info for e:test:sys:\nProcess \{\n    wasm_bytes_handle: native:echo,/)
      assert.deepStrictEqual(yield* printed({ Debug: { Process: "ghost:test:sys" } }), ["kernel: no such running process ghost:test:sys"])
      const cap = { issuer: `${NODE}@thing:test:sys`, params: "{ \"b\":1 }" }
      assert.deepStrictEqual(yield* printed({ Debug: { HasCap: { on: "e:test:sys", cap } } }), ["process e:test:sys has cap:\ntrue"])
      assert.deepStrictEqual(yield* printed({ Debug: { HasCap: { on: "ghost:test:sys", cap } } }), ["process ghost:test:sys has cap:\nfalse"])
      // Kinode 0.8-1.0's top awaits the answer and prints it itself: nothing printed here.
      const before = k.lines.length
      const answer = (yield* kernelCall(api, { Debug: { Process: "e:test:sys" } })) as { Debug: { Process: { on_exit: string } } }
      assert.strictEqual(answer.Debug.Process.on_exit, "Restart")
      assert.strictEqual(k.lines.slice(before).filter((l) => l.source === "kernel").length, 0)
    }).pipe(Effect.scoped, Effect.provide(k.layer))
  })
})
