/**
 * The hot path of a `Request` (services/eth/Eth.ts `readRequest`, SocketRpc's direct
 * requests): the hand-read `Request` action agrees with the schemas, and requests written
 * straight onto an open WebSocket are paired with their answers by id and bounded each
 * by its own deadline (one timer per connection), whatever order the deadlines come in.
 */
import { assert, describe, it, layer } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Result, Schema } from "effect"
import { Kernel } from "../../../src/Kernel.ts"
import { Eth } from "../../../services/eth/index.ts"
import { readRequest } from "../../../services/eth/Eth.ts"
import { EthAction } from "../../../services/eth/Protocol.ts"
import { ethNode, proc, rpc, selectiveSocketServer, valueOf } from "./support.ts"

describe("eth: the Request action read by hand", () => {
  const decode = Schema.decodeUnknownResult(EthAction)
  const request = (fields: Record<string, unknown>) => ({ Request: fields })
  const cases: ReadonlyArray<readonly [string, unknown]> = [
    ["plain", request({ chain_id: 1, method: "eth_blockNumber", params: [] })],
    ["params null", request({ chain_id: 1, method: "m", params: null })],
    ["params an object", request({ chain_id: 1, method: "m", params: { a: 1 } })],
    ["params undefined", request({ chain_id: 1, method: "m", params: undefined })],
    ["no params", request({ chain_id: 1, method: "m" })],
    ["no method", request({ chain_id: 1, params: [] })],
    ["method a number", request({ chain_id: 1, method: 5, params: [] })],
    ["chain 0", request({ chain_id: 0, method: "m", params: [] })],
    ["chain -0", request({ chain_id: -0, method: "m", params: [] })],
    ["chain -1", request({ chain_id: -1, method: "m", params: [] })],
    ["chain 1.5", request({ chain_id: 1.5, method: "m", params: [] })],
    ["chain 2^53 - 1", request({ chain_id: 2 ** 53 - 1, method: "m", params: [] })],
    ["chain 2^53 as a number", request({ chain_id: 2 ** 53, method: "m", params: [] })],
    ["chain 1e300", request({ chain_id: 1e300, method: "m", params: [] })],
    ["chain NaN", request({ chain_id: NaN, method: "m", params: [] })],
    ["chain a bigint", request({ chain_id: 2n ** 63n + 5n, method: "m", params: [] })],
    ["chain 2^64 - 1", request({ chain_id: 2n ** 64n - 1n, method: "m", params: [] })],
    ["chain 2^64", request({ chain_id: 2n ** 64n, method: "m", params: [] })],
    ["chain -1n", request({ chain_id: -1n, method: "m", params: [] })],
    ["chain a string", request({ chain_id: "1", method: "m", params: [] })],
    ["chain null", request({ chain_id: null, method: "m", params: [] })],
    ["extra inner key", request({ chain_id: 1, method: "m", params: [], extra: true })],
    ["extra outer key", { Request: { chain_id: 1, method: "m", params: [] }, Other: 1 }],
    ["with UnsubscribeLogs", { Request: { chain_id: 1, method: "m", params: [] }, UnsubscribeLogs: 3 }],
    ["with a bad UnsubscribeLogs", { Request: { chain_id: 1, method: "m", params: [] }, UnsubscribeLogs: "x" }],
    ["with SubscribeLogs", { Request: { chain_id: 1, method: "m", params: [] }, SubscribeLogs: {} }],
    ["Request an array", { Request: Object.assign([], { chain_id: 1, method: "m", params: [] }) }],
    ["Request null", { Request: null }],
    ["the action an array", Object.assign([], { Request: { chain_id: 1, method: "m", params: [] } })],
    ["a __proto__ key", JSON.parse(`{"__proto__":1,"Request":{"chain_id":1,"method":"m","params":[]}}`)],
    ["UnsubscribeLogs", { UnsubscribeLogs: 3 }],
    ["a string", "GetState"],
    ["a number", 5],
    ["null", null]
  ]
  it("reads only what decodeAction reads, and reads it the same", () => {
    let read = 0
    for (const [name, u] of cases) {
      const quick = readRequest(u)
      if (quick === undefined) continue
      read++
      const full = decode(u)
      assert.isTrue(Result.isSuccess(full), `${name}: read by hand, refused by the schema`)
      assert.deepStrictEqual(quick, Result.getOrThrow(full), name)
    }
    assert.strictEqual(read, 12)
    // Every Request the schema reads without the union's earlier keys, the hand reads too.
    for (const [name, u] of cases) {
      const full = decode(u)
      if (Result.isFailure(full) || !("Request" in full.success)) continue
      if (typeof u === "object" && u !== null && ("SubscribeLogs" in u || "UnsubscribeLogs" in u)) continue
      assert.isDefined(readRequest(u), `${name}: read by the schema, not by hand`)
    }
  })
})

const CHAIN = 201

class Server extends Context.Service<Server, {
  readonly port: number
  readonly received: () => ReadonlyArray<{ id: unknown; method: unknown }>
}>()("test/eth/SelectiveSocket") {
  static readonly layer = Layer.effect(
    Server,
    Effect.map(selectiveSocketServer({ eth_chainId: [0, "0x7"], eth_gasPrice: [1500, "0x1"] }), (s) => Server.of(s))
  )
}

const node = Layer.unwrap(Effect.map(Server, (s) =>
  ethNode({ providers: [{ chain_id: CHAIN, url: `ws://127.0.0.1:${s.port}` }], defaultTimeout: "1 second" }).layer
)).pipe(Layer.provideMerge(Server.layer))

describe("eth: requests on an open WebSocket", () => {
  layer(node, { excludeTestServices: true, timeout: 30_000 })((it) => {
    it.effect("each is RpcTimeout by its own bound, whatever the order; others are answered meanwhile; a late answer is dropped", () =>
      Effect.gen(function*() {
        const p = yield* proc("patient:app:pub.os")
        assert.strictEqual(valueOf(yield* p.call(rpc("eth_chainId", [], CHAIN))), "0x7")
        const t0 = performance.now()
        const took = <A>(e: Effect.Effect<A>) => Effect.map(e, (a) => [a, performance.now() - t0] as const)
        // The later deadline first, then the earlier one: the connection's timer is re-armed for it.
        const long = yield* Effect.forkChild(took(p.call(rpc("eth_blockNumber", [], CHAIN), { timeout: 3 })))
        const short = yield* Effect.forkChild(took(p.call(rpc("eth_blockNumber", [], CHAIN), { timeout: 1 })))
        yield* Effect.sleep("50 millis")
        assert.strictEqual(valueOf(yield* p.call(rpc("eth_chainId", [], CHAIN))), "0x7")
        const [s, sAt] = yield* Fiber.join(short)
        assert.deepStrictEqual(s, { Err: "RpcTimeout" })
        assert.isAbove(sAt, 800)
        assert.isBelow(sAt, 1000, `answered after ${sAt.toFixed(0)} ms`)
        const [l, lAt] = yield* Fiber.join(long)
        assert.deepStrictEqual(l, { Err: "RpcTimeout" })
        assert.isAbove(lAt, 2600)
        assert.isBelow(lAt, 3000, `answered after ${lAt.toFixed(0)} ms`)

        // Answered after its bound: RpcTimeout; the late answer changes nothing.
        assert.deepStrictEqual(yield* p.call(rpc("eth_gasPrice", [], CHAIN), { timeout: 1 }), { Err: "RpcTimeout" })
        yield* Effect.sleep("800 millis")
        assert.strictEqual(valueOf(yield* p.call(rpc("eth_chainId", [], CHAIN))), "0x7")
        assert.strictEqual(valueOf(yield* p.call(rpc("eth_gasPrice", [], CHAIN), { timeout: 3 })), "0x1")

        const ids = (yield* Server).received().map((r) => r.id)
        assert.strictEqual(new Set(ids).size, ids.length, "every request its own id")
      }))

    it.effect("sent without expects_response: bounded by defaultTimeout, as GetState shows", () =>
      Effect.gen(function*() {
        const kernel = yield* Kernel
        const admin = yield* proc("admin:app:pub.os", [Eth.rootCapability(kernel.node)])
        const p = yield* proc("fireandforget:app:pub.os")
        assert.strictEqual(valueOf(yield* p.call(rpc("eth_chainId", [], CHAIN))), "0x7")
        yield* p.send(rpc("eth_blockNumber", [], CHAIN))
        yield* Effect.sleep("100 millis")
        const during = (yield* admin.call("GetState")) as { State: { outstanding_requests: Array<unknown> } }
        assert.strictEqual(during.State.outstanding_requests.length, 1)
        yield* Effect.sleep("1200 millis")
        const after = (yield* admin.call("GetState")) as { State: { outstanding_requests: Array<unknown> } }
        assert.deepStrictEqual(after.State.outstanding_requests, [])
      }))
  })
})
