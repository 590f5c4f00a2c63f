import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Home } from "../../src/Home.ts"
import { State } from "../../services/state/index.ts"
import { TestRuntime } from "./support/TestRuntime.ts"
import { withServices } from "./support/Storage.ts"

const KERNEL = "kernel:distro:sys"
const APP = "main:app:pub.os"
const bytes = (s: string) => new TextEncoder().encode(s)

const state = (source: string, body: unknown, blob?: Uint8Array) =>
  Effect.flatMap(TestRuntime, (t) => t.call("state", source, body, blob === undefined ? {} : { blob }))

describe("state", () => {
  layer(withServices(State.layer))((it) => {
    it.effect("SetState / GetState / DeleteState with Kinode's reply shapes", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual((yield* state(KERNEL, { GetState: APP })).body, { Err: { NotFound: { process_id: APP } } })
        assert.deepStrictEqual((yield* state(KERNEL, { SetState: APP }, bytes("hello"))).body, "SetState")
        const got = yield* state(KERNEL, { GetState: APP })
        assert.deepStrictEqual(got.body, "GetState")
        assert.strictEqual(new TextDecoder().decode(got.blob!.bytes), "hello")
        assert.deepStrictEqual((yield* state(KERNEL, { DeleteState: APP })).body, "DeleteState")
        assert.deepStrictEqual((yield* state(KERNEL, { GetState: APP })).body, { Err: { NotFound: { process_id: APP } } })
      }))

    it.effect("a process may touch only its own state", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual((yield* state(APP, { SetState: APP }, bytes("mine"))).body, "SetState")
        const r = yield* state("other:app:pub.os", { GetState: APP })
        assert.ok(typeof r.body === "object" && r.body !== null && "Err" in r.body)
        assert.ok("BadRequest" in (r.body as { Err: object }).Err)
      }))

    it.effect("bad input: BadJson / BadBytes, never a crash", () =>
      Effect.gen(function*() {
        const t = yield* TestRuntime
        for (const body of [bytes("nope"), { Nope: APP }, { GetState: 5 }, { GetState: "no-colons" }, "GetState", null]) {
          const r = yield* t.call("state", KERNEL, body)
          assert.ok("BadJson" in (r.body as { Err: object }).Err, JSON.stringify(r.body))
        }
        assert.deepStrictEqual((yield* state(KERNEL, { SetState: APP })).body, { Err: { BadBytes: { action: "SetState" } } })
      }))

    it.effect("Backup writes a checkpoint under <home>/kernel/backup (kernel only)", () =>
      Effect.gen(function*() {
        const home = yield* Home
        assert.deepStrictEqual((yield* state(KERNEL, "Backup")).body, "Backup")
        assert.ok(fs.statSync(path.join(home.path, "kernel", "backup", "data.mdb")).size > 0)
        assert.ok("BadRequest" in ((yield* state(APP, "Backup")).body as { Err: object }).Err)
      }))
  })
})
