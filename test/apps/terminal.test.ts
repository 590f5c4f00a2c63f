/**
 * The terminal as Kinode has it, on a real kernel (LMDB, vfs on disk, the package
 * installer): the terminal package (apps/terminal) installed as `terminal:sys`, lines
 * handed to the node's line reader (`Terminal.run`), what the app and its scripts print
 * read from the printouts. The whole node through `node dist/main.js` is
 * test/cli/terminal.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { zipSync } from "fflate"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { beforeAll } from "vitest"
import { buildApp, scriptLink } from "../../apps/build.ts"
import { Packages } from "../../services/packages/index.ts"
import { NATIVE_TERMINAL_PROCESS, Terminal, TERMINAL_PROCESS } from "../../services/terminal/index.ts"
import { Kernel } from "../../src/Kernel.ts"
import { bodyText } from "../../src/Message.ts"
import type { Printed } from "../../src/Printout.ts"
import { buildEcho, buildTrap } from "../fixtures/wasm/build.ts"
import { appNode } from "./support/AppNode.ts"

const repo = path.resolve(import.meta.dirname, "..", "..")
const zipOf = (app: string) => new Uint8Array(fs.readFileSync(path.join(repo, "apps", "dist", `${app}.zip`)))

beforeAll(async () => {
  await Promise.all([buildApp("terminal"), buildApp("echo")])
}, 300_000)

const node = (home?: string) => {
  const n = appNode(home === undefined ? {} : { home })
  return { layer: Terminal.layer.pipe(Layer.provideMerge(n.layer)), lines: n.lines }
}

/** Waits for a printout matching `pattern` among those from `from` on; its text. */
const printed = (lines: ReadonlyArray<Printed>, pattern: RegExp, from = 0, ms = 20_000) =>
  Effect.gen(function*() {
    const t0 = Date.now()
    while (Date.now() - t0 < ms) {
      const hit = lines.slice(from).find((l) => pattern.test(l.text))
      if (hit !== undefined) return hit.text
      yield* Effect.sleep("20 millis")
    }
    return assert.fail(`no printout ${pattern} within ${ms} ms; printed:\n${lines.slice(from).map((l) => `[${l.level} ${l.source}] ${l.text}`).join("\n")}`)
  })

/** Types `line` and waits for a printout matching `pattern` after it; the printout and the ms it took. */
const typed = (lines: ReadonlyArray<Printed>, line: string, pattern: RegExp, ms = 20_000) =>
  Effect.gen(function*() {
    const terminal = yield* Terminal
    const from = lines.length
    const t0 = performance.now()
    yield* terminal.run(line)
    const text = yield* printed(lines, pattern, from, ms)
    return { text, ms: performance.now() - t0 }
  })

const install = (app: string, zip = zipOf(app), publisher = "sys") =>
  Effect.flatMap(Packages, (p) => p.install({ package: app, publisher }, zip))

const utf8 = new TextEncoder()

describe("terminal app and scripts", () => {
  it.live("echo, m (-a anywhere, quoted JSON, refusals at once, usage), top, kill, cat, help, unknown names", () => {
    const { layer, lines } = node()
    return Effect.gen(function*() {
      yield* install("terminal")
      yield* install("echo")
      const kernel = yield* Kernel
      assert.strictEqual(kernel.info(TERMINAL_PROCESS)?.status, "running")
      const n = kernel.node

      assert.strictEqual((yield* typed(lines, "echo hello world", /hello world/)).text, "terminal:sys: hello world")
      // A script is a process of the terminal package with a random u64 name, gone once it is done.
      yield* Effect.sleep("200 millis")
      assert.deepStrictEqual(kernel.processes().filter((p) => /^\d+:terminal:sys$/.test(p.id)).map((p) => p.id), [])

      // m: Kinode's syntax.
      yield* typed(lines, "m our@echo:echo:sys hi -a 5", /terminal:sys: hi$/)
      yield* typed(lines, "m -a 5 our@echo:echo:sys '{\"a\": 1}'", /^terminal:sys: \{"a": 1\}$/)
      yield* typed(lines, `m ${n}@echo:echo:sys 'two words' --await=5`, /^terminal:sys: two words$/)
      const refused = yield* typed(lines, "m our@nobody:nowhere:sys hi -a 30", /^terminal:sys: refused/)
      assert.strictEqual(refused.text, "terminal:sys: refused: no process nobody:nowhere:sys on this node")
      assert.isBelow(refused.ms, 5000, "a refusal is said at once, not after the 30 s wait")
      yield* typed(lines, "m our@nobody:nowhere:sys hi", /refused: no process nobody:nowhere:sys on this node/)
      yield* typed(lines, "m", /Send a request to a process\.\n.*Usage:.* m <target> <body> \[-a <await_time>\]/)
      yield* typed(lines, "m our@echo:echo:sys", /No body given\./)
      yield* typed(lines, "m our@echo:echo:sys hello -a abc", /Failed to parse args: invalid value 'abc'/)
      yield* typed(lines, "m our@echo:echo:sys hello world", /unexpected argument 'world'/)
      yield* typed(lines, "m notanaddress x", /Invalid address: "notanaddress"/)
      // The kernel's answer to a kernel command, printed with -a.
      yield* typed(lines, `m our@kernel:distro:sys '{"Debug": {"Process": "echo:echo:sys"}}' -a 5`, /"wasm_bytes_handle":"\/echo:sys\/pkg\/echo.wasm"/)

      // top: one line per process and the count; top <id>: its capabilities.
      const all = yield* typed(lines, "top", /top: \d+ running processes/)
      // Each line: status (from the kernel's Debug answer), public, on-exit, capability count, code.
      assert.match(all.text, /echo:echo:sys\s+running\s+public\s+on-exit Restart\s+caps\s+\d+\s+\/echo:sys\/pkg\/echo\.wasm/)
      assert.match(all.text, /vfs:distro:sys\s+running\s+.*\(runtime\)/)
      const one = yield* typed(lines, "top terminal:terminal:sys", /capabilities \(\d+\):/)
      assert.include(one.text, `${n}@kernel:distro:sys("messaging")`)
      assert.include(one.text, `${n}@vfs:distro:sys({"root":true})`)
      assert.include(one.text, "on-exit: Restart")
      yield* typed(lines, "top nobody:nowhere:sys", /top: no process nobody:nowhere:sys/)
      yield* typed(lines, "top not-an-id", /invalid process id: not-an-id/)

      // cat through vfs; a missing file says why.
      const cat = yield* typed(lines, "cat /terminal:sys/pkg/manifest.json", /"process_name": "terminal"/)
      assert.match(cat.text, /^terminal:sys: \[/)
      yield* typed(lines, "cat /terminal:sys/pkg/nope.txt", /failed to read file \/terminal:sys\/pkg\/nope\.txt from VFS: /)

      // kill: stops a process; an unknown id is said at once (the kernel would not answer).
      yield* typed(lines, "kill echo:echo:sys", /killed process echo:echo:sys/)
      assert.isUndefined(kernel.info("echo:echo:sys"))
      const unknown = yield* typed(lines, "kill echo:echo:sys", /kill: no process echo:echo:sys/)
      assert.isBelow(unknown.ms, 5000)

      yield* typed(lines, "help", /Kinode Terminal Help/)
      yield* typed(lines, "help top", /top.* <process-id>: display kernel debugging info/)
      yield* typed(lines, "help nothing", /No help found for command/)
      yield* typed(lines, "nope x", /^terminal:sys: error calling script: 'nope' not found, either as an alias or process ID$/)
      yield* typed(lines, "echo:echo:sys hi", /error calling script: no scripts manifest in package echo:sys/)
      yield* typed(lines, "nope:terminal:sys hi", /error calling script: script not in scripts\.json file: terminal:sys has no script nope/)
      // peers, peer, net-diagnostics, kns and kfetch need the network: test/cli/terminal.test.ts.
    }).pipe(Effect.provide(layer), Effect.scoped)
  }, 180_000)

  it.live("m attaches a blob (-b <vfs path>, --blob-text): the receiver gets it; a missing or too large file is said at once; InitializeProcess + RunProcess from the terminal", () => {
    const { layer, lines } = node()
    return Effect.gen(function*() {
      yield* install("terminal")
      yield* install("echo")
      const kernel = yield* Kernel
      const n = kernel.node

      // The receiver sees the file's bytes and its MIME type from the extension.
      const receiver = yield* kernel.session("blobseer:test:sys", { capabilities: [], public: true })
      yield* (yield* Terminal).run("m our@blobseer:test:sys look -b /terminal:sys/pkg/manifest.json")
      const r = yield* receiver.receiveEffect
      assert.strictEqual(r._tag, "Message")
      if (r._tag !== "Message") return
      assert.strictEqual(bodyText(r.message), "look")
      const manifest = fs.readFileSync(path.join(repo, "apps", "terminal", "pkg", "manifest.json"))
      assert.deepStrictEqual(receiver.getBlob()?.bytes, new Uint8Array(manifest))
      assert.strictEqual(receiver.getBlob()?.mime, "application/json")
      yield* (yield* Terminal).run("m our@blobseer:test:sys 'some text' --blob-text 'a blob of text'")
      const t = yield* receiver.receiveEffect
      assert.strictEqual(t._tag, "Message")
      assert.strictEqual(new TextDecoder().decode(receiver.getBlob()?.bytes), "a blob of text")
      assert.strictEqual(receiver.getBlob()?.mime, "text/plain")

      // echo answers with the blob it got; m -a prints the response's blob on a line of its own.
      const echoed = yield* typed(lines, "m -a 5 our@echo:echo:sys hi --blob-text 'round trip'", /blob \(/)
      assert.strictEqual(echoed.text, "terminal:sys: hi\nblob (10 bytes): round trip")
      const file = yield* typed(lines, "m our@echo:echo:sys file --blob=/terminal:sys/pkg/manifest.json -a 5", /blob \(/)
      assert.match(file.text, new RegExp(`^terminal:sys: file\nblob \\(${manifest.length} bytes\\): \\[`))
      // No blob, no blob line.
      assert.strictEqual((yield* typed(lines, "m our@echo:echo:sys plain -a 5", /plain/)).text, "terminal:sys: plain")

      // A missing file, a file past the message limit (11 MiB in a package's drive): said at once, nothing sent.
      yield* install("big", zipSync({ "manifest.json": utf8.encode("[]"), "big.bin": new Uint8Array(11 * 1024 * 1024) }), "test.dev")
      const missing = yield* typed(lines, "m our@echo:echo:sys hi -b /terminal:sys/pkg/nope.wasm -a 30", /failed to read blob file/)
      assert.match(missing.text, /^terminal:sys: failed to read blob file \/terminal:sys\/pkg\/nope\.wasm from VFS: .+/)
      assert.isBelow(missing.ms, 5000)
      const big = yield* typed(lines, "m our@echo:echo:sys hi -b /big:test.dev/pkg/big.bin -a 30", /more than a message may carry/)
      assert.match(big.text, /blob file \/big:test\.dev\/pkg\/big\.bin is 11\.5 MB, more than a message may carry/)
      assert.isBelow(big.ms, 5000)
      yield* typed(lines, "m our@echo:echo:sys hi -b /a --blob-text b", /cannot be used with '--blob-text <text>'/)
      yield* typed(lines, "m our@echo:echo:sys hi -b", /a value is required for '--blob'/)

      // Kinode's way to start a process, typed: InitializeProcess with the Wasm as blob, then RunProcess.
      yield* install("wecho", zipSync({ "manifest.json": utf8.encode("[]"), "wecho.wasm": yield* Effect.promise(buildEcho) }), "test.dev")
      const init = JSON.stringify({
        InitializeProcess: {
          id: "wecho:wecho:test.dev",
          wasm_bytes_handle: "/wecho:test.dev/pkg/wecho.wasm",
          wit_version: 1,
          on_exit: "None",
          initial_capabilities: [],
          public: true
        }
      })
      yield* typed(lines, `m our@kernel:distro:sys '${init}' --blob /wecho:test.dev/pkg/wecho.wasm -a 5`, /^terminal:sys: "InitializedProcess"$/)
      yield* typed(lines, `m our@kernel:distro:sys '{"RunProcess": "wecho:wecho:test.dev"}' -a 5`, /^terminal:sys: "StartedProcess"$/)
      assert.strictEqual(kernel.info("wecho:wecho:test.dev")?.status, "running")
      yield* typed(lines, `m ${n}@wecho:wecho:test.dev 'are you there' -a 5`, /^terminal:sys: are you there$/)
      // Without the blob, the kernel says why (Kinode's "no code blob").
      const noBlob = init.replace("wecho:wecho", "other:wecho")
      yield* typed(lines, `m our@kernel:distro:sys '${noBlob}' -a 5`, /^terminal:sys: "InitializeProcessError"$/)
      yield* typed(lines, "help m", /--blob-text/)
    }).pipe(Effect.provide(layer), Effect.scoped)
  }, 180_000)

  it.live("alias set, used, removed; aliases persist across a restart, defaults come back", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-terminal-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(home, { recursive: true, force: true })))
      const first = node(home)
      yield* Effect.gen(function*() {
        yield* (yield* Kernel).boot
        yield* install("terminal")
        yield* typed(first.lines, "alias say echo:terminal:sys", /^terminal:sys: alias say set for echo:terminal:sys$/)
        yield* typed(first.lines, "say aliased", /^terminal:sys: aliased$/)
        yield* typed(first.lines, "alias gone nothing:here:sys", /alias gone set for nothing:here:sys/)
        // An alias to nothing: said, at once.
        yield* typed(first.lines, "gone x", /error calling script: no scripts manifest in package here:sys/)
        yield* typed(first.lines, "alias gone", /^terminal:sys: alias gone removed$/)
        yield* typed(first.lines, "alias gone", /^terminal:sys: alias gone not found$/)
        yield* typed(first.lines, "alias x not-an-id", /Invalid process ID\./)
        yield* typed(first.lines, "alias echo", /alias echo removed/)
        yield* typed(first.lines, "echo x", /'echo' not found/)
      }).pipe(Effect.provide(first.layer), Effect.scoped)
      const second = node(home)
      yield* Effect.gen(function*() {
        yield* (yield* Kernel).boot
        yield* typed(second.lines, "say still here", /^terminal:sys: still here$/)
        // Default aliases are put back at every start.
        yield* typed(second.lines, "echo back", /^terminal:sys: back$/)
        yield* typed(second.lines, "gone x", /'gone' not found/)
      }).pipe(Effect.provide(second.layer), Effect.scoped)
    }), 180_000)

  it.live("a script of another package runs through kernel commands; one that traps is said, the prompt answers on", () => {
    const { layer, lines } = node()
    return Effect.gen(function*() {
      yield* install("terminal")
      const scripts = {
        "boom.wasm": { root: false, public: false, request_networking: false, request_capabilities: [], grant_capabilities: [], wit_version: 1 },
        "alsoboom.wasm": { root: false, public: false, request_networking: false, request_capabilities: [], grant_capabilities: [], wit_version: 1 }
      }
      const zip = zipSync({
        "manifest.json": utf8.encode("[]"),
        "scripts.json": utf8.encode(JSON.stringify(scripts)),
        "boom.wasm": yield* Effect.promise(buildTrap),
        // A script link (apps/build.ts) is followed to the file it names.
        "alsoboom.wasm": scriptLink("boom.wasm")
      })
      yield* install("trapper", zip, "test.dev")
      const trapped = yield* typed(lines, "boom:trapper:test.dev now", /fixture failure/)
      assert.match(trapped.text, /panicked at src\/lib\.rs:1: fixture failure/)
      yield* typed(lines, "alsoboom:trapper:test.dev again", /fixture failure/)
      yield* typed(lines, "echo still answering", /^terminal:sys: still answering$/)
    }).pipe(Effect.provide(layer), Effect.scoped)
  }, 120_000)

  it.live("without the app, the node's own commands answer and say why; the app's id gets each line as Kinode's runtime sends it", () => {
    const { layer, lines } = node()
    return Effect.gen(function*() {
      const terminal = yield* Terminal
      const kernel = yield* Kernel
      yield* typed(lines, "echo x", /the terminal app terminal:terminal:sys is not installed; the node's own commands answer instead: m, top, quit, help/)
      yield* typed(lines, "top vfs:distro:sys", /vfs:distro:sys\s+runtime/)
      yield* typed(lines, "m our@nobody:nowhere:sys x -a 5", /m: no process nobody:nowhere:sys on this node/)
      yield* typed(lines, "v 2", /verbosity 2/)
      assert.isFalse(terminal.quitRequested())
      yield* terminal.run("quit")
      assert.isTrue(terminal.quitRequested())

      // Whatever process is terminal:terminal:sys (Kinode's own terminal app, here a session) gets each line.
      const fake = yield* kernel.session(TERMINAL_PROCESS, { capabilities: [], public: false })
      yield* terminal.run("echo hello 'there'")
      const r = yield* fake.receiveEffect
      assert.strictEqual(r._tag, "Message")
      if (r._tag !== "Message") return
      assert.strictEqual(r.source.toString(), `${kernel.node}@${TERMINAL_PROCESS}`)
      assert.strictEqual(r.message._tag, "Request")
      if (r.message._tag !== "Request") return
      assert.strictEqual(bodyText(r.message), "echo hello 'there'")
      assert.isUndefined(r.message.expectsResponse)
      assert.isFalse(r.message.inherit)
      assert.deepStrictEqual(r.message.capabilities, [])
      assert.isFalse(fake.hasBlob())
      assert.isDefined(kernel.info(NATIVE_TERMINAL_PROCESS))
    }).pipe(Effect.provide(layer), Effect.scoped)
  }, 60_000)

  it.live("a crashed app leaves the node's own commands; reinstalled, lines go to it again", () => {
    const { layer, lines } = node()
    return Effect.gen(function*() {
      yield* install("terminal")
      yield* typed(lines, "kill terminal:terminal:sys", /terminal app terminal:terminal:sys is not installed|killed process/)
      yield* typed(lines, "top terminal:terminal:sys", /top: no process terminal:terminal:sys/)
      yield* install("terminal")
      yield* typed(lines, "echo back again", /^terminal:sys: back again$/)
    }).pipe(Effect.provide(layer), Effect.scoped)
  }, 120_000)
})
