/**
 * Both package formats of Kinode's history, read unmodified by the installer, on a real
 * node (kernel, LMDB, vfs on disk), with packages built here from our WAT components:
 * - the older one (Kinode 0.5): `metadata.json` in the zip as `{package, publisher,
 *   version: [a, b, c]}`, camelCase `scripts.json`, manifest entries without
 *   `request_capabilities` / `grant_capabilities`, names with `_` (`kns_indexer`), a
 *   `kinode:process@0.7.0` component;
 * - the current one: ERC-721 `metadata.json` (with a 0.6-0.8 `[a, b, c]` wit_version
 *   too), snake_case `scripts.json` with `wit_version`.
 * Legacy names stay confined to installed packages (boot, spawn of their children);
 * `InitializeProcess` and upper case stay refused. And the package id of a zip:
 * metadata (either form), else its `<package>:<publisher>.zip` name.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, type Scope } from "effect"
import { zipSync } from "fflate"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Home } from "../../src/Home.ts"
import { address, pid } from "../../src/Ids.ts"
import { Kernel } from "../../src/Kernel.ts"
import { packageIdOfZip, Packages } from "../../services/packages/index.ts"
import { buildEcho, buildV07 } from "../fixtures/wasm/build.ts"
import { appNode, ask, driver, entry } from "./support/AppNode.ts"

const utf8 = new TextEncoder()
const text = (b: Uint8Array) => new TextDecoder().decode(b)
const json = (v: unknown) => utf8.encode(JSON.stringify(v))

type Env = Kernel | Packages | Home | Scope.Scope
const run = <A, E>(body: Effect.Effect<A, E, Env>) => body.pipe(Effect.provide(appNode().layer), Effect.scoped)

const failureOf = <E>(exit: Exit.Exit<unknown, E>): E => {
  if (Exit.isSuccess(exit)) return assert.fail("expected a failure")
  const f = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (f === undefined || f._tag !== "Fail") return assert.fail(`expected a typed failure, got ${String(exit.cause)}`)
  return f.error
}

/** A manifest entry as Kinode 0.5 wrote them: no request/grant lists at all. */
const legacyEntry = (name: string, wasm: string) => ({
  process_name: name,
  process_wasm_path: `/${wasm}`,
  on_exit: "Restart",
  request_networking: true,
  public: true
})

/** The older format, as Kinode 0.5's `kns_indexer` package was laid out. */
const legacyPackage = async () =>
  zipSync({
    "manifest.json": json([legacyEntry("kns_indexer", "kns_indexer.wasm"), { ...legacyEntry("echo_back", "echo.wasm"), request_capabilities: null }]),
    "metadata.json": json({ package: "kns_indexer", publisher: "sys", version: [0, 2, 0], description: "KNS indexer, 2024" }),
    "scripts.json": json({
      "get_block.wasm": {
        root: false,
        public: false,
        requestNetworking: false,
        requestCapabilities: ["eth:distro:sys", { process: "vfs:distro:sys", params: { root: true } }],
        grantCapabilities: ["eth:distro:sys"]
      },
      "state.wasm": { root: true, public: true, requestNetworking: true, witVersion: 0 }
    }),
    "kns_indexer.wasm": await buildV07(),
    "echo.wasm": await buildEcho(),
    "get_block.wasm": utf8.encode("a script"),
    "state.wasm": utf8.encode("a script")
  })

const LEGACY = { package: "kns_indexer", publisher: "sys" }

describe("package formats", () => {
  it.live("the older format (Kinode 0.5) installs unmodified: old metadata, camelCase scripts, optional cap lists, names with _", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const kernel = yield* Kernel
      const home = yield* Home
      const zip = yield* Effect.promise(legacyPackage)
      assert.deepStrictEqual(yield* packageIdOfZip(zip, "whatever.zip"), LEGACY)
      const installed = yield* packages.install(LEGACY, zip, { watchMs: 300 })
      assert.deepStrictEqual([...installed.processes].sort(), ["echo_back:kns_indexer:sys", "kns_indexer:kns_indexer:sys"])
      const drive = path.join(home.path, "vfs", "kns_indexer:sys", "pkg")
      assert.isTrue(fs.existsSync(path.join(drive, "scripts.json")))
      assert.isTrue(fs.existsSync(path.join(drive, "get_block.wasm")))
      assert.strictEqual(kernel.info("kns_indexer:kns_indexer:sys")?.status, "running")
      assert.strictEqual(kernel.info("kns_indexer:kns_indexer:sys")?.witVersion, 1)
      const n = kernel.node
      const caps = kernel.info("echo_back:kns_indexer:sys")!.capabilities.map((c) => `${c.issuer.toString()} ${c.params}`).sort()
      assert.deepStrictEqual(caps, [
        `${n}@echo_back:kns_indexer:sys "messaging"`,
        `${n}@kernel:distro:sys "network"`,
        `${n}@vfs:distro:sys {"kind":"read","drive":"/kns_indexer:sys/pkg"}`,
        `${n}@vfs:distro:sys {"kind":"write","drive":"/kns_indexer:sys/pkg"}`
      ])
      // The 0.7.0 component answers one request (then returns, as it was written to).
      const api = yield* driver(["kns_indexer:kns_indexer:sys", "echo_back:kns_indexer:sys"])
      assert.strictEqual(text(yield* ask(api, "kns_indexer:kns_indexer:sys", "hello 2024")), "hello 2024")
      assert.strictEqual(text(yield* ask(api, "echo_back:kns_indexer:sys", "and you")), "and you")
      // A process of a legacy package spawns children under the same rule.
      const child = yield* kernel.spawn(address(`${n}@echo_back:kns_indexer:sys`), {
        name: "kid_one",
        wasmPath: "/kns_indexer:sys/pkg/echo.wasm",
        onExit: { _tag: "None" },
        requestCapabilities: [],
        grantCapabilities: [],
        public: true
      })
      assert.strictEqual(child.toString(), "kid_one:kns_indexer:sys")
      assert.deepStrictEqual((yield* packages.installed()).map((p) => [p.package, p.hash]), [["kns_indexer:sys", installed.hash]])
      assert.deepStrictEqual([...(yield* packages.uninstall(LEGACY))].sort(), [
        "echo_back:kns_indexer:sys",
        "kid_one:kns_indexer:sys",
        "kns_indexer:kns_indexer:sys"
      ])
    })), 60_000)

  it.live("legacy names survive a restart of the node; elsewhere the Kimap rules still hold", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-formats-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(home, { recursive: true, force: true })))
      const zip = yield* Effect.promise(async () =>
        zipSync({ "manifest.json": json([entry({ process_name: "echo_back", on_exit: "Restart" })]), "echo.wasm": await buildEcho() })
      )
      const PKG = { package: "app_store", publisher: "sys" }
      yield* Effect.gen(function*() {
        yield* (yield* Kernel).boot
        yield* (yield* Packages).install(PKG, zip)
      }).pipe(Effect.provide(appNode({ home }).layer), Effect.scoped)
      yield* Effect.gen(function*() {
        const kernel = yield* Kernel
        const packages = yield* Packages
        yield* kernel.boot
        assert.strictEqual(kernel.info("echo_back:app_store:sys")?.status, "running")
        const api = yield* driver(["echo_back:app_store:sys"])
        assert.strictEqual(text(yield* ask(api, "echo_back:app_store:sys", "after restart")), "after restart")
        // InitializeProcess (apps, the kernel command) stays Kimap-safe.
        const refused = yield* Effect.exit(kernel.initialize({
          id: pid("other_one:app_store:sys"),
          handle: "/app_store:sys/pkg/echo.wasm",
          witVersion: 1,
          onExit: { _tag: "None" },
          public: false,
          capabilities: [],
          bytes: undefined
        }))
        assert.strictEqual((failureOf(refused) as { reason?: string }).reason, "NotKimapSafe")
        // Upper case, dots and spaces are refused by the installer too.
        for (const [p, name] of [[PKG, "Echo"], [PKG, "e.x"], [{ package: "App_Store", publisher: "sys" }, "echo"]] as const) {
          const bad = zipSync({ "manifest.json": json([entry({ process_name: name })]), "echo.wasm": new Uint8Array([0]) })
          const e = failureOf(yield* Effect.exit(packages.install(p, bad))) as { _tag: string }
          assert.include(["ManifestInvalid", "InvalidPackageId"], e._tag, `${p.package} ${name}`)
        }
        assert.strictEqual(kernel.info("echo_back:app_store:sys")?.status, "running")
      }).pipe(Effect.provide(appNode({ home }).layer), Effect.scoped)
    }).pipe(Effect.scoped), 60_000)

  it.live("the current format: ERC-721 metadata (wit_version a number or a 0.6-0.8 triple), snake_case scripts with wit_version", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const kernel = yield* Kernel
      const PKG = { package: "hello", publisher: "test.dev" }
      const metadata = (wit: unknown) => ({
        name: "Hello",
        description: "current form",
        image: "",
        external_url: "https://example.com",
        animation_url: "",
        properties: {
          package_name: "hello",
          publisher: "test.dev",
          current_version: "0.3.0",
          mirrors: ["test.dev"],
          code_hashes: { "0.3.0": "" },
          license: "MIT",
          screenshots: [],
          wit_version: wit,
          dependencies: []
        }
      })
      const scripts = {
        "s.wasm": { root: false, public: false, request_networking: false, request_capabilities: ["vfs:distro:sys"], grant_capabilities: [], wit_version: 1 }
      }
      const echo = yield* Effect.promise(buildEcho)
      const zipWith = (wit: unknown) =>
        zipSync({
          "manifest.json": json([entry()]),
          "echo.wasm": echo,
          "s.wasm": utf8.encode("script"),
          "scripts.json": json(scripts),
          "metadata.json": json(metadata(wit))
        })
      yield* packages.install(PKG, zipWith(0))
      assert.strictEqual(kernel.info("echo:hello:test.dev")?.witVersion, 0)
      yield* packages.install(PKG, zipWith([0, 7, 0]))
      assert.strictEqual(kernel.info("echo:hello:test.dev")?.witVersion, 1, "a triple names no world: the default")
      assert.deepStrictEqual(yield* packageIdOfZip(zipWith(1), undefined), PKG)
      const api = yield* driver(["echo:hello:test.dev"])
      assert.strictEqual(text(yield* ask(api, "echo:hello:test.dev", "current")), "current")
    })), 60_000)

  it.live("bad forms name the file and field: a legacy metadata of the wrong shape, scripts of the wrong type in either case", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const kernel = yield* Kernel
      const echo = yield* Effect.promise(buildEcho)
      const base = { "manifest.json": json([entry()]), "echo.wasm": echo, "s.wasm": utf8.encode("x") }
      const cases: Array<[string, Record<string, Uint8Array>, string]> = [
        ["legacy metadata without a version", { "metadata.json": json({ package: "hello", publisher: "test.dev" }) }, "version"],
        ["legacy metadata for another package", { "metadata.json": json({ package: "other", publisher: "test.dev", version: [1, 0, 0] }) }, "properties.package_name"],
        ["camelCase scripts of the wrong type", { "scripts.json": json({ "s.wasm": { root: false, public: false, requestNetworking: "yes" } }) }, "s.wasm.request_networking"]
      ]
      for (const [name, extra, field] of cases) {
        const e = failureOf(yield* Effect.exit(packages.install({ package: "hello", publisher: "test.dev" }, zipSync({ ...base, ...extra })))) as {
          _tag: string
          field: string
        }
        assert.strictEqual(e._tag, "PackageFileInvalid", name)
        assert.strictEqual(e.field, field, name)
      }
      assert.isUndefined(kernel.info("echo:hello:test.dev"))
    })))

  it.effect("the package id of a zip: metadata of either form, else a <package>:<publisher>.zip name, else unknown", () =>
    Effect.gen(function*() {
      const plain = zipSync({ "manifest.json": json([]) })
      assert.strictEqual((failureOf(yield* Effect.exit(packageIdOfZip(zipSync({ "x.txt": json(1) }), "a:b.zip"))) as { _tag: string })._tag, "ManifestMissing")
      assert.deepStrictEqual(yield* packageIdOfZip(plain, "/tmp/target/chess:template.os.zip"), { package: "chess", publisher: "template.os" })
      assert.deepStrictEqual(yield* packageIdOfZip(plain, "kns_indexer:sys.zip"), LEGACY)
      assert.deepStrictEqual(yield* packageIdOfZip(plain, "x.zip", "given:test.dev"), { package: "given", publisher: "test.dev" })
      assert.strictEqual((failureOf(yield* Effect.exit(packageIdOfZip(plain, "chess.zip"))) as { _tag: string })._tag, "PackageIdUnknown")
      assert.strictEqual((failureOf(yield* Effect.exit(packageIdOfZip(plain, "x.zip", "Nope:sys"))) as { _tag: string })._tag, "PackageIdInvalid")
      assert.strictEqual((failureOf(yield* Effect.exit(packageIdOfZip(utf8.encode("not a zip at all, long enough"), "a:b.zip"))) as { _tag: string })._tag, "ZipUnreadable")
      const erc = zipSync({
        "manifest.json": json([]),
        "metadata.json": json({ properties: { package_name: "p", publisher: "q.os", current_version: "1", mirrors: [], code_hashes: {} } })
      })
      assert.deepStrictEqual(yield* packageIdOfZip(erc, "a:b.zip"), { package: "p", publisher: "q.os" })
    }))
})
