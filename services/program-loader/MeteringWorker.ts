/**
 * Instrumenting a core module for preemption (`src/wasm-host/Metering.ts`) is seconds
 * of CPU for a 12 MB componentize-js app (read, walk, validate, emit in binaryen). It
 * runs here, in a worker thread, so the node's event loop keeps serving while a new
 * app is prepared. One worker, started at the first module and ended when idle or when
 * the node stops.
 */
import { Effect, Scope } from "effect"
import { fileURLToPath } from "node:url"
import { isMainThread, parentPort, Worker } from "node:worker_threads"
import { loadBinaryen, meterCoreModule } from "../../src/wasm-host/Metering.ts"

interface Job {
  readonly id: number
  readonly bytes: Uint8Array
}

type Answer = { readonly id: number; readonly binary: Uint8Array } | { readonly id: number; readonly error: string }

/** How long an idle worker stays (binaryen takes ~0.3 s to load again). */
const IDLE_MS = 30_000

/** The worker's side. */
const serve = () => {
  const port = parentPort!
  port.on("message", (job: Job) => {
    loadBinaryen().then((binaryen) => {
      const { binary } = meterCoreModule(binaryen, job.bytes)
      port.postMessage({ id: job.id, binary } satisfies Answer)
    }).catch((e: unknown) => {
      port.postMessage({ id: job.id, error: e instanceof Error ? e.message : String(e) } satisfies Answer)
    })
  })
}

if (!isMainThread && parentPort !== null) serve()

/**
 * `meterCoreModule` in a worker, as `ComponentCacheOptions.meter` takes it. The worker
 * ends with the scope (and after `IDLE_MS` without work).
 */
export const meterInWorker: Effect.Effect<(bytes: Uint8Array) => Promise<Uint8Array>, never, Scope.Scope> = Effect.gen(
  function*() {
    let worker: Worker | undefined
    let idle: ReturnType<typeof setTimeout> | undefined
    let nextId = 0
    const waiting = new Map<number, { readonly resolve: (b: Uint8Array) => void; readonly reject: (e: Error) => void }>()
    const stop = () => {
      if (idle !== undefined) clearTimeout(idle)
      idle = undefined
      const w = worker
      worker = undefined
      for (const [, job] of waiting) job.reject(new Error("the instrumentation worker stopped"))
      waiting.clear()
      return w?.terminate()
    }
    const start = (): Worker => {
      const w = new Worker(fileURLToPath(import.meta.url))
      w.unref()
      w.on("message", (a: Answer) => {
        const job = waiting.get(a.id)
        if (job === undefined) return
        waiting.delete(a.id)
        if ("error" in a) job.reject(new Error(a.error))
        else job.resolve(a.binary)
        if (waiting.size === 0) idle = setTimeout(() => void stop(), IDLE_MS)
      })
      w.on("error", (e) => {
        for (const [, job] of waiting) job.reject(e)
        waiting.clear()
        worker = undefined
      })
      return w
    }
    yield* Effect.addFinalizer(() => Effect.promise(async () => void (await stop())))
    return (bytes: Uint8Array) =>
      new Promise<Uint8Array>((resolve, reject) => {
        if (idle !== undefined) clearTimeout(idle)
        idle = undefined
        worker ??= start()
        const id = nextId++
        waiting.set(id, { resolve, reject })
        worker.postMessage({ id, bytes } satisfies Job)
      })
  }
)
