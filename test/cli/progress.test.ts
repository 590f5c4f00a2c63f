/**
 * The boot's "still working" lines (layers/Cli.ts `sayIfSlow`): a step still running
 * after a second is said once, a quicker one (or one that fails first) says nothing.
 * The first boot's progress lines themselves, through node dist/main.js, are in
 * test/cli/terminal.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { sayIfSlow } from "../../layers/Cli.ts"

describe("sayIfSlow", () => {
  it.effect("a step still running after a second is said once; it still returns its result", () =>
    Effect.gen(function*() {
      const said: Array<string> = []
      const step = Effect.as(Effect.sleep("3 seconds"), 42).pipe(sayIfSlow((l) => void said.push(l), "starting the chain"))
      const fiber = yield* Effect.forkChild(step)
      yield* TestClock.adjust("999 millis")
      assert.deepStrictEqual(said, [])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(said, ["starting the chain ..."])
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(yield* Fiber.join(fiber), 42)
      assert.deepStrictEqual(said, ["starting the chain ..."])
    }))

  it.effect("a quick step, or one that fails first, says nothing", () =>
    Effect.gen(function*() {
      const said: Array<string> = []
      const quick = yield* Effect.forkChild(Effect.sleep("500 millis").pipe(sayIfSlow((l) => void said.push(l), "quick")))
      const failing = yield* Effect.forkChild(
        Effect.andThen(Effect.sleep("200 millis"), Effect.fail("no chain")).pipe(sayIfSlow((l) => void said.push(l), "failing"))
      )
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(quick)
      assert.isTrue(Exit.isFailure(yield* Fiber.await(failing)))
      assert.deepStrictEqual(said, [])
    }))
})
