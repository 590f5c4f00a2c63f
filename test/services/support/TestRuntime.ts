/**
 * The storage services' test client, over the real kernel (router, capability table,
 * LMDB process map): `call` plays a process `source` sending a service a request and
 * awaiting the answer, exactly as an app would: one session per source, requests sent
 * with a context, one receive loop per session matching answers by that context (so
 * one source may pipeline). `node` sends as another node would, through the router.
 */
import { Context, Deferred, Effect, Layer, Result, Scope } from "effect"
import { kernelOverHome } from "../../../layers/TestLive.ts"
import { Address, parseAddress, pid } from "../../../src/Ids.ts"
import * as Json from "../../../src/Json.ts"
import { Kernel, messagingCap } from "../../../src/Kernel.ts"
import type { LazyLoadBlob } from "../../../src/Message.ts"
import { request } from "../../../src/Message.ts"
import type { NativeApi } from "../../../src/ProcessApi.ts"
import { capabilityKey } from "../../../src/Capabilities.ts"

export const NODE = "test.os"

export interface CallResult {
  /** The parsed JSON body (BigInt-safe). */
  readonly body: unknown
  readonly raw: Uint8Array
  readonly blob: LazyLoadBlob | undefined
}

export interface CallOptions {
  readonly blob?: Uint8Array
  /** Send without `expectsResponse`; resolves immediately with an undefined body. */
  readonly noResponse?: boolean
  /** The sending node; defaults to ours. */
  readonly node?: string
}

type Answer = { readonly raw: Uint8Array; readonly blob: LazyLoadBlob | undefined }

interface Session {
  readonly api: NativeApi
  readonly pending: Map<string, Deferred.Deferred<Answer, string>>
}

export class TestRuntime extends Context.Service<TestRuntime, {
  /** `source` is a process id string (`proc:pkg:pub`), a body is JSON (or raw bytes). */
  readonly call: (service: string, source: string, body: unknown, options?: CallOptions) => Effect.Effect<CallResult>
  /** The holder's capabilities as `issuer\0canonical-params` keys. */
  readonly caps: (holder: string) => ReadonlyArray<string>
}>()("test/services/TestRuntime") {
  static readonly layer = Layer.effect(
    TestRuntime,
    Effect.gen(function*() {
      const kernel = yield* Kernel
      const scope = yield* Effect.scope
      const sessions = new Map<string, Session>()
      let nextContext = 0

      const sessionFor = (source: string) =>
        Effect.gen(function*() {
          const existing = sessions.get(source)
          if (existing !== undefined) return existing
          const api = yield* kernel.session(source, { capabilities: [], public: true }).pipe(Scope.provide(scope))
          const session: Session = { api, pending: new Map() }
          sessions.set(source, session)
          yield* Effect.forkIn(
            Effect.forever(Effect.flatMap(api.receiveEffect, (item) =>
              Effect.sync(() => {
                const context = item._tag === "SendError" ? item.context : item.message._tag === "Response" ? item.message.context : undefined
                if (context === undefined) return
                const key = new TextDecoder().decode(context)
                const d = session.pending.get(key)
                if (d === undefined) return
                session.pending.delete(key)
                if (item._tag === "SendError") Deferred.doneUnsafe(d, Effect.fail(`send failed: ${item.error.kind}`))
                else Deferred.doneUnsafe(d, Effect.succeed({ raw: item.message.body, blob: api.getBlob() }))
              }))),
            scope
          )
          return session
        })

      const call = (service: string, source: string, body: unknown, options: CallOptions = {}) =>
        Effect.gen(function*() {
          const bytes = body instanceof Uint8Array ? body : Json.toBytes(body)
          const blob = options.blob === undefined ? undefined : { mime: undefined, bytes: options.blob }
          const target = new Address({ node: kernel.node, process: pid(`${service}:distro:sys`) }, { disableChecks: true })
          if (options.node !== undefined && options.node !== kernel.node) {
            // As a remote node's message arrives: through the router, from `net`.
            kernel.route({
              id: 1n,
              source: Result.getOrThrow(parseAddress(`${options.node}@${source}`)),
              target,
              rsvp: null,
              message: request({ body: bytes }),
              blob
            })
            return { body: undefined, raw: new Uint8Array(0), blob: undefined }
          }
          const session = yield* sessionFor(source)
          yield* kernel.grant(source, [messagingCap(kernel.node, `${service}:distro:sys`)])
          if (options.noResponse) {
            session.api.sendRequest(target, request({ body: bytes }), undefined, blob)
            return { body: undefined, raw: new Uint8Array(0), blob: undefined }
          }
          const key = String(nextContext++)
          const d = yield* Deferred.make<Answer, string>()
          session.pending.set(key, d)
          const refused = session.api.sendRequest(target, request({ body: bytes, expectsResponse: 30n }), new TextEncoder().encode(key), blob)
          if (refused !== undefined) return yield* Effect.die(refused)
          const answer = yield* Deferred.await(d).pipe(Effect.orDie)
          return { body: Result.getOrThrow(Json.parseBytes(answer.raw)), raw: answer.raw, blob: answer.blob }
        })

      return TestRuntime.of({
        call,
        caps: (holder) => kernel.capabilities(holder).map((c) => capabilityKey(c.issuer, c.params))
      })
    })
  ).pipe(Layer.provideMerge(kernelOverHome({ node: NODE }).layer))
}
