/**
 * http-server (services/http-server) on a real kernel on LMDB, over real HTTP on
 * 127.0.0.1, beside a bare Node `http` server answering the same 13-byte body in the same
 * run, so figures read as ratios to it:
 *
 *   - app: a path bound by a Wasm app (test/fixtures/wasm/http-hello.wat, loaded through
 *     the real program loader) that answers every request with 200 text/plain
 *     "hello, world\n": client → Node http → path table → kernel → Wasm guest → kernel →
 *     http-server → client;
 *   - static: the same bytes bound with `cache: true` and a blob (GET never reaches the app);
 *   - bare: `http.createServer` writing the same status, content type and body.
 *
 * Each with 64 concurrent keep-alive clients (`64c`: throughput; p50 includes queueing)
 * and with one (`1c`, sequential keep-alive: the latency of a request on its own). Beside
 * rates and latencies: the server process's CPU time per answer (what a request costs,
 * less swayed by load elsewhere on the machine than rates are) and the generator's CPU
 * (near 1 core would mean the generator, not the server, set the figure); `vs bare by
 * CPU/request` is the ratio a CPU-bound server shows (rates only show it when nothing
 * else on the machine takes the server's core). The load comes from a child process
 * (bench/HttpLoad.ts), so the server keeps its core. Rows of one concurrency are measured
 * in alternating slices (bare, static, app, app, static, bare, ...) so machine load from
 * elsewhere hits all three alike; rates pool the slices, percentiles pool the requests.
 *
 * Last run (2-core machine, other jobs holding the cores; 3 s a row):
 *
 *   row        req/s     p50      p99    vs bare  CPU/req  vs bare by CPU
 *   bare 64c   27,741   2.1 ms   7.1 ms  1        20.3 us  1
 *   static 64c 25,301   2.3 ms   9.2 ms  0.91     22.8 us  0.89   (goal >= 0.8)
 *   app 64c    14,976   3.1 ms  31.7 ms  0.54     44.7 us  0.45   (goal >= 0.3)
 *   bare 1c    23,144  27.3 us   211 us  1        18.2 us  1
 *   static 1c  17,003  28.3 us   615 us  0.73     22.7 us  0.80
 *   app 1c      7,748  51.4 us  1.17 ms  0.33     55.4 us  0.33   (goal p50 <= 1 ms)
 */
import { Effect, Layer } from "effect"
import * as http from "node:http"
import { testKernel } from "../../layers/TestLive.ts"
import { address } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { Kernel, messagingCap } from "../../src/Kernel.ts"
import { request } from "../../src/Message.ts"
import { HTTP_SERVER, HttpServer, SERVER_OPTIONS } from "../../services/http-server/index.ts"
import { HELLO_BODY, HELLO_CONTENT_TYPE, startHttpHello } from "../../test/fixtures/wasm/http-hello.ts"
import { type Load, type LoadResult, startLoad } from "../HttpLoad.ts"
import { percentile, type Row } from "../Row.ts"

const SUITE = "http"
const NODE = "bench.dev"
const APP = "hello:httpbench:bench"
const STATIC = "static:httpbench:bench"
const SECONDS = Number(process.env["HTTP_BENCH_SECONDS"] ?? 3)
const WARMUP_MS = 1000
const SLICES = 6
const RAMP_MS = 200
const BODY = Buffer.from(HELLO_BODY)

/** The baseline: Node's own server with http-server's options, same answer. */
const bareServer = () =>
  new Promise<http.Server>((resolve) => {
    const server = http.createServer(SERVER_OPTIONS, (_req, res) => {
      res.writeHead(200, { "content-type": HELLO_CONTENT_TYPE, "content-length": BODY.length })
      res.end(BODY)
    })
    server.listen(0, "127.0.0.1", () => resolve(server))
  })

const portOf = (server: http.Server) => {
  const a = server.address()
  if (typeof a !== "object" || a === null) throw new Error("no port")
  return a.port
}

/** The node: real kernel + http-server, the Wasm app bound at `/`, the body cached at `/<static>/hello.txt`. */
const node = Effect.gen(function*() {
  const kernel = yield* Kernel
  const server = yield* HttpServer
  yield* startHttpHello(APP)

  const site = yield* kernel.session(STATIC, { capabilities: [messagingCap(kernel.node, HTTP_SERVER)], public: true })
  const bound = yield* site.sendAndAwaitEffect(
    address(`${kernel.node}@${HTTP_SERVER}`),
    request({ body: Json.toBytes({ Bind: { path: "/hello.txt", authenticated: false, local_only: false, cache: true } }), expectsResponse: 5n }),
    { mime: HELLO_CONTENT_TYPE, bytes: BODY }
  )
  if (!("message" in bound) || new TextDecoder().decode(bound.message.body) !== "{\"Ok\":null}") {
    return yield* Effect.die(new Error("the static bind was refused"))
  }
  return { port: server.port, app: `/${APP}`, static: `/${STATIC}/hello.txt` }
})

interface Target {
  readonly name: string
  readonly port: number
  readonly path: string
}

interface Pooled {
  readonly rps: number
  /** Over every request of every slice, in microseconds. */
  readonly p50: number
  readonly p99: number
  readonly errors: number
  /** The generator's CPU while recording, in cores (near 1: the generator limits the figure). */
  readonly genCpu: number
  /** The server process's CPU time per answer, in microseconds (less swayed by load elsewhere than rates). */
  readonly serverUs: number
}

/**
 * Every target at `connections`: a warm-up run each (`WARMUP_MS`), then `SLICES` slices
 * per target of `SECONDS / SLICES` each (after a short ramp that opens the connections),
 * in alternating order (bare, static, app, app, static, bare, ...), so load from elsewhere
 * on the shared machine hits all of them alike. Rates are over all slices of a target,
 * percentiles over all its requests.
 */
const compare = async (load: Load, targets: ReadonlyArray<Target>, connections: number): Promise<Map<string, Pooled>> => {
  const spec = (t: Target, warmupMs: number, durationMs: number) => ({
    port: t.port,
    path: t.path,
    connections,
    warmupMs,
    durationMs,
    expect: HELLO_BODY
  })
  for (const t of targets) await load.run(spec(t, WARMUP_MS, 200))
  const runs = new Map<string, Array<LoadResult & { serverUs: number }>>()
  for (let i = 0; i < SLICES; i++) {
    for (const t of i % 2 === 0 ? targets : [...targets].reverse()) {
      const cpu0 = process.cpuUsage()
      const r = await load.run(spec(t, RAMP_MS, (SECONDS * 1000) / SLICES))
      const cpu = process.cpuUsage(cpu0)
      // This process's CPU over the whole run (ramp included) for every answer of it.
      runs.set(t.name, [...(runs.get(t.name) ?? []), { ...r, serverUs: cpu.user + cpu.system }])
    }
  }
  const out = new Map<string, Pooled>()
  for (const [name, rs] of runs) {
    const seconds = rs.reduce((a, r) => a + r.seconds, 0)
    const all = new Float64Array(rs.reduce((a, r) => a + r.latencies.length, 0))
    let at = 0
    for (const r of rs) {
      all.set(r.latencies, at)
      at += r.latencies.length
    }
    const sorted = Array.from(all.sort())
    out.set(name, {
      rps: rs.reduce((a, r) => a + r.count, 0) / seconds,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      errors: rs.reduce((a, r) => a + r.errors, 0),
      genCpu: rs.reduce((a, r) => a + r.cpu * r.seconds, 0) / seconds,
      serverUs: rs.reduce((a, r) => a + r.serverUs, 0) / rs.reduce((a, r) => a + r.total, 0)
    })
  }
  return out
}

export const run = async (): Promise<ReadonlyArray<Row>> => {
  const load = startLoad()
  const bare = await bareServer()
  const k = testKernel({ node: NODE })
  const layer = HttpServer.layer({
    port: 0,
    exactPort: true,
    jwtSecret: new Uint8Array(32).fill(7),
    login: () => Promise.resolve(undefined)
  }).pipe(Layer.provideMerge(k.layer))
  try {
    return await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const n = yield* node
      const targets: ReadonlyArray<Target> = [
        { name: "bare", port: portOf(bare), path: "/" },
        { name: "static", port: n.port, path: n.static },
        { name: "app", port: n.port, path: n.app }
      ]
      const many = yield* Effect.promise(() => compare(load, targets, 64))
      const one = yield* Effect.promise(() => compare(load, targets, 1))
      const rows: Array<Row> = []
      const row = (metric: string, value: number, unit: string) => rows.push({ suite: SUITE, metric, value, unit })
      for (const [c, m] of [["64c", many], ["1c", one]] as const) {
        const bareRps = m.get("bare")!.rps
        const bareUs = m.get("bare")!.serverUs
        for (const name of ["bare", "static", "app"] as const) {
          const r = m.get(name)!
          if (r.errors > 0) return yield* Effect.die(new Error(`http bench: ${name} ${c}: ${r.errors} answers wrong or connections failed`))
          const goal = c === "64c" && name === "static" ? " (goal>=0.8)" : c === "64c" && name === "app" ? " (goal>=0.3)" : ""
          row(`${name} ${c}`, r.rps, "req/s")
          row(`${name} ${c} p50${c === "1c" && name === "app" ? " (goal<=1000)" : ""}`, r.p50, "us")
          row(`${name} ${c} p99`, r.p99, "us")
          if (name !== "bare") row(`${name} ${c} vs bare${goal}`, r.rps / bareRps, "x")
          row(`${name} ${c} server CPU per request`, r.serverUs, "us")
          // The ratio a CPU-bound server would show (rates only do when nothing else takes the cores).
          if (name !== "bare") row(`${name} ${c} vs bare by CPU/request`, bareUs / r.serverUs, "x")
          row(`${name} ${c} generator CPU`, r.genCpu, "cores")
        }
      }
      return rows
    }).pipe(Effect.provide(layer))))
  } finally {
    load.stop()
    bare.closeAllConnections()
    bare.close()
  }
}
