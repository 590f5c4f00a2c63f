/**
 * Installing packages as a user does, through a real `node dist/main.js`:
 * - `--install <zip>` at boot (repeatable): installed after the bundled apps, a summary
 *   printed before the node says it booted; a zip that is not a package (or no file)
 *   stops the boot with one line and exit 2 before the home is touched;
 * - the terminal: `install <zip>` lists the capabilities asked for and asks (`y`,
 *   `y 1 3`, `n`), `--yes` grants all, an upgrade replaces the version, `packages`
 *   lists, `uninstall` removes; bad input (not a package, a corrupt zip in the middle
 *   of upgrades, a process that traps at init, a refusal) is one clear line and changes
 *   nothing;
 * - the app store module through the RPC path as `kit start-package` uses it
 *   (`NewPackage` with the zip base64 in `data`, then `Install`), listing, uninstall;
 * - both package formats (Kinode 0.5's and the current one) from files on disk.
 * The packages are built here from our WAT components.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { zipSync } from "fflate"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { buildEcho, buildTrap, buildV07 } from "../fixtures/wasm/build.ts"
import { type Running, runNode } from "../support/NodeProcess.ts"
import { tempDirs } from "../support/TempDirs.ts"
import { startTestChain, type TestChain } from "../support/TestChain.ts"

const dirs = tempDirs()
let chain: TestChain
let pw: string
let zips: string
const utf8 = new TextEncoder()
const json = (v: unknown) => utf8.encode(JSON.stringify(v))
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

const entry = (overrides: Record<string, unknown> = {}) => ({
  process_name: "echo",
  process_wasm_path: "/echo.wasm",
  on_exit: "Restart",
  request_networking: false,
  request_capabilities: [],
  grant_capabilities: [],
  public: true,
  ...overrides
})

/** The zips of this file, by name, and their bytes. */
const files: Record<string, Uint8Array> = {}
const file = (name: string) => path.join(zips, name)

const run = (args: ReadonlyArray<string>): Running =>
  runNode(["--chain-port", String(chain.port), "--password-file", pw, ...args], { env: { KINODE_PASSWORD: "" } })

beforeAll(async () => {
  const chainStarted = startTestChain()
  pw = path.join(dirs.mkdir("kinode-ts-pw-"), "pw")
  fs.writeFileSync(pw, "packages test\n")
  zips = dirs.mkdir("kinode-ts-zips-")
  const [echo, trap, v07] = await Promise.all([buildEcho(), buildTrap(), buildV07()])
  // The current format, named by its file (as kit names its zips).
  files["hello:test.dev.zip"] = zipSync({
    "manifest.json": json([entry({ request_capabilities: ["http-server:distro:sys", "kv:distro:sys"], request_networking: true })]),
    "echo.wasm": echo
  })
  // Version 2: named by its ERC-721 metadata.json; a second process; three capabilities asked.
  files["hello-v2.zip"] = zipSync({
    "manifest.json": json([
      entry({
        request_capabilities: ["http-server:distro:sys", "kv:distro:sys", { process: "vfs:distro:sys", params: { root: true } }],
        request_networking: true
      }),
      entry({ process_name: "second", request_capabilities: ["http-server:distro:sys"] })
    ]),
    "echo.wasm": echo,
    "metadata.json": json({
      name: "hello",
      properties: { package_name: "hello", publisher: "test.dev", current_version: "2.0.0", mirrors: [], code_hashes: {}, wit_version: 1 }
    })
  })
  // Version 3 traps at init; version 4 is a corrupt zip (cut short).
  files["hello:test.dev-v3.zip"] = zipSync({
    "manifest.json": json([entry({ request_capabilities: ["http-server:distro:sys"] }), entry({ process_name: "boom", process_wasm_path: "/trap.wasm" })]),
    "echo.wasm": echo,
    "trap.wasm": trap,
    "metadata.json": json({ package: "hello", publisher: "test.dev", version: [3, 0, 0] })
  })
  files["hello-v4-corrupt.zip"] = files["hello-v2.zip"]!.slice(0, files["hello-v2.zip"]!.length - 40)
  // The older format (Kinode 0.5): metadata.json in the zip, camelCase scripts.json, names with _.
  files["legacy.zip"] = zipSync({
    "manifest.json": json([{
      process_name: "kns_indexer",
      process_wasm_path: "/kns_indexer.wasm",
      on_exit: "None",
      request_networking: true,
      request_capabilities: ["http-server:distro:sys"],
      public: true
    }]),
    "metadata.json": json({ package: "kns_indexer", publisher: "sys", version: [0, 2, 0] }),
    "scripts.json": json({ "get_block.wasm": { root: false, public: false, requestNetworking: false, requestCapabilities: ["eth:distro:sys"] } }),
    "kns_indexer.wasm": v07,
    "get_block.wasm": utf8.encode("a script")
  })
  // A package for the app store, sideloaded over RPC.
  files["sideload.zip"] = zipSync({ "manifest.json": json([entry({ process_name: "side", request_capabilities: ["http-server:distro:sys"] })]), "echo.wasm": echo })
  files["not-a-package.zip"] = zipSync({ "readme.txt": utf8.encode("just a zip") })
  files["garbage.zip"] = utf8.encode("this is not a zip file at all, though long enough to be searched")
  files["nameless.zip"] = zipSync({ "manifest.json": json([entry()]), "echo.wasm": echo })
  for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(file(name), bytes)
  chain = await chainStarted
}, 60_000)
afterAll(async () => {
  await chain?.stop()
  dirs.removeAll()
})

describe("--install at boot: refused before anything is touched", () => {
  it("a zip that is not a package, a missing file, a zip nothing names: exit 2 with one line, the home left empty", async () => {
    const cases: Array<[ReadonlyArray<string>, RegExp]> = [
      [[file("not-a-package.zip")], /^--install .*not-a-package\.zip: not a package: the zip has no manifest\.json at its root$/m],
      [[file("hello:test.dev.zip"), file("garbage.zip")], /^--install .*garbage\.zip: not a package: the zip cannot be read \(.+\)$/m],
      [[file("missing.zip")], /^--install .*missing\.zip: cannot read .*missing\.zip \(ENOENT\)$/m],
      [[file("nameless.zip")], /^--install .*nameless\.zip: cannot tell which package .*nameless\.zip is: it has no metadata\.json/m]
    ]
    const runs = cases.map(([zipsGiven, line]) => {
      const home = dirs.mkdir("kinode-ts-refused-")
      return { home, line, node: run(["--home", home, "--name", `refused-${process.pid}.dev`, ...zipsGiven.flatMap((z) => ["--install", z])]) }
    })
    for (const r of runs) {
      assert.strictEqual(await r.node.exited, 2, r.node.output())
      assert.match(r.node.output(), r.line)
      assert.strictEqual(r.node.output().trim().split("\n").length, 1, r.node.output())
      assert.deepStrictEqual(fs.readdirSync(r.home), [])
    }
    const safe = run(["--home", dirs.mkdir("kinode-ts-refused-"), "--install", file("legacy.zip"), "--safe-mode"])
    assert.strictEqual(await safe.exited, 2)
    assert.match(safe.output(), /--install goes without --safe-mode/)
  }, 60_000)
})

describe("a node booted with --install, used from its terminal and over RPC", () => {
  let node: Running
  let url: string
  let name: string
  /** Output since the last mark. */
  let mark = 0
  const since = () => node.output().slice(mark)
  /** Types a line and waits for `pattern` in what follows. */
  const type = async (line: string, pattern: RegExp, ms = 20_000) => {
    mark = node.output().length
    node.child.stdin.write(`${line}\n`)
    const t0 = Date.now()
    while (!pattern.test(since())) {
      if (Date.now() - t0 > ms) throw new Error(`no ${pattern} after "${line}"; output:\n${since()}`)
      await new Promise((r) => setTimeout(r, 25))
    }
    return since()
  }
  const rpc = async (body: unknown) => {
    const res = await fetch(`${url}/rpc:distro:sys/message`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    const t = await res.text()
    assert.strictEqual(res.status, 200, t)
    const answer = JSON.parse(t) as { body: Array<number>; lazy_load_blob: unknown }
    return Buffer.from(answer.body).toString("utf8")
  }
  const echo = (process: string, text: string) => rpc({ process, body: text, expects_response: 5 })
  const store = async (request: unknown, zip?: Uint8Array) =>
    JSON.parse(await rpc({
      process: "main:app-store:sys",
      body: JSON.stringify(request),
      expects_response: 15,
      mime: "application/octet-stream",
      data: zip === undefined ? null : Buffer.from(zip).toString("base64")
    })) as unknown

  beforeAll(async () => {
    const home = dirs.mkdir("kinode-ts-packages-")
    name = `packages-${process.pid}-${Math.floor(Math.random() * 1e6)}.dev`
    node = run(["--home", home, "--name", name, "--install", file("legacy.zip"), "--install", file("hello:test.dev.zip")])
    await node.waitFor(/in a browser and log in with your password.*\n/, 90_000)
    url = /open (http:\/\/\S+) in a browser/.exec(node.output())![1]!
  }, 120_000)
  afterAll(async () => {
    if (node !== undefined && node.child.exitCode === null && node.child.signalCode === null) {
      node.child.kill("SIGKILL")
      await node.exited
    }
  })

  it("--install: each zip installed after the bundled apps, with every capability, its summary before the boot line; both formats", async () => {
    const out = node.output()
    const legacy = out.indexOf(`installed kns_indexer:sys, version ${sha(files["legacy.zip"]!)}`)
    const hello = out.indexOf(`installed hello:test.dev, version ${sha(files["hello:test.dev.zip"]!)}`)
    assert.isAtLeast(legacy, 0, out)
    assert.isAbove(hello, legacy, out)
    assert.isBelow(hello, out.indexOf(`node ${name} booted`))
    assert.match(out, /^ {2}started kns_indexer:kns_indexer:sys$/m)
    assert.match(out, /^ {2}started echo:hello:test\.dev$/m)
    assert.match(out, /^ {2}withheld nothing$/m)
    assert.strictEqual(await echo("kns_indexer:kns_indexer:sys", "from 2024"), "from 2024")
    assert.strictEqual(await echo("echo:hello:test.dev", "hi"), "hi")
  })

  it("packages lists the installed packages: bundled, --install'ed, legacy; with hashes and processes", async () => {
    const listed = await type("packages", /packages installed:\n(?: {2}.*\n)+/)
    assert.match(listed, new RegExp(`^ {2}hello:test\\.dev {2}${sha(files["hello:test.dev.zip"]!)} {2}echo:hello:test\\.dev$`, "m"))
    assert.match(listed, /^ {2}kns_indexer:sys {2}[0-9a-f]{64} {2}\(no process running\)$/m)
    for (const p of ["counter:sys", "echo:sys", "spawner:sys"]) assert.match(listed, new RegExp(`^ {2}${esc(p)} {2}[0-9a-f]{64} `, "m"))
  })

  it("install asks, and y with numbers grants only those: an upgrade, the rest withheld", async () => {
    const question = await type(`install ${file("hello-v2.zip")}`, /n: cancel/)
    assert.match(question, new RegExp(`^hello:test\\.dev \\(replaces the installed version ${sha(files["hello:test.dev.zip"]!)}\\): processes echo:hello:test\\.dev, second:hello:test\\.dev ask for:$`, "m"))
    assert.match(question, /^ {2}1\. echo:hello:test\.dev: send messages to http-server:distro:sys /m)
    assert.match(question, /^ {2}2\. echo:hello:test\.dev: send messages to kv:distro:sys /m)
    assert.match(question, /^ {2}3\. echo:hello:test\.dev: read and write every file of the node /m)
    assert.match(question, /^ {2}4\. echo:hello:test\.dev: talk to other nodes /m)
    assert.match(question, /^ {2}5\. second:hello:test\.dev: send messages to http-server:distro:sys /m)
    const done = await type("y 1 2 4 5", /^ {2}started .*\n(?: {2}withheld .*\n)+/m)
    assert.match(done, new RegExp(`^installed hello:test\\.dev, version ${sha(files["hello-v2.zip"]!)}$`, "m"))
    assert.match(done, /^ {2}started echo:hello:test\.dev, second:hello:test\.dev$/m)
    assert.match(done, /^ {2}withheld from echo:hello:test\.dev: read and write every file of the node \(.*vfs:distro:sys \{"root":true\}\)$/m)
    assert.strictEqual(await echo("second:hello:test.dev", "v2"), "v2")
    await type("y", /y: no install is waiting for an answer/)
  })

  it("bad input changes nothing: not a package, garbage, a corrupt zip mid-upgrade, a process that traps at init, n", async () => {
    const v2 = sha(files["hello-v2.zip"]!)
    assert.match(await type(`install ${file("not-a-package.zip")} --id junk:test.dev`, /^install: .*$/m), /^install: junk:test\.dev not installed: not a package: the zip has no manifest\.json at its root$/m)
    assert.match(await type(`install ${file("garbage.zip")}`, /^install: .*$/m), /^install: not a package: the zip cannot be read/m)
    assert.match(await type(`install ${file("hello-v4-corrupt.zip")} --id hello:test.dev`, /^install: .*$/m), /^install: hello:test\.dev not installed: not a package: the zip cannot be read/m)
    assert.match(await type(`install ${file("nowhere.zip")}`, /^install: .*$/m), /^install: cannot read .*nowhere\.zip \(ENOENT\)$/m)
    const trapped = await type(`install ${file("hello:test.dev-v3.zip")} --yes`, /^install: hello:test\.dev not installed.*$/m)
    assert.match(trapped, /^install: hello:test\.dev not installed, nothing changed: the process boom:hello:test\.dev did not start: it crashed/m)
    assert.match(trapped, /fixture failure/, "the crash itself is printed too")
    await type(`install ${file("hello:test.dev.zip")}`, /n: cancel/)
    assert.match(await type("n", /cancelled.*$/m), /^install of hello:test\.dev cancelled: nothing changed$/m)
    // Still version 2, answering.
    assert.match(await type("packages", /packages installed:\n(?: {2}.*\n)+/), new RegExp(`^ {2}hello:test\\.dev {2}${v2} {2}echo:hello:test\\.dev, second:hello:test\\.dev$`, "m"))
    assert.strictEqual(await echo("echo:hello:test.dev", "unchanged"), "unchanged")
    assert.match(await type("uninstall nope:test.dev", /^uninstall: .*$/m), /^uninstall: nope:test\.dev is not installed$/m)
    assert.match(await type("uninstall not a package id", /^uninstall: .*$/m), /^uninstall: "not a package id" is not a package id/m)
  })

  it("the app store over RPC, as kit start-package: NewPackage with the zip in data, Install, Installed, Uninstall", async () => {
    const zip = files["sideload.zip"]!
    const id = { package_name: "sideload", publisher_node: "test.dev" }
    assert.deepStrictEqual(await store({ NewPackage: { package_id: id, mirror: true } }, zip), { NewPackageResponse: "Success" })
    const install = { Install: { package_id: id, version_hash: sha(zip), metadata: null } }
    assert.deepStrictEqual(await store(install), { InstallResponse: "Success" })
    await node.waitFor(/^(?:\S+ > )?installed sideload:test\.dev, version [0-9a-f]{64}$/m)
    assert.strictEqual(await echo("side:sideload:test.dev", "sideloaded"), "sideloaded")
    const listed = await store("Installed") as { InstalledResponse: { packages: Array<{ package_id: typeof id; version_hash: string; processes: Array<string> }> } }
    assert.deepStrictEqual(listed.InstalledResponse.packages.find((p) => p.package_id.package_name === "sideload"), {
      package_id: id,
      version_hash: sha(zip),
      processes: ["side:sideload:test.dev"]
    })
    assert.deepStrictEqual(await store({ NewPackage: { package_id: id, mirror: false } }, files["garbage.zip"]), { NewPackageResponse: "InstallFailed" })
    await node.waitFor(/NewPackage sideload:test\.dev: not a package I can install: not a package: the zip cannot be read/)
    assert.deepStrictEqual(await store({ Uninstall: id }), { UninstallResponse: "Success" })
    assert.deepStrictEqual(await store({ Uninstall: id }), { UninstallResponse: "Failure" })
  }, 30_000)

  it("uninstall from the terminal; Ctrl-D stops the node with exit 0", async () => {
    const gone = await type("uninstall hello:test.dev", /^uninstalled .*$/m)
    assert.match(gone, /^uninstalled hello:test\.dev: stopped echo:hello:test\.dev, second:hello:test\.dev$/m)
    assert.notMatch(await type("packages", /packages installed:\n(?: {2}.*\n)+/), /hello:test\.dev/)
    node.child.stdin.end()
    assert.strictEqual(await node.exited, 0, since())
  }, 30_000)
})
