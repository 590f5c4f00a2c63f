import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { testKernel } from "../../layers/TestLive.ts"
import { signingBytes } from "../../src/Capabilities.ts"
import { address } from "../../src/Ids.ts"
import { Kernel, messagingCap } from "../../src/Kernel.ts"
import { restartDelays } from "../../src/RestartSchedule.ts"
import { bodyText, request, response, text } from "../../src/Message.ts"
import { Identity } from "../../src/Identity.ts"
import { type NativeProgram, SpawnFailed } from "../../src/ProcessApi.ts"
import { ask, at, decodeBody, driver, kernelCall, pidOf, startNative, withKernel } from "./helpers.ts"

let starts = 0
const programs: Record<string, NativeProgram> = {
  crash: () => Effect.sync(() => void starts++).pipe(Effect.andThen(Effect.die(new Error("boom")))),
  quit: () => Effect.void,
  farewell: (api) =>
    Effect.sync(() =>
      api.setOnExit({
        _tag: "Requests",
        requests: [{ target: at("sink:test:sys"), request: request({ body: text("bye"), expectsResponse: 5n }), blob: undefined }]
      })
    ),
  spawner: (api) =>
    Effect.gen(function*() {
      const first = yield* api.receiveEffect
      const name = first._tag === "Message" ? bodyText(first.message) : ""
      const child = yield* Effect.promise(() =>
        api.spawn({
          name: name === "" ? undefined : name,
          wasmPath: "native:echo",
          onExit: { _tag: "None" },
          requestCapabilities: [],
          grantCapabilities: [],
          public: false
        })
      )
      const reply = child instanceof SpawnFailed ? `error:${child.reason}` : child.toString()
      if (!(child instanceof SpawnFailed)) {
        const r = yield* api.sendAndAwaitEffect(address(`test.dev@${child}`), request({ body: text("hi child"), expectsResponse: 5n }))
        assert.isTrue("source" in r && bodyText(r.message) === "hi child")
      }
      api.sendResponse(response({ body: text(reply) }), undefined)
      yield* Effect.never
    })
}

describe("process lifecycle", () => {
  it.effect("on-exit None: a process that returns is removed", () =>
    withKernel(Effect.gen(function*() {
      const k = yield* Kernel
      yield* startNative("quit:test:sys", "quit")
      yield* Effect.repeat(Effect.yieldNow, { times: 50 })
      assert.isUndefined(k.info("quit:test:sys"))
    }), { programs }))

  it.effect("on-exit Restart follows Kinode's back-off and a crash stays contained", () =>
    Effect.gen(function*() {
      starts = 0
      const { layer, lines } = testKernel({ programs })
      yield* Effect.scoped(Effect.provide(Effect.gen(function*() {
        const k = yield* Kernel
        yield* startNative("echo:test:sys", "echo")
        yield* startNative("crash:test:sys", "crash", { onExit: "Restart" })
        const settle = Effect.repeat(Effect.yieldNow, { times: 50 })
        yield* settle
        assert.strictEqual(starts, 2) // first start, then an immediate restart
        yield* TestClock.adjust("999 millis")
        yield* settle
        assert.strictEqual(starts, 2)
        yield* TestClock.adjust("1 millis")
        yield* settle
        assert.strictEqual(starts, 3)
        yield* TestClock.adjust("1 seconds")
        yield* settle
        assert.strictEqual(starts, 4)
        yield* TestClock.adjust("1999 millis")
        yield* settle
        assert.strictEqual(starts, 4)
        yield* TestClock.adjust("1 millis")
        yield* settle
        assert.strictEqual(starts, 5)
        assert.strictEqual(k.info("echo:test:sys")?.status, "running")
        assert.isTrue(lines.some((l) => l.level === 0 && l.text.includes("crash:test:sys crashed") && l.text.includes("boom")))
      }), layer))
    }))

  it.effect("back-off delays are 0, <=1s, 1s, 2s, 4s, 8s for a tight crash loop", () =>
    Effect.gen(function*() {
      const b = yield* restartDelays
      const delays: Array<number> = []
      for (let i = 0; i < 6; i++) delays.push(yield* b(0))
      assert.deepStrictEqual(delays, [0, 1000, 2000, 4000, 8000, 16000])
      const b2 = yield* restartDelays
      let now = 0
      const seq: Array<number> = []
      for (let i = 0; i < 6; i++) {
        const d = yield* b2(now)
        seq.push(d)
        now += d
      }
      assert.deepStrictEqual(seq, [0, 1000, 1000, 2000, 4000, 8000])
      // a process that ran quietly past its window starts again from 0
      assert.strictEqual(yield* b2(now + 60_000), 0)
    }).pipe(Effect.orDie))

  it.effect("on-exit Requests are sent when the process ends", () =>
    withKernel(Effect.gen(function*() {
      const sink = yield* driver("sink:test:sys", [], true)
      yield* startNative("farewell:test:sys", "farewell")
      const got = yield* sink.receiveEffect
      assert.strictEqual(got._tag === "Message" ? bodyText(got.message) : "", "bye")
      // expects-response is forced off for on-exit requests.
      assert.isTrue(got._tag === "Message" && got.message._tag === "Request" && got.message.expectsResponse === undefined)
    }), { programs }))

  it.effect("spawn: child runs with messaging both ways; a taken name is name-taken", () =>
    withKernel(Effect.gen(function*() {
      const k = yield* Kernel
      yield* startNative("spawner:test:sys", "spawner", { public: true })
      yield* startNative("spawner2:test:sys", "spawner", { public: true })
      const api = yield* driver("d:test:sys", [], true)
      const r = yield* ask(api, "spawner:test:sys", "kid")
      assert.isTrue("source" in r && bodyText(r.message) === "kid:test:sys")
      assert.isTrue(k.hasCapability("kid:test:sys", messagingCap(k.node, "spawner:test:sys")))
      assert.isTrue(k.hasCapability("spawner:test:sys", messagingCap(k.node, "kid:test:sys")))
      const again = yield* ask(api, "spawner2:test:sys", "kid")
      assert.isTrue("source" in again && bodyText(again.message) === "error:name-taken")
    }), { programs }))

  it.effect("spawn without a name picks a random u64 name", () =>
    withKernel(Effect.gen(function*() {
      yield* startNative("spawner:test:sys", "spawner", { public: true })
      const api = yield* driver("d:test:sys", [], true)
      const r = yield* ask(api, "spawner:test:sys", "")
      assert.isTrue("source" in r)
      if ("source" in r) assert.match(bodyText(r.message), /^\d+:test:sys$/)
    }), { programs }))
})

describe("kernel commands", () => {
  const initEcho = (id: string, extra: Record<string, unknown> = {}) => ({
    InitializeProcess: {
      id,
      wasm_bytes_handle: "native:echo",
      wit_version: null,
      on_exit: "None",
      initial_capabilities: [],
      public: false,
      ...extra
    }
  })

  it.effect("initialize, run, kill through messages; the sender may message its creation", () =>
    withKernel(Effect.gen(function*() {
      const k = yield* Kernel
      const api = yield* driver("root:test:sys", ["kernel:distro:sys"], true)
      assert.strictEqual(yield* kernelCall(api, initEcho("e:test:sys")), "InitializedProcess")
      assert.strictEqual(yield* kernelCall(api, initEcho("e:test:sys")), "InitializeProcessError")
      assert.strictEqual(yield* kernelCall(api, { RunProcess: "e:test:sys" }), "StartedProcess")
      assert.strictEqual(yield* kernelCall(api, { RunProcess: "nope:test:sys" }), "RunProcessError")
      yield* k.grant("e:test:sys", [messagingCap(k.node, "root:test:sys")])
      const r = yield* ask(api, "e:test:sys", "yo")
      assert.isTrue("source" in r && bodyText(r.message) === "yo")
      assert.deepStrictEqual(yield* kernelCall(api, { KillProcess: "e:test:sys" }), { KilledProcess: "e:test:sys" })
      const after = yield* ask(api, "e:test:sys", "gone?")
      assert.isTrue("kind" in after && after.kind === "timeout")
    })))

  it.effect("refuses commands from processes without kernel messaging", () =>
    withKernel(Effect.gen(function*() {
      const api = yield* driver("nobody:test:sys", [], true)
      const refused = api.sendRequest(at("kernel:distro:sys"), request({ body: text("\"Shutdown\""), expectsResponse: 5n }), undefined, undefined)
      assert.strictEqual(refused?.reason, "CapabilityDenied")
    })))

  it.effect("malformed commands get a typed CommandError naming the problem", () =>
    withKernel(Effect.gen(function*() {
      const api = yield* driver("root:test:sys", ["kernel:distro:sys"], true)
      const bad = (yield* kernelCall(api, { RunProcess: 5 })) as { CommandError: { reason: string } }
      assert.match(bad.CommandError.reason, /malformed RunProcess/)
      const unknown = (yield* kernelCall(api, { Frobnicate: {} })) as { CommandError: { reason: string } }
      assert.match(unknown.CommandError.reason, /unknown kernel command "Frobnicate"/)
      const badId = (yield* kernelCall(api, initEcho("not-an-id"))) as { CommandError: { reason: string } }
      assert.match(badId.CommandError.reason, /MissingField/)
      const notJson = yield* api.sendAndAwaitEffect(at("kernel:distro:sys"), request({ body: text("{oops"), expectsResponse: 5n }))
      assert.isTrue("source" in notJson)
      if ("source" in notJson) assert.match(JSON.stringify(decodeBody(notJson.message.body)), /not JSON/)
      const unsafe = yield* kernelCall(api, initEcho("Bad_Name:test:sys"))
      assert.strictEqual(unsafe, "InitializeProcessError")
    })))

  it.effect("grant, drop, HasCap, ProcessMap; only held caps survive InitializeProcess", () =>
    withKernel(Effect.gen(function*() {
      const api = yield* driver("root:test:sys", ["kernel:distro:sys"], true)
      const cap = { issuer: "test.dev@thing:test:sys", params: "{\"b\":1,\"a\":2}" }
      const capReordered = { issuer: "test.dev@thing:test:sys", params: "{ \"a\": 2, \"b\": 1 }" }
      yield* kernelCall(api, initEcho("e:test:sys", { initial_capabilities: [cap] }))
      const has = (on: string, c: unknown) => kernelCall(api, { Debug: { HasCap: { on, cap: c } } })
      assert.deepStrictEqual(yield* has("e:test:sys", cap), { Debug: { HasCap: false } })
      api.sendRequest(at("kernel:distro:sys"), request({ body: text(JSON.stringify({ GrantCapabilities: { target: "e:test:sys", capabilities: [cap] } })) }), undefined, undefined)
      assert.deepStrictEqual(yield* has("e:test:sys", capReordered), { Debug: { HasCap: true } })
      assert.deepStrictEqual(yield* has("ghost:test:sys", cap), { Debug: { HasCap: null } })
      api.sendRequest(at("kernel:distro:sys"), request({ body: text(JSON.stringify({ DropCapabilities: { target: "e:test:sys", capabilities: [capReordered] } })) }), undefined, undefined)
      assert.deepStrictEqual(yield* has("e:test:sys", cap), { Debug: { HasCap: false } })
      const map = (yield* kernelCall(api, { Debug: "ProcessMap" })) as { Debug: { ProcessMap: Record<string, { wasm_bytes_handle: string }> } }
      assert.strictEqual(map.Debug.ProcessMap["e:test:sys"]?.wasm_bytes_handle, "native:echo")
      const one = (yield* kernelCall(api, { Debug: { Process: "e:test:sys" } })) as { Debug: { Process: { on_exit: string } } }
      assert.strictEqual(one.Debug.Process.on_exit, "None")
    })))

  it.effect("any process named kernel is an ordinary process [quirk fixed]", () =>
    withKernel(Effect.gen(function*() {
      yield* startNative("kernel:other:sys", "echo", { public: true })
      const api = yield* driver("d:test:sys", [], true)
      const r = yield* ask(api, "kernel:other:sys", "{\"Debug\":\"ProcessMap\"}")
      assert.isTrue("source" in r && bodyText(r.message) === "{\"Debug\":\"ProcessMap\"}")
    })))
})

describe("capabilities", () => {
  it.effect("are signed by the node key over MessagePack [issuer, params]", () =>
    withKernel(Effect.gen(function*() {
      const k = yield* Kernel
      const key = yield* Identity
      const cap = messagingCap(k.node, "x:test:sys")
      yield* startNative("e:test:sys", "echo")
      yield* k.grant("e:test:sys", [cap])
      const stored = k.capabilities("e:test:sys").find((c) => c.issuer.toString() === cap.issuer.toString() && c.params === cap.params)
      assert.isDefined(stored)
      assert.isTrue(key.verify(signingBytes(cap), stored!.signature))
      assert.isFalse(key.verify(signingBytes({ ...cap, params: "\"network\"" }), stored!.signature))
    })))

  it.effect("save-capabilities keeps only caps the process holds or issued [quirk fixed]", () =>
    withKernel(Effect.gen(function*() {
      const k = yield* Kernel
      const api = yield* driver("d:test:sys", [])
      const forged = { issuer: address("test.dev@vfs:distro:sys"), params: "{\"root\":true}" }
      const own = { issuer: address("test.dev@d:test:sys"), params: "\"anything\"" }
      yield* Effect.promise(() => api.saveCapabilities([forged, own]))
      assert.isFalse(k.hasCapability("d:test:sys", forged))
      assert.isTrue(k.hasCapability("d:test:sys", own))
    })))

  it.effect("a cap whose issuer is the process on another node is not self-issued: not saved, not signed, not sent on [quirk fixed]", () =>
    withKernel(Effect.gen(function*() {
      const k = yield* Kernel
      const sink = yield* driver("sink:test:sys", [], true)
      const api = yield* driver("d:test:sys", [])
      const foreign = { issuer: address("other.os@d:test:sys"), params: "\"x\"" }
      const own = { issuer: address("test.dev@d:test:sys"), params: "\"y\"" }
      yield* Effect.promise(() => api.saveCapabilities([foreign, own]))
      assert.isFalse(k.hasCapability("d:test:sys", foreign))
      assert.isTrue(k.hasCapability("d:test:sys", own))
      // Attached to a message it is dropped, not signed by this node as if it issued it.
      api.sendRequest(at("sink:test:sys"), request({ body: text("caps"), capabilities: [foreign, own] }), undefined, undefined)
      const got = yield* sink.receiveEffect
      assert.isTrue(got._tag === "Message")
      if (got._tag === "Message") assert.deepStrictEqual(got.message.capabilities.map((c) => c.issuer.toString()), ["test.dev@d:test:sys"])
    })))

  it.effect("spawn passes on no cap claiming the parent on another node", () =>
    withKernel(Effect.gen(function*() {
      const k = yield* Kernel
      const parent = yield* k.session("p:test:sys", { capabilities: [], public: true })
      const foreign = { issuer: address("other.os@p:test:sys"), params: "\"x\"" }
      const own = { issuer: address("test.dev@p:test:sys"), params: "\"y\"" }
      const r = yield* Effect.promise(() =>
        parent.spawn({ name: "kid", wasmPath: "native:echo", onExit: { _tag: "None" }, requestCapabilities: [foreign, own], grantCapabilities: [], public: false })
      )
      assert.notInstanceOf(r, SpawnFailed)
      assert.isFalse(k.hasCapability("kid:test:sys", foreign))
      assert.isTrue(k.hasCapability("kid:test:sys", own))
    })))
})

describe("durable kernel state", () => {
  it.effect("the process map and capabilities survive a restart on the same home", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-ts-restart-"))
      const cap = { issuer: address("test.dev@thing:test:sys"), params: "\"x\"" }
      yield* Effect.scoped(Effect.provide(Effect.gen(function*() {
        const k = yield* Kernel
        yield* k.initialize({ id: pidOf("keep:test:sys"), handle: "native:echo", witVersion: null, onExit: { _tag: "Restart" }, public: true, capabilities: [cap], bytes: undefined })
        yield* k.run("keep:test:sys")
      }), Layer.fresh(testKernel({ home }).layer)))
      yield* Effect.scoped(Effect.provide(Effect.gen(function*() {
        const k = yield* Kernel
        yield* k.boot
        const info = k.info("keep:test:sys")
        assert.strictEqual(info?.status, "running")
        assert.strictEqual(info?.onExit._tag, "Restart")
        assert.isTrue(k.hasCapability("keep:test:sys", cap))
        const api = yield* driver("d:test:sys", [], true)
        const r = yield* ask(api, "keep:test:sys", "still here")
        assert.isTrue("source" in r && bodyText(r.message) === "still here")
      }), Layer.fresh(testKernel({ home }).layer)))
      fs.rmSync(home, { recursive: true, force: true })
    }))
})

void Fiber
