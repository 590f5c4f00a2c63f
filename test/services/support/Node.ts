/**
 * The storage services on the real kernel (`testKernel`, real LMDB in a temp dir):
 * requests go through the router with its capability checks, from native sessions.
 */
import { Effect, Layer } from "effect"
import { testKernel } from "../../../layers/TestLive.ts"
import type { TestNodeOptions } from "../../../layers/TestLive.ts"
import { address } from "../../../src/Ids.ts"
import * as Json from "../../../src/Json.ts"
import { Kernel, messagingCap } from "../../../src/Kernel.ts"
import type { LazyLoadBlob } from "../../../src/Message.ts"
import { request } from "../../../src/Message.ts"
import type { NativeApi } from "../../../src/ProcessApi.ts"
import { Kv } from "../../../services/kv/index.ts"
import { Lmdb } from "../../../services/lmdb/Lmdb.ts"
import { Sqlite } from "../../../services/sqlite/index.ts"
import { State } from "../../../services/state/index.ts"
import { Vfs } from "../../../services/vfs/index.ts"

export const STORAGE = ["vfs", "state", "kv", "sqlite"] as const

/**
 * The kernel plus the four storage services. `Lmdb.layer` is the same layer value the
 * kernel's store uses, so Effect's layer memoisation shares the one environment.
 */
export const storageNode = (options: TestNodeOptions = {}) => {
  const k = testKernel(options)
  return Layer.mergeAll(Vfs.layer, State.layer, Kv.layer, Sqlite.layer).pipe(
    Layer.provide(Lmdb.layer),
    Layer.provideMerge(k.layer)
  )
}

/** A native client process that may message the storage services (public, so their answers reach it). */
export const client = (id: string) =>
  Effect.flatMap(Kernel, (k) =>
    k.session(id, {
      capabilities: STORAGE.map((s) => messagingCap(k.node, `${s}:distro:sys`)),
      public: true
    }))

export interface Answer {
  readonly body: unknown
  readonly raw: Uint8Array
  readonly blob: LazyLoadBlob | undefined
}

/** Sends a JSON request to `<service>:distro:sys` and decodes the answer. */
export const callService = (api: NativeApi, service: string, body: unknown, blob?: Uint8Array) =>
  Effect.gen(function*() {
    const target = address(`${api.our.node}@${service}:distro:sys`)
    const r = yield* api.sendAndAwaitEffect(
      target,
      request({ body: Json.toBytes(body), expectsResponse: 15n }),
      blob === undefined ? undefined : { mime: undefined, bytes: blob }
    )
    if (!("message" in r && "source" in r)) return yield* Effect.die(new Error(`send failed: ${JSON.stringify(r.kind)}`))
    const parsed = Json.parseBytes(r.message.body)
    if (parsed._tag === "Failure") return yield* Effect.die(parsed.failure)
    return { body: parsed.success, raw: r.message.body, blob: api.getBlob() } satisfies Answer
  })
