/**
 * Storage services through the router: native client sessions send Kinode JSON
 * requests to kv/state/vfs/sqlite on the real kernel over real LMDB/SQLite/files in a
 * temp dir, each write acknowledged only once durable. Raw `lmdb` figures from the same
 * run sit beside them so the service layers' cost reads as a ratio.
 *
 * This machine's fsync latency swings 0.3-3 ms between runs (shared disk), so durable
 * figures move up to 10x from run to run; compare ratios within one run. Last run:
 *
 *   raw lmdb durable put 1 / 16 / 256 writers          7,143 / 77,810 / 256,618 ops/s
 *   kv durable set, 1 / 16 / 256 writer processes      3,915 / 12,754 /  20,382 ops/s
 *   kv durable set, 1 process with 256 in flight      30,220 ops/s
 *   kv service layer alone (decide + group commit)    65,777 ops/s
 *   kv get round trip                                 61,720 ops/s, p50 12 us, p99 58 us
 *   state set / get round trips                        1,475 / 34,383 ops/s
 *   sqlite autocommit insert / 500-row tx / select       502 / 17,128 rows/s / 13,657 ops/s
 *   vfs 1 KB write / read                              1,124 / 6,772 files/s
 *   vfs 1 MB write / read                                315 / 367 MB/s
 */
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as lmdb from "lmdb"
import * as os from "node:os"
import * as path from "node:path"
import { address } from "../../src/Ids.ts"
import type { Address } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { request } from "../../src/Message.ts"
import type { NativeApi } from "../../src/ProcessApi.ts"
import { Kv } from "../../services/kv/index.ts"
import { Lmdb } from "../../services/lmdb/Lmdb.ts"
import { client, storageNode } from "../../test/services/support/Node.ts"
import { percentile, type Row } from "../Row.ts"

const SUITE = "storage"
const pkg = { package_name: "bench", publisher_node: "bench.os" }
const enc = (s: string) => new TextEncoder().encode(s)

const rows: Array<Row> = []
const row = (metric: string, value: number, unit: string) => rows.push({ suite: SUITE, metric, value, unit })

/** One request/response through the router; dies on anything but a response. */
const roundTrip = (api: NativeApi, target: Address, body: Uint8Array, blob?: Uint8Array) =>
  Effect.flatMap(
    api.sendAndAwaitEffect(target, request({ body, expectsResponse: 60n }), blob === undefined ? undefined : { mime: undefined, bytes: blob }),
    (r) => ("message" in r && "source" in r ? Effect.succeed(r.message.body) : Effect.die(new Error(`send failed: ${r.kind}`)))
  )

const expectOk = (body: Uint8Array, what: string) =>
  new TextDecoder().decode(body).startsWith(`{"Err"`) ? Effect.die(new Error(`${what}: ${new TextDecoder().decode(body)}`)) : Effect.void

/** Sequential round trips: ops/s, p50 and p99 in microseconds. */
const latencies = <E>(name: string, n: number, once: (i: number) => Effect.Effect<unknown, E>) =>
  Effect.gen(function*() {
    for (let i = 0; i < Math.min(1000, n); i++) yield* once(-1 - i)
    const lat = new Float64Array(n)
    const t0 = performance.now()
    for (let i = 0; i < n; i++) {
      const s = performance.now()
      yield* once(i)
      lat[i] = performance.now() - s
    }
    const dt = performance.now() - t0
    const sorted = Array.from(lat).sort((a, b) => a - b)
    row(`${name} round trips`, (n / dt) * 1000, "ops/s")
    row(`${name} p50`, percentile(sorted, 50) * 1000, "us")
    row(`${name} p99`, percentile(sorted, 99) * 1000, "us")
    return (n / dt) * 1000
  })

const rawLmdb = Effect.promise(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-bench-lmdb-"))
  const env = lmdb.open({ path: dir, maxDbs: 4, mapSize: 2 ** 32, compression: false })
  const db = env.openDB<Buffer, Buffer>({ name: "raw", encoding: "binary", compression: false })
  const value = Buffer.from("value-0123456789")
  const key = (i: number) => Buffer.from(`key-${i}`)
  const out: Record<string, number> = {}
  for (let i = 0; i < 2000; i++) await db.put(key(1_000_000 + i), value)
  let t0 = performance.now()
  const single = 300
  for (let i = 0; i < single; i++) await db.put(key(i), value)
  out.single = (single / (performance.now() - t0)) * 1000
  for (const conc of [16, 256]) {
    const total = conc * 200
    t0 = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: conc }, async () => {
      while (next < total) await db.put(key(next++), value)
    }))
    out[`c${conc}`] = (total / (performance.now() - t0)) * 1000
  }
  const gets = 200_000
  t0 = performance.now()
  for (let i = 0; i < gets; i++) db.get(key(i % 50_000))
  out.get = (gets / (performance.now() - t0)) * 1000
  await env.close()
  fs.rmSync(dir, { recursive: true, force: true })
  return out
})

const program = Effect.gen(function*() {
  const raw = yield* rawLmdb
  row("raw lmdb durable put, 1 writer", raw.single!, "ops/s")
  row("raw lmdb durable put, 16 writers", raw.c16!, "ops/s")
  row("raw lmdb durable put, 256 writers", raw.c256!, "ops/s")
  row("raw lmdb get", raw.get!, "ops/s")

  const api = yield* client("main:bench:bench.os")
  const kvT = address(`${api.our.node}@kv:distro:sys`)
  const kvReq = (action: unknown) => Json.toBytes({ package_id: pkg, db: "b", action })
  yield* expectOk(yield* roundTrip(api, kvT, kvReq("Open")), "kv open")

  // kv: sequential set (each durable) and get round trips
  const value = enc("value-0123456789")
  const setBody = (k: string) => kvReq({ Set: { key: Array.from(enc(k)), tx_id: null } })
  const kvSet1 = yield* latencies("kv set (durable, 1 writer)", 300, (i) =>
    Effect.flatMap(roundTrip(api, kvT, setBody(`k${i}`), value), (b) => expectOk(b, "kv set")))
  const getBodies = Array.from({ length: 300 }, (_, i) => kvReq({ Get: Array.from(enc(`k${i}`)) }))
  const kvGet = yield* latencies("kv get", 50_000, (i) => roundTrip(api, kvT, getBodies[Math.abs(i) % 300]!))

  // kv: durable write throughput under concurrent writers (one process each)
  for (const conc of [1, 16, 256]) {
    const writers: Array<NativeApi> = []
    for (let w = 0; w < conc; w++) {
      const me = yield* client(`w${conc}x${w}:bench:bench.os`)
      yield* expectOk(yield* roundTrip(me, kvT, kvReq("Open")), "kv open")
      writers.push(me)
    }
    const perWriter = conc === 1 ? 300 : conc === 16 ? 200 : 100
    const t0 = performance.now()
    yield* Effect.all(
      writers.map((me, w) =>
        Effect.gen(function*() {
          for (let i = 0; i < perWriter; i++) {
            yield* expectOk(yield* roundTrip(me, kvT, setBody(`c${conc}-${w}-${i}`), value), "kv set")
          }
        })),
      { concurrency: "unbounded", discard: true }
    )
    const rate = ((conc * perWriter) / (performance.now() - t0)) * 1000
    row(`kv durable set, ${conc} writers`, rate, "ops/s")
    if (conc === 1) row("kv set 1 writer / raw lmdb 1 writer", rate / raw.single!, "ratio")
    if (conc === 16) row("kv set 16 writers / raw lmdb 16", rate / raw.c16!, "ratio")
    if (conc === 256) row("kv set 256 writers / raw lmdb 256", rate / raw.c256!, "ratio")
  }
  row("kv get / raw lmdb get", kvGet / raw.get!, "ratio")

  // kv service layer alone (same instance the server uses, no router): decide each
  // request, commit them in 256-request LMDB batches, up to 4 commits in flight.
  {
    const kv = yield* Kv
    const n = 100_000
    const bodies = Array.from({ length: n }, (_, i) =>
      enc(JSON.stringify({ package_id: pkg, db: "b", action: { Set: { key: Array.from(enc(`s${i}`)), tx_id: null } } })))
    const blob = { mime: undefined, bytes: value }
    const t0 = performance.now()
    const inFlight: Array<Promise<boolean>> = []
    for (let i = 0; i < n; i += 256) {
      const writes: Array<() => void> = []
      for (let j = i; j < Math.min(n, i + 256); j++) {
        const d = kv.decide(api.our, bodies[j]!, blob)
        if (d._tag !== "Write") return yield* Effect.die(new Error(`expected a write, got ${d._tag}`))
        writes.push(d.apply)
      }
      inFlight.push(kv.commitWrites(writes))
      if (inFlight.length >= 4) yield* Effect.promise(() => inFlight.shift()!)
    }
    yield* Effect.promise(() => Promise.all(inFlight))
    const rate = (n / (performance.now() - t0)) * 1000
    row("kv service layer durable set (no router)", rate, "ops/s")
    row("kv service layer / raw lmdb 256", rate / raw.c256!, "ratio")
  }
  void kvSet1

  // state: set/get through the kernel (get-state/set-state of a process)
  const stateBytes = enc("x".repeat(256))
  yield* latencies("state set (durable)", 300, () => Effect.promise(() => api.setState(stateBytes)))
  yield* latencies("state get", 20_000, () => Effect.promise(() => api.getState()))

  // sqlite: durable autocommit inserts, batched inserts in one tx, selects by key
  const sqlT = address(`${api.our.node}@sqlite:distro:sys`)
  const sqlReq = (action: unknown) => Json.toBytes({ package_id: pkg, db: "b", action })
  yield* expectOk(yield* roundTrip(api, sqlT, sqlReq("Open")), "sqlite open")
  yield* expectOk(yield* roundTrip(api, sqlT, sqlReq({ Write: { statement: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", tx_id: null } })), "create")
  const insert = sqlReq({ Write: { statement: "INSERT INTO t VALUES (?, ?)", tx_id: null } })
  let id = 0
  yield* latencies("sqlite insert (durable autocommit)", 300, () =>
    Effect.flatMap(roundTrip(api, sqlT, insert, Json.toBytes([id++, "row"])), (b) => expectOk(b, "insert")))
  {
    const batches = 20
    const perTx = 500
    const t0 = performance.now()
    for (let b = 0; b < batches; b++) {
      const begin = Json.parseBytes(yield* roundTrip(api, sqlT, sqlReq("BeginTx")))
      const tx = (begin._tag === "Success" ? begin.success : null) as { BeginTx: { tx_id: bigint | number } }
      const txInsert = sqlReq({ Write: { statement: "INSERT INTO t VALUES (?, ?)", tx_id: tx.BeginTx.tx_id } })
      for (let i = 0; i < perTx; i++) yield* expectOk(yield* roundTrip(api, sqlT, txInsert, Json.toBytes([id++, "row"])), "tx insert")
      yield* expectOk(yield* roundTrip(api, sqlT, sqlReq({ Commit: { tx_id: tx.BeginTx.tx_id } })), "commit")
    }
    row("sqlite insert in 500-row tx", ((batches * perTx) / (performance.now() - t0)) * 1000, "rows/s")
  }
  const select = sqlReq({ Query: "SELECT v FROM t WHERE id = ?" })
  const selectParams = Array.from({ length: 1000 }, (_, i) => Json.toBytes([i]))
  yield* latencies("sqlite select by key", 20_000, (i) => roundTrip(api, sqlT, select, selectParams[Math.abs(i) % 1000]))

  // vfs: whole-file Write (fsynced) and Read throughput
  const vfsT = address(`${api.our.node}@vfs:distro:sys`)
  const vfsReq = (p: string, action: unknown) => Json.toBytes({ path: p, action })
  yield* expectOk(yield* roundTrip(api, vfsT, vfsReq("/bench:bench.os/d", "CreateDrive")), "drive")
  for (const [label, size, n] of [["1 KB", 1024, 300], ["1 MB", 1024 * 1024, 60]] as const) {
    const data = new Uint8Array(size).fill(7)
    const paths = Array.from({ length: n }, (_, i) => `/bench:bench.os/d/${size}-${i}`)
    let t0 = performance.now()
    for (const p of paths) yield* expectOk(yield* roundTrip(api, vfsT, vfsReq(p, "Write"), data), "vfs write")
    let dt = performance.now() - t0
    row(`vfs write ${label} files (fsynced)`, (n * size) / 1e6 / (dt / 1000), "MB/s")
    row(`vfs write ${label} files (fsynced)`, (n / dt) * 1000, "files/s")
    const reads = size === 1024 ? 5000 : 300
    t0 = performance.now()
    for (let i = 0; i < reads; i++) yield* roundTrip(api, vfsT, vfsReq(paths[i % n]!, "Read"))
    dt = performance.now() - t0
    row(`vfs read ${label} files`, (reads * size) / 1e6 / (dt / 1000), "MB/s")
    row(`vfs read ${label} files`, (reads / dt) * 1000, "files/s")
  }
  // kv: one process keeping 256 writes in flight (send_request with contexts, as Kinode apps can).
  // Runs last: the kernel's Timeouts skips cancelled entries with Array.shift, O(n^2) over
  // this burst's 50k cancelled deadlines, which stalls the next earlier deadline for seconds.
  {
    const me = yield* client("pipeliner:bench:bench.os")
    yield* expectOk(yield* roundTrip(me, kvT, kvReq("Open")), "kv open")
    const n = 50_000
    const blob = { mime: undefined, bytes: value }
    const reqs = Array.from({ length: n }, (_, i) =>
      request({ body: enc(JSON.stringify({ package_id: pkg, db: "b", action: { Set: { key: Array.from(enc(`p${i}`)), tx_id: null } } })), expectsResponse: 60n }))
    const t0 = performance.now()
    let sent = 0
    while (sent < 256) me.sendRequest(kvT, reqs[sent++]!, undefined, blob)
    for (let got = 0; got < n; got++) {
      const r = yield* me.receiveEffect
      if (r._tag !== "Message") return yield* Effect.die(new Error("kv pipelined send failed"))
      if (sent < n) me.sendRequest(kvT, reqs[sent++]!, undefined, blob)
    }
    const rate = (n / (performance.now() - t0)) * 1000
    row("kv durable set, 1 process 256 in flight", rate, "ops/s")
    row("kv set pipelined / raw lmdb 256", rate / raw.c256!, "ratio")
  }
})

export async function run(): Promise<Array<Row>> {
  rows.length = 0
  // `Kv.layerNoDeps` is the value `Kv.layer` builds on, so layer memoisation hands the
  // bench the running server's instance.
  const layer = Kv.layerNoDeps.pipe(Layer.provide(Lmdb.layer), Layer.provideMerge(storageNode()))
  await Effect.runPromise(Effect.scoped(Effect.provide(program, layer as Layer.Layer<any>)))
  return [...rows]
}
