/**
 * Kernel events at verbosity 3 (src/KernelEvents.ts): one short line per message routed
 * (delivered, to the network, refused and why), per failure handed back to a sender,
 * per process initialized, spawned, started, restarted, killed, removed; and none built
 * below 3 (the test printout keeps every line whatever its level, so a line built at
 * verbosity 2 would show here).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { testKernel } from "../../layers/TestLive.ts"
import { address } from "../../src/Ids.ts"
import { Kernel } from "../../src/Kernel.ts"
import { BODY_CHARS, bodyPreview, KERNEL_EVENTS_LEVEL } from "../../src/KernelEvents.ts"
import { MAX_MESSAGE_BYTES, request, text } from "../../src/Message.ts"
import { Printout } from "../../src/Printout.ts"
import { ask, at, driver, startNative } from "./helpers.ts"

const programs = {
  silent: (api: { readonly receiveEffect: Effect.Effect<unknown> }) => Effect.forever(api.receiveEffect)
}

describe("kernel events (verbosity 3)", () => {
  it.effect("every message routed, refused, failed, and every process start and stop: one short line each; nothing built below 3", () => {
    const { layer, lines } = testKernel({ programs })
    return Effect.gen(function*() {
      const k = yield* Kernel
      const printout = yield* Printout
      const events = () => lines.filter((l) => l.level === KERNEL_EVENTS_LEVEL).map((l) => l.text)

      // Verbosity 2: messages, refusals and process starts make no event line at all.
      printout.setVerbosity(2)
      yield* startNative("echo:test:sys", "echo")
      const api = yield* driver("d:test:sys", ["echo:test:sys"], true)
      yield* ask(api, "echo:test:sys", "quiet")
      yield* ask(api, "nobody:test:sys", "quiet")
      assert.deepStrictEqual(events(), [])

      printout.setVerbosity(3)
      let from = events().length
      const fresh = () => events().slice(from)

      // A request and its response: ids, direction, the wait, the body.
      const r = yield* ask(api, "echo:test:sys", "hello there")
      assert.isTrue("source" in r)
      const [req, res] = fresh()
      const id = /^(\d+) Request d:test:sys -> echo:test:sys \(expects 5s\): 'hello there'$/.exec(req ?? "")
      assert.isNotNull(id, `request line: ${req}`)
      assert.strictEqual(res, `${id![1]} Response echo:test:sys -> d:test:sys: 'hello there'`)

      // Refusals, with their reason.
      from = events().length
      yield* ask(api, "nobody:test:sys", "anyone?")
      assert.match(fresh()[0] ?? "", /^\d+ Request d:test:sys -> nobody:test:sys \(expects 5s\): 'anyone\?' REFUSED NoSuchProcess$/)
      from = events().length
      const big = { mime: "application/octet-stream", bytes: new Uint8Array(MAX_MESSAGE_BYTES + 1) }
      api.sendRequest(at("echo:test:sys"), request({ body: text("big"), expectsResponse: 5n }), undefined, big)
      assert.match(fresh()[0] ?? "", /^\d+ Request d:test:sys -> echo:test:sys \(expects 5s\): 'big' \[blob 10485761 B application\/octet-stream\] REFUSED MessageTooLarge$/)
      from = events().length
      const stranger = yield* driver("stranger:test:sys", [])
      assert.deepStrictEqual(fresh(), ["process stranger:test:sys registered (runtime)"])
      from = events().length
      stranger.sendRequest(at("echo:test:sys"), request({ body: text("let me in") }), undefined, undefined)
      assert.match(fresh()[0] ?? "", /REFUSED CapabilityDenied$/)
      // Another node: shown with its name; without the network capability, refused.
      from = events().length
      api.sendRequest(address("other.dev@echo:test:sys"), request({ body: text("far") }), undefined, undefined)
      assert.match(fresh()[0] ?? "", /^\d+ Request d:test:sys -> other\.dev@echo:test:sys: 'far' REFUSED NoNetworkCapability$/)

      // Bodies are cut short; binary ones are said by size.
      from = events().length
      yield* ask(api, "echo:test:sys", "x".repeat(5000))
      const long = fresh()[0] ?? ""
      assert.include(long, `'${"x".repeat(BODY_CHARS)}'... (5000 bytes)`)
      assert.isBelow(long.length, 200)
      assert.strictEqual(bodyPreview(new Uint8Array([0x82, 0xa1, 0x61, 0x01, 0x00])), "<5 bytes>")
      assert.strictEqual(bodyPreview(new Uint8Array(0)), "(empty)")
      assert.strictEqual(bodyPreview(text("two\nlines")), "'two\\nlines'")

      // A timeout handed back to its sender.
      yield* startNative("silent:test:sys", "silent")
      const toSilent = yield* driver("d2:test:sys", ["silent:test:sys"])
      from = events().length
      toSilent.sendRequest(at("silent:test:sys"), request({ body: text("q"), expectsResponse: 1n }), undefined, undefined)
      const waiting = yield* Effect.forkChild(toSilent.receiveEffect)
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(waiting)
      assert.match(fresh().at(-1) ?? "", /^\d+ SendError timeout to d2:test:sys: its Request to silent:test:sys$/)

      // Processes: initialized, started, exited and removed (on-exit None); killed.
      from = events().length
      yield* startNative("once:test:sys", "echo")
      yield* Effect.repeat(Effect.yieldNow, { times: 20 })
      assert.isTrue(yield* k.kill("once:test:sys"))
      assert.deepStrictEqual(fresh().filter((l) => l.startsWith("process ")), [
        "process once:test:sys initialized from native:echo (private)",
        "process once:test:sys started",
        "process once:test:sys killed",
        "process once:test:sys removed"
      ])

      // Back to 0: silent again.
      printout.setVerbosity(0)
      from = events().length
      yield* ask(api, "echo:test:sys", "quiet again")
      yield* ask(api, "nobody:test:sys", "quiet again")
      assert.deepStrictEqual(fresh(), [])
    }).pipe(Effect.provide(layer), Effect.scoped)
  })
})
