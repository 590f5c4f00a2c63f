/**
 * Kernel throughput: native actor <-> native actor request/response through the
 * router (capability check, id pairing, context table, timers included), one request
 * outstanding and 1,000 in flight, beside a bare Effect `Queue` fiber ping-pong in
 * the same run so the router's cost shows as a ratio.
 */
import { Effect, Fiber, Layer, Queue } from "effect"
import { testKernel } from "../../layers/TestLive.ts"
import { address, parseProcessId } from "../../src/Ids.ts"
import { Kernel, messagingCap } from "../../src/Kernel.ts"
import { inBatch } from "../../src/Mailbox.ts"
import { type Received, request } from "../../src/Message.ts"
import { percentile, type Row } from "../Row.ts"

const SUITE = "kernel"
const ROUND_TRIPS = 200_000
const PIPELINED = 1_000_000
const IN_FLIGHT = 1_000

const queuePingPong = Effect.gen(function*() {
  const a = yield* Queue.unbounded<number>()
  const b = yield* Queue.unbounded<number>()
  const echo = yield* Effect.forkChild(Effect.forever(Effect.flatMap(Queue.take(a), (n) => Queue.offer(b, n))))
  const t0 = performance.now()
  for (let i = 0; i < ROUND_TRIPS; i++) {
    yield* Queue.offer(a, i)
    yield* Queue.take(b)
  }
  const dt = performance.now() - t0
  yield* Fiber.interrupt(echo)
  return (ROUND_TRIPS / dt) * 1000
})

const routed = Effect.gen(function*() {
  const k = yield* Kernel
  const pid = parseProcessId("echo:bench:sys")
  if (pid._tag === "Failure") return yield* Effect.die(pid.failure)
  yield* k.initialize({
    id: pid.success,
    handle: "native:echo",
    witVersion: null,
    onExit: { _tag: "None" },
    public: false,
    capabilities: [],
    bytes: undefined
  })
  yield* k.run("echo:bench:sys")
  const api = yield* k.session("driver:bench:sys", { capabilities: [messagingCap(k.node, "echo:bench:sys")], public: true })
  const target = address(`${k.node}@echo:bench:sys`)
  const req = request({ body: new Uint8Array(8), expectsResponse: 30n })

  // warm up
  for (let i = 0; i < 20_000; i++) {
    api.sendRequest(target, req, undefined, undefined)
    yield* api.receiveEffect
  }
  const lat = new Float64Array(ROUND_TRIPS)
  const t0 = performance.now()
  for (let i = 0; i < ROUND_TRIPS; i++) {
    const s = performance.now()
    api.sendRequest(target, req, undefined, undefined)
    yield* api.receiveEffect
    lat[i] = performance.now() - s
  }
  const dt = performance.now() - t0
  const sorted = Array.from(lat).sort((x, y) => x - y)

  const t1 = performance.now()
  for (let i = 0; i < IN_FLIGHT; i++) api.sendRequest(target, req, undefined, undefined)
  let sent = IN_FLIGHT
  let received = 0
  // Drain in batches: wait for one reply, then take every reply already waiting.
  while (received < PIPELINED) {
    const first = yield* api.receiveEffect
    inBatch(() => {
      for (let item: Received | undefined = first; item !== undefined; item = api.tryReceive()) {
        received++
        if (sent < PIPELINED) {
          api.sendRequest(target, req, undefined, undefined)
          sent++
        }
      }
    })
  }
  const dt1 = performance.now() - t1
  return {
    rtPerS: (ROUND_TRIPS / dt) * 1000,
    p50: percentile(sorted, 50) * 1000,
    p99: percentile(sorted, 99) * 1000,
    pipelinedRt: (PIPELINED / dt1) * 1000
  }
})

export const run = async (): Promise<ReadonlyArray<Row>> => {
  const queue = await Effect.runPromise(queuePingPong)
  const { layer } = testKernel({ node: "bench.dev", mailboxCapacity: 4096 })
  const r = await Effect.runPromise(Effect.scoped(Effect.provide(routed, Layer.fresh(layer))))
  const queue2 = await Effect.runPromise(queuePingPong)
  const queueBest = Math.max(queue, queue2)
  return [
    { suite: SUITE, metric: "native_rt_per_s", value: r.rtPerS, unit: "rt/s" },
    { suite: SUITE, metric: "native_p50_us", value: r.p50, unit: "us" },
    { suite: SUITE, metric: "native_p99_us", value: r.p99, unit: "us" },
    { suite: SUITE, metric: "native_pipelined_msg_per_s", value: r.pipelinedRt * 2, unit: "msg/s" },
    { suite: SUITE, metric: "native_pipelined_rt_per_s", value: r.pipelinedRt, unit: "rt/s" },
    { suite: SUITE, metric: "effect_queue_rt_per_s", value: queueBest, unit: "rt/s" },
    { suite: SUITE, metric: "native_vs_queue_ratio", value: r.rtPerS / queueBest, unit: "x" }
  ]
}
