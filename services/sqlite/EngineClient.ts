/**
 * The main-thread side of the sqlite worker: posts `EngineRequest`s and resumes the
 * caller with the result. A worker that dies answers its pending requests with an
 * `IoError` and is started afresh on the next request; the scope's end closes the
 * databases and terminates it.
 */
import { Effect } from "effect"
import { Worker } from "node:worker_threads"
import type { EngineRequest, EngineResult } from "./Engine.ts"

export interface EngineClient {
  readonly call: (req: EngineRequest) => Effect.Effect<EngineResult>
}

// Source runs as .ts (type stripping), the build as .js: the worker file matches.
const workerUrl = new URL(`./EngineWorker${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url)

export const makeEngineClient = Effect.gen(function*() {
  const pending = new Map<number, (r: EngineResult) => void>()
  let nextId = 0
  let worker: Worker | undefined

  const failAll = (why: string) => {
    const waiting = [...pending.values()]
    pending.clear()
    for (const resume of waiting) resume({ _tag: "IoError", message: `sqlite worker stopped: ${why}` })
  }

  const start = (): Worker => {
    const w = new Worker(workerUrl)
    w.on("message", (msg: { readonly id: number; readonly result: EngineResult }) => {
      const resume = pending.get(msg.id)
      pending.delete(msg.id)
      resume?.(msg.result)
    })
    w.on("error", (e) => {
      if (worker === w) worker = undefined
      failAll(e.message)
    })
    w.on("exit", (code) => {
      if (worker === w) worker = undefined
      failAll(`exit code ${code}`)
    })
    return w
  }

  const post = (req: EngineRequest | "close") =>
    Effect.callback<EngineResult>((resume) => {
      worker ??= start()
      const id = nextId++
      pending.set(id, (r) => resume(Effect.succeed(r)))
      worker.postMessage({ id, req })
    })

  yield* Effect.addFinalizer(() =>
    worker === undefined ? Effect.void : Effect.gen(function*() {
      const w = worker!
      yield* post("close").pipe(Effect.timeout("5 seconds"), Effect.ignore)
      worker = undefined
      yield* Effect.promise(() => w.terminate())
    })
  )
  return { call: (req: EngineRequest) => post(req) } satisfies EngineClient
})
