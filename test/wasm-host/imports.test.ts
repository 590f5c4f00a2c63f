/**
 * Every import of `kinode:process/standard` (1.0.0 and 0.7.0), end to end: a
 * real component (the puppet, test/fixtures/wasm/puppet.wat) runs as a process
 * of the real kernel with the real state and vfs services, each import is
 * called from Wasm, and the effect is checked on the kernel side (printouts,
 * grants, the process table, messages other processes receive, state that
 * survives a restart) as well as in the values the guest got back.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { testKernel } from "../../layers/TestLive.ts"
import { Kernel, messagingCap } from "../../src/Kernel.ts"
import { type Capability, type LazyLoadBlob, type Received, request, response, text } from "../../src/Message.ts"
import type { Printed } from "../../src/Printout.ts"
import { buildV07 } from "../fixtures/wasm/build.ts"
import { startNative } from "../src/helpers.ts"
import { bodyOf, Op, type Puppet } from "./Puppet.ts"
import { at, connectPuppet, NODE, once, PKG, puppetBytes, putFile, session, startPuppet, startWasm, wasmNode, onNode, waitFor } from "./WasmNode.ts"

const utf8 = new TextDecoder()
const str = (b: Uint8Array | undefined) => (b === undefined ? undefined : utf8.decode(b))

/** Runs `body` on a fresh node (kernel, LMDB, vfs, state) and closes it afterwards. */

const printedBy = (lines: ReadonlyArray<Printed>, source: string) =>
  lines.filter((l) => l.source === source).map((l) => [l.level, l.text] as const)

/** Waits (bounded) until a printout matching `test` exists; the printout itself is the assertion. */
const printout = (lines: ReadonlyArray<Printed>, test: (l: Printed) => boolean, what: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500; i++) {
      const found = lines.find(test)
      if (found !== undefined) return found
      yield* Effect.sleep("10 millis")
    }
    return yield* Effect.die(new Error(`no printout: ${what}\n${lines.map((l) => `${l.level} ${l.source} ${l.text}`).join("\n")}`))
  })


const receivedRequest = (r: Received) => {
  if (r._tag !== "Message" || r.message._tag !== "Request") throw new Error(`expected a request, got ${JSON.stringify(r)}`)
  return { source: r.source.toString(), request: r.message }
}

const blob = (mime: string | undefined, s: string): LazyLoadBlob => ({ mime, bytes: text(s) })

const cap = (issuer: string, params: string): Capability => ({ issuer: at(issuer), params })

/** Waits until the puppet `id` has announced its start `n` times (restarts included). */
const started = (lines: ReadonlyArray<Printed>, id: string, n: number) =>
  waitFor(
    () => lines.filter((l) => l.source === id && l.level === 0 && l.text === `${PKG}: ${NODE}@${id}`).length >= n,
    `${id} started ${n} times`
  )

/** The puppet keeps answering commands: the process is alive and well. */
const alive = (p: Puppet) => Effect.map(p.our, (our) => assert.strictEqual(our, p.target.toString()))

describe("kinode:process@1.0.0 through the kernel", () => {
  it.live("print-to-terminal: Printout lines from the process at the requested verbosity; init gets our address", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const p = yield* startPuppet("printer")
        for (const level of [0, 1, 2, 3]) yield* p.print(level, `line at ${level}`)
        yield* p.print(0, "ünïcødé ✓")
        assert.deepStrictEqual(printedBy(lines, `printer:${PKG}`), [
          // the puppet prints init's argument at start
          [0, `${PKG}: ${NODE}@printer:${PKG}`],
          [0, `${PKG}: line at 0`],
          [1, `${PKG}: line at 1`],
          [2, `${PKG}: line at 2`],
          [3, `${PKG}: line at 3`],
          [0, `${PKG}: ünïcødé ✓`]
        ])
      })
    ))

  it.live("our: the process's own address", () =>
    onNode(() =>
      Effect.gen(function*() {
        const p = yield* startPuppet("me")
        assert.strictEqual(yield* p.our, `${NODE}@me:${PKG}`)
      })
    ))

  it.live("get/set-on-exit: the kernel sees the change; a Requests on-exit fires when init returns", () =>
    onNode(() =>
      Effect.gen(function*() {
        const k = yield* Kernel
        const id = `leaver:${PKG}`
        const p = yield* startPuppet("leaver", { public: true })
        assert.deepStrictEqual(yield* p.getOnExit, { tag: "none" })
        const farewell = session(`farewell:${PKG}`)
        const watcher = yield* farewell
        const onExit = {
          _tag: "Requests" as const,
          requests: [
            { target: watcher.our, request: request({ body: text("bye"), expectsResponse: 5n, metadata: "{\"m\":1}" }), blob: blob("text/plain", "last words") },
            { target: watcher.our, request: request({ body: text("bye again") }), blob: undefined }
          ]
        }
        yield* p.setOnExit(onExit)
        // read back through the guest, and seen by the kernel
        const back = yield* p.getOnExit
        assert.strictEqual(back.tag, "requests")
        if (back.tag === "requests") {
          assert.deepStrictEqual(back.requests.map((r) => [r.target, r.request.body, r.request.expectsResponse, r.request.metadata, str(r.blob?.bytes), r.blob?.mime]), [
            [watcher.our.toString(), "bye", 5n, "{\"m\":1}", "last words", "text/plain"],
            [watcher.our.toString(), "bye again", undefined, undefined, undefined, undefined]
          ])
        }
        assert.strictEqual(k.info(id)?.onExit._tag, "Requests")
        // init returns: each request goes out (expects-response forced off), then the process is gone
        yield* p.exit
        const first = yield* Effect.timeout(watcher.receiveEffect, "10 seconds")
        const { source, request: r1 } = receivedRequest(first)
        assert.strictEqual(source, `${NODE}@${id}`)
        assert.strictEqual(bodyOf(r1), "bye")
        assert.strictEqual(r1.expectsResponse, undefined)
        assert.strictEqual(r1.metadata, "{\"m\":1}")
        assert.strictEqual(str(watcher.getBlob()?.bytes), "last words")
        const second = receivedRequest(yield* Effect.timeout(watcher.receiveEffect, "10 seconds"))
        assert.strictEqual(bodyOf(second.request), "bye again")
        yield* waitFor(() => k.info(id) === undefined, "the process is removed after init returned")
      })
    ))

  it.live("set-on-exit(restart): init returning restarts the process, which answers again", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        const p = yield* startPuppet("phoenix")
        yield* p.setOnExit({ _tag: "Restart" })
        assert.deepStrictEqual(yield* p.getOnExit, { tag: "restart" })
        assert.strictEqual(k.info(`phoenix:${PKG}`)?.onExit._tag, "Restart")
        yield* p.exit
        // a second start announces itself again
        yield* started(lines, `phoenix:${PKG}`, 2)
        yield* alive(p)
        // the restarted process starts from the persisted on-exit
        assert.deepStrictEqual(yield* p.getOnExit, { tag: "restart" })
      })
    ))

  it.live("get/set/clear-state: through the state service, kept across a restart of the process", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const p = yield* startPuppet("keeper")
        assert.strictEqual(yield* p.getState, undefined)
        const bytes = new Uint8Array(50_000).map((_, i) => (i * 7) & 255)
        yield* p.setState(bytes)
        assert.deepStrictEqual(yield* p.getState, bytes)
        yield* p.setState(text("small"))
        assert.strictEqual(str(yield* p.getState), "small")
        // restart the process: state comes back from the state service
        yield* p.setOnExit({ _tag: "Restart" })
        yield* p.exit
        yield* started(lines, `keeper:${PKG}`, 2)
        assert.strictEqual(str(yield* p.getState), "small")
        yield* p.clearState
        assert.strictEqual(yield* p.getState, undefined)
        // state is per process
        const other = yield* startPuppet("other")
        assert.strictEqual(yield* other.getState, undefined)
      })
    ))

  it.live("get/set-state and on-exit survive a restart of the node on the same home (LMDB), the process started again by boot", () =>
    Effect.gen(function*() {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-wasm-e2e-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(home, { recursive: true, force: true })))
      const id = `durable:${PKG}`
      const first = wasmNode({ home })
      yield* Effect.gen(function*() {
        yield* (yield* Kernel).boot
        // the process map keeps the handle; boot reads the component from the drive
        yield* putFile(`/${PKG}/pkg/durable.wasm`, yield* puppetBytes())
        const p = yield* startPuppet("durable")
        yield* p.setState(text("kept in LMDB"))
        yield* p.setOnExit({ _tag: "Restart" })
      }).pipe(Effect.provide(first.layer), Effect.scoped)
      const second = wasmNode({ home })
      yield* Effect.gen(function*() {
        const k = yield* Kernel
        yield* k.boot
        assert.strictEqual(k.info(id)?.status, "running")
        yield* started(second.lines, id, 1)
        const p = yield* connectPuppet("durable")
        assert.strictEqual(str(yield* p.getState), "kept in LMDB")
        assert.deepStrictEqual(yield* p.getOnExit, { tag: "restart" })
      }).pipe(Effect.provide(second.layer), Effect.scoped)
    }).pipe(Effect.scoped))

  it.live("without a state service: get-state returns none, set-state and clear-state trap with a clear message", () =>
    Effect.gen(function*() {
      const node = testKernel()
      yield* Effect.gen(function*() {
        const k = yield* Kernel
        const p = yield* startPuppet("stateless")
        assert.strictEqual(yield* p.getState, undefined)
        yield* p.send(Op.setState, (w) => w.bytes(text("nowhere to go")))
        const crash = yield* printout(node.lines, (l) => l.source === `stateless:${PKG}` && l.text.includes("crashed"), "crash")
        assert.include(crash.text, `set-state failed for stateless:${PKG}`)
        yield* waitFor(() => k.info(`stateless:${PKG}`) === undefined, "removed")
        const q = yield* startPuppet("stateless2")
        yield* q.send(Op.clearState)
        const crash2 = yield* printout(node.lines, (l) => l.source === `stateless2:${PKG}` && l.text.includes("crashed"), "crash")
        assert.include(crash2.text, `clear-state failed for stateless2:${PKG}`)
      }).pipe(Effect.provide(node.layer), Effect.scoped)
    }))

  it.live("spawn: reads the Wasm from the package drive, grants and requests caps, public, errors as spawn-error", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        yield* putFile(`/${PKG}/pkg/puppet.wasm`, yield* puppetBytes())
        const parentId = `parent:${PKG}`
        const p = yield* startPuppet("parent")
        const watcher = yield* session(`watcher:${PKG}`)
        // the parent holds one cap it may pass on, and asks for one it does not hold
        const held = cap(`issuer:${PKG}`, "{\"held\":true}")
        yield* k.grant(parentId, [held])
        const notHeld = cap(`issuer:${PKG}`, "{\"held\":false}")
        const selfIssued = cap(parentId, "{\"self\":true}")
        const r = yield* p.spawn({
          name: "kid",
          wasmPath: `/${PKG}/pkg/puppet.wasm`,
          onExit: { _tag: "Restart" },
          requestCapabilities: [held, notHeld, selfIssued],
          grantCapabilities: [[watcher.our.process.toString(), "{\"watch\":1}"]],
          public: true
        })
        assert.deepStrictEqual(r, { ok: `kid:${PKG}` })
        const child = `kid:${PKG}`
        const info = k.info(child)!
        assert.strictEqual(info.status, "running")
        assert.strictEqual(info.public, true)
        assert.strictEqual(info.onExit._tag, "Restart")
        assert.strictEqual(info.handle, `/${PKG}/pkg/puppet.wasm`)
        const childCaps = info.capabilities.map((c) => `${c.issuer} ${c.params}`)
        assert.include(childCaps, `${NODE}@issuer:${PKG} {"held":true}`)
        assert.include(childCaps, `${NODE}@${parentId} {"self":true}`)
        assert.notInclude(childCaps, `${NODE}@issuer:${PKG} {"held":false}`)
        // messaging both ways between parent and child, the child to itself
        assert.include(childCaps, `${NODE}@${parentId} "messaging"`)
        assert.include(childCaps, `${NODE}@${child} "messaging"`)
        assert.isTrue(k.hasCapability(parentId, messagingCap(NODE, child)))
        // grant-capabilities: issued by the child
        assert.isTrue(k.hasCapability(watcher.our.process.toString(), cap(child, "{\"watch\":1}")))
        // the child really runs the component it was spawned from
        yield* printout(lines, (l) => l.source === child && l.text === `${PKG}: ${NODE}@${child}`, "child started")
        const kid = yield* connectPuppet("kid")
        assert.strictEqual(yield* kid.our, `${NODE}@${child}`)
        // errors reach the guest as the WIT spawn-error
        assert.deepStrictEqual(yield* p.spawn({ name: "kid", wasmPath: `/${PKG}/pkg/puppet.wasm` }), { err: "name-taken" })
        assert.deepStrictEqual(yield* p.spawn({ name: "ghost", wasmPath: `/${PKG}/pkg/missing.wasm` }), { err: "no-file-at-path" })
        // another package's drive is not readable by the parent
        yield* putFile("/other:sys/pkg/puppet.wasm", yield* puppetBytes())
        assert.deepStrictEqual(yield* p.spawn({ name: "thief", wasmPath: "/other:sys/pkg/puppet.wasm" }), { err: "no-file-at-path" })
        // ...nor through `..` from its own drive (the path is resolved before the check), nor above the root
        assert.deepStrictEqual(yield* p.spawn({ name: "climber", wasmPath: `/${PKG}/../other:sys/pkg/puppet.wasm` }), { err: "no-file-at-path" })
        assert.deepStrictEqual(yield* p.spawn({ name: "climber", wasmPath: `/${PKG}/pkg/../../../../etc/passwd` }), { err: "no-file-at-path" })
        // `.` and `..` inside its own package resolve to the same file
        assert.deepStrictEqual(yield* p.spawn({ name: "dotted", wasmPath: `/${PKG}/./tmp/../pkg/puppet.wasm` }), { ok: `dotted:${PKG}` })
        assert.strictEqual(k.info(`climber:${PKG}`), undefined)
        assert.strictEqual(k.info(`dotted:${PKG}`)?.handle, `/${PKG}/pkg/puppet.wasm`)
        assert.strictEqual(k.info(`ghost:${PKG}`), undefined)
        assert.strictEqual(k.info(`thief:${PKG}`), undefined)
        // no name: a random u64 in decimal; the path may omit the leading slash; private by default
        const anon = yield* p.spawn({ wasmPath: `${PKG}/pkg/puppet.wasm` })
        assert.isTrue("ok" in anon)
        if ("ok" in anon) {
          assert.match(anon.ok, new RegExp(`^\\d+:${PKG}$`))
          assert.strictEqual(k.info(anon.ok)?.public, false)
        }
        yield* alive(p)
      })
    ))

  it.live("save/drop/our-capabilities: a cap received on a message is kept and then usable; unheld caps are refused", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        yield* startNative(`echo:${PKG}`, "echo")
        const echoCap = messagingCap(NODE, `echo:${PKG}`)
        const id = `holder:${PKG}`
        const p = yield* startPuppet("holder", { public: true })
        const initial = (yield* p.ourCapabilities).map((c) => `${c.issuer} ${c.params}`)
        assert.deepStrictEqual(initial, [`${NODE}@${id} "messaging"`])
        // without the cap, the private echo cannot be reached: an immediate timeout
        const ask = Effect.gen(function*() {
          yield* p.startAwait(at(`echo:${PKG}`), request({ body: text("ping"), expectsResponse: 5n }))
          return (yield* p.nextReport).awaited()
        })
        const denied = yield* ask
        assert.strictEqual(denied.err?.kind, "timeout")
        assert.strictEqual(denied.err?.target, `${NODE}@echo:${PKG}`)
        // [quirk fixed] a cap the process was never given cannot be saved
        yield* p.saveCapabilities([echoCap])
        assert.isFalse(k.hasCapability(id, echoCap))
        yield* printout(lines, (l) => l.source === id && l.text.includes("not saved"), "refusal printed")
        assert.strictEqual((yield* ask).err?.kind, "timeout")
        // the driver holds the cap and attaches it to a request; the puppet receives and saves it
        const giver = yield* Kernel.pipe(Effect.flatMap((kk) => kk.session(`giver:${PKG}`, { capabilities: [echoCap, messagingCap(NODE, id)], public: true })))
        yield* p.startReceive
        giver.sendRequest(p.target, request({ body: text("here, take it"), capabilities: [echoCap] }), undefined, undefined)
        const got = (yield* p.nextReport).received()
        assert.deepStrictEqual(got.ok?.message.tag === "request" && got.ok.message.request.capabilities, [
          { issuer: `${NODE}@echo:${PKG}`, params: "\"messaging\"" }
        ])
        yield* p.saveCapabilities([echoCap])
        assert.isTrue(k.hasCapability(id, echoCap))
        assert.include((yield* p.ourCapabilities).map((c) => `${c.issuer} ${c.params}`), `${NODE}@echo:${PKG} "messaging"`)
        const answered = yield* ask
        assert.isTrue(answered.ok?.message.tag === "response" && answered.ok.message.response.body === "ping")
        // self-issued caps may always be saved
        const mine = cap(id, "{\"mine\":1}")
        yield* p.saveCapabilities([mine])
        assert.isTrue(k.hasCapability(id, mine))
        // drop: gone from the grant table, the guest's view, and the router's check
        yield* p.dropCapabilities([echoCap, cap(`nobody:${PKG}`, "\"absent\"")])
        assert.isFalse(k.hasCapability(id, echoCap))
        assert.notInclude((yield* p.ourCapabilities).map((c) => `${c.issuer} ${c.params}`), `${NODE}@echo:${PKG} "messaging"`)
        assert.strictEqual((yield* ask).err?.kind, "timeout")
      })
    ))

  it.live("receive, has-blob, get-blob, last-blob: what the latest message carried and the newest blob ever", () =>
    onNode(() =>
      Effect.gen(function*() {
        const p = yield* startPuppet("reader", { public: true })
        yield* p.startReceive
        const driver = yield* session(`sender:${PKG}`, [`reader:${PKG}`])
        driver.sendRequest(
          p.target,
          request({ body: text("payload"), expectsResponse: 7n, metadata: "{\"meta\":true}", capabilities: [cap(`sender:${PKG}`, "{\"s\":1}")] }),
          undefined,
          blob("text/plain", "a blob")
        )
        const r = (yield* p.nextReport).received()
        assert.strictEqual(r.ok?.source, `${NODE}@sender:${PKG}`)
        assert.deepStrictEqual(r.ok?.message, {
          tag: "request",
          request: {
            inherit: false,
            expectsResponse: 7n,
            body: "payload",
            metadata: "{\"meta\":true}",
            capabilities: [{ issuer: `${NODE}@sender:${PKG}`, params: "{\"s\":1}" }]
          }
        })
        // a command that carries a blob: has-blob and get-blob see it
        assert.isTrue(yield* p.hasBlob(blob("application/x", "first")))
        assert.deepStrictEqual(yield* p.getBlob(blob(undefined, "second")), { mime: undefined, bytes: text("second") })
        // a command without one: nothing now, but last-blob keeps the newest
        assert.isFalse(yield* p.hasBlob())
        assert.strictEqual(yield* p.getBlob(), undefined)
        assert.deepStrictEqual(yield* p.lastBlob, { mime: undefined, bytes: text("second") })
        // a big blob is written into guest memory in full
        const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i & 255)
        const gotBig = yield* p.getBlob({ mime: "application/octet-stream", bytes: big })
        assert.strictEqual(gotBig?.bytes.length, big.length)
        assert.deepStrictEqual(gotBig?.bytes, big)
      })
    ))

  it.live("send-request: target, body, metadata, context, blob and caps as the kernel filters them; responses come back with the context", () =>
    onNode(() =>
      Effect.gen(function*() {
        const id = `asker:${PKG}`
        const p = yield* startPuppet("asker")
        const target = yield* session(`target:${PKG}`, [id])
        yield* p.sendRequest(
          target.our,
          request({
            body: text("question"),
            expectsResponse: 5n,
            metadata: "{\"k\":\"v\"}",
            // self-issued: signed and attached; someone else's unheld cap: dropped
            capabilities: [cap(id, "{\"mine\":true}"), cap(`stranger:${PKG}`, "\"messaging\"")]
          }),
          text("my context"),
          blob("text/plain", "attached")
        )
        const got = receivedRequest(yield* Effect.timeout(target.receiveEffect, "10 seconds"))
        assert.strictEqual(got.source, `${NODE}@${id}`)
        assert.strictEqual(bodyOf(got.request), "question")
        assert.strictEqual(got.request.expectsResponse, 5n)
        assert.strictEqual(got.request.metadata, "{\"k\":\"v\"}")
        assert.deepStrictEqual(got.request.capabilities.map((c) => `${c.issuer} ${c.params}`), [`${NODE}@${id} {"mine":true}`])
        assert.deepStrictEqual(target.getBlob(), { mime: "text/plain", bytes: text("attached") })
        // the answer reaches the puppet's command loop with the context it saved (not the responder's)
        target.sendResponse(response({ body: text("answer"), metadata: "{\"r\":1}" }), blob(undefined, "reply blob"))
        const back = yield* p.nextReport
        assert.strictEqual(back.tag, 1)
        const rec = back.received()
        assert.strictEqual(rec.ok?.source, `${NODE}@target:${PKG}`)
        assert.deepStrictEqual(rec.ok?.message, {
          tag: "response",
          response: { inherit: false, body: "answer", metadata: "{\"r\":1}", capabilities: [] },
          context: "my context"
        })
        // a request that expects no response: no rsvp, so the target's prompting message stays "question"
        yield* p.sendRequest(target.our, request({ body: text("fire and forget") }))
        const fnf = receivedRequest(yield* Effect.timeout(target.receiveEffect, "10 seconds"))
        assert.strictEqual(fnf.request.expectsResponse, undefined)
        // answering again re-uses the settled id: a duplicate, which the puppet's host drops...
        assert.isUndefined(target.sendResponse(response({ body: text("duplicate") }), undefined))
        // ...as it drops an unsolicited response with an id it never sent
        const k = yield* Kernel
        assert.isUndefined(k.route({
          id: 12345n,
          source: target.our,
          target: p.target,
          rsvp: null,
          message: response({ body: text("unsolicited") }),
          blob: undefined
        }))
        // neither reaches the guest: the next thing it reports is the next command
        const after = yield* p.print(0, "still here")
        assert.deepStrictEqual([after.tag, after.op], [0, Op.print])
        // a target that does not exist: an immediate timeout send-error with the context
        yield* p.sendRequest(at(`nobody:${PKG}`), request({ body: text("hello?"), expectsResponse: 30n }), text("ctx-2"), blob("a/b", "lost"))
        const failed = yield* p.nextReport
        assert.strictEqual(failed.tag, 1)
        const err = failed.received().err!
        assert.strictEqual(err.error.kind, "timeout")
        assert.strictEqual(err.error.target, `${NODE}@nobody:${PKG}`)
        assert.strictEqual(err.context, "ctx-2")
        assert.isTrue(err.error.message.tag === "request" && err.error.message.request.body === "hello?")
        assert.deepStrictEqual(err.error.blob, { mime: "a/b", bytes: text("lost") })
      })
    ))

  it.live("send-request with inherit: the request carries the prompting id and rsvp, so the answer goes to the original requester", () =>
    onNode(() =>
      Effect.gen(function*() {
        const p = yield* startPuppet("middle")
        const far = yield* session(`far:${PKG}`)
        // a command that expects a response (with a blob) becomes the prompting message
        yield* p.run(
          Op.sendRequest,
          (w) => {
            const at = w.alloc(128, 8)
            w.putSendRequest(at, far.our, request({ body: text("forwarded"), inherit: true }), undefined, undefined)
            return [at]
          },
          { expectsResponse: 5n, blob: blob("text/plain", "inherited blob") }
        )
        const fwd = receivedRequest(yield* Effect.timeout(far.receiveEffect, "10 seconds"))
        assert.strictEqual(bodyOf(fwd.request), "forwarded")
        assert.strictEqual(str(far.getBlob()?.bytes), "inherited blob")
        // far answers: the response goes to the driver, as the answer to its command
        far.sendResponse(response({ body: text("from far") }), undefined)
        const answer = yield* p.driverReceives
        assert.strictEqual(answer._tag, "Message")
        if (answer._tag === "Message") {
          assert.strictEqual(answer.source.toString(), `${NODE}@far:${PKG}`)
          assert.strictEqual(answer.message._tag, "Response")
          assert.strictEqual(bodyOf(answer.message), "from far")
        }
      })
    ))

  it.live("send-requests: each request goes out, in order", () =>
    onNode(() =>
      Effect.gen(function*() {
        const p = yield* startPuppet("batcher")
        const a = yield* session(`a:${PKG}`, [`batcher:${PKG}`])
        const b = yield* session(`b:${PKG}`)
        yield* p.sendRequests([
          [a.our, request({ body: text("one") }), undefined, undefined],
          [b.our, request({ body: text("two"), metadata: "\"m\"" }), undefined, blob(undefined, "b-blob")],
          [a.our, request({ body: text("three"), expectsResponse: 5n }), text("c3"), undefined]
        ])
        const a1 = receivedRequest(yield* Effect.timeout(a.receiveEffect, "10 seconds"))
        const a2 = receivedRequest(yield* Effect.timeout(a.receiveEffect, "10 seconds"))
        const b1 = receivedRequest(yield* Effect.timeout(b.receiveEffect, "10 seconds"))
        assert.deepStrictEqual([bodyOf(a1.request), bodyOf(a2.request), bodyOf(b1.request)], ["one", "three", "two"])
        assert.strictEqual(b1.request.metadata, "\"m\"")
        assert.strictEqual(str(b.getBlob()?.bytes), "b-blob")
        assert.strictEqual(a2.request.expectsResponse, 5n)
        a.sendResponse(response({ body: text("re three") }), undefined)
        const back = (yield* p.nextReport).received()
        assert.isTrue(back.ok?.message.tag === "response" && back.ok.message.context === "c3")
      })
    ))

  it.live("send-response: answers the prompting request with body, metadata, caps and blob; inherit sends the last blob; nothing to answer is printed", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const id = `answerer:${PKG}`
        const p = yield* startPuppet("answerer")
        // nothing prompting yet (commands expect no response): printed at level 0, the process carries on
        yield* p.sendResponse(response({ body: text("to nobody") }))
        yield* printout(lines, (l) => l.source === id && l.level === 0 && l.text.includes("no request to answer"), "nothing to answer")
        // a command expecting a response is answered
        const answerCmd = (inherit: boolean, b?: LazyLoadBlob, commandBlob?: LazyLoadBlob) =>
          p.run(Op.sendResponse, (w) => {
            const body = w.bytes(text("the answer"))
            const meta = [1, ...w.string("{\"a\":1}")]
            const caps = w.capabilities([cap(id, "{\"proof\":1}")])
            const bl = b === undefined ? [0, 0, 0, 0, 0, 0] : [1, 0, 0, 0, ...w.bytes(b.bytes)]
            return [inherit ? 1 : 0, ...body, ...meta, ...caps, ...bl]
          }, { expectsResponse: 5n, ...(commandBlob === undefined ? {} : { blob: commandBlob }) })
        yield* answerCmd(false, blob(undefined, "response blob"))
        const r = yield* p.driverReceives
        assert.strictEqual(r._tag, "Message")
        if (r._tag === "Message" && r.message._tag === "Response") {
          assert.strictEqual(r.source.toString(), `${NODE}@${id}`)
          assert.strictEqual(bodyOf(r.message), "the answer")
          assert.strictEqual(r.message.metadata, "{\"a\":1}")
          assert.deepStrictEqual(r.message.capabilities.map((c) => `${c.issuer} ${c.params}`), [`${NODE}@${id} {"proof":1}`])
          assert.strictEqual(str(p.driverBlob()?.bytes), "response blob")
        } else assert.fail("expected a response")
        // inherit: the blob is the last one received (the command's), the passed one is ignored
        yield* answerCmd(true, blob(undefined, "ignored"), blob(undefined, "command blob"))
        const r2 = yield* p.driverReceives
        assert.isTrue(r2._tag === "Message" && r2.message._tag === "Response")
        assert.strictEqual(str(p.driverBlob()?.bytes), "command blob")
      })
    ))

  it.live("send-and-await-response: returns the response; messages arriving meanwhile stay queued and are received afterwards, in order", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const id = `waiter:${PKG}`
        const p = yield* startPuppet("waiter")
        const slow = yield* session(`slow:${PKG}`, [id])
        const early = yield* session(`early:${PKG}`, [id])
        // a request whose response will arrive during the await
        yield* p.sendRequest(early.our, request({ body: text("early?"), expectsResponse: 5n }), text("early ctx"))
        receivedRequest(yield* Effect.timeout(early.receiveEffect, "10 seconds"))
        // the await starts; slow gets the request but does not answer yet
        yield* p.startAwait(slow.our, request({ body: text("slow?"), expectsResponse: 5n, metadata: "\"md\"" }), blob("x/y", "await blob"))
        const asked = receivedRequest(yield* Effect.timeout(slow.receiveEffect, "10 seconds"))
        assert.strictEqual(bodyOf(asked.request), "slow?")
        assert.strictEqual(str(slow.getBlob()?.bytes), "await blob")
        // meanwhile: a response to the earlier request and two commands
        early.sendResponse(response({ body: text("early!") }), undefined)
        yield* p.send(Op.print, (w) => [0, ...w.string("B")])
        yield* p.send(Op.print, (w) => [0, ...w.string("C")])
        slow.sendResponse(response({ body: text("slow!"), metadata: "\"rm\"" }), blob(undefined, "reply blob"))
        const awaited = yield* p.nextReport
        assert.strictEqual(awaited.op, Op.sendAndAwait)
        const result = awaited.awaited()
        assert.strictEqual(result.ok?.source, `${NODE}@slow:${PKG}`)
        assert.deepStrictEqual(result.ok?.message, {
          tag: "response",
          response: { inherit: false, body: "slow!", metadata: "\"rm\"", capabilities: [] },
          context: undefined
        })
        // then what arrived meanwhile, in arrival order
        const queued = yield* p.nextReport
        assert.strictEqual(queued.tag, 1)
        const q = queued.received()
        assert.isTrue(q.ok?.message.tag === "response" && q.ok.message.response.body === "early!" && q.ok.message.context === "early ctx")
        const b = yield* p.nextReport
        const c = yield* p.nextReport
        assert.deepStrictEqual([b.tag, b.op, c.tag, c.op], [0, Op.print, 0, Op.print])
        const texts = printedBy(lines, id).map(([, t]) => t)
        assert.deepStrictEqual(texts.slice(-2), [`${PKG}: B`, `${PKG}: C`])
        // the blob of the awaited response is the latest one
        assert.deepStrictEqual(yield* p.lastBlob, { mime: undefined, bytes: text("reply blob") })
        // an unreachable target: the send-error, with its target
        yield* p.startAwait(at(`nobody:${PKG}`), request({ body: text("anyone?"), expectsResponse: 5n }))
        const failed = (yield* p.nextReport).awaited()
        assert.strictEqual(failed.err?.kind, "timeout")
        assert.strictEqual(failed.err?.target, `${NODE}@nobody:${PKG}`)
        assert.isTrue(failed.err?.message.tag === "request" && failed.err.message.request.body === "anyone?")
      })
    ))

  it.live("send-and-await-response traps without expects-response or to itself; the trap is printed and contained", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        const a = yield* startPuppet("impatient")
        const target = yield* session(`t:${PKG}`)
        yield* a.startAwait(target.our, request({ body: text("no expects") }))
        const crash = yield* printout(lines, (l) => l.source === `impatient:${PKG}` && l.text.includes("crashed"), "crash")
        assert.strictEqual(crash.level, 0)
        assert.include(crash.text, "must set expects-response")
        yield* waitFor(() => k.info(`impatient:${PKG}`) === undefined, "removed")
        const b = yield* startPuppet("narcissus")
        yield* b.startAwait(b.target, request({ body: text("me?"), expectsResponse: 5n }))
        const crash2 = yield* printout(lines, (l) => l.source === `narcissus:${PKG}` && l.text.includes("crashed"), "crash")
        assert.include(crash2.text, "cannot await a response from itself")
        // the node carries on
        const c = yield* startPuppet("bystander")
        yield* alive(c)
      })
    ))

  it.live("init returning ends the process (on-exit none: removed); a trap in init is printed and contained", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        const p = yield* startPuppet("brief")
        yield* alive(p)
        yield* p.exit
        yield* printout(lines, (l) => l.source === `brief:${PKG}` && l.level === 2 && l.text.includes("exited"), "exit")
        yield* waitFor(() => k.info(`brief:${PKG}`) === undefined, "removed")
        const t = yield* startPuppet("doomed", { onExit: { _tag: "None" } })
        yield* t.trap
        const crash = yield* printout(lines, (l) => l.source === `doomed:${PKG}` && l.text.includes("crashed"), "crash")
        assert.strictEqual(crash.level, 0)
        assert.match(crash.text, /unreachable/)
        yield* waitFor(() => k.info(`doomed:${PKG}`) === undefined, "removed")
        // messages to the dead process fail, and everyone else is fine
        const d = yield* session(`d:${PKG}`, [`doomed:${PKG}`])
        const r = yield* d.sendAndAwaitEffect(at(`doomed:${PKG}`), request({ body: text("hello?"), expectsResponse: 5n }))
        assert.isTrue("kind" in r && r.kind === "timeout")
        const q = yield* startPuppet("survivor")
        yield* alive(q)
      })
    ))
})

describe("kinode:process@0.7.0 through the kernel", () => {
  it.live("the 0.7.0 fixture (rc WASI names): stdout at level 1, clock and random, spawn error, echo, then init returns", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        const id = `old:${PKG}`
        yield* startWasm(id, { bytes: yield* once("v07", buildV07), witVersion: 0 })
        const d = yield* session(`old-driver:${PKG}`, [id])
        const r = yield* d.sendAndAwaitEffect(at(id), request({ body: text("old echo"), expectsResponse: 5n }))
        assert.isTrue("message" in r && bodyOf(r.message) === "old echo")
        yield* waitFor(() => k.info(id) === undefined, "init returned")
        assert.deepStrictEqual(printedBy(lines, id).filter(([l]) => l < 2), [
          [1, `${PKG}: hello from 0.7.0`],
          [0, `${PKG}: clock-and-random-ok`]
          // spawn("kid.wasm") is not a path in a drive the process may read: no-file-at-path, nothing printed
        ])
      })
    ))

  it.live("puppet@0.7.0: messaging, state, spawn (list<process-id> grants), capabilities, send-error without target", () =>
    onNode((lines) =>
      Effect.gen(function*() {
        const k = yield* Kernel
        yield* putFile(`/${PKG}/pkg/puppet.wasm`, yield* puppetBytes("0.7.0"))
        const id = `elder:${PKG}`
        const p = yield* startPuppet("elder", { version: "0.7.0" })
        // messaging
        const peer = yield* session(`peer:${PKG}`, [id])
        yield* p.sendRequest(peer.our, request({ body: text("hi peer"), expectsResponse: 5n }), text("ctx"))
        assert.strictEqual(bodyOf(receivedRequest(yield* Effect.timeout(peer.receiveEffect, "10 seconds")).request), "hi peer")
        peer.sendResponse(response({ body: text("hi elder") }), undefined)
        const back = (yield* p.nextReport).received()
        assert.isTrue(back.ok?.message.tag === "response" && back.ok.message.response.body === "hi elder" && back.ok.message.context === "ctx")
        yield* p.startAwait(peer.our, request({ body: text("await"), expectsResponse: 5n }))
        receivedRequest(yield* Effect.timeout(peer.receiveEffect, "10 seconds"))
        peer.sendResponse(response({ body: text("awaited") }), undefined)
        const aw = (yield* p.nextReport).awaited()
        assert.isTrue(aw.ok?.message.tag === "response" && aw.ok.message.response.body === "awaited")
        yield* p.sendResponse(response({ body: text("x") }))
        // send-error: the 0.7.0 record has no target
        yield* p.sendRequest(at(`nobody:${PKG}`), request({ body: text("lost"), expectsResponse: 5n }), text("c0"))
        const failed = (yield* p.nextReport).received()
        assert.strictEqual(failed.err?.error.kind, "timeout")
        assert.strictEqual(failed.err?.error.target, undefined)
        assert.strictEqual(failed.err?.context, "c0")
        assert.isTrue(failed.err?.error.message.tag === "request" && failed.err.error.message.request.body === "lost")
        yield* p.startAwait(at(`nobody:${PKG}`), request({ body: text("lost too"), expectsResponse: 5n }))
        const awFailed = (yield* p.nextReport).awaited()
        assert.strictEqual(awFailed.err?.kind, "timeout")
        assert.isTrue(awFailed.err?.message.tag === "request" && awFailed.err.message.request.body === "lost too")
        // blobs
        assert.deepStrictEqual(yield* p.getBlob(blob("t/t", "old blob")), { mime: "t/t", bytes: text("old blob") })
        // state
        assert.strictEqual(yield* p.getState, undefined)
        yield* p.setState(text("old state"))
        assert.strictEqual(str(yield* p.getState), "old state")
        yield* p.clearState
        assert.strictEqual(yield* p.getState, undefined)
        // on-exit
        yield* p.setOnExit({ _tag: "Restart" })
        assert.deepStrictEqual(yield* p.getOnExit, { tag: "restart" })
        // spawn: grant-capabilities is a list of processes that get messaging to the child
        const r = yield* p.spawn({ name: "young", wasmPath: `/${PKG}/pkg/puppet.wasm`, grantCapabilities: [[`peer:${PKG}`, ""]], public: false })
        assert.deepStrictEqual(r, { ok: `young:${PKG}` })
        assert.isTrue(k.hasCapability(`peer:${PKG}`, messagingCap(NODE, `young:${PKG}`)))
        assert.strictEqual(k.info(`young:${PKG}`)?.status, "running")
        assert.deepStrictEqual(yield* p.spawn({ name: "young", wasmPath: `/${PKG}/pkg/puppet.wasm` }), { err: "name-taken" })
        assert.deepStrictEqual(yield* p.spawn({ name: "nope", wasmPath: `/${PKG}/pkg/nope.wasm` }), { err: "no-file-at-path" })
        // capabilities: our-capabilities, save (self-issued kept, unheld refused)
        const caps0 = (yield* p.ourCapabilities).map((c) => `${c.issuer} ${c.params}`)
        assert.include(caps0, `${NODE}@${id} "messaging"`)
        assert.include(caps0, `${NODE}@young:${PKG} "messaging"`)
        yield* p.saveCapabilities([cap(id, "{\"old\":1}"), cap(`stranger:${PKG}`, "\"messaging\"")])
        assert.isTrue(k.hasCapability(id, cap(id, "{\"old\":1}")))
        assert.isFalse(k.hasCapability(id, cap(`stranger:${PKG}`, "\"messaging\"")))
        assert.include((yield* p.ourCapabilities).map((c) => c.params), "{\"old\":1}")
        // the restart on-exit applies when init returns
        yield* p.exit
        yield* started(lines, id, 2)
        assert.strictEqual(yield* p.getState, undefined)
      })
    ))
})
