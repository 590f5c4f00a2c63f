/**
 * `main:app-store:sys` (services/packages/AppStore.ts) on a real node: Kinode's local
 * app store requests as `kit start-package` and Kinode's scripts send them (JSON bodies,
 * the zip as the blob), answered in Kinode's shapes: sideload (NewPackage, Install with
 * kit's metadata), list (Installed, Apis, GetApi), upgrade, uninstall; and bad input
 * (no blob, not a package, an unknown version, a process that traps at init, a body
 * that is no request), each a clear printout, the node untouched.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { zipSync } from "fflate"
import { address } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { Kernel, messagingCap } from "../../src/Kernel.ts"
import { request } from "../../src/Message.ts"
import type { NativeApi } from "../../src/ProcessApi.ts"
import { APP_STORE, AppStore, describeInstallError, Packages, sha256Hex } from "../../services/packages/index.ts"
import { buildEcho, buildTrap } from "../fixtures/wasm/build.ts"
import { appNode, ask, driver, entry } from "./support/AppNode.ts"

const utf8 = new TextEncoder()
const text = (b: Uint8Array) => new TextDecoder().decode(b)
const json = (v: unknown) => utf8.encode(JSON.stringify(v))

const storeNode = () => {
  const node = appNode()
  return { layer: AppStore.layer.pipe(Layer.provideMerge(node.layer)), lines: node.lines }
}

const ID = { package_name: "hello", publisher_node: "test.dev" }
const ECHO = "echo:hello:test.dev"

/** A request to the app store as `api`; the decoded JSON answer and its blob. */
const store = (api: NativeApi, body: unknown, blob?: Uint8Array) =>
  Effect.gen(function*() {
    const bytes = typeof body === "string" ? utf8.encode(body) : Json.toBytes(body)
    const r = yield* api.sendAndAwaitEffect(
      address(`${api.our.node}@${APP_STORE}`),
      request({ body: bytes, expectsResponse: 30n }),
      blob === undefined ? undefined : { mime: "application/octet-stream", bytes: blob }
    )
    if (!("message" in r && "source" in r)) return yield* Effect.die(new Error(`no answer: ${JSON.stringify(r)}`))
    return { body: JSON.parse(text(r.message.body)) as unknown, blob: api.getBlob() }
  })

/** `kit start-package`'s Install body for metadata.json `meta`. */
const kitInstall = (hash: string, wit: number | null) => ({
  Install: {
    package_id: ID,
    version_hash: hash,
    metadata: {
      name: "hello",
      description: null,
      image: null,
      external_url: null,
      animation_url: null,
      properties: {
        package_name: "hello",
        publisher: "test.dev",
        current_version: "0.1.0",
        mirrors: [],
        code_hashes: [["0.1.0", hash]],
        license: null,
        screenshots: null,
        wit_version: wit,
        dependencies: null,
        api_includes: null
      }
    }
  }
})

/** A second driver session (the first is `driver:test:sys`) that may message `target`. */
const asker = (target: string) =>
  Effect.flatMap(Kernel, (k) => k.session("asker:test:sys", { capabilities: [messagingCap(k.node, target)], public: true }))

const pkg = (extra: Record<string, Uint8Array> = {}, manifest: unknown = [entry()]) =>
  Effect.promise(async () => zipSync({ "manifest.json": json(manifest), "echo.wasm": await buildEcho(), ...extra }))

describe("app store: main:app-store:sys", () => {
  it.live("sideloads as kit does: NewPackage with the zip, Install with kit's metadata; lists, serves the API, upgrades, uninstalls", () => {
    const node = storeNode()
    return Effect.gen(function*() {
      const kernel = yield* Kernel
      const api = yield* driver([APP_STORE])
      const v1 = yield* pkg({ "api.zip": zipSync({ "hello.wit": utf8.encode("interface hello {}") }) })
      const h1 = sha256Hex(v1)
      assert.deepStrictEqual((yield* store(api, { NewPackage: { package_id: ID, mirror: true } }, v1)).body, { NewPackageResponse: "Success" })
      assert.isUndefined(kernel.info(ECHO), "NewPackage installs nothing")
      assert.deepStrictEqual((yield* store(api, kitInstall(h1, 0))).body, { InstallResponse: "Success" })
      assert.strictEqual(kernel.info(ECHO)?.status, "running")
      assert.strictEqual(kernel.info(ECHO)?.witVersion, 0, "wit_version from the request's metadata")
      assert.isTrue(node.lines.some((l) => l.text.includes(`installed hello:test.dev, version ${h1}`)), node.lines.map((l) => l.text).join("\n"))
      const echo = yield* asker(ECHO)
      assert.strictEqual(text(yield* ask(echo, ECHO, "sideloaded")), "sideloaded")

      const listed = (yield* store(api, "\"Installed\"")).body as { InstalledResponse: { packages: Array<Record<string, unknown>> } }
      assert.deepStrictEqual(listed.InstalledResponse.packages.find((p) => (p["package_id"] as typeof ID).package_name === "hello"), {
        package_id: ID,
        version_hash: h1,
        processes: [ECHO]
      })
      assert.deepStrictEqual((yield* store(api, "\"Apis\"")).body, { ApisResponse: { apis: [ID] } })
      const got = yield* store(api, { GetApi: ID })
      assert.deepStrictEqual(got.body, { GetApiResponse: "Success" })
      assert.isDefined(got.blob)
      assert.deepStrictEqual((yield* store(api, { GetApi: { package_name: "nope", publisher_node: "x.os" } })).body, { GetApiResponse: "Failure" })

      // An upgrade: a newer zip of the same package, without the API.
      const v2 = yield* pkg({ "v2.txt": utf8.encode("2") }, [entry(), entry({ process_name: "second" })])
      const h2 = sha256Hex(v2)
      assert.deepStrictEqual((yield* store(api, { NewPackage: { package_id: ID, mirror: false } }, v2)).body, { NewPackageResponse: "Success" })
      assert.deepStrictEqual((yield* store(api, { Install: { package_id: ID, metadata: null, version_hash: h2 } })).body, { InstallResponse: "Success" })
      assert.strictEqual(kernel.info("second:hello:test.dev")?.status, "running")
      assert.deepStrictEqual((yield* store(api, "\"Apis\"")).body, { ApisResponse: { apis: [] } })
      // v1's zip went when v2 arrived (one kept per package); v2 reinstalls from the installed copy.
      assert.deepStrictEqual((yield* store(api, { Install: { package_id: ID, version_hash: h1 } })).body, { InstallResponse: "Failure" })
      assert.isTrue(node.lines.some((l) => l.text.includes(`no zip of version ${h1} here`)))
      assert.deepStrictEqual((yield* store(api, { Install: { package_id: ID, version_hash: h2 } })).body, { InstallResponse: "Success" })

      assert.deepStrictEqual((yield* store(api, { Uninstall: ID })).body, { UninstallResponse: "Success" })
      assert.isUndefined(kernel.info(ECHO))
      assert.isUndefined(kernel.info("second:hello:test.dev"))
      assert.deepStrictEqual((yield* store(api, "\"Installed\"")).body, { InstalledResponse: { packages: [] } })
      assert.deepStrictEqual((yield* store(api, { Uninstall: ID })).body, { UninstallResponse: "Failure" })
      assert.isTrue(node.lines.some((l) => l.text.includes("cannot uninstall hello:test.dev: hello:test.dev is not installed")))
    }).pipe(Effect.provide(node.layer), Effect.scoped) as Effect.Effect<void, never, never>
  }, 60_000)

  it.live("bad input: no blob, not a package, a process that traps at init, not a request; each said, the installed version untouched", () => {
    const node = storeNode()
    return Effect.gen(function*() {
      const kernel = yield* Kernel
      const api = yield* driver([APP_STORE])
      const good = yield* pkg()
      yield* store(api, { NewPackage: { package_id: ID, mirror: false } }, good)
      assert.deepStrictEqual((yield* store(api, { Install: { package_id: ID, version_hash: sha256Hex(good) } })).body, { InstallResponse: "Success" })

      assert.deepStrictEqual((yield* store(api, { NewPackage: { package_id: ID, mirror: false } })).body, { NewPackageResponse: "NoBlob" })
      const notAPackage = zipSync({ "readme.txt": utf8.encode("hello") })
      assert.deepStrictEqual((yield* store(api, { NewPackage: { package_id: ID, mirror: false } }, notAPackage)).body, { NewPackageResponse: "InstallFailed" })
      assert.isTrue(node.lines.some((l) => l.text.includes("NewPackage hello:test.dev: not a package I can install: not a package: the zip has no manifest.json")))
      const notAZip = utf8.encode("this is not a zip file, and it is long enough to look")
      assert.deepStrictEqual((yield* store(api, { NewPackage: { package_id: ID, mirror: false } }, notAZip)).body, { NewPackageResponse: "InstallFailed" })

      // A process that traps in init: the install fails and the installed version comes back.
      const trapping = yield* Effect.promise(async () =>
        zipSync({
          "manifest.json": json([entry(), entry({ process_name: "boom", process_wasm_path: "/trap.wasm", on_exit: "Restart" })]),
          "echo.wasm": await buildEcho(),
          "trap.wasm": await buildTrap()
        })
      )
      assert.deepStrictEqual((yield* store(api, { NewPackage: { package_id: ID, mirror: false } }, trapping)).body, { NewPackageResponse: "Success" })
      assert.deepStrictEqual((yield* store(api, { Install: { package_id: ID, version_hash: sha256Hex(trapping) } })).body, { InstallResponse: "Failure" })
      assert.isTrue(
        node.lines.some((l) => /cannot install hello:test\.dev: the process boom:hello:test\.dev did not start: it crashed/.test(l.text)),
        node.lines.map((l) => l.text).join("\n")
      )
      assert.isUndefined(kernel.info("boom:hello:test.dev"))
      assert.strictEqual(kernel.info(ECHO)?.status, "running")
      assert.strictEqual(yield* (yield* Packages).installedHash({ package: "hello", publisher: "test.dev" }), sha256Hex(good))

      // Kinode's own app store package: its main process is this module's id, refused before anything changes.
      const kinodeStore = yield* pkg({}, [entry({ process_name: "downloads" }), entry({ process_name: "chain" }), entry({ process_name: "main" })])
      const refused = yield* Effect.flip((yield* Packages).install({ package: "app-store", publisher: "sys" }, kinodeStore))
      assert.strictEqual(describeInstallError(refused), "manifest.json is invalid at [2].process_name: main:app-store:sys is a runtime process")
      assert.isUndefined(kernel.info("downloads:app-store:sys"))
      assert.strictEqual(kernel.info(APP_STORE)?.status, "runtime")

      const garbage = yield* store(api, "{\"Frobnicate\":1}")
      assert.match((garbage.body as { Err: string }).Err, /^not an app store request: /)
      const echo = yield* asker(ECHO)
      assert.strictEqual(text(yield* ask(echo, ECHO, "still here")), "still here")
    }).pipe(Effect.provide(node.layer), Effect.scoped) as Effect.Effect<void, never, never>
  }, 60_000)
})

