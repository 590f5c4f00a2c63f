/**
 * The service shell: everything a runtime module does that is not its behaviour.
 *
 * A module (vfs, kv, sqlite, state ...) gives its process id, its request Schema, the
 * error body for a body that is not a request, and its behaviour
 * (`serve(source, request, blob)`, failing with `{ error }` of its error body). The
 * shell gives back:
 * - `handle(source, bytes, blob)`: parse (UTF-8 JSON) → decode → serve → reply, where
 *   every failure becomes the reply `{"Err": <error body>}`: nothing a caller sends can
 *   end the module's loop;
 * - `serveLayer(process, dispatch, handle)`: registers the module with the kernel (`ModuleHost.serve`) and
 *   serves its mailbox: requests from other nodes and stray responses are ignored
 *   (these modules are local only), answers go back only when Kinode's would
 *   (`wantsReply`).
 *
 * Dispatch:
 * - `lanes`: one source's requests one at a time in arrival order (a process that
 *   pipelines sees its writes applied in order), sources concurrently, at most
 *   `maxInFlight` at once. Kinode spawns a task per request, so its replies may be
 *   reordered [quirk].
 * - `issueOrdered`: every request starts at once in arrival order (its storage write is
 *   issued in order) and may finish out of order, at most `maxInFlight` at once.
 * - `custom`: the module runs its own loop over the context (kv's group commit).
 */
import { Effect, Layer, Result, Schema, Semaphore } from "effect"
import type { Address } from "./Ids.ts"
import * as Json from "./Json.ts"
import { type KernelMessage, type LazyLoadBlob, response } from "./Message.ts"
import { ModuleHost, type ServiceContext, wantsReply } from "./ModuleHost.ts"

/** What a module sends back for one request. */
export interface Reply {
  readonly body: Uint8Array
  readonly blob?: LazyLoadBlob | undefined
}

/** `{"Err": body}`. */
export const errorReply = (body: unknown): Reply => ({ body: Json.toBytes({ Err: body }) })

/** A JSON reply body, with an optional blob. */
export const jsonReply = (body: unknown, blob?: LazyLoadBlob): Reply => ({ body: Json.toBytes(body), blob })

export type Handle = (source: Address, body: Uint8Array, blob: LazyLoadBlob | undefined) => Effect.Effect<Reply>

export type Dispatch =
  | { readonly _tag: "lanes"; readonly maxInFlight: number }
  | { readonly _tag: "issueOrdered"; readonly maxInFlight: number }
  | { readonly _tag: "custom"; readonly loop: (ctx: ServiceContext, isLocalRequest: (km: KernelMessage) => boolean) => Effect.Effect<void> }

export interface ShellSpec<Req, ErrorBody> {
  readonly request: Schema.Decoder<Req>
  /** The error body for a body that is not JSON or not a request. */
  readonly malformed: (reason: string) => ErrorBody
  readonly serve: (source: Address, request: Req, blob: LazyLoadBlob | undefined) => Effect.Effect<Reply, { readonly error: ErrorBody }>
}

/** Parses and decodes a body: the request, or the module's malformed-request reply. */
export const decoder = <Req, ErrorBody>(request: Schema.Decoder<Req>, malformed: (reason: string) => ErrorBody) => {
  const decode = Schema.decodeUnknownResult(request)
  return (body: Uint8Array): Result.Result<Req, Reply> => {
    const json = Json.parseBody(body)
    if (Result.isFailure(json)) return Result.fail(errorReply(malformed(json.failure.reason)))
    const req = decode(json.success)
    return Result.isFailure(req) ? Result.fail(errorReply(malformed(req.failure.message))) : Result.succeed(req.success)
  }
}

export const make = <Req, ErrorBody>(spec: ShellSpec<Req, ErrorBody>) => {
  const decode = decoder(spec.request, spec.malformed)
  const handle: Handle = (source, body, blob) => {
    const req = decode(body)
    if (Result.isFailure(req)) return Effect.succeed(req.failure)
    return spec.serve(source, req.success, blob).pipe(Effect.catch((e) => Effect.succeed(errorReply(e.error))))
  }
  return { handle }
}

/** Registers `process` and serves its mailbox with `handle` (or the custom loop). */
export const serveLayer = (process: string, dispatch: Dispatch, handle: Handle, options: { readonly public?: boolean } = {}) =>
  Layer.effectDiscard(Effect.gen(function*() {
    const host = yield* ModuleHost
    const isLocalRequest = (km: KernelMessage) => km.message._tag === "Request" && km.source.node === host.node
    yield* host.serve(process, { public: options.public ?? false }, (ctx) => {
      switch (dispatch._tag) {
        case "custom":
          return dispatch.loop(ctx, isLocalRequest)
        case "lanes":
          return serveConcurrently(ctx, isLocalRequest, dispatch.maxInFlight, handle, true)
        case "issueOrdered":
          return serveConcurrently(ctx, isLocalRequest, dispatch.maxInFlight, handle, false)
      }
    })
  }))

const answer = (ctx: ServiceContext, km: KernelMessage) => (r: Reply) =>
  Effect.sync(() => {
    if (wantsReply(km)) ctx.reply(km, response({ body: r.body }), r.blob)
  })

/**
 * Takes requests in arrival order and runs each on a fiber of the module's own, at most
 * `maxInFlight` at once; with `perSource`, one source's requests one after another.
 */
const serveConcurrently = (
  ctx: ServiceContext,
  isLocalRequest: (km: KernelMessage) => boolean,
  maxInFlight: number,
  handle: Handle,
  perSource: boolean
): Effect.Effect<never> =>
  Effect.gen(function*() {
    const lanes = new Map<string, { readonly lock: Semaphore.Semaphore; users: number }>()
    const inFlight = yield* Semaphore.make(maxInFlight)
    const inLane = (km: KernelMessage, work: Effect.Effect<void>): Effect.Effect<void> => {
      if (!perSource) return work
      const key = km.source.process.toString()
      let lane = lanes.get(key)
      if (lane === undefined) {
        lane = { lock: Semaphore.makeUnsafe(1), users: 0 }
        lanes.set(key, lane)
      }
      const l = lane
      l.users++
      return l.lock.withPermits(1)(work).pipe(Effect.ensuring(Effect.sync(() => {
        if (--l.users === 0) lanes.delete(key)
      })))
    }
    while (true) {
      const batch = yield* ctx.takeBatch
      for (const km of batch) {
        if (!isLocalRequest(km)) continue
        yield* inFlight.take(1)
        const work = Effect.flatMap(handle(km.source, km.message.body, km.blob), answer(ctx, km))
        yield* Effect.forkChild(inLane(km, work).pipe(Effect.ensuring(inFlight.release(1))), { startImmediately: true })
      }
    }
  })
