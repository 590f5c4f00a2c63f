/**
 * `SubscribeLogs` / `UnsubscribeLogs` against a real anvil: `newHeads` pushed as anvil
 * mines, over an HTTP provider (subscribing at its WebSocket twin) and a ws:// one;
 * unsubscribing; errors; a subscription that keeps going when anvil is stopped and
 * started again on the same port.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import type { Printed } from "../../../src/Printout.ts"
import { Kernel } from "../../../src/Kernel.ts"
import { Eth } from "../../../services/eth/index.ts"
import { anvilRpc, CHAIN_ID, enc, ethNode, eventually, proc, silentServer, testAnvil, type TestAnvil } from "./support.ts"

class Chain extends Context.Service<Chain, { readonly anvil: TestAnvil; readonly silentPort: number }>()("test/eth/Chain") {
  static readonly layer = Layer.effect(Chain, Effect.gen(function*() {
    return Chain.of({ anvil: yield* testAnvil, silentPort: (yield* silentServer).port })
  }))
}

const WS_CHAIN = 7
const SILENT_WS = 101

const node = (() => {
  let lines: ReadonlyArray<Printed> = []
  const layer = Layer.unwrap(Effect.map(Chain, (c) => {
    const n = ethNode({
      providers: [
        { chain_id: CHAIN_ID, url: c.anvil.url },
        { chain_id: WS_CHAIN, url: c.anvil.wsUrl },
        { chain_id: SILENT_WS, url: `ws://127.0.0.1:${c.silentPort}` }
      ],
      resubscribe: { initial: "100 millis", max: "400 millis" },
      heartbeat: { interval: "1 second", timeout: "500 millis" }
    })
    lines = n.lines
    return n.layer
  })).pipe(Layer.provideMerge(Chain.layer))
  return { layer, lines: () => lines }
})()

const mine = (url: string, blocks = 1) => anvilRpc(url, "anvil_mine", [`0x${blocks.toString(16)}`])

interface HeadPush {
  readonly Ok: { readonly id: number | bigint; readonly result: { readonly number: string; readonly hash: string } }
}

describe("eth: subscriptions", () => {
  layer(node.layer, { excludeTestServices: true, timeout: 60_000 })((it) => {
    it.effect("newHeads: Ok, then one {\"Ok\":{id, result}} Request per block; UnsubscribeLogs stops them", () =>
      Effect.gen(function*() {
        const { anvil } = yield* Chain
        for (const chain of [CHAIN_ID, WS_CHAIN]) {
          const p = yield* proc(`heads${chain}:app:pub.os`)
          const subscribed = yield* p.call({ SubscribeLogs: { sub_id: 1, chain_id: chain, kind: "newHeads", params: null } })
          assert.strictEqual(subscribed, "Ok")
          const start = Number(yield* anvilRpc(anvil.url, "eth_blockNumber"))
          yield* mine(anvil.url, 3)
          const numbers: Array<number> = []
          for (let i = 0; i < 3; i++) {
            const push = (yield* p.nextPush())?.body as HeadPush | undefined
            assert.isDefined(push, `block ${i + 1} of 3 was not pushed`)
            assert.strictEqual(Number(push!.Ok.id), 1)
            assert.match(push!.Ok.result.hash, /^0x[0-9a-f]{64}$/)
            numbers.push(Number(push!.Ok.result.number))
          }
          assert.deepStrictEqual(numbers, [start + 1, start + 2, start + 3])
          assert.strictEqual(yield* p.call({ UnsubscribeLogs: 1 }), "Ok")
          yield* mine(anvil.url)
          assert.isUndefined(yield* p.nextPush("400 millis"))
          // unsubscribing again: Kinode's MalformedRequest
          assert.deepStrictEqual(yield* p.call({ UnsubscribeLogs: 1 }), { Err: "MalformedRequest" })
        }
      }))

    it.effect("sub ids are u64s kept exact; GetState lists active subscriptions; errors in Kinode's shapes", () =>
      Effect.gen(function*() {
        const kernel = yield* Kernel
        const { anvil } = yield* Chain
        const p = yield* proc("bigsub:app:pub.os")
        const admin = yield* proc("subadmin:app:pub.os", [Eth.rootCapability(kernel.node)])
        const big = "18446744073709551615"
        assert.strictEqual(yield* p.call(enc(`{"SubscribeLogs":{"sub_id":${big},"chain_id":31337,"kind":"newHeads","params":null}}`)), "Ok")
        const state = (yield* admin.call("GetState")) as { State: { active_subscriptions: Record<string, Record<string, null>> } }
        assert.deepStrictEqual(state.State.active_subscriptions["eth-test.os@bigsub:app:pub.os"], { [big]: null })
        yield* mine(anvil.url)
        const push = (yield* p.nextPush())?.body as HeadPush
        assert.strictEqual(push.Ok.id, BigInt(big))
        assert.strictEqual(yield* p.call(enc(`{"UnsubscribeLogs":${big}}`)), "Ok")
        assert.deepStrictEqual(yield* p.call({ SubscribeLogs: { sub_id: 2, chain_id: 4242, kind: "newHeads", params: null } }), { Err: "NoRpcForChain" })
        const t0 = performance.now()
        assert.deepStrictEqual(
          yield* p.call({ SubscribeLogs: { sub_id: 3, chain_id: SILENT_WS, kind: "newHeads", params: null } }, { timeout: 2 }),
          { Err: "RpcTimeout" }
        )
        assert.isBelow(performance.now() - t0, 2000)
        assert.deepStrictEqual(yield* p.call({ SubscribeLogs: { sub_id: 4, chain_id: CHAIN_ID, kind: "sometimes", params: null } }), { Err: "MalformedRequest" })
        const after = (yield* admin.call("GetState")) as { State: { active_subscriptions: Record<string, Record<string, null>> } }
        assert.isUndefined(after.State.active_subscriptions["eth-test.os@bigsub:app:pub.os"])
      }))

    it.effect("a subscription keeps going after anvil stops and starts again on the same port", () =>
      Effect.gen(function*() {
        const { anvil } = yield* Chain
        const viaHttp = yield* proc("survivor:app:pub.os")
        const viaWs = yield* proc("survivorws:app:pub.os")
        assert.strictEqual(yield* viaHttp.call({ SubscribeLogs: { sub_id: 9, chain_id: CHAIN_ID, kind: "newHeads", params: null } }), "Ok")
        assert.strictEqual(yield* viaWs.call({ SubscribeLogs: { sub_id: 9, chain_id: WS_CHAIN, kind: "newHeads", params: null } }), "Ok")
        yield* mine(anvil.url)
        assert.isDefined(yield* viaHttp.nextPush())
        assert.isDefined(yield* viaWs.nextPush())

        // the module may notice before `stop` returns (anvil closes its sockets as it exits)
        const lostAt = node.lines().length
        yield* anvil.stop
        assert.isTrue(yield* eventually(() => node.lines().slice(lostAt).filter((l) => l.text.includes("re-subscribing")).length >= 2))
        yield* Effect.sleep("600 millis")
        yield* anvil.start
        // re-subscribed on the new anvil (a fresh chain: block numbers start over)
        assert.isTrue(yield* eventually(() => node.lines().slice(lostAt).filter((l) => l.text.includes("re-subscribed via")).length >= 2, "10 seconds"))
        viaHttp.drainPushes()
        viaWs.drainPushes()
        yield* mine(anvil.url, 2)
        for (const p of [viaHttp, viaWs]) {
          const first = (yield* p.nextPush())?.body as HeadPush | undefined
          const second = (yield* p.nextPush())?.body as HeadPush | undefined
          assert.isDefined(first, `${p.id}: no block after the restart`)
          assert.strictEqual(Number(first!.Ok.id), 9)
          assert.deepStrictEqual([Number(first!.Ok.result.number), Number(second!.Ok.result.number)], [1, 2])
        }
        // requests work again too
        assert.strictEqual(((yield* viaHttp.call({ Request: { chain_id: WS_CHAIN, method: "eth_blockNumber", params: [] } })) as { Response: { value: string } }).Response.value, "0x2")
      }))

    it.effect("the subscriber gone: its subscription ends", () =>
      Effect.gen(function*() {
        const kernel = yield* Kernel
        const { anvil } = yield* Chain
        const admin = yield* proc("subadmin2:app:pub.os", [Eth.rootCapability(kernel.node)])
        yield* Effect.scoped(Effect.gen(function*() {
          const p = yield* proc("shortlived:app:pub.os")
          assert.strictEqual(yield* p.call({ SubscribeLogs: { sub_id: 5, chain_id: CHAIN_ID, kind: "newHeads", params: null } }), "Ok")
        }))
        yield* mine(anvil.url)
        const gone = yield* eventually(() => node.lines().some((l) => l.text.includes("subscription 5 of eth-test.os@shortlived:app:pub.os ended")))
        assert.isTrue(gone)
        const state = (yield* admin.call("GetState")) as { State: { active_subscriptions: Record<string, unknown> } }
        assert.isUndefined(state.State.active_subscriptions["eth-test.os@shortlived:app:pub.os"])
      }))
  })
})
