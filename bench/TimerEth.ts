/**
 * Rows for `timer:distro:sys` and `eth:distro:sys` (issue #13), run by the wasm suite:
 * - timer: set-to-fire jitter of 5 ms timers, set 100 at a time by a native session
 *   through the real kernel (answer received minus 5 ms; kernel delivery both ways
 *   included), p50 and p99 over 4,000 timers;
 * - eth: `eth_blockNumber` through the kernel (a session → eth → anvil → eth → session)
 *   beside the same call made with viem straight to the same anvil, in the same run,
 *   interleaved in blocks, over HTTP and over a WebSocket; p50s and their ratio.
 */
import { Effect, Exit, Layer, Scope } from "effect"
import { createPublicClient, http, webSocket } from "viem"
import { testKernel } from "../layers/TestLive.ts"
import { address } from "../src/Ids.ts"
import * as Json from "../src/Json.ts"
import { Kernel, messagingCap } from "../src/Kernel.ts"
import { request } from "../src/Message.ts"
import { freePort, startAnvil } from "../services/chain/index.ts"
import { Eth, PROCESS as ETH } from "../services/eth/index.ts"
import { PROCESS as TIMER, Timer } from "../services/timer/index.ts"
import { percentile, type Row } from "./Row.ts"

const SUITE = "wasm"

const timerJitter = Effect.gen(function*() {
  const kernel = yield* Kernel
  const api = yield* kernel.session("bench:timer:sys", { capabilities: [], public: true })
  const target = address(`${kernel.node}@${TIMER}`)
  const body = Json.toBytes({ SetTimer: 5 })
  const jitter: Array<number> = []
  for (let wave = 0; wave < 45; wave++) {
    const sent = new Map<string, number>()
    for (let i = 0; i < 100; i++) {
      sent.set(String(i), performance.now())
      api.sendRequest(target, request({ body, expectsResponse: 5n }), new TextEncoder().encode(String(i)), undefined)
    }
    for (let got = 0; got < 100; got++) {
      const item = yield* api.receiveEffect
      const at = performance.now()
      if (item._tag !== "Message" || item.message._tag !== "Response") return yield* Effect.die(new Error("timer: no answer"))
      const t = sent.get(new TextDecoder().decode(item.message.context))!
      if (wave >= 5) jitter.push(at - t - 5)
    }
  }
  jitter.sort((a, b) => a - b)
  return [
    { suite: SUITE, metric: "timer 5 ms set-to-fire jitter p50", value: percentile(jitter, 50), unit: "ms" },
    { suite: SUITE, metric: "timer 5 ms set-to-fire jitter p99", value: percentile(jitter, 99), unit: "ms" },
    { suite: SUITE, metric: "timer fired early (of 4,000)", value: jitter.filter((j) => j < 0).length, unit: "timers" }
  ] satisfies Array<Row>
})

const ethOverhead = (urls: { readonly http: string; readonly ws: string }) =>
  Effect.gen(function*() {
    const kernel = yield* Kernel
    const api = yield* kernel.session("bench:eth:sys", { capabilities: [messagingCap(kernel.node, ETH)], public: true })
    const target = address(`${kernel.node}@${ETH}`)
    const viaKernel = (chain: number) => {
      const body = Json.toBytes({ Request: { chain_id: chain, method: "eth_blockNumber", params: [] } })
      return Effect.gen(function*() {
        const r = yield* api.sendAndAwaitEffect(target, request({ body, expectsResponse: 5n }))
        if (!("message" in r) || !new TextDecoder().decode(r.message.body).startsWith(`{"Response"`)) {
          return yield* Effect.die(new Error(`eth: ${"message" in r ? new TextDecoder().decode(r.message.body) : "no answer"}`))
        }
      })
    }
    const httpClient = createPublicClient({ transport: http(urls.http, { retryCount: 0 }) })
    const wsClient = createPublicClient({ transport: webSocket(urls.ws, { retryCount: 0 }) })
    const viaViem = (client: typeof httpClient | typeof wsClient) =>
      Effect.promise(() => client.request({ method: "eth_blockNumber" }))

    const time = <E>(e: Effect.Effect<unknown, E>, n: number, into: Array<number>) =>
      Effect.gen(function*() {
        for (let i = 0; i < n; i++) {
          const t = performance.now()
          yield* e
          into.push(performance.now() - t)
        }
      })
    const rows: Array<Row> = []
    for (const [name, chain, client] of [["HTTP", 31337, httpClient], ["WebSocket", 7, wsClient]] as const) {
      const kernelSamples: Array<number> = []
      const viemSamples: Array<number> = []
      yield* time(viaKernel(chain), 300, [])
      yield* time(viaViem(client), 300, [])
      for (let block = 0; block < 10; block++) {
        yield* time(viaKernel(chain), 200, kernelSamples)
        yield* time(viaViem(client), 200, viemSamples)
      }
      kernelSamples.sort((a, b) => a - b)
      viemSamples.sort((a, b) => a - b)
      const k = percentile(kernelSamples, 50)
      const v = percentile(viemSamples, 50)
      rows.push({ suite: SUITE, metric: `eth_blockNumber via eth, ${name} p50`, value: k * 1000, unit: "us" })
      rows.push({ suite: SUITE, metric: `eth_blockNumber bare viem, ${name} p50`, value: v * 1000, unit: "us" })
      rows.push({ suite: SUITE, metric: `eth via kernel / bare viem, ${name}`, value: k / v, unit: "x" })
    }
    yield* Effect.promise(() => wsClient.transport.getRpcClient().then((c) => c.close()))
    return rows
  })

/** The timer and eth rows, each on a fresh kernel; eth against an anvil of its own. */
export const timerEthFigures = async (): Promise<Array<Row>> => {
  const timerRows = await Effect.runPromise(timerJitter.pipe(
    Effect.provide(Timer.layer().pipe(Layer.provideMerge(testKernel({ node: "bench.os" }).layer))),
    Effect.scoped
  ))
  const ethRows = await Effect.runPromise(Effect.gen(function*() {
    const port = yield* freePort
    const chainScope = yield* Scope.make()
    const chain = yield* startAnvil({ port, install: false }).pipe(Scope.provide(chainScope), Effect.orDie)
    const urls = { http: chain.url, ws: chain.wsUrl }
    const node = Eth.layer({ providers: [{ chain_id: 31337, url: urls.http }, { chain_id: 7, url: urls.ws }] }).pipe(
      Layer.provideMerge(testKernel({ node: "bench.os" }).layer)
    )
    return yield* ethOverhead(urls).pipe(Effect.provide(node), Effect.ensuring(Scope.close(chainScope, Exit.void)))
  }).pipe(Effect.scoped))
  return [...timerRows, ...ethRows]
}
