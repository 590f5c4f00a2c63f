/**
 * Bad Wasm through the real kernel: bytes that are not a component, a core
 * module, unknown imports, the wrong world, a trap in init, a process that
 * exhausts its memory, an allocator that fails while the host writes into the
 * guest. Each is refused with a typed error or ends its process with a printout
 * that says what happened, and the node keeps routing: a WAT echo started
 * before still answers afterwards.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Kernel, RunFailed } from "../../src/Kernel.ts"
import { request, text } from "../../src/Message.ts"
import type { NativeApi } from "../../src/ProcessApi.ts"
import type { Printed } from "../../src/Printout.ts"
import {
  buildComponent,
  buildCoreModule,
  buildEcho,
  buildHog,
  buildNoInit,
  buildSmallHeap,
  buildTrap,
  buildUnknownImport,
  buildUnknownKinodeVersion,
  buildWrongInit
} from "../fixtures/wasm/build.ts"
import { kernelCall } from "../src/helpers.ts"
import { at, once, PKG, puppetBytes, putFile, session, startPuppet, startWasm, onNode, waitFor } from "./WasmNode.ts"



const ECHO = `echo:${PKG}`

/** A WAT echo and a driver that may message it; `check` asserts it still answers. */
const startEcho = Effect.gen(function*() {
  yield* startWasm(ECHO, { bytes: yield* once("echo", buildEcho) })
  const driver: NativeApi = yield* session(`echo-driver:${PKG}`, [ECHO])
  let n = 0
  const check = Effect.gen(function*() {
    const body = `still routing ${n++}`
    const r = yield* driver.sendAndAwaitEffect(at(ECHO), request({ body: text(body), expectsResponse: 5n }))
    assert.isTrue("message" in r && new TextDecoder().decode(r.message.body) === body, `echo answered ${JSON.stringify(r)}`)
  })
  yield* check
  return { check, driver }
})

/** initialize + run `bytes` as `id`; run must fail. Returns the typed error and the printout. */
const refusedRun = (lines: ReadonlyArray<Printed>, id: string, bytes: Uint8Array) =>
  Effect.gen(function*() {
    const k = yield* Kernel
    const error = yield* Effect.flip(startWasm(id, { bytes }))
    assert.instanceOf(error, RunFailed)
    assert.strictEqual((error as RunFailed).id, id)
    const printed = lines.find((l) => l.source === "kernel" && l.level === 0 && l.text.startsWith(`cannot run ${id}:`))
    assert.isDefined(printed, "the refusal is printed")
    // registered but not running, as Kinode leaves a process whose instantiation failed
    assert.strictEqual(k.info(id)?.status, "waiting")
    return { reason: (error as RunFailed).reason, printed: printed!.text }
  })

/** Waits for the crash report of `id` (level 0) and for the process to be gone. */
const crashed = (lines: ReadonlyArray<Printed>, id: string) =>
  Effect.gen(function*() {
    const k = yield* Kernel
    yield* waitFor(() => lines.some((l) => l.source === id && l.level === 0 && l.text.startsWith(`process ${id} crashed`)), `${id} crashed`)
    yield* waitFor(() => k.info(id) === undefined, `${id} removed`)
    return lines.find((l) => l.source === id && l.level === 0 && l.text.startsWith(`process ${id} crashed`))!.text
  })

describe("bad Wasm through the kernel", () => {
  it.live("bytes that are not a component: not Wasm, a core module, a truncated component", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const echo = yield* startEcho
        const garbage = yield* refusedRun(lines, `garbage:${PKG}`, text("definitely not wasm"))
        assert.include(garbage.reason, "NotWasm: missing the \\0asm preamble")
        assert.include(garbage.printed, "NotWasm")
        yield* echo.check
        const core = yield* refusedRun(lines, `core:${PKG}`, yield* Effect.promise(buildCoreModule))
        assert.include(core.reason, "CoreModule: this is a core Wasm module; Kinode processes must be components")
        yield* echo.check
        const truncated = yield* refusedRun(lines, `truncated:${PKG}`, (yield* once("echo", buildEcho)).slice(0, 200))
        assert.include(truncated.reason, "TranspileFailed")
        yield* echo.check
        // empty bytes
        const empty = yield* refusedRun(lines, `empty:${PKG}`, new Uint8Array(0))
        assert.include(empty.reason, "NotWasm")
        yield* echo.check
      })
    ))

  it.live("imports the host does not provide: foo:bar/baz, kinode:process@0.8.0, a WASI version it does not know", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const echo = yield* startEcho
        const unknown = yield* refusedRun(lines, `alien:${PKG}`, yield* Effect.promise(buildUnknownImport))
        assert.include(unknown.reason, "imports what this host does not provide: foo:bar/baz@1.0.0")
        yield* echo.check
        const v08 = yield* refusedRun(lines, `future:${PKG}`, yield* Effect.promise(buildUnknownKinodeVersion))
        assert.include(v08.reason, "imports what this host does not provide: kinode:process/standard@0.8.0")
        yield* echo.check
        const wasi03 = yield* refusedRun(
          lines,
          `wasi-three:${PKG}`,
          yield* Effect.promise(() =>
            buildComponent(
              `(module (import "wasi:random/random@0.3.0" "get-random-u64" (func (result i64)))
                (memory (export "memory") 1)
                (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 0))
                (func (export "init") (param i32 i32)))`,
              `package wasi:random@0.3.0;
interface random { get-random-u64: func() -> u64; }
world w { import random; export init: func(our: string); }`,
              "w"
            )
          )
        )
        assert.include(wasi03.reason, "wasi:random/random@0.3.0")
        yield* echo.check
      })
    ))

  it.live("the wrong world: no init export, or init with the wrong signature", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const echo = yield* startEcho
        const noInit = yield* refusedRun(lines, `runner:${PKG}`, yield* Effect.promise(buildNoInit))
        assert.include(noInit.reason, "MissingInit")
        assert.include(noInit.reason, "expected init: func(our: string)")
        yield* echo.check
        const wrong = yield* refusedRun(lines, `wrong:${PKG}`, yield* Effect.promise(buildWrongInit))
        assert.include(wrong.reason, "MissingInit")
        assert.include(wrong.reason, "expected init: func(our: string)")
        yield* echo.check
      })
    ))

  it.live("a trap in init: the crash report has the trap and the stderr tail; the process is gone", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const echo = yield* startEcho
        const id = `panicky:${PKG}`
        yield* startWasm(id, { bytes: yield* Effect.promise(buildTrap) })
        const report = yield* crashed(lines, id)
        assert.include(report, `process ${id} trapped`)
        assert.match(report, /unreachable/)
        assert.include(report, "panicked at src/lib.rs:1: fixture failure")
        // stderr was also printed as it was written (verbosity 2)
        assert.isTrue(lines.some((l) => l.source === id && l.level === 2 && l.text === `${PKG}: panicked at src/lib.rs:1: fixture failure`))
        yield* echo.check
      })
    ))

  it.live("a process that exhausts its memory traps and is contained", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const echo = yield* startEcho
        const id = `hog:${PKG}`
        yield* startWasm(id, { bytes: yield* Effect.promise(buildHog) })
        const report = yield* crashed(lines, id)
        // it ran until memory.grow failed, then trapped
        assert.isTrue(lines.some((l) => l.source === id && l.text === `${PKG}: grow failed at last`))
        assert.match(report, /unreachable/)
        yield* echo.check
      })
    ), 60_000)

  for (const variant of ["trap", "bogus-pointer"] as const) {
    it.live(`a cabi_realloc that fails (${variant}) while the host writes a huge body or blob into the guest`, () =>
      onNode((lines) =>
        Effect.gen(function*() {
          const echo = yield* startEcho
          const bytes = yield* once(`small-heap-${variant}`, () => buildSmallHeap(variant))
          const big = new Uint8Array(1024 * 1024).fill(7)
          // small messages are answered: the fixture itself works
          const id1 = `small-body:${PKG}`
          yield* startWasm(id1, { bytes })
          const d = yield* session(`small-driver:${PKG}`, [id1, `small-blob:${PKG}`])
          const ok = yield* d.sendAndAwaitEffect(at(id1), request({ body: text("tiny"), expectsResponse: 5n }), { mime: undefined, bytes: new Uint8Array(10) })
          assert.isTrue("message" in ok && new TextDecoder().decode(ok.message.body) === "tiny")
          assert.deepStrictEqual([...(d.getBlob()?.bytes ?? [])], [10, 0, 0, 0])
          // a 1 MiB body does not fit: receive (fast ABI) fails to allocate
          const r1 = yield* d.sendAndAwaitEffect(at(id1), request({ body: big, expectsResponse: 1n }))
          assert.isTrue("kind" in r1, "no answer from a process that could not take the message")
          const report1 = yield* crashed(lines, id1)
          assert.include(report1, `process ${id1} trapped`)
          if (variant === "trap") assert.match(report1, /unreachable/)
          else assert.include(report1, "cabi_realloc returned 2147418112 for 1048576 bytes, beyond the end of guest memory")
          yield* echo.check
          // a small body with a 1 MiB blob: get-blob (jco's glue) fails to allocate
          const id2 = `small-blob:${PKG}`
          yield* startWasm(id2, { bytes })
          const r2 = yield* d.sendAndAwaitEffect(at(id2), request({ body: text("x"), expectsResponse: 1n }), { mime: undefined, bytes: big })
          assert.isTrue("kind" in r2)
          const report2 = yield* crashed(lines, id2)
          assert.include(report2, `process ${id2} trapped`)
          if (variant === "trap") assert.match(report2, /unreachable/)
          else assert.include(report2, "cabi_realloc returned 2147418112 for 1048576 bytes, beyond the end of guest memory")
          yield* echo.check
        })
      ))
  }

  it.live("kernel commands as messages: InitializeProcess with bad bytes is registered, RunProcess answers RunProcessError", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        const echo = yield* startEcho
        const admin: NativeApi = yield* session(`admin:${PKG}`, ["kernel:distro:sys"])
        const init = (id: string, bytes: Uint8Array) =>
          kernelCall(admin, {
            InitializeProcess: {
              id,
              wasm_bytes_handle: `/${PKG}/pkg/x.wasm`,
              wit_version: 1,
              on_exit: "None",
              initial_capabilities: [],
              public: false
            }
          }, bytes)
        for (const [name, bytes, says] of [
          ["junk", text("junk"), "NotWasm"],
          ["module", yield* Effect.promise(buildCoreModule), "CoreModule"],
          ["foreign", yield* Effect.promise(buildUnknownImport), "foo:bar/baz@1.0.0"]
        ] as const) {
          const id = `${name}:${PKG}`
          assert.strictEqual(yield* init(id, bytes), "InitializedProcess")
          assert.strictEqual(yield* kernelCall(admin, { RunProcess: id }), "RunProcessError")
          assert.isTrue(lines.some((l) => l.source === "kernel" && l.text.startsWith(`cannot run ${id}:`) && l.text.includes(says)), name)
          assert.strictEqual(k.info(id)?.status, "waiting")
          yield* echo.check
        }
        // a good component the same way starts and answers
        const good = `fine:${PKG}`
        assert.strictEqual(yield* init(good, yield* once("echo", buildEcho)), "InitializedProcess")
        assert.strictEqual(yield* kernelCall(admin, { RunProcess: good }), "StartedProcess")
        const r = yield* admin.sendAndAwaitEffect(at(good), request({ body: text("fine?"), expectsResponse: 5n }))
        assert.isTrue("message" in r && new TextDecoder().decode(r.message.body) === "fine?")
      })
    ))

  it.live("spawn of bad Wasm from the package drive: spawn-error no-file-at-path, the refusal printed, the parent unharmed", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        const echo = yield* startEcho
        const p = yield* startPuppet("spawner")
        yield* putFile(`/${PKG}/pkg/garbage.wasm`, text("not wasm at all"))
        yield* putFile(`/${PKG}/pkg/core.wasm`, yield* Effect.promise(buildCoreModule))
        yield* putFile(`/${PKG}/pkg/alien.wasm`, yield* Effect.promise(buildUnknownImport))
        yield* putFile(`/${PKG}/pkg/runner.wasm`, yield* Effect.promise(buildNoInit))
        for (const [name, file, says] of [
          ["g", "garbage.wasm", "NotWasm"],
          ["c", "core.wasm", "CoreModule"],
          ["a", "alien.wasm", "foo:bar/baz@1.0.0"],
          ["r", "runner.wasm", "MissingInit"]
        ] as const) {
          assert.deepStrictEqual(yield* p.spawn({ name, wasmPath: `/${PKG}/pkg/${file}` }), { err: "no-file-at-path" }, file)
          assert.strictEqual(k.info(`${name}:${PKG}`), undefined, `${file}: no process left behind`)
          // printed with the reason, naming the child or the file
          const printed = lines.find((l) => l.text.includes(says) && (l.text.includes(`${name}:${PKG}`) || l.text.includes(file)))
          assert.isDefined(printed, `${file}: refusal printed`)
          yield* echo.check
        }
        // a spawned child that traps in init: spawn succeeded, the child's crash is reported
        yield* putFile(`/${PKG}/pkg/trap.wasm`, yield* Effect.promise(buildTrap))
        assert.deepStrictEqual(yield* p.spawn({ name: "t", wasmPath: `/${PKG}/pkg/trap.wasm` }), { ok: `t:${PKG}` })
        assert.include(yield* crashed(lines, `t:${PKG}`), "fixture failure")
        // the parent is fine
        assert.strictEqual(yield* p.our, `test.dev@spawner:${PKG}`)
        yield* putFile(`/${PKG}/pkg/puppet.wasm`, yield* puppetBytes())
        assert.deepStrictEqual(yield* p.spawn({ name: "good", wasmPath: `/${PKG}/pkg/puppet.wasm` }), { ok: `good:${PKG}` })
        yield* echo.check
      })
    ))

  it.live("spawn with a name that is not Kimap-safe traps the caller (as Kinode does), contained", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const echo = yield* startEcho
        yield* putFile(`/${PKG}/pkg/puppet.wasm`, yield* puppetBytes())
        const p = yield* startPuppet("careless")
        yield* p.send(8, (w) => [1, ...w.string("Not_Safe"), ...w.string(`/${PKG}/pkg/puppet.wasm`), 0, 0, 0, 0, 0, 0, 0, 0])
        const report = yield* crashed(lines, `careless:${PKG}`)
        assert.include(report, "Not_Safe:e2e:sys is not a Kimap-safe process id")
        yield* echo.check
      })
    ))
})
