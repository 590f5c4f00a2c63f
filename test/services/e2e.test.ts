/** The storage services through the real kernel: router, capability store, process state. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Kernel } from "../../src/Kernel.ts"
import { callService, client, storageNode } from "./support/Node.ts"

const pkg = { package_name: "app", publisher_node: "pub.os" }
const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

const withNode = <A, E>(effect: Effect.Effect<A, E, any>, home?: string) =>
  Effect.scoped(Effect.provide(effect, storageNode(home === undefined ? {} : { home }))) as Effect.Effect<A, E, never>

describe("storage services through the kernel", () => {
  it.effect("kv: Open grants caps in the kernel's store; a stranger is refused", () =>
    withNode(Effect.gen(function*() {
      const app = yield* client("main:app:pub.os")
      const stranger = yield* client("main:other:pub.os")
      assert.deepStrictEqual((yield* callService(app, "kv", { package_id: pkg, db: "d", action: "Open" })).body, "Ok")
      const k = yield* Kernel
      void k
      assert.deepStrictEqual(
        (yield* callService(app, "kv", { package_id: pkg, db: "d", action: { Set: { key: [1], tx_id: null } } }, enc("v"))).body,
        "Ok"
      )
      const got = yield* callService(app, "kv", { package_id: pkg, db: "d", action: { Get: [1] } })
      assert.deepStrictEqual(got.body, { Get: [1] })
      assert.strictEqual(dec(got.blob!.bytes), "v")
      assert.deepStrictEqual(
        (yield* callService(stranger, "kv", { package_id: pkg, db: "d", action: { Get: [1] } })).body,
        { Err: "NoReadCap" }
      )
      assert.deepStrictEqual(
        (yield* callService(stranger, "kv", { package_id: pkg, db: "d", action: "Open" })).body,
        { Err: "MismatchingPackageId" }
      )
      assert.ok(app.ourCapabilities().some((c) => c.issuer.process.toString() === "kv:distro:sys"))
    })))

  it.effect("state: a process's get/set/clear-state go through state:distro:sys", () =>
    withNode(Effect.gen(function*() {
      const app = yield* client("main:app:pub.os")
      assert.isUndefined(yield* Effect.promise(() => app.getState()))
      yield* Effect.promise(() => app.setState(enc("saved")))
      assert.strictEqual(dec((yield* Effect.promise(() => app.getState()))!), "saved")
      yield* Effect.promise(() => app.clearState())
      assert.isUndefined(yield* Effect.promise(() => app.getState()))
    })))

  it.effect("vfs and sqlite round trips", () =>
    withNode(Effect.gen(function*() {
      const app = yield* client("main:app:pub.os")
      assert.deepStrictEqual((yield* callService(app, "vfs", { path: "/app:pub.os/d", action: "CreateDrive" })).body, "Ok")
      yield* callService(app, "vfs", { path: "/app:pub.os/d/f", action: "Write" }, enc("file"))
      assert.strictEqual(dec((yield* callService(app, "vfs", { path: "/app:pub.os/d/f", action: "Read" })).blob!.bytes), "file")
      const stranger = yield* client("main:other:pub.os")
      assert.deepStrictEqual(
        (yield* callService(stranger, "vfs", { path: "/app:pub.os/d/f", action: "Read" })).body,
        { Err: "NoReadCap" }
      )
      assert.deepStrictEqual((yield* callService(app, "sqlite", { package_id: pkg, db: "s", action: "Open" })).body, "Ok")
      yield* callService(app, "sqlite", { package_id: pkg, db: "s", action: { Write: { statement: "CREATE TABLE t (a)", tx_id: null } } })
      yield* callService(app, "sqlite", { package_id: pkg, db: "s", action: { Write: { statement: "INSERT INTO t VALUES (?)", tx_id: null } } }, enc("[42]"))
      const rows = yield* callService(app, "sqlite", { package_id: pkg, db: "s", action: { Query: "SELECT a FROM t" } })
      assert.deepStrictEqual(rows.body, "Read")
      assert.strictEqual(dec(rows.blob!.bytes), `[{"a":42}]`)
    })))

  it.live("a long sqlite statement does not stall the node (it runs in the worker thread)", () =>
    withNode(Effect.gen(function*() {
      const app = yield* client("main:app:pub.os")
      yield* callService(app, "sqlite", { package_id: pkg, db: "slow", action: "Open" })
      yield* callService(app, "kv", { package_id: pkg, db: "d", action: "Open" })
      const other = yield* client("other:app:pub.os")
      yield* callService(other, "kv", { package_id: pkg, db: "d", action: "Open" })
      const slow = yield* Effect.forkChild(callService(app, "sqlite", {
        package_id: pkg,
        db: "slow",
        action: { Query: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000000) SELECT count(*) AS n FROM c" }
      }))
      const t0 = performance.now()
      let answered = 0
      while (performance.now() - t0 < 150) {
        yield* callService(other, "kv", { package_id: pkg, db: "d", action: { Get: [1] } })
        answered++
      }
      const rows = dec((yield* Fiber.join(slow)).blob!.bytes)
      assert.strictEqual(rows, `[{"n":5000000}]`)
      assert.ok(answered > 50, `only ${answered} kv requests answered while sqlite was busy`)
    })))

  it.effect("everything acknowledged survives a restart of the node", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-storage-restart-"))
      yield* withNode(Effect.gen(function*() {
        const app = yield* client("main:app:pub.os")
        yield* callService(app, "kv", { package_id: pkg, db: "d", action: "Open" })
        yield* callService(app, "kv", { package_id: pkg, db: "d", action: { Set: { key: [9], tx_id: null } } }, enc("kept"))
        yield* Effect.promise(() => app.setState(enc("state kept")))
        yield* callService(app, "vfs", { path: "/app:pub.os/d", action: "CreateDrive" })
        yield* callService(app, "vfs", { path: "/app:pub.os/d/f", action: "Write" }, enc("file kept"))
      }), home)
      yield* withNode(Effect.gen(function*() {
        const app = yield* client("main:app:pub.os")
        // kv caps are durable in the kernel's store only for persisted processes; re-Open as apps do at init.
        yield* callService(app, "kv", { package_id: pkg, db: "d", action: "Open" })
        assert.strictEqual(dec((yield* callService(app, "kv", { package_id: pkg, db: "d", action: { Get: [9] } })).blob!.bytes), "kept")
        assert.strictEqual(dec((yield* Effect.promise(() => app.getState()))!), "state kept")
        assert.strictEqual(dec((yield* callService(app, "vfs", { path: "/app:pub.os/d/f", action: "Read" })).blob!.bytes), "file kept")
      }), home)
      fs.rmSync(home, { recursive: true, force: true })
    }))
})
