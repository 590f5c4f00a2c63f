/**
 * The WASI sandbox of a Wasm process, end to end through the real kernel: the
 * probe component (test/fixtures/wasm/sandbox.wat, WASI 0.2.0 names) runs as
 * a process loaded by the node's program loader, which gives it its package's
 * tmp drive as the only preopened directory. Each check is one request to the
 * probe; its answer (or its printouts, or its end) is asserted here.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Home } from "../../src/Home.ts"
import { Kernel } from "../../src/Kernel.ts"
import { request, text } from "../../src/Message.ts"
import type { NativeApi } from "../../src/ProcessApi.ts"
import type { Printed } from "../../src/Printout.ts"
import { buildSandbox } from "../fixtures/wasm/build.ts"
import { at, once, PKG, session, startWasm, onNode, waitFor } from "./WasmNode.ts"

/** wasi:filesystem/types error-code, in WIT order (test/fixtures/wasm/wasi-0.2.0.wit). */
const ERROR_CODES = [
  "access", "would-block", "already", "bad-descriptor", "busy", "deadlock", "quota", "exist", "file-too-large",
  "illegal-byte-sequence", "in-progress", "interrupted", "invalid", "io", "is-directory", "loop", "too-many-links",
  "message-size", "name-too-long", "no-device", "no-entry", "no-lock", "insufficient-memory", "insufficient-space",
  "not-directory", "not-empty", "not-recoverable", "unsupported", "no-tty", "no-such-device", "overflow",
  "not-permitted", "pipe", "read-only", "invalid-seek", "text-file-busy", "cross-device"
]

const utf8 = new TextDecoder()



/** Starts a probe as `<name>:<pkg>` and returns `ask(command)` -> answer bytes. */
const startProbe = (name: string, pkg = PKG) =>
  Effect.gen(function*() {
    const id = `${name}:${pkg}`
    yield* startWasm(id, { bytes: yield* once("sandbox", buildSandbox) })
    const driver: NativeApi = yield* session(`${name}-driver:${pkg}`, [id])
    const ask = (command: string) =>
      Effect.gen(function*() {
        const r = yield* driver.sendAndAwaitEffect(at(id), request({ body: text(command), expectsResponse: 5n }))
        if (!("message" in r && "source" in r)) return yield* Effect.die(new Error(`${id}: no answer to ${command[0]}`))
        return r.message.body
      })
    /** Sends a command that ends the process (no answer). */
    const tell = (command: string) =>
      Effect.sync(() => driver.sendRequest(at(id), request({ body: text(command) }), undefined, undefined))
    return { id, ask, tell }
  })

const tmpOf = (pkg: string) => Effect.map(Home, (home) => path.join(home.path, "vfs", pkg, "tmp"))

const openResult = (answer: Uint8Array) => (answer[0] === 0 ? "ok" : ERROR_CODES[answer[1]!]!)

const linesOf = (lines: ReadonlyArray<Printed>, id: string) => lines.filter((l) => l.source === id).map((l) => [l.level, l.text] as const)

describe("WASI sandbox through the kernel", () => {
  it.live("stdout lines print at verbosity 1, stderr lines at 2, tagged with the process; a partial line at the end", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        const p = yield* startProbe("talker")
        assert.strictEqual(utf8.decode(yield* p.ask("oline one\nline two\npart")), "ok")
        assert.strictEqual(utf8.decode(yield* p.ask("oial\n")), "ok")
        assert.strictEqual(utf8.decode(yield* p.ask("ewarning: careful\n")), "ok")
        assert.deepStrictEqual(linesOf(lines, p.id), [
          [1, `${PKG}: line one`],
          [1, `${PKG}: line two`],
          [1, `${PKG}: partial`],
          [2, `${PKG}: warning: careful`]
        ])
        // an unfinished line is printed when the process ends
        assert.strictEqual(utf8.decode(yield* p.ask("ono newline")), "ok")
        yield* p.tell("q")
        yield* waitFor(() => k.info(p.id) === undefined, "ended")
        assert.deepStrictEqual(linesOf(lines, p.id).filter(([l]) => l === 1).at(-1), [1, `${PKG}: no newline`])
      })
    ))

  it.live("environment: only TEMP_DIR (the tmp drive), no arguments, no initial cwd", () =>
    onNode(() =>
      Effect.gen(function*() {
        const p = yield* startProbe("env")
        const a = yield* p.ask("v")
        const dv = new DataView(a.buffer, a.byteOffset, a.byteLength)
        assert.strictEqual(dv.getUint32(0, true), 1)
        assert.strictEqual(dv.getUint32(4, true), 0)
        assert.strictEqual(a[8], 0)
        assert.strictEqual(utf8.decode(a.subarray(9)), `TEMP_DIR=${yield* tmpOf(PKG)}\n`)
      })
    ))

  it.live("filesystem: the package's tmp drive is the only preopen; files written there are read back and land on the host", () =>
    onNode(() =>
      Effect.gen(function*() {
        const p = yield* startProbe("writer")
        const tmp = yield* tmpOf(PKG)
        assert.strictEqual(utf8.decode(yield* p.ask("d")), `\u0001\u0000\u0000\u0000${tmp}\n`)
        const w = yield* p.ask("whello sandbox")
        assert.deepStrictEqual([w[0], w[1]], [0, 0])
        assert.strictEqual(utf8.decode(w.subarray(2)), "hello sandbox")
        assert.strictEqual(fs.readFileSync(path.join(tmp, "probe.txt"), "utf8"), "hello sandbox")
        assert.strictEqual(openResult(yield* p.ask("xprobe.txt")), "ok")
        assert.strictEqual(openResult(yield* p.ask("xmissing.txt")), "no-entry")
        // the same file from a subdirectory path that stays inside
        fs.mkdirSync(path.join(tmp, "sub"))
        assert.strictEqual(openResult(yield* p.ask("xsub/../probe.txt")), "ok")
        // another package's process has its own tmp drive and cannot see this one
        const q = yield* startProbe("neighbour", "other:sys")
        assert.strictEqual(utf8.decode((yield* q.ask("d")).subarray(4)), `${yield* tmpOf("other:sys")}\n`)
        assert.strictEqual(openResult(yield* q.ask("xprobe.txt")), "no-entry")
      })
    ))

  it.live("filesystem: nothing outside the tmp drive is reachable (.., absolute paths, symlinks)", () =>
    onNode(() =>
      Effect.gen(function*() {
        const p = yield* startProbe("prisoner")
        const tmp = yield* tmpOf(PKG)
        // a file just outside, in the package's pkg drive, and one on the host
        fs.mkdirSync(path.join(path.dirname(tmp), "pkg"), { recursive: true })
        fs.writeFileSync(path.join(path.dirname(tmp), "pkg", "secret.txt"), "secret")
        for (const escape of ["../pkg/secret.txt", "..", "sub/../../pkg/secret.txt", "/etc/passwd", `${tmp}/../pkg/secret.txt`]) {
          assert.strictEqual(openResult(yield* p.ask(`x${escape}`)), "not-permitted", escape)
        }
        assert.strictEqual(openResult(yield* p.ask("c../escaped.txt")), "not-permitted")
        assert.isFalse(fs.existsSync(path.join(path.dirname(tmp), "escaped.txt")))
        // a symlink someone planted in the drive does not lead out of it
        fs.symlinkSync(path.join(path.dirname(tmp), "pkg"), path.join(tmp, "door"))
        fs.symlinkSync(path.join(path.dirname(tmp), "pkg", "secret.txt"), path.join(tmp, "secret-link"))
        assert.notStrictEqual(openResult(yield* p.ask("xdoor/secret.txt")), "ok")
        assert.notStrictEqual(openResult(yield* p.ask("xsecret-link")), "ok")
        assert.notStrictEqual(openResult(yield* p.ask("cdoor/planted.txt")), "ok")
        assert.isFalse(fs.existsSync(path.join(path.dirname(tmp), "pkg", "planted.txt")))
      })
    ))

  it.live("random and clocks work", () =>
    onNode(() =>
      Effect.gen(function*() {
        const p = yield* startProbe("dice")
        const read = (a: Uint8Array) => {
          const dv = new DataView(a.buffer, a.byteOffset, a.byteLength)
          return {
            bytes: [...a.subarray(0, 16)],
            u64: dv.getBigUint64(16, true),
            mono1: dv.getBigUint64(24, true),
            mono2: dv.getBigUint64(32, true),
            wallSeconds: dv.getBigUint64(40, true),
            wallNanos: dv.getUint32(48, true)
          }
        }
        const first = read(yield* p.ask("r"))
        const second = read(yield* p.ask("r"))
        assert.notDeepEqual(first.bytes, second.bytes)
        assert.notStrictEqual(first.u64, second.u64)
        assert.isTrue(first.mono2 >= first.mono1 && second.mono1 >= first.mono2)
        const now = BigInt(Math.floor(Date.now() / 1000))
        assert.isTrue(first.wallSeconds > now - 86_400n && first.wallSeconds < now + 86_400n, String(first.wallSeconds))
        assert.isTrue(first.wallNanos < 1_000_000_000)
      })
    ))

  it.live("exit(0) ends the process normally; exit(1) is reported", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        const ok = yield* startProbe("quitter")
        yield* ok.tell("q")
        yield* waitFor(() => k.info(ok.id) === undefined, "exit(0) ended the process")
        assert.deepStrictEqual(linesOf(lines, ok.id), [[2, `process ${ok.id} exited`]])
        const bad = yield* startProbe("failer")
        yield* bad.tell("Q")
        yield* waitFor(() => k.info(bad.id) === undefined, "exit(1) ended the process")
        const report = lines.find((l) => l.source === bad.id && l.level === 0)
        assert.isDefined(report)
        assert.include(report!.text, `process ${bad.id} crashed`)
        assert.include(report!.text, `process ${bad.id} exited with an error: exit(1)`)
      })
    ))

  it.live("sockets: importing wasi:sockets loads, but calling it traps with a clear message, contained", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        const p = yield* startProbe("netizen")
        // stderr written before the trap is part of the crash report
        yield* p.ask("eabout to open a socket\n")
        yield* p.tell("s")
        yield* waitFor(() => k.info(p.id) === undefined, "the trap ended the process")
        const report = lines.find((l) => l.source === p.id && l.level === 0)
        assert.isDefined(report)
        assert.include(report!.text, "wasi:sockets/instance-network.instance-network: not available to Kinode processes")
        assert.include(report!.text, "about to open a socket")
        // the node carries on
        const q = yield* startProbe("after")
        assert.strictEqual(utf8.decode(yield* q.ask("ofine\n")), "ok")
      })
    ))
})
