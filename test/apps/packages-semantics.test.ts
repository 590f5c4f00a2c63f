/**
 * The package installer against kinode-semantics §7 on a real node (kernel, LMDB, vfs
 * on disk): api.zip, scripts.json, metadata.json, both capability forms, approvals,
 * grants across packages, on-exit Requests with a blob, upgrades, uninstall and
 * reinstall, restart persistence, and bad zips that must leave the node as it was.
 * The package is the WAT echo component.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, type Scope } from "effect"
import { zipSync } from "fflate"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Home } from "../../src/Home.ts"
import { address } from "../../src/Ids.ts"
import { Kernel, messagingCap } from "../../src/Kernel.ts"
import { request } from "../../src/Message.ts"
import { Packages, ZIP_LIMITS } from "../../services/packages/index.ts"
import { buildReturning } from "../fixtures/wasm/build.ts"
import { appNode, ask, driver, entry, watPackage } from "./support/AppNode.ts"

const PKG = { package: "hello", publisher: "test.dev" }
const ID = "echo:hello:test.dev"
const utf8 = new TextEncoder()
const text = (b: Uint8Array) => new TextDecoder().decode(b)

const failureOf = <E>(exit: Exit.Exit<unknown, E>): E => {
  if (Exit.isSuccess(exit)) return assert.fail("expected a failure")
  const f = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (f === undefined || f._tag !== "Fail") return assert.fail(`expected a typed failure, got ${String(exit.cause)}`)
  return f.error
}

const capsOf = (caps: ReadonlyArray<{ issuer: { toString(): string }; params: string }>) =>
  caps.map((c) => `${c.issuer.toString()} ${c.params}`).sort()

type Env = Kernel | Packages | Home | Scope.Scope
const run = <A, E>(body: Effect.Effect<A, E, Env>) => body.pipe(Effect.provide(appNode().layer), Effect.scoped)

const pkgZip = (manifest: unknown = [entry()], extra: Record<string, Uint8Array> = {}) => Effect.promise(() => watPackage(manifest, extra))

/** Whether a fresh session without caps can reach `target` (i.e. it is public). */
const reachableWithoutCaps = (name: string, target: string) =>
  Effect.gen(function*() {
    const k = yield* Kernel
    const api = yield* k.session(name, { capabilities: [], public: true })
    return api.sendRequest(address(`${k.node}@${target}`), request({ body: utf8.encode("x") }), undefined, undefined) === undefined
  })

/** Every file below a directory with its bytes, for "left as before" checks. */
const snapshot = (dir: string): Record<string, string> => {
  if (!fs.existsSync(dir)) return {}
  const out: Record<string, string> = {}
  for (const f of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (f.isFile()) {
      const p = path.join(f.parentPath, f.name)
      out[path.relative(dir, p)] = fs.readFileSync(p).toString("base64")
    }
  }
  return out
}

/** Sets the declared uncompressed size of every central directory entry named `name`. */
const lieAboutSize = (zip: Uint8Array, name: string, size: number): Uint8Array => {
  const out = new Uint8Array(zip)
  const view = new DataView(out.buffer)
  const nameBytes = utf8.encode(name)
  for (let o = 0; o + 46 <= out.length; o++) {
    if (view.getUint32(o, true) !== 0x02014b50) continue
    const n = view.getUint16(o + 28, true)
    if (n === nameBytes.length && nameBytes.every((b, i) => out[o + 46 + i] === b)) view.setUint32(o + 24, size, true)
  }
  return out
}

/** Replaces every occurrence of one same-length ASCII name by another (local and central headers). */
const renameRaw = (zip: Uint8Array, from: string, to: string): Uint8Array => {
  const out = new Uint8Array(zip)
  const a = utf8.encode(from)
  const b = utf8.encode(to)
  for (let o = 0; o + a.length <= out.length; o++) {
    if (a.every((x, i) => out[o + i] === x)) out.set(b, o)
  }
  return out
}

describe("packages: kinode-semantics §7", () => {
  it.live("api.zip is unpacked to pkg/api, scripts are installed but not started, metadata sets wit_version", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const kernel = yield* Kernel
      const home = yield* Home
      const api = zipSync({ "hello.wit": utf8.encode("interface hello {}"), "nested/": new Uint8Array(0), "nested/x.wit": utf8.encode("x") })
      const scripts = { "s.wasm": { root: false, public: true, request_networking: false, request_capabilities: ["vfs:distro:sys"] } }
      const metadata = {
        name: "hello",
        properties: { package_name: "hello", publisher: "test.dev", current_version: "1.0.0", mirrors: [], code_hashes: {}, wit_version: 0 }
      }
      const zip = yield* pkgZip([entry()], {
        "api.zip": api,
        "scripts.json": utf8.encode(JSON.stringify(scripts)),
        "s.wasm": utf8.encode("a script component"),
        "metadata.json": utf8.encode(JSON.stringify(metadata))
      })
      const installed = yield* packages.install(PKG, zip)
      assert.deepStrictEqual(installed.processes, [ID])
      const drive = path.join(home.path, "vfs", "hello:test.dev", "pkg")
      assert.strictEqual(fs.readFileSync(path.join(drive, "api", "hello.wit"), "utf8"), "interface hello {}")
      assert.strictEqual(fs.readFileSync(path.join(drive, "api", "nested", "x.wit"), "utf8"), "x")
      assert.isTrue(fs.existsSync(path.join(drive, "api.zip")))
      assert.isTrue(fs.existsSync(path.join(drive, "scripts.json")))
      assert.isTrue(fs.existsSync(path.join(drive, "s.wasm")))
      assert.isUndefined(kernel.info("s:hello:test.dev"))
      assert.strictEqual(kernel.info(ID)?.witVersion, 0)
    })))

  it.live("request_capabilities and grant_capabilities in both forms, network, public, processes that do not exist yet", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const kernel = yield* Kernel
      const n = kernel.node
      // Another package first, so `a` can grant to one of its processes.
      yield* packages.install({ package: "other", publisher: "test.dev" }, yield* pkgZip([entry({ process_name: "o" })]))
      const zip = yield* pkgZip([
        entry({
          process_name: "a",
          public: false,
          request_networking: true,
          request_capabilities: ["later:future:test.dev", { process: "later:future:test.dev", params: { kind: "x", n: [1, 2] } }],
          grant_capabilities: ["b:hello:test.dev", { process: "o:other:test.dev", params: "Poke" }, "ghost:nowhere:test.dev"]
        }),
        entry({ process_name: "b", public: true })
      ])
      const requested = yield* packages.requested(PKG, zip)
      assert.deepStrictEqual(capsOf(requested.map((r) => r.capability)), [
        `${n}@kernel:distro:sys "network"`,
        `${n}@later:future:test.dev "messaging"`,
        `${n}@later:future:test.dev {"kind":"x","n":[1,2]}`
      ].sort())
      const installed = yield* packages.install(PKG, zip)
      assert.deepStrictEqual(capsOf(kernel.info("a:hello:test.dev")!.capabilities), [
        `${n}@a:hello:test.dev "messaging"`,
        `${n}@kernel:distro:sys "network"`,
        `${n}@later:future:test.dev "messaging"`,
        `${n}@later:future:test.dev {"kind":"x","n":[1,2]}`,
        `${n}@vfs:distro:sys {"kind":"read","drive":"/hello:test.dev/pkg"}`,
        `${n}@vfs:distro:sys {"kind":"write","drive":"/hello:test.dev/pkg"}`
      ].sort())
      assert.include(capsOf(kernel.info("b:hello:test.dev")!.capabilities), `${n}@a:hello:test.dev "messaging"`)
      assert.include(capsOf(kernel.info("o:other:test.dev")!.capabilities), `${n}@a:hello:test.dev "Poke"`)
      assert.deepStrictEqual(installed.skippedGrants, [{ process: "a:hello:test.dev", grantee: "ghost:nowhere:test.dev", params: "\"messaging\"" }])
      assert.deepStrictEqual(kernel.capabilities("ghost:nowhere:test.dev"), [])
      assert.deepStrictEqual(installed.withheld, [])
      // public: b takes messages from anyone local, a only from holders of its messaging cap.
      assert.isTrue(yield* reachableWithoutCaps("probe1:test:sys", "b:hello:test.dev"))
      assert.isFalse(yield* reachableWithoutCaps("probe2:test:sys", "a:hello:test.dev"))
      // Uninstalling hello revokes what its processes issued from the other package.
      yield* packages.uninstall(PKG)
      assert.notInclude(capsOf(kernel.info("o:other:test.dev")!.capabilities), `${n}@a:hello:test.dev "Poke"`)
    })))

  it.live("only approved capabilities are granted; the rest are reported as withheld", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const kernel = yield* Kernel
      const zip = yield* pkgZip([
        entry({ request_networking: true, request_capabilities: ["kv:distro:sys", { process: "kernel:distro:sys", params: "messaging" }] })
      ])
      const requested = yield* packages.requested(PKG, zip)
      assert.strictEqual(requested.length, 3)
      const approved = requested.filter((r) => r.capability.issuer.process.toString() === "kv:distro:sys")
      const installed = yield* packages.install(PKG, zip, { approved })
      const caps = capsOf(kernel.info(ID)!.capabilities)
      const n = kernel.node
      assert.include(caps, `${n}@kv:distro:sys "messaging"`)
      assert.notInclude(caps, `${n}@kernel:distro:sys "messaging"`)
      assert.notInclude(caps, `${n}@kernel:distro:sys "network"`)
      assert.deepStrictEqual(capsOf(installed.withheld.map((w) => w.capability)), [
        `${n}@kernel:distro:sys "messaging"`,
        `${n}@kernel:distro:sys "network"`
      ])
      // The implicit caps need no approval.
      assert.include(caps, `${n}@vfs:distro:sys {"kind":"write","drive":"/hello:test.dev/pkg"}`)
      // Approving nothing grants nothing requested.
      yield* packages.install(PKG, zip, { approved: [] })
      assert.notInclude(capsOf(kernel.info(ID)!.capabilities), `${n}@kv:distro:sys "messaging"`)
      // Same caps with approval of everything as without approvals.
      yield* packages.install(PKG, zip, { approved: requested })
      const all = capsOf(kernel.info(ID)!.capabilities)
      yield* packages.install(PKG, zip)
      assert.deepStrictEqual(capsOf(kernel.info(ID)!.capabilities), all)
    })))

  it.live("an upgrade replaces the processes: dropped ones are killed, stale files go, new caps apply", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const kernel = yield* Kernel
      const home = yield* Home
      const v1 = yield* pkgZip([entry({ process_name: "a" }), entry({ process_name: "b" })], { "old.txt": utf8.encode("old") })
      yield* packages.install(PKG, v1)
      const v2 = yield* pkgZip([entry({ process_name: "a", request_capabilities: ["kv:distro:sys"] }), entry({ process_name: "c" })])
      const installed = yield* packages.install(PKG, v2)
      assert.deepStrictEqual(installed.processes, ["a:hello:test.dev", "c:hello:test.dev"])
      assert.isUndefined(kernel.info("b:hello:test.dev"))
      assert.strictEqual(kernel.info("c:hello:test.dev")?.status, "running")
      assert.include(capsOf(kernel.info("a:hello:test.dev")!.capabilities), `${kernel.node}@kv:distro:sys "messaging"`)
      assert.isFalse(fs.existsSync(path.join(home.path, "vfs", "hello:test.dev", "pkg", "old.txt")))
      assert.strictEqual(kernel.processes().filter((p) => p.id.endsWith(":hello:test.dev")).length, 2)
      const api = yield* driver(["a:hello:test.dev"])
      assert.strictEqual(text(yield* ask(api, "a:hello:test.dev", "v2")), "v2")
    })))

  it.live("install twice, uninstall, install again: same processes and caps, data drives kept, answering", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const kernel = yield* Kernel
      const home = yield* Home
      const zip = yield* pkgZip([entry({ request_capabilities: ["kv:distro:sys"] })])
      yield* packages.install(PKG, zip)
      const caps = capsOf(kernel.info(ID)!.capabilities)
      // The package's other drives are its data: kept by reinstall and uninstall (Kinode removes only pkg).
      const data = path.join(home.path, "vfs", "hello:test.dev", "data")
      fs.mkdirSync(data, { recursive: true })
      fs.writeFileSync(path.join(data, "keep.txt"), "kept")
      yield* packages.install(PKG, zip)
      assert.deepStrictEqual(capsOf(kernel.info(ID)!.capabilities), caps)
      assert.strictEqual(kernel.processes().filter((p) => p.id === ID).length, 1)
      // A cap granted to the process from outside is forgotten with it.
      yield* kernel.grant(ID, [messagingCap(kernel.node, "timer:distro:sys")])
      assert.deepStrictEqual(yield* packages.uninstall(PKG), [ID])
      assert.isUndefined(kernel.info(ID))
      assert.deepStrictEqual(kernel.capabilities(ID), [])
      assert.isFalse(fs.existsSync(path.join(home.path, "vfs", "hello:test.dev", "pkg")))
      assert.strictEqual(fs.readFileSync(path.join(data, "keep.txt"), "utf8"), "kept")
      yield* packages.install(PKG, zip)
      assert.deepStrictEqual(capsOf(kernel.info(ID)!.capabilities), caps)
      const api = yield* driver([ID])
      assert.strictEqual(text(yield* ask(api, ID, "back")), "back")
    })))

  it.live("after a restart on the same home the processes come back with the same caps; on-exit Requests keep their blob", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-packages-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(home, { recursive: true, force: true })))
      const SINK = "sink:test:sys"
      const onExit = {
        Requests: [[
          `our@${SINK}`,
          { inherit: false, expects_response: null, body: Array.from(utf8.encode("bye")), metadata: "m", capabilities: [] },
          { mime: "text/plain", bytes: Array.from(utf8.encode("blob!")) }
        ]]
      }
      const zip = yield* pkgZip([
        entry({ process_name: "a", on_exit: onExit, request_networking: true, request_capabilities: [SINK, "kv:distro:sys"], grant_capabilities: ["b:hello:test.dev"] }),
        entry({ process_name: "b", on_exit: "Restart", public: false })
      ])
      const before = yield* Effect.gen(function*() {
        const kernel = yield* Kernel
        yield* kernel.boot
        yield* (yield* Packages).install(PKG, zip)
        const a = kernel.info("a:hello:test.dev")!
        assert.strictEqual(a.onExit._tag, "Requests")
        if (a.onExit._tag === "Requests") {
          const r = a.onExit.requests[0]!
          assert.strictEqual(r.target.toString(), `${kernel.node}@${SINK}`)
          assert.strictEqual(text(r.request.body), "bye")
          assert.strictEqual(r.request.metadata, "m")
          assert.strictEqual(r.blob?.mime, "text/plain")
          assert.strictEqual(text(r.blob!.bytes), "blob!")
        }
        return {
          a: capsOf(a.capabilities),
          b: capsOf(kernel.info("b:hello:test.dev")!.capabilities)
        }
      }).pipe(Effect.provide(appNode({ home }).layer), Effect.scoped)
      yield* Effect.gen(function*() {
        const kernel = yield* Kernel
        // The sink exists before boot, so the persisted on-exit request reaches it.
        const sink = yield* kernel.session(SINK, { capabilities: [], public: true })
        yield* kernel.boot
        assert.strictEqual(kernel.info("a:hello:test.dev")?.status, "running")
        assert.strictEqual(kernel.info("b:hello:test.dev")?.status, "running")
        assert.deepStrictEqual(capsOf(kernel.info("a:hello:test.dev")!.capabilities), before.a)
        assert.deepStrictEqual(capsOf(kernel.info("b:hello:test.dev")!.capabilities), before.b)
        assert.include(before.a, `${kernel.node}@kernel:distro:sys "network"`)
        const got = yield* sink.receiveEffect
        assert.strictEqual(got._tag, "Message")
        if (got._tag === "Message") {
          assert.strictEqual(got.source.toString(), `${kernel.node}@a:hello:test.dev`)
          assert.strictEqual(text(got.message.body), "bye")
          assert.strictEqual(text(sink.getBlob()!.bytes), "blob!")
        }
        const api = yield* driver(["b:hello:test.dev"])
        assert.strictEqual(text(yield* ask(api, "b:hello:test.dev", "after restart")), "after restart")
        // Uninstalling after the restart still revokes what a issued before it.
        yield* (yield* Packages).uninstall(PKG)
        assert.isUndefined(kernel.info("a:hello:test.dev"))
      }).pipe(Effect.provide(appNode({ home }).layer), Effect.scoped)
      yield* Effect.gen(function*() {
        const kernel = yield* Kernel
        yield* kernel.boot
        assert.isUndefined(kernel.info("a:hello:test.dev"))
        assert.isUndefined(kernel.info("b:hello:test.dev"))
      }).pipe(Effect.provide(appNode({ home }).layer), Effect.scoped)
    }).pipe(Effect.scoped), 60_000)

  it.live("bad zips: each a typed error, the installed version untouched, the node still answering", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const kernel = yield* Kernel
      const home = yield* Home
      const good = yield* pkgZip([entry({ request_capabilities: ["kv:distro:sys"] })])
      const installed = yield* packages.install(PKG, good)
      const drive = path.join(home.path, "vfs", "hello:test.dev")
      const files = snapshot(drive)
      const caps = capsOf(kernel.info(ID)!.capabilities)
      const api = yield* driver([ID])

      const x = utf8.encode("x")
      const big = new Uint8Array(ZIP_LIMITS.zipBytes + 1).map((_, i) => (i * 7919) % 251)
      const manyFiles: Record<string, Uint8Array> = {}
      for (let i = 0; i <= ZIP_LIMITS.entries; i++) manyFiles[`f/${i}`] = new Uint8Array(0)
      const twoFiles = yield* pkgZip([entry()], { "aaaa.txt": x, "bbbb.txt": x })
      const cases: Array<[string, Uint8Array, string, Record<string, unknown>]> = [
        ["not a zip", utf8.encode("hello, not a zip at all, but long enough to search"), "ZipUnreadable", {}],
        ["truncated", good.slice(0, good.length - 30), "ZipUnreadable", {}],
        ["zip over the message limit", zipSync({ "manifest.json": x, "big.bin": big }, { level: 0 }), "ZipLimitExceeded", { limit: "zip-bytes" }],
        ["too many entries", yield* pkgZip([entry()], manyFiles), "ZipLimitExceeded", { limit: "entries" }],
        ["entry declared too big", lieAboutSize(yield* pkgZip([entry()], { "bomb.bin": x }), "bomb.bin", ZIP_LIMITS.entryBytes + 1), "ZipLimitExceeded", {
          limit: "entry-bytes",
          entry: "bomb.bin"
        }],
        [
          "entries too big together",
          lieAboutSize(lieAboutSize(lieAboutSize(yield* pkgZip([entry()], { "b1": x, "b2": x, "b3": x }), "b1", 100 << 20), "b2", 100 << 20), "b3", 100 << 20),
          "ZipLimitExceeded",
          { limit: "total-bytes" }
        ],
        ["symlink entry", yield* pkgZip([entry()], { "link": [utf8.encode("/etc/passwd"), { os: 3, attrs: 0o120777 << 16 }] as never }), "ZipEntryRefused", {
          reason: "symlink"
        }],
        ["fifo entry", yield* pkgZip([entry()], { "fifo": [x, { os: 3, attrs: 0o010644 << 16 }] as never }), "ZipEntryRefused", { reason: "special file" }],
        ["duplicate entry names", renameRaw(twoFiles, "bbbb.txt", "aaaa.txt"), "ZipEntryRefused", { reason: "duplicate name" }],
        ["file that is also a directory", yield* pkgZip([entry()], { "d": x, "d/e": x }), "ZipEntryRefused", {}],
        ["../ entry", yield* pkgZip([entry()], { "../escaped.txt": x }), "PathEscapes", {}],
        ["absolute entry", yield* pkgZip([entry()], { "/abs.txt": x }), "PathEscapes", {}],
        ["backslash entry", yield* pkgZip([entry()], { "a\\..\\..\\b.txt": x }), "PathEscapes", {}],
        ["wasm path escaping", yield* pkgZip([entry({ process_wasm_path: "../hello:test.dev/pkg/echo.wasm" })]), "PathEscapes", {}],
        ["wasm path absolute outside", yield* pkgZip([entry({ process_wasm_path: "//echo.wasm" })]), "PathEscapes", {}],
        ["wasm missing", yield* pkgZip([entry({ process_wasm_path: "nope.wasm" })]), "ManifestInvalid", { field: "[0].process_wasm_path" }],
        ["wasm is a directory", yield* pkgZip([entry({ process_wasm_path: "dir/" })], { "dir/": new Uint8Array(0) }), "ManifestInvalid", {
          field: "[0].process_wasm_path"
        }],
        ["manifest not JSON", yield* pkgZip("[{"), "ManifestInvalid", { field: "" }],
        ["manifest field of the wrong type", yield* pkgZip([entry({ request_networking: "yes" })]), "ManifestInvalid", { field: "[0].request_networking" }],
        ["manifest field missing", yield* pkgZip([{ ...entry(), on_exit: undefined }]), "ManifestInvalid", { field: "[0].on_exit" }],
        ["cap object without params", yield* pkgZip([entry({ request_capabilities: [{ process: "kv:distro:sys" }] })]), "ManifestInvalid", {
          field: "[0].request_capabilities[0].params"
        }],
        ["requested cap not a process", yield* pkgZip([entry({ request_capabilities: ["kv"] })]), "ManifestInvalid", { field: "[0].request_capabilities[0]" }],
        ["granted cap not a process", yield* pkgZip([entry({ grant_capabilities: [{ process: "nope", params: 1 }] })]), "ManifestInvalid", {
          field: "[0].grant_capabilities[0]"
        }],
        ["duplicate process names", yield* pkgZip([entry(), entry()]), "ManifestInvalid", { field: "[1].process_name" }],
        ["on-exit request with a bad body", yield* pkgZip([entry({ on_exit: { Requests: [[`our@${ID}`, { inherit: false, expects_response: null, body: [300], metadata: null, capabilities: [] }, null]] } })]), "ManifestInvalid", {
          field: "[0].on_exit.Requests[0][1].body[0]"
        }],
        ["on-exit request to a bad address", yield* pkgZip([entry({ on_exit: { Requests: [["no address", {}, null]] } })]), "ManifestInvalid", {
          field: "[0].on_exit.Requests[0][0]"
        }],
        ["scripts.json of the wrong shape", yield* pkgZip([entry()], { "scripts.json": utf8.encode(JSON.stringify({ "s.wasm": { root: "no" } })) }), "PackageFileInvalid", {
          file: "scripts.json"
        }],
        ["scripts.json naming a missing script", yield* pkgZip([entry()], {
          "scripts.json": utf8.encode(JSON.stringify({ "s.wasm": { root: false, public: false, request_networking: false } }))
        }), "PackageFileInvalid", { file: "scripts.json", field: "s.wasm" }],
        ["metadata.json for another package", yield* pkgZip([entry()], {
          "metadata.json": utf8.encode(JSON.stringify({ properties: { package_name: "other", publisher: "test.dev", current_version: "1", mirrors: [], code_hashes: {} } }))
        }), "PackageFileInvalid", { file: "metadata.json", field: "properties.package_name" }],
        ["metadata.json not JSON", yield* pkgZip([entry()], { "metadata.json": x }), "PackageFileInvalid", { file: "metadata.json", field: "" }],
        ["api.zip not a zip", yield* pkgZip([entry()], { "api.zip": utf8.encode("not a zip, but long enough to search for a record") }), "ZipUnreadable", {}],
        ["api.zip escaping", yield* pkgZip([entry()], { "api.zip": zipSync({ "../../../x.wit": x }) }), "PathEscapes", { path: "api.zip/../../../x.wit" }]
      ]
      for (const [name, zip, tag, fields] of cases) {
        const e = failureOf(yield* Effect.exit(packages.install(PKG, zip))) as unknown as Record<string, unknown>
        assert.strictEqual(e._tag, tag, name)
        for (const [k, v] of Object.entries(fields)) assert.strictEqual(e[k], v, `${name}: ${k}`)
        assert.deepStrictEqual(snapshot(drive), files, name)
        assert.deepStrictEqual(capsOf(kernel.info(ID)!.capabilities), caps, name)
        assert.strictEqual(kernel.info(ID)!.status, "running", name)
      }
      assert.isFalse(fs.existsSync(path.join(home.path, "escaped.txt")))
      assert.isFalse(fs.existsSync(path.join(home.path, "vfs", "escaped.txt")))
      assert.strictEqual(yield* packages.installedHash(PKG), installed.hash)
      assert.strictEqual(text(yield* ask(api, ID, "still here")), "still here")
    })), 60_000)

  it.live("a process name of a runtime module is refused before anything changes", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const kernel = yield* Kernel
      const home = yield* Home
      const e = failureOf(yield* Effect.exit(packages.install({ package: "distro", publisher: "sys" }, yield* pkgZip([entry({ process_name: "vfs" })]))))
      assert.strictEqual(e._tag, "ManifestInvalid")
      assert.strictEqual((e as { field?: string }).field, "[0].process_name")
      assert.strictEqual(kernel.info("vfs:distro:sys")?.status, "runtime")
      assert.isFalse(fs.existsSync(path.join(home.path, "vfs", "distro:sys")))
    })))

  it.live("a component that will not run rolls back to the installed version", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const kernel = yield* Kernel
      const home = yield* Home
      const v1 = yield* pkgZip([entry({ request_capabilities: ["kv:distro:sys"] })], { "v1.txt": utf8.encode("1") })
      const installed = yield* packages.install(PKG, v1)
      const caps = capsOf(kernel.info(ID)!.capabilities)
      const drive = path.join(home.path, "vfs", "hello:test.dev", "pkg")
      const files = snapshot(drive)
      const broken = zipSync({
        "manifest.json": utf8.encode(JSON.stringify([entry(), entry({ process_name: "second" })])),
        "echo.wasm": utf8.encode("\0asm but not really a component")
      })
      const e = failureOf(yield* Effect.exit(packages.install(PKG, broken)))
      assert.strictEqual(e._tag, "ProcessFailed")
      assert.strictEqual((e as { step?: string }).step, "run")
      assert.isUndefined(kernel.info("second:hello:test.dev"))
      assert.strictEqual(kernel.info(ID)?.status, "running")
      assert.deepStrictEqual(capsOf(kernel.info(ID)!.capabilities), caps)
      assert.deepStrictEqual(snapshot(drive), files)
      assert.strictEqual(yield* packages.installedHash(PKG), installed.hash)
      const api = yield* driver([ID])
      assert.strictEqual(text(yield* ask(api, ID, "restored")), "restored")
      // With nothing installed before, a failed install leaves nothing behind.
      const fresh = { package: "fresh", publisher: "test.dev" }
      assert.strictEqual(failureOf(yield* Effect.exit(packages.install(fresh, broken)))._tag, "ProcessFailed")
      assert.isUndefined(kernel.info("echo:fresh:test.dev"))
      assert.isFalse(fs.existsSync(path.join(home.path, "vfs", "fresh:test.dev", "pkg")))
    })))

  it.live("a process whose init returns at once fails the install, and the reason says so (not a crash)", () =>
    run(Effect.gen(function*() {
      const packages = yield* Packages
      const returning = yield* Effect.promise(buildReturning)
      const zipWith = (onExit: string) =>
        zipSync({ "manifest.json": utf8.encode(JSON.stringify([entry({ on_exit: onExit })])), "echo.wasm": returning })
      const watched = { watchMs: 1000 } // as every installer of the node asks (terminal, --install, app-store)
      const restarting = failureOf(yield* Effect.exit(packages.install(PKG, zipWith("Restart"), watched)))
      assert.strictEqual(restarting._tag, "ProcessFailed")
      assert.match(String((restarting as { reason?: string }).reason), /^it crashed or returned from init, and is restarting \(on-exit Restart\) within \d+ ms of starting$/)
      const ended = failureOf(yield* Effect.exit(packages.install(PKG, zipWith("None"), watched)))
      assert.match(String((ended as { reason?: string }).reason), /^it ended within \d+ ms of starting$/)
      assert.isUndefined(yield* packages.installedHash(PKG), "nothing installed")
    })))
})
