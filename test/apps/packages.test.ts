/**
 * The package installer on a real node (kernel, LMDB, vfs on disk): install, its
 * capabilities, idempotence, uninstall, manifest validation and path escapes. The
 * package is the WAT echo component, so these run in milliseconds.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, type Scope } from "effect"
import { zipSync } from "fflate"
import * as fs from "node:fs"
import * as path from "node:path"
import { Home } from "../../src/Home.ts"
import { Kernel } from "../../src/Kernel.ts"
import { Packages } from "../../services/packages/index.ts"
import { appNode, ask, driver, entry, watPackage } from "./support/AppNode.ts"

const PKG = { package: "hello", publisher: "test.dev" }
const ID = "echo:hello:test.dev"

const failureOf = <E>(exit: Exit.Exit<unknown, E>): E => {
  if (Exit.isSuccess(exit)) return assert.fail("expected a failure")
  const f = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (f === undefined || f._tag !== "Fail") return assert.fail(`expected a typed failure, got ${String(exit.cause)}`)
  return f.error
}

const sortedParams = (caps: ReadonlyArray<{ issuer: { toString(): string }; params: string }>) =>
  caps.map((c) => `${c.issuer.toString()} ${c.params}`).sort()

const run = <A, E>(body: Effect.Effect<A, E, Kernel | Packages | Home | Scope.Scope>) =>
  body.pipe(Effect.provide(appNode().layer), Effect.scoped)

describe("packages", () => {
  it.live("installs a package: files in its drive, the process with exactly its caps, answering", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const kernel = yield* Kernel
      const home = yield* Home
      const zip = yield* Effect.promise(() =>
        watPackage([entry({ request_networking: true, request_capabilities: ["kv:distro:sys", { process: "vfs:distro:sys", params: { root: true } }] })])
      )
      const installed = yield* packages.install(PKG, zip)
      assert.deepStrictEqual(installed.processes, [ID])
      const drive = path.join(home.path, "vfs", "hello:test.dev", "pkg")
      assert.isTrue(fs.existsSync(path.join(drive, "manifest.json")))
      assert.isTrue(fs.existsSync(path.join(drive, "echo.wasm")))
      assert.deepStrictEqual(new Uint8Array(fs.readFileSync(path.join(drive, "hello:test.dev.zip"))), zip)
      const info = kernel.info(ID)!
      assert.strictEqual(info.status, "running")
      assert.strictEqual(info.handle, "/hello:test.dev/pkg/echo.wasm")
      const n = kernel.node
      assert.deepStrictEqual(sortedParams(info.capabilities), [
        `${n}@echo:hello:test.dev "messaging"`,
        `${n}@kernel:distro:sys "network"`,
        `${n}@kv:distro:sys "messaging"`,
        `${n}@vfs:distro:sys {"kind":"read","drive":"/hello:test.dev/pkg"}`,
        `${n}@vfs:distro:sys {"kind":"write","drive":"/hello:test.dev/pkg"}`,
        `${n}@vfs:distro:sys {"root":true}`
      ].sort())
      const api = yield* driver([ID])
      assert.strictEqual(new TextDecoder().decode(yield* ask(api, ID, "hi")), "hi")
      assert.strictEqual(yield* packages.installedHash(PKG), installed.hash)
    })))

  it.live("installing again is idempotent: same processes, same caps, still answering", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const kernel = yield* Kernel
      const zip = yield* Effect.promise(() => watPackage())
      yield* packages.install(PKG, zip)
      const before = sortedParams(kernel.info(ID)!.capabilities)
      const count = kernel.processes().length
      yield* packages.install(PKG, zip)
      assert.deepStrictEqual(sortedParams(kernel.info(ID)!.capabilities), before)
      assert.strictEqual(kernel.processes().length, count)
      const api = yield* driver([ID])
      assert.strictEqual(new TextDecoder().decode(yield* ask(api, ID, "again")), "again")
    })))

  it.live("applies grant_capabilities after every entry exists", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const kernel = yield* Kernel
      const zip = yield* Effect.promise(() =>
        watPackage([
          entry({ process_name: "a", grant_capabilities: ["b:hello:test.dev", { process: "b:hello:test.dev", params: { x: 1 } }] }),
          entry({ process_name: "b" })
        ])
      )
      yield* packages.install(PKG, zip)
      const caps = sortedParams(kernel.info("b:hello:test.dev")!.capabilities)
      assert.include(caps, `${kernel.node}@a:hello:test.dev "messaging"`)
      assert.include(caps, `${kernel.node}@a:hello:test.dev {"x":1}`)
    })))

  it.live("uninstall stops the processes, revokes their caps and removes the drive", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const kernel = yield* Kernel
      const home = yield* Home
      const zip = yield* Effect.promise(() =>
        watPackage([entry({ process_name: "a", grant_capabilities: ["b:hello:test.dev"] }), entry({ process_name: "b" })])
      )
      yield* packages.install(PKG, zip)
      const removed = yield* packages.uninstall(PKG)
      assert.deepStrictEqual([...removed].sort(), ["a:hello:test.dev", "b:hello:test.dev"])
      assert.isUndefined(kernel.info("a:hello:test.dev"))
      assert.isUndefined(kernel.info("b:hello:test.dev"))
      assert.isFalse(kernel.capabilities("b:hello:test.dev").length > 0)
      assert.isFalse(fs.existsSync(path.join(home.path, "vfs", "hello:test.dev", "pkg")))
      assert.isUndefined(yield* packages.installedHash(PKG))
      const again = failureOf(yield* Effect.exit(packages.uninstall(PKG)))
      assert.strictEqual(again._tag, "NotInstalled")
    })))

  it.live("a bad manifest is a typed error naming the field, and nothing is installed", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const kernel = yield* Kernel
      const cases: Array<[unknown, string, string]> = [
        [[{ ...entry(), public: undefined }], "ManifestInvalid", "[0].public"],
        [[entry(), entry({ process_name: "b", on_exit: "Sometimes" })], "ManifestInvalid", "[1].on_exit"],
        [[entry({ request_capabilities: [42] })], "ManifestInvalid", "[0].request_capabilities[0]"],
        [[entry({ process_wasm_path: "/missing.wasm" })], "ManifestInvalid", "[0].process_wasm_path"],
        [[entry({ process_name: "Bad Name" })], "ManifestInvalid", "[0].process_name"],
        [{ not: "an array" }, "ManifestInvalid", ""],
        ["{not json", "ManifestInvalid", ""]
      ]
      for (const [manifest, tag, field] of cases) {
        const zip = yield* Effect.promise(() => watPackage(manifest))
        const e = failureOf(yield* Effect.exit(packages.install(PKG, zip))) as { _tag: string; field?: string }
        assert.strictEqual(e._tag, tag, JSON.stringify(manifest))
        assert.strictEqual(e.field, field, JSON.stringify(manifest))
      }
      const noManifest = zipSync({ "echo.wasm": new Uint8Array([0]) })
      assert.strictEqual(failureOf(yield* Effect.exit(packages.install(PKG, noManifest)))._tag, "ManifestMissing")
      assert.strictEqual(failureOf(yield* Effect.exit(packages.install(PKG, new Uint8Array([1, 2, 3]))))._tag, "ZipUnreadable")
      assert.isUndefined(kernel.info(ID))
    })))

  it.live("refuses paths that escape the drive, before writing anything", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const home = yield* Home
      const evil = new TextEncoder().encode("x")
      for (const name of ["../escaped.txt", "a/../../escaped.txt", "/abs.txt", "a\\..\\b.txt"]) {
        const zip = yield* Effect.promise(() => watPackage([entry()], { [name]: evil }))
        const e = failureOf(yield* Effect.exit(packages.install(PKG, zip)))
        assert.strictEqual(e._tag, "PathEscapes", name)
      }
      const viaWasmPath = yield* Effect.promise(() => watPackage([entry({ process_wasm_path: "../../vfs.wasm" })]))
      assert.strictEqual(failureOf(yield* Effect.exit(packages.install(PKG, viaWasmPath)))._tag, "PathEscapes")
      const badPackage = failureOf(yield* Effect.exit(packages.install({ package: "..", publisher: "x" }, yield* Effect.promise(() => watPackage()))))
      assert.strictEqual(badPackage._tag, "InvalidPackageId")
      assert.isFalse(fs.existsSync(path.join(home.path, "vfs", "escaped.txt")))
      assert.isFalse(fs.existsSync(path.join(home.path, "escaped.txt")))
      assert.isFalse(fs.existsSync(path.join(home.path, "vfs", "hello:test.dev")))
    })))
})
