/**
 * `eth:distro:sys` `Request`s through the real kernel to a real anvil (over HTTP and over
 * a WebSocket), and to providers that never answer, answer garbage or are gone: answers
 * and errors in Kinode's shapes, every request bounded by the caller's timeout.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Fiber, Layer } from "effect"
import { address } from "../../../src/Ids.ts"
import { Kernel } from "../../../src/Kernel.ts"
import { request } from "../../../src/Message.ts"
import { Eth, PROCESS } from "../../../services/eth/index.ts"
import { CHAIN_ID, enc, ethNode, eventually, garbageServer, NODE, proc, rpc, silentServer, testAnvil, type TestAnvil, valueOf } from "./support.ts"

class Fixtures extends Context.Service<Fixtures, {
  readonly anvil: TestAnvil
  readonly silent: { readonly port: number; readonly accepted: () => number }
  readonly garbage: { readonly port: number }
  readonly noResult: { readonly port: number }
  readonly deadPort: number
}>()("test/eth/Fixtures") {
  static readonly layer = Layer.effect(
    Fixtures,
    Effect.gen(function*() {
      const dead = yield* Effect.scoped(silentServer)
      return Fixtures.of({
        anvil: yield* testAnvil,
        silent: yield* silentServer,
        garbage: yield* garbageServer("this is not JSON"),
        noResult: yield* garbageServer(`{"jsonrpc":"2.0","id":1}`, "application/json"),
        deadPort: dead.port
      })
    })
  )
}

/** Chain ids of the test's providers (the table is keyed by them; they need not be the chain's own). */
const WS_CHAIN = 7
const SILENT_HTTP = 100
const SILENT_WS = 101
const GARBAGE = 102
const NO_RESULT = 103
const FALLBACK = 104
const DEAD = 105

const node = (() => {
  let lines: ReadonlyArray<import("../../../src/Printout.ts").Printed> = []
  const layer = Layer.unwrap(Effect.map(Fixtures, (f) => {
    const n = ethNode({
      providers: [
        { chain_id: CHAIN_ID, url: f.anvil.url },
        { chain_id: WS_CHAIN, url: f.anvil.wsUrl },
        { chain_id: SILENT_HTTP, url: `http://127.0.0.1:${f.silent.port}` },
        { chain_id: SILENT_WS, url: `ws://127.0.0.1:${f.silent.port}` },
        { chain_id: GARBAGE, url: `http://127.0.0.1:${f.garbage.port}` },
        { chain_id: NO_RESULT, url: `http://127.0.0.1:${f.noResult.port}` },
        { chain_id: FALLBACK, url: `http://127.0.0.1:${f.deadPort}` },
        { chain_id: FALLBACK, url: f.anvil.url },
        { chain_id: DEAD, url: `ws://127.0.0.1:${f.deadPort}` }
      ],
      defaultTimeout: "1 second",
      maxInFlightPerProcess: 3
    })
    lines = n.lines
    return n.layer
  })).pipe(Layer.provideMerge(Fixtures.layer))
  return { layer, lines: () => lines }
})()

const ACCOUNT_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
const TEN_THOUSAND_ETH = "0x21e19e0c9bab2400000"

describe("eth: Request", () => {
  layer(node.layer, { excludeTestServices: true, timeout: 60_000 })((it) => {
    it.effect("eth_blockNumber, eth_chainId, eth_getBalance against anvil, over HTTP and over a WebSocket", () =>
      Effect.gen(function*() {
        const p = yield* proc("reader:app:pub.os")
        for (const chain of [CHAIN_ID, WS_CHAIN]) {
          assert.strictEqual(valueOf(yield* p.call(rpc("eth_chainId", [], chain))), "0x7a69")
          assert.match(valueOf(yield* p.call(rpc("eth_blockNumber", [], chain))) as string, /^0x[0-9a-f]+$/)
          assert.strictEqual(valueOf(yield* p.call(rpc("eth_getBalance", [ACCOUNT_0, "latest"], chain))), TEN_THOUSAND_ETH)
          // Kinode's process_lib sends `()` params, which serde prints as null
          assert.match(valueOf(yield* p.call(rpc("eth_blockNumber", null, chain))) as string, /^0x[0-9a-f]+$/)
          // a null result is a result
          assert.isNull(valueOf(yield* p.call(rpc("eth_getTransactionByHash", [`0x${"ab".repeat(32)}`], chain))))
        }
      }))

    it.effect("the exact wire shape: {\"Response\":{\"value\":…}}, u64 chain ids kept exact", () =>
      Effect.gen(function*() {
        const p = yield* proc("wire:app:pub.os")
        const raw = yield* p.call(enc(`{"Request":{"chain_id":31337,"method":"eth_chainId","params":[]}}`))
        assert.deepStrictEqual(raw, { Response: { value: "0x7a69" } })
        // a chain id beyond 2^53 is a chain without providers, not a rounded neighbour
        const big = yield* p.call(enc(`{"Request":{"chain_id":18446744073709551615,"method":"eth_chainId","params":[]}}`))
        assert.deepStrictEqual(big, { Err: "NoRpcForChain" })
      }))

    it.effect("InvalidMethod, NoRpcForChain, MalformedRequest", () =>
      Effect.gen(function*() {
        const p = yield* proc("errors:app:pub.os")
        assert.deepStrictEqual(yield* p.call(rpc("eth_sign", [ACCOUNT_0, "0x00"])), { Err: { InvalidMethod: "eth_sign" } })
        assert.deepStrictEqual(yield* p.call(rpc("anvil_mine", [])), { Err: { InvalidMethod: "anvil_mine" } })
        assert.deepStrictEqual(yield* p.call(rpc("eth_blockNumber", [], 4242)), { Err: "NoRpcForChain" })
        assert.deepStrictEqual(yield* p.call({ Nope: 1 }), { Err: "MalformedRequest" })
        assert.deepStrictEqual(yield* p.call(enc("{not json")), { Err: "MalformedRequest" })
        assert.deepStrictEqual(yield* p.call({ Request: { chain_id: -1, method: "eth_chainId", params: [] } }), { Err: "MalformedRequest" })
      }))

    it.effect("a provider's JSON-RPC error is the answer: {\"Err\":{\"RpcError\":{code, message}}}", () =>
      Effect.gen(function*() {
        const p = yield* proc("rpcerror:app:pub.os")
        for (const chain of [CHAIN_ID, WS_CHAIN]) {
          const a = (yield* p.call(rpc("eth_getBalance", ["not an address", "latest"], chain))) as { Err: { RpcError: { code: number; message: string } } }
          assert.isNumber(a.Err.RpcError.code)
          assert.isString(a.Err.RpcError.message)
        }
      }))

    it.effect("a provider that accepts and never answers: RpcTimeout within the caller's timeout (HTTP and WebSocket)", () =>
      Effect.gen(function*() {
        const f = yield* Fixtures
        const p = yield* proc("patient:app:pub.os")
        for (const chain of [SILENT_HTTP, SILENT_WS]) {
          const t0 = performance.now()
          const a = yield* p.call(rpc("eth_blockNumber", [], chain), { timeout: 2 })
          const took = performance.now() - t0
          assert.deepStrictEqual(a, { Err: "RpcTimeout" }, `chain ${chain}`)
          assert.isBelow(took, 2000, `answered after ${took.toFixed(0)} ms`)
          assert.isAbove(took, 1400)
        }
        assert.isAtLeast(f.silent.accepted(), 2)
        // the module is not held up meanwhile
        assert.strictEqual(valueOf(yield* p.call(rpc("eth_chainId"))), "0x7a69")
      }))

    it.effect("requests sent without expects_response are bounded too (defaultTimeout), as GetState shows", () =>
      Effect.gen(function*() {
        const kernel = yield* Kernel
        const admin = yield* proc("admin:app:pub.os", [Eth.rootCapability(kernel.node)])
        const p = yield* proc("fireandforget:app:pub.os")
        yield* p.send(rpc("eth_blockNumber", [], SILENT_HTTP))
        yield* p.send(rpc("eth_blockNumber", [], SILENT_WS))
        yield* Effect.sleep("100 millis")
        const during = (yield* admin.call("GetState")) as { State: { outstanding_requests: Array<unknown> } }
        assert.strictEqual(during.State.outstanding_requests.length, 2)
        yield* Effect.sleep("1200 millis")
        const after = (yield* admin.call("GetState")) as { State: { outstanding_requests: Array<unknown> } }
        assert.deepStrictEqual(after.State.outstanding_requests, [])
      }))

    it.effect("a provider that answers garbage: RpcMalformedResponse", () =>
      Effect.gen(function*() {
        const p = yield* proc("gullible:app:pub.os")
        assert.deepStrictEqual(yield* p.call(rpc("eth_blockNumber", [], GARBAGE)), { Err: "RpcMalformedResponse" })
        assert.deepStrictEqual(yield* p.call(rpc("eth_blockNumber", [], NO_RESULT)), { Err: "RpcMalformedResponse" })
      }))

    it.effect("a provider that is gone is skipped for the next (which moves to the front); none left: NoRpcForChain", () =>
      Effect.gen(function*() {
        const kernel = yield* Kernel
        const f = yield* Fixtures
        const p = yield* proc("fallback:app:pub.os")
        assert.strictEqual(valueOf(yield* p.call(rpc("eth_chainId", [], FALLBACK))), "0x7a69")
        const admin = yield* proc("admin2:app:pub.os", [Eth.rootCapability(kernel.node)])
        const providers = ((yield* admin.call("GetProviders")) as { Providers: Array<{ chain_id: number; provider: { RpcUrl: string } }> }).Providers
        assert.deepStrictEqual(providers.filter((c) => c.chain_id === FALLBACK).map((c) => c.provider.RpcUrl), [f.anvil.url, `http://127.0.0.1:${f.deadPort}`])
        assert.deepStrictEqual(yield* p.call(rpc("eth_chainId", [], DEAD)), { Err: "NoRpcForChain" })
      }))

    it.effect("requests run concurrently; beyond maxInFlightPerProcess, limit exceeded at once", () =>
      Effect.gen(function*() {
        const p = yield* proc("busy:app:pub.os")
        const many = yield* Effect.forEach(Array.from({ length: 3 }, () => rpc("eth_blockNumber")), (a) => p.call(a), { concurrency: "unbounded" })
        for (const a of many) assert.match(valueOf(a) as string, /^0x/)
        const q = yield* proc("flood:app:pub.os")
        const hung = yield* Effect.forkChild(Effect.forEach([1, 2, 3], () => q.call(rpc("eth_blockNumber", [], SILENT_HTTP), { timeout: 2 }), { concurrency: "unbounded" }))
        yield* Effect.sleep("100 millis")
        const t0 = performance.now()
        const refused = (yield* q.call(rpc("eth_blockNumber"))) as { Err: { RpcError: { code: number; message: string } } }
        assert.isBelow(performance.now() - t0, 500)
        assert.strictEqual(refused.Err.RpcError.code, -32005)
        assert.match(refused.Err.RpcError.message, /^limit exceeded: 3 requests in flight from eth-test\.os@flood:app:pub\.os$/)
        // other processes are not affected
        assert.strictEqual(valueOf(yield* p.call(rpc("eth_chainId"))), "0x7a69")
        yield* Fiber.join(hung)
      }))

    it.effect("other nodes: refused unless the access settings let them", () =>
      Effect.gen(function*() {
        const kernel = yield* Kernel
        const admin = yield* proc("admin3:app:pub.os", [Eth.rootCapability(kernel.node)])
        const remote = (id: bigint) =>
          kernel.route({
            id,
            source: address("stranger.os@client:app:pub.os"),
            target: address(`${NODE}@${PROCESS}`),
            rsvp: null,
            message: request({ body: enc(`{"Request":{"chain_id":31337,"method":"eth_chainId","params":[]}}`), expectsResponse: 5n }),
            blob: undefined
          })
        assert.isUndefined(remote(1n))
        assert.isTrue(yield* eventually(() => node.lines().some((l) => l.text.includes("do not let stranger.os use"))))
        assert.strictEqual(yield* admin.call({ AllowNode: "stranger.os" }), "Ok")
        const before = node.lines().length
        assert.isUndefined(remote(2n))
        // served: the answer goes back to stranger.os (offline in this test, so refused by the kernel)
        assert.isTrue(yield* eventually(() => node.lines().slice(before).some((l) => l.text.includes("answer to stranger.os@client:app:pub.os refused"))))
        assert.isFalse(node.lines().slice(before).some((l) => l.text.includes("do not let stranger.os")))
        assert.strictEqual(yield* admin.call({ DenyNode: "stranger.os" }), "Ok")
        const denied = node.lines().length
        assert.isUndefined(remote(3n))
        assert.isTrue(yield* eventually(() => node.lines().slice(denied).some((l) => l.text.includes("do not let stranger.os use"))))
      }))
  })
})
