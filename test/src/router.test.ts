import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Result, Schema } from "effect"
import { TestClock } from "effect/testing"
import { Kernel, messagingCap } from "../../src/Kernel.ts"
import { bodyText, MAX_MESSAGE_BYTES, request, response, text } from "../../src/Message.ts"
import { SendRefused } from "../../src/ProcessApi.ts"
import { address } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { onExitFromJson, OnExitJson, onExitToJson } from "../../src/KernelCommandProtocol.ts"
import { ask, at, driver, startNative, withKernel } from "./helpers.ts"

describe("router", () => {
  it.effect("delivers a request and pairs the response by id", () =>
    withKernel(Effect.gen(function*() {
      yield* startNative("echo:test:sys", "echo")
      // Responses are capability-checked too: the driver is public so echo may answer it.
      const api = yield* driver("driver:test:sys", ["echo:test:sys"], true)
      const r = yield* ask(api, "echo:test:sys", "hello")
      assert.isTrue("message" in r && "source" in r)
      if ("source" in r) {
        assert.strictEqual(bodyText(r.message), "hello")
        assert.strictEqual(r.source.toString(), "test.dev@echo:test:sys")
      }
    })))

  it.effect("refuses a sender without the messaging capability, immediately", () =>
    withKernel(Effect.gen(function*() {
      yield* startNative("echo:test:sys", "echo")
      const api = yield* driver("stranger:test:sys", [])
      const refused = api.sendRequest(at("echo:test:sys"), request({ body: text("x"), expectsResponse: 5n }), undefined, undefined)
      assert.instanceOf(refused, SendRefused)
      assert.strictEqual(refused?.reason, "CapabilityDenied")
    })))

  it.effect("a public target needs no capability; granting one lets the sender through", () =>
    withKernel(Effect.gen(function*() {
      const k = yield* Kernel
      yield* startNative("pub:test:sys", "echo", { public: true })
      yield* startNative("priv:test:sys", "echo")
      const api = yield* driver("d:test:sys", [], true)
      const r1 = yield* ask(api, "pub:test:sys", "a")
      assert.isTrue("source" in r1)
      assert.strictEqual(api.sendRequest(at("priv:test:sys"), request({ expectsResponse: 5n }), undefined, undefined)?.reason, "CapabilityDenied")
      yield* k.grant("d:test:sys", [messagingCap(k.node, "priv:test:sys")])
      const r2 = yield* ask(api, "priv:test:sys", "b")
      assert.isTrue("source" in r2 && bodyText(r2.message) === "b")
    })))

  it.effect("returns the sender's context with the response and drops unsolicited responses", () =>
    withKernel(Effect.gen(function*() {
      yield* startNative("echo:test:sys", "echo")
      const api = yield* driver("d:test:sys", ["echo:test:sys"], true)
      const other = yield* driver("o:test:sys", ["d:test:sys"])
      // An unsolicited response from `other` must never reach d.
      yield* Effect.sync(() => other.sendRequest(at("d:test:sys"), request({ body: text("req") }), undefined, undefined))
      assert.isUndefined(api.sendRequest(at("echo:test:sys"), request({ body: text("ping"), expectsResponse: 5n }), new Uint8Array([7, 8]), undefined))
      const first = yield* api.receiveEffect
      assert.strictEqual(first._tag, "Message")
      if (first._tag === "Message") assert.strictEqual(bodyText(first.message), "req")
      const second = yield* api.receiveEffect
      assert.strictEqual(second._tag, "Message")
      if (second._tag === "Message" && second.message._tag === "Response") {
        assert.deepStrictEqual(Array.from(second.message.context ?? []), [7, 8])
        assert.strictEqual(bodyText(second.message), "ping")
      } else assert.fail("expected a response")
    })))

  it.effect("an expects-response timeout arrives as SendError timeout with context and blob", () =>
    withKernel(Effect.gen(function*() {
      yield* startNative("silent:test:sys", "silent")
      const api = yield* driver("d:test:sys", ["silent:test:sys"])
      api.sendRequest(at("silent:test:sys"), request({ body: text("q"), expectsResponse: 3n }), new Uint8Array([1]), { mime: "x/y", bytes: new Uint8Array([9]) })
      const fiber = yield* Effect.forkChild(api.receiveEffect)
      yield* TestClock.adjust("2 seconds")
      assert.isUndefined(fiber.pollUnsafe())
      yield* TestClock.adjust("2 seconds")
      const got = yield* Fiber.join(fiber)
      assert.strictEqual(got._tag, "SendError")
      if (got._tag === "SendError") {
        assert.strictEqual(got.error.kind, "timeout")
        assert.strictEqual(got.error.target.toString(), "test.dev@silent:test:sys")
        assert.deepStrictEqual(Array.from(got.context ?? []), [1])
        assert.deepStrictEqual(Array.from(got.error.blob?.bytes ?? []), [9])
      }
    }), { programs: { silent: (api) => Effect.forever(api.receiveEffect) } }))

  it.effect("unknown targets: immediate timeout for requests expecting a response", () =>
    withKernel(Effect.gen(function*() {
      const api = yield* driver("d:test:sys", [])
      const r = yield* ask(api, "nobody:test:sys", "x")
      assert.isTrue("kind" in r && r.kind === "timeout")
    })))

  it.effect("messages for another node go to net, which answers offline", () =>
    withKernel(Effect.gen(function*() {
      const k = yield* Kernel
      const api = yield* driver("d:test:sys", [])
      yield* k.grant("d:test:sys", [{ issuer: address("test.dev@kernel:distro:sys"), params: "\"network\"" }])
      const r = yield* api.sendAndAwaitEffect(address("other.dev@echo:test:sys"), request({ expectsResponse: 5n }))
      assert.isTrue("kind" in r && r.kind === "offline")
      const noNet = yield* driver("n:test:sys", [])
      assert.strictEqual(noNet.sendRequest(address("other.dev@echo:test:sys"), request({}), undefined, undefined)?.reason, "NoNetworkCapability")
    })))

  it.effect("refuses oversized messages", () =>
    withKernel(Effect.gen(function*() {
      yield* startNative("echo:test:sys", "echo")
      const api = yield* driver("d:test:sys", ["echo:test:sys"])
      const refused = api.sendRequest(at("echo:test:sys"), request({ body: new Uint8Array(MAX_MESSAGE_BYTES + 1) }), undefined, undefined)
      assert.strictEqual(refused?.reason, "MessageTooLarge")
    })))

  it.effect("keeps per-sender FIFO order", () =>
    withKernel(Effect.gen(function*() {
      const sink = yield* driver("sink:test:sys", [], true)
      const src = yield* driver("src:test:sys", [])
      for (let i = 0; i < 500; i++) src.sendRequest(at("sink:test:sys"), request({ body: text(String(i)) }), undefined, undefined)
      for (let i = 0; i < 500; i++) {
        const m = yield* sink.receiveEffect
        assert.strictEqual(m._tag === "Message" ? bodyText(m.message) : "", String(i))
      }
    })))

  it.effect("a full mailbox refuses the sender with MailboxFull and keeps what it holds", () =>
    withKernel(Effect.gen(function*() {
      const sink = yield* driver("sink:test:sys", [], true)
      const src = yield* driver("src:test:sys", [])
      const outcomes = Array.from({ length: 12 }, (_, i) =>
        src.sendRequest(at("sink:test:sys"), request({ body: text(String(i)) }), undefined, undefined))
      assert.isTrue(outcomes.slice(0, 8).every((o) => o === undefined))
      assert.isTrue(outcomes.slice(8).every((o) => o?.reason === "MailboxFull"))
      const m = yield* sink.receiveEffect
      assert.strictEqual(m._tag === "Message" ? bodyText(m.message) : "", "0")
    }), { mailboxCapacity: 8 }))

  it.effect("inherit: a forwarded request's response lands at the original requester", () =>
    withKernel(Effect.gen(function*() {
      // proxy forwards every request to echo with inherit, never answering itself.
      yield* startNative("echo:test:sys", "echo", { public: true })
      yield* startNative("proxy:test:sys", "proxy", { public: true })
      const k = yield* Kernel
      yield* k.grant("echo:test:sys", [messagingCap(k.node, "d:test:sys")])
      const api = yield* driver("d:test:sys", [], true)
      const r = yield* ask(api, "proxy:test:sys", "through")
      assert.isTrue("source" in r)
      if ("source" in r) {
        assert.strictEqual(r.source.toString(), "test.dev@echo:test:sys")
        assert.strictEqual(bodyText(r.message), "through")
      }
    }), {
      programs: {
        proxy: (api) =>
          Effect.forever(Effect.map(api.receiveEffect, (item) => {
            if (item._tag === "Message" && item.message._tag === "Request") {
              api.sendRequest(at("echo:test:sys"), { ...item.message, inherit: true, expectsResponse: undefined }, undefined, undefined)
            }
          }))
      }
    }))

  it.effect("responses are capability-checked too", () =>
    withKernel(Effect.gen(function*() {
      yield* startNative("echo:test:sys", "echo", { public: true })
      // d is not public and never granted echo messaging: echo's answer is refused.
      const api = yield* driver("d:test:sys", [])
      api.sendRequest(at("echo:test:sys"), request({ body: text("x"), expectsResponse: 1n }), undefined, undefined)
      const fiber = yield* Effect.forkChild(api.receiveEffect)
      yield* TestClock.adjust("2 seconds")
      const got = yield* Fiber.join(fiber)
      assert.strictEqual(got._tag, "SendError")
    })))

  it.effect("send-and-await keeps other arrivals for later, in order, counted against the bound", () =>
    withKernel(Effect.gen(function*() {
      yield* startNative("slow:test:sys", "slow", { public: true })
      const api = yield* driver("d:test:sys", [], true)
      const other = yield* driver("o:test:sys", [])
      const fiber = yield* Effect.forkChild(api.sendAndAwaitEffect(at("slow:test:sys"), request({ body: text("q"), expectsResponse: 10n })))
      yield* Effect.repeat(Effect.yieldNow, { times: 20 })
      // 7 arrivals while d waits; with capacity 8 the 8th and 9th are refused.
      const outcomes = Array.from({ length: 9 }, (_, i) =>
        other.sendRequest(at("d:test:sys"), request({ body: text(`m${i}`) }), undefined, undefined)?.reason)
      yield* Effect.repeat(Effect.yieldNow, { times: 20 })
      const more = other.sendRequest(at("d:test:sys"), request({ body: text("late") }), undefined, undefined)?.reason
      yield* TestClock.adjust("1 second")
      const r = yield* Fiber.join(fiber)
      assert.isTrue("source" in r && bodyText(r.message) === "q")
      assert.deepStrictEqual(outcomes.filter((o) => o === undefined).length, 8)
      assert.strictEqual(more, "MailboxFull")
      for (let i = 0; i < 8; i++) {
        const m = yield* api.receiveEffect
        assert.strictEqual(m._tag === "Message" ? bodyText(m.message) : "", `m${i}`)
      }
    }), {
      mailboxCapacity: 8,
      programs: {
        // answers after a second, so the requester is still waiting when others arrive
        slow: (api) => Effect.forever(Effect.flatMap(api.receiveEffect, (item) =>
          Effect.sleep("1 second").pipe(Effect.andThen(Effect.sync(() => {
            if (item._tag === "Message") api.sendResponse(response({ body: item.message.body }), undefined)
          })))))
      }
    }))

  it("u64s inside kernel JSON (on-exit requests) survive a round trip exactly", () => {
    const big = 18446744073709551557n
    const text1 = `{"Requests":[["a.os@p:q:r",{"inherit":false,"expects_response":${big},"body":[1,2],"metadata":null,"capabilities":[]},null]]}`
    const decoded = Schema.decodeUnknownSync(OnExitJson)(Result.getOrThrow(Json.parse(text1)))
    const onExit = onExitFromJson(decoded)
    assert.strictEqual(onExit._tag === "Requests" ? onExit.requests[0]!.request.expectsResponse : 0n, big)
    assert.strictEqual(Json.stringify(onExitToJson(onExit)), text1)
  })
})
