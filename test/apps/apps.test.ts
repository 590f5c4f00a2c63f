/**
 * The TypeScript apps (componentize-js components built by apps/build.ts) installed as
 * bundled packages on a real node: echo answers, counter keeps its count across a
 * restart of the node on the same home (state service, LMDB), spawner spawns a child
 * from its own package and talks to it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { beforeAll } from "vitest"
import { buildApp } from "../../apps/build.ts"
import { installBundled, Packages, sha256Hex } from "../../services/packages/index.ts"
import { Kernel } from "../../src/Kernel.ts"
import { appNode, ask, askJson, driver } from "./support/AppNode.ts"


const repo = path.resolve(import.meta.dirname, "..", "..")
const bundle = path.join(repo, "apps", "dist")

beforeAll(async () => {
  // Cached: milliseconds when the sources did not change, ~20 s for all three otherwise.
  await Promise.all(["echo", "counter", "spawner"].map((a) => buildApp(a)))
}, 180_000)

const tempHome = () => fs.mkdtempSync(path.join(os.tmpdir(), "kinode-apps-"))

describe("apps", () => {
  it.live("bundled apps install on first boot, and are left alone when unchanged", () =>
    Effect.gen(function*() {
      const first = yield* installBundled({ dir: bundle })
      assert.deepStrictEqual(first.failed, [])
      for (const p of ["counter:sys", "echo:sys", "spawner:sys"]) assert.include(first.installed, p)
      const api = yield* driver(["echo:echo:sys"])
      const answer = yield* ask(api, "echo:echo:sys", "hello from the test")
      assert.strictEqual(new TextDecoder().decode(answer), "hello from the test")
      const second = yield* installBundled({ dir: bundle })
      assert.deepStrictEqual(second.installed, [])
      for (const p of ["counter:sys", "echo:sys", "spawner:sys"]) assert.include(second.unchanged, p)
    }).pipe(Effect.provide(appNode().layer), Effect.scoped), 120_000)

  it.live("a package the user installed in a bundled one's place is kept at the next boot; uninstalled, the bundled one comes back", () =>
    Effect.gen(function*() {
      const packages = yield* Packages
      const echo = { package: "echo", publisher: "sys" }
      const first = yield* installBundled({ dir: bundle, apps: ["echo"] })
      assert.deepStrictEqual(first.installed, ["echo:sys"])
      // The user's own echo:sys (here: the counter's code under that id).
      const theirs = new Uint8Array(fs.readFileSync(path.join(bundle, "counter.zip")))
      yield* packages.install(echo, theirs)
      const again = yield* installBundled({ dir: bundle, apps: ["echo"] })
      assert.deepStrictEqual(again.kept, ["echo:sys"])
      assert.deepStrictEqual(again.installed, [])
      assert.strictEqual(yield* packages.installedHash(echo), sha256Hex(theirs))
      yield* packages.uninstall(echo)
      const back = yield* installBundled({ dir: bundle, apps: ["echo"] })
      assert.deepStrictEqual(back.installed, ["echo:sys"])
      assert.strictEqual(yield* packages.installedHash(echo), sha256Hex(new Uint8Array(fs.readFileSync(path.join(bundle, "echo.zip")))))
    }).pipe(Effect.provide(appNode().layer), Effect.scoped), 120_000)

  it.live("counter keeps its count across a restart of the node on the same home", () =>
    Effect.gen(function*() {
      const home = tempHome()
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(home, { recursive: true, force: true })))
      const C = "counter:counter:sys"
      yield* Effect.gen(function*() {
        yield* (yield* Kernel).boot
        yield* installBundled({ dir: bundle })
        const api = yield* driver([C])
        assert.deepStrictEqual(yield* askJson(api, C, { Add: 5 }), { count: 5 })
        assert.deepStrictEqual(yield* askJson(api, C, { Add: 2 }), { count: 7 })
        assert.deepStrictEqual(yield* askJson(api, C, { Add: "x" }), { error: "bad body (expected {\"Add\": n}, \"Get\" or \"Reset\"): {\"Add\":\"x\"}" })
      }).pipe(Effect.provide(appNode({ home }).layer), Effect.scoped)
      yield* Effect.gen(function*() {
        const kernel = yield* Kernel
        yield* kernel.boot
        // Started by boot from its vfs handle; nothing re-installed.
        const report = yield* installBundled({ dir: bundle })
        assert.deepStrictEqual(report.installed, [])
        assert.strictEqual(kernel.info(C)?.status, "running")
        const api = yield* driver([C])
        assert.deepStrictEqual(yield* askJson(api, C, "\"Get\""), { count: 7 })
      }).pipe(Effect.provide(appNode({ home }).layer), Effect.scoped)
    }).pipe(Effect.scoped), 120_000)

  it.live("spawner spawns a child from its package, hands it caps, and talks to it", () =>
    Effect.gen(function*() {
      yield* installBundled({ dir: bundle })
      const kernel = yield* Kernel
      const S = "spawner:spawner:sys"
      const api = yield* driver([S])
      const r = (yield* askJson(api, S, { Spawn: { name: "kid" } }, 30n)) as {
        error?: unknown
        child: string
        reply: { pong: string; capabilities: Array<string> }
      }
      assert.isUndefined(r.error, JSON.stringify(r))
      assert.strictEqual(r.child, "kid:spawner:sys")
      assert.strictEqual(r.reply.pong, "kid:spawner:sys")
      assert.include(r.reply.capabilities, "{\"kind\":\"read\",\"drive\":\"/spawner:sys/pkg\"}")
      assert.include(r.reply.capabilities, "\"messaging\"")
      assert.strictEqual(kernel.info("kid:spawner:sys")?.status, "running")
      // The same name again is refused with a typed error the app reports.
      const again = (yield* askJson(api, S, { Spawn: { name: "kid" } }, 30n)) as { error: { _tag: string; reason: string } }
      assert.deepStrictEqual(again.error, { _tag: "SpawnFailed", reason: "name-taken" })
    }).pipe(Effect.provide(appNode().layer), Effect.scoped), 120_000)
})
