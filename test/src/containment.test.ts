/**
 * Containment (issue #11): no process can starve the node through its mailboxes, its
 * spawns or a crash loop, and a home full of misbehaving processes still boots (safe
 * mode boots it with userspace paused). Real kernel on real LMDB, native processes.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { testKernel } from "../../layers/TestLive.ts"
import { Kernel, type KernelSettings } from "../../src/Kernel.ts"
import { bodyText, request, text } from "../../src/Message.ts"
import { type NativeProgram, SpawnFailed } from "../../src/ProcessApi.ts"
import { ask, at, driver, kernelCall, pidOf, startNative, withKernel } from "./helpers.ts"

const MiB = 1024 * 1024

const settle = Effect.repeat(Effect.yieldNow, { times: 50 })

const waitUntil = (cond: () => boolean, what: string, ms = 10_000) =>
  Effect.gen(function*() {
    const t0 = performance.now()
    while (!cond()) {
      if (performance.now() - t0 > ms) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("5 millis")
    }
  })

const spawnOptions = (program: string, name?: string) => ({
  name,
  wasmPath: `native:${program}`,
  onExit: { _tag: "None" } as const,
  requestCapabilities: [],
  grantCapabilities: [],
  public: false
})

// What the spawning programs saw, per test (reset by each).
let spawned: Array<string> = []
let refused: Array<string> = []
let starts = 0

const programs: Record<string, NativeProgram> = {
  silent: () => Effect.never,
  crash: () => Effect.sync(() => void starts++).pipe(Effect.andThen(Effect.die(new Error("boom")))),
  /** A spawn bomb: eight copies of itself, each doing the same. */
  bomb: (api) =>
    Effect.gen(function*() {
      for (let i = 0; i < 8; i++) {
        const r = yield* Effect.promise(() => api.spawn(spawnOptions("bomb")))
        if (r instanceof SpawnFailed) refused.push(r.limit ?? r.reason)
        else spawned.push(r.toString())
      }
      yield* Effect.never
    }),
  /** Spawns one silent child per request it gets, answering with the outcome. */
  parent: (api) =>
    Effect.forever(Effect.gen(function*() {
      const item = yield* api.receiveEffect
      if (item._tag !== "Message") return
      const r = yield* Effect.promise(() => api.spawn(spawnOptions("silent", bodyText(item.message))))
      api.sendResponse({ _tag: "Response", inherit: false, body: text(r instanceof SpawnFailed ? `refused:${r.limit ?? r.reason}` : r.toString()), metadata: undefined, capabilities: [], context: undefined }, undefined)
    }))
}

describe("mailboxes are bounded in bytes", () => {
  it.effect("a silent process's mailbox takes 64 MiB of 10 MiB messages, then the sender gets MailboxFull", () =>
    withKernel(Effect.gen(function*() {
      yield* startNative("sink:test:sys", "silent", { public: true })
      const src = yield* driver("src:test:sys", [])
      const blob = { mime: undefined, bytes: new Uint8Array(10 * MiB - 16) }
      // The probe: 1,024 messages of 10 MiB into one silent mailbox (the count bound alone took them all).
      const outcomes = Array.from({ length: 1024 }, () =>
        src.sendRequest(at("sink:test:sys"), request({ body: new Uint8Array(8) }), undefined, blob))
      const accepted = outcomes.filter((o) => o === undefined).length
      assert.strictEqual(accepted, 6)
      assert.isTrue(outcomes.slice(6).every((o) => o?.reason === "MailboxFull"))
      const k = yield* Kernel
      assert.strictEqual(k.info("sink:test:sys")?.mailboxBytes, 6 * (10 * MiB - 8))
      // Small messages still fit beside them while the count allows.
      assert.isUndefined(src.sendRequest(at("sink:test:sys"), request({ body: text("small") }), undefined, undefined))
    }), { programs }))

  it.effect("the node's budget of queued bytes caps all mailboxes together and is given back when they empty", () =>
    withKernel(Effect.gen(function*() {
      const k = yield* Kernel
      yield* startNative("a:test:sys", "silent", { public: true })
      const b = yield* driver("b:test:sys", [], true)
      const src = yield* driver("src:test:sys", [])
      const blob = { mime: undefined, bytes: new Uint8Array(10 * MiB - 1) }
      const send = (to: string) => src.sendRequest(at(to), request({ body: new Uint8Array(1) }), undefined, blob)
      assert.isUndefined(send("a:test:sys"))
      assert.isUndefined(send("a:test:sys"))
      assert.strictEqual(send("a:test:sys")?.reason, "MailboxFull") // 30 MiB > 25 MiB for the node
      assert.strictEqual(send("b:test:sys")?.reason, "MailboxFull") // b's own mailbox is empty
      // Killing a frees what its mailbox held.
      assert.isTrue(yield* k.kill("a:test:sys"))
      assert.isUndefined(send("b:test:sys"))
      assert.isUndefined(send("b:test:sys"))
      assert.strictEqual(send("b:test:sys")?.reason, "MailboxFull")
      // Receiving frees it too.
      const got = yield* b.receiveEffect
      assert.strictEqual(got._tag, "Message")
      assert.isUndefined(send("b:test:sys"))
      assert.strictEqual(k.info("b:test:sys")?.mailboxBytes, 2 * 10 * MiB)
    }), { programs, kernel: { queuedBytes: 25 * MiB } }))

  it.effect("items set aside by send-and-await-response still count, and are given back when taken", () =>
    withKernel(Effect.gen(function*() {
      const k = yield* Kernel
      yield* startNative("echo:test:sys", "echo", { public: true })
      const me = yield* driver("me:test:sys", [], true)
      const src = yield* driver("src:test:sys", [])
      const blob = { mime: undefined, bytes: new Uint8Array(4 * MiB) }
      for (let i = 0; i < 3; i++) {
        assert.isUndefined(src.sendRequest(at("me:test:sys"), request({ body: text(String(i)) }), undefined, blob))
      }
      // The three requests are set aside while `me` awaits echo's answer.
      const r = yield* ask(me, "echo:test:sys", "ping")
      assert.isTrue("source" in r)
      assert.strictEqual(k.info("me:test:sys")?.mailboxBytes, 3 * (4 * MiB + 1))
      for (let i = 0; i < 3; i++) yield* me.receiveEffect
      assert.strictEqual(k.info("me:test:sys")?.mailboxBytes, 0)
    }), { programs }))
})

describe("spawn limits", () => {
  it.live("a spawn bomb of fan-out 8 is stopped at its limits; the node keeps answering and shuts down", () =>
    withKernel(Effect.gen(function*() {
      spawned = []
      refused = []
      const k = yield* Kernel
      yield* startNative("echo:test:sys", "echo", { public: true })
      const api = yield* driver("d:test:sys", [], true)
      const t0 = performance.now()
      yield* startNative("bomb:bomb:sys", "bomb")
      // Every live bomb tries eight spawns: it is over once all of those were answered.
      yield* waitUntil(() => spawned.length + refused.length >= (spawned.length + 1) * 8, "the bomb to be refused")
      const ms = performance.now() - t0
      const live = k.processes().filter((p) => p.id.endsWith(":bomb:sys")).length
      assert.isAtMost(live, 512)
      assert.strictEqual(live, spawned.length + 1)
      assert.isAbove(refused.length, 0)
      assert.isTrue(refused.every((r) => r === "rate" || r === "package"))
      // Answered well within a second, right after the bomb.
      const s = performance.now()
      const r = yield* ask(api, "echo:test:sys", "still here")
      assert.isTrue("source" in r && bodyText(r.message) === "still here")
      assert.isBelow(performance.now() - s, 1000)
      assert.isBelow(ms, 10_000)
    }), { programs }), { timeout: 30_000 })

  it.effect("per process: live children beyond the cap are refused; a child's end frees its place", () =>
    withKernel(Effect.gen(function*() {
      const k = yield* Kernel
      yield* startNative("parent:test:sys", "parent", { public: true })
      const api = yield* driver("d:test:sys", [], true)
      const answers: Array<string> = []
      for (const name of ["c1", "c2", "c3", "c4"]) {
        const r = yield* ask(api, "parent:test:sys", name)
        answers.push("source" in r ? bodyText(r.message) : "error")
      }
      assert.deepStrictEqual(answers, ["c1:test:sys", "c2:test:sys", "c3:test:sys", "refused:children"])
      assert.isUndefined(k.info("c4:test:sys"))
      assert.isTrue(yield* k.kill("c2:test:sys"))
      const again = yield* ask(api, "parent:test:sys", "c5")
      assert.strictEqual("source" in again ? bodyText(again.message) : "", "c5:test:sys")
    }), { programs, kernel: { spawn: { childrenPerProcess: 3, processesPerPackage: 100, perSecond: 100, burst: 100 } } }))

  it.effect("per package: live processes and spawn rate; the rate refills with time", () =>
    withKernel(Effect.gen(function*() {
      const k = yield* Kernel
      const parent = yield* k.session("p:test:sys", { capabilities: [], public: true })
      const attempt = (name: string) =>
        Effect.map(Effect.promise(() => parent.spawn(spawnOptions("silent", name))), (r) => r instanceof SpawnFailed ? `refused:${r.limit}` : "ok")
      // burst 3, then the rate refuses at once (never waits)
      assert.deepStrictEqual([yield* attempt("a"), yield* attempt("b"), yield* attempt("c"), yield* attempt("d")], ["ok", "ok", "ok", "refused:rate"])
      yield* TestClock.adjust("1 second")
      // one token a second; 4 live processes is the package's cap (the session is not one)
      assert.strictEqual(yield* attempt("d"), "ok")
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(yield* attempt("e"), "refused:package")
      const spawnError = yield* Effect.promise(() => parent.spawn(spawnOptions("silent", "e")))
      assert.instanceOf(spawnError, SpawnFailed)
      if (spawnError instanceof SpawnFailed) assert.strictEqual(spawnError.reason, "no-file-at-path")
      assert.isTrue(yield* k.kill("a:test:sys"))
      assert.strictEqual(yield* attempt("e"), "ok")
    }), { programs, kernel: { spawn: { childrenPerProcess: 100, processesPerPackage: 4, perSecond: 1, burst: 3 } } }))
})

describe("crash loops and safe boot", () => {
  it.effect("a Restart process that keeps exiting is stopped and marked after 5 restarts in a minute; RunProcess starts it again", () =>
    Effect.gen(function*() {
      starts = 0
      const { layer, lines } = testKernel({ programs })
      yield* Effect.scoped(Effect.provide(Effect.gen(function*() {
        const k = yield* Kernel
        yield* startNative("echo:test:sys", "echo", { public: true })
        yield* startNative("crash:test:sys", "crash", { onExit: "Restart", public: true })
        for (let i = 0; i < 40; i++) {
          yield* settle
          yield* TestClock.adjust("1 second")
        }
        assert.strictEqual(starts, 6)
        const info = k.info("crash:test:sys")
        assert.strictEqual(info?.status, "stopped")
        assert.include(info?.stoppedBecause ?? "", "restarted 5 times")
        assert.isTrue(lines.some((l) => l.level === 0 && l.text.includes("process crash:test:sys stopped")))
        // It stays stopped, its record kept.
        yield* TestClock.adjust("5 minutes")
        yield* settle
        assert.strictEqual(starts, 6)
        const api = yield* driver("d:test:sys", ["kernel:distro:sys"], true)
        assert.strictEqual(api.sendRequest(at("crash:test:sys"), request({ body: text("x") }), undefined, undefined)?.reason, "NotRunning")
        assert.strictEqual(yield* kernelCall(api, { RunProcess: "crash:test:sys" }), "StartedProcess")
        yield* settle
        assert.strictEqual(starts, 8)
        const r = yield* ask(api, "echo:test:sys", "fine")
        assert.isTrue("source" in r)
      }), layer))
    }))

  it.effect("a home holding a crash-looping process boots; the process ends stopped, the rest runs", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-ts-crashloop-"))
      starts = 0
      yield* Effect.scoped(Effect.provide(Effect.gen(function*() {
        const k = yield* Kernel
        yield* k.initialize({ id: pidOf("crash:test:sys"), handle: "native:crash", witVersion: null, onExit: { _tag: "Restart" }, public: false, capabilities: [], bytes: undefined })
        yield* k.initialize({ id: pidOf("keep:test:sys"), handle: "native:echo", witVersion: null, onExit: { _tag: "Restart" }, public: true, capabilities: [], bytes: undefined })
      }), Layer.fresh(testKernel({ home, programs }).layer)))
      yield* Effect.scoped(Effect.provide(Effect.gen(function*() {
        const k = yield* Kernel
        yield* k.boot
        for (let i = 0; i < 40; i++) {
          yield* settle
          yield* TestClock.adjust("1 second")
        }
        assert.strictEqual(k.info("crash:test:sys")?.status, "stopped")
        assert.strictEqual(k.info("keep:test:sys")?.status, "running")
        const api = yield* driver("d:test:sys", [], true)
        const r = yield* ask(api, "keep:test:sys", "up")
        assert.isTrue("source" in r && bodyText(r.message) === "up")
      }), Layer.fresh(testKernel({ home, programs }).layer)))
      fs.rmSync(home, { recursive: true, force: true })
    }))

  it.effect("a home holding more processes of a package than its limit (a spawn bomb's, from before the limits) boots the limit's worth", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-ts-bombhome-"))
      yield* Effect.scoped(Effect.provide(Effect.gen(function*() {
        const k = yield* Kernel
        for (let i = 0; i < 6; i++) {
          yield* k.initialize({ id: pidOf(`b${i}:bomb:sys`), handle: "native:echo", witVersion: null, onExit: { _tag: "Restart" }, public: true, capabilities: [], bytes: undefined })
        }
        yield* k.initialize({ id: pidOf("keep:test:sys"), handle: "native:echo", witVersion: null, onExit: { _tag: "Restart" }, public: true, capabilities: [], bytes: undefined })
      }), Layer.fresh(testKernel({ home, programs }).layer)))
      const { layer, lines } = testKernel({ home, programs, kernel: { spawn: { childrenPerProcess: 128, processesPerPackage: 4, perSecond: 64, burst: 128 } } })
      yield* Effect.scoped(Effect.provide(Effect.gen(function*() {
        const k = yield* Kernel
        yield* k.boot
        yield* settle
        const statuses = k.processes().filter((p) => p.id.endsWith(":bomb:sys")).map((p) => p.status).sort()
        assert.deepStrictEqual(statuses, ["paused", "paused", "running", "running", "running", "running"])
        assert.strictEqual(k.info("keep:test:sys")?.status, "running")
        assert.isTrue(lines.some((l) => l.level === 0 && l.text.includes("package bomb:sys has more stored processes than its limit of 4: 2 not started")))
      }), Layer.fresh(layer)))
      fs.rmSync(home, { recursive: true, force: true })
    }))

  it.effect("safe mode boots with userspace paused: listed, killable, startable one by one", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-ts-safe-"))
      starts = 0
      yield* Effect.scoped(Effect.provide(Effect.gen(function*() {
        const k = yield* Kernel
        yield* k.initialize({ id: pidOf("crash:test:sys"), handle: "native:crash", witVersion: null, onExit: { _tag: "Restart" }, public: false, capabilities: [], bytes: undefined })
        yield* k.initialize({ id: pidOf("keep:test:sys"), handle: "native:echo", witVersion: null, onExit: { _tag: "Restart" }, public: true, capabilities: [], bytes: undefined })
      }), Layer.fresh(testKernel({ home, programs }).layer)))
      const safe: Partial<KernelSettings> = { safeMode: true }
      const { layer, lines } = testKernel({ home, programs, kernel: safe })
      yield* Effect.scoped(Effect.provide(Effect.gen(function*() {
        const k = yield* Kernel
        yield* k.boot
        yield* settle
        assert.strictEqual(starts, 0)
        assert.strictEqual(k.info("crash:test:sys")?.status, "paused")
        assert.strictEqual(k.info("keep:test:sys")?.status, "paused")
        assert.isTrue(lines.some((l) => l.text.includes("safe mode: 2 processes not started")))
        const api = yield* driver("d:test:sys", ["kernel:distro:sys"], true)
        assert.deepStrictEqual(yield* kernelCall(api, { KillProcess: "crash:test:sys" }), { KilledProcess: "crash:test:sys" })
        assert.isUndefined(k.info("crash:test:sys"))
        assert.strictEqual(yield* kernelCall(api, { RunProcess: "keep:test:sys" }), "StartedProcess")
        const r = yield* ask(api, "keep:test:sys", "awake")
        assert.isTrue("source" in r && bodyText(r.message) === "awake")
      }), Layer.fresh(layer)))
      // The kill was durable: the next (normal) boot has only keep.
      yield* Effect.scoped(Effect.provide(Effect.gen(function*() {
        const k = yield* Kernel
        yield* k.boot
        yield* settle
        assert.isUndefined(k.info("crash:test:sys"))
        assert.strictEqual(k.info("keep:test:sys")?.status, "running")
        assert.strictEqual(starts, 0)
      }), Layer.fresh(testKernel({ home, programs }).layer)))
      fs.rmSync(home, { recursive: true, force: true })
    }))
})
