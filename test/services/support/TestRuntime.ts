/**
 * A loopback `Runtime` for the storage services' tests until the kernel's `TestLive`
 * exists: `serve` runs the service program against a real bounded mailbox, `call`
 * plays a local (or remote) process sending it a request and awaiting the response,
 * and capabilities live in a map compared as parsed JSON (kinode-semantics §4.1).
 * The services cannot tell it from the kernel: they see only the `Runtime` contract.
 */
import { Context, Deferred, Effect, Layer, Queue, Result } from "effect"
import { Address, parseAddress, pid } from "../../../src/Ids.ts"
import type { ProcessId } from "../../../src/Ids.ts"
import * as Json from "../../../src/Json.ts"
import type { Capability, KernelMessage, LazyLoadBlob, Response } from "../../../src/Message.ts"
import { request } from "../../../src/Message.ts"
import { Runtime } from "../../../src/Runtime.ts"
import type { ServiceContext } from "../../../src/Runtime.ts"

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

const canonical = (params: string): string => {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v !== null && typeof v === "object"
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort((v as Record<string, unknown>)[k])]))
      : v
  const parsed = Json.parse(params)
  return Json.stringify(Result.isSuccess(parsed) ? sort(parsed.success) : null)
}

export class TestRuntime extends Context.Service<TestRuntime, {
  /** `source` is a process id string (`proc:pkg:pub`), a body is JSON (or raw bytes). */
  readonly call: (service: string, source: string, body: unknown, options?: CallOptions) => Effect.Effect<CallResult>
  readonly caps: (holder: string) => ReadonlyArray<string>
}>()("test/services/TestRuntime") {
  static readonly layer: Layer.Layer<Runtime | TestRuntime> = Layer.effectContext(Effect.gen(function*() {
    const mailboxes = new Map<string, Queue.Queue<KernelMessage>>()
    const pending = new Map<bigint, Deferred.Deferred<{ response: Response; blob: LazyLoadBlob | undefined }>>()
    const caps = new Map<string, Set<string>>()
    let nextId = 1n

    const key = (cap: Capability) => `${cap.issuer.toString()}|${canonical(cap.params)}`
    const holderOf = (h: ProcessId | string) => typeof h === "string" ? h : h.toString()

    const runtime = Runtime.of({
      node: NODE,
      serve: (name, options, program) =>
        Effect.gen(function*() {
          const mailbox = yield* Queue.bounded<KernelMessage>(options.mailboxCapacity ?? 65536)
          const our = new Address({ node: NODE, process: pid(`${name}:distro:sys`) }, { disableChecks: true })
          const ctx: ServiceContext = {
            our,
            take: Queue.take(mailbox),
            takeBatch: Queue.takeBetween(mailbox, 1, 4096),
            reply: (to, response, blob) => {
              const d = pending.get(to.id)
              if (d !== undefined) {
                pending.delete(to.id)
                Deferred.doneUnsafe(d, Effect.succeed({ response, blob }))
              }
              return undefined
            },
            send: () => 0n
          }
          mailboxes.set(`${name}:distro:sys`, mailbox)
          yield* Effect.addFinalizer(() => Effect.sync(() => mailboxes.delete(`${name}:distro:sys`)))
          yield* Effect.forkScoped(program(ctx))
        }),
      hasCapability: (holder, cap) => caps.get(holderOf(holder))?.has(key(cap)) ?? false,
      grantCapabilities: (holder, granted) =>
        Effect.sync(() => {
          const h = holderOf(holder)
          const set = caps.get(h) ?? new Set<string>()
          for (const c of granted) set.add(key(c))
          caps.set(h, set)
        }),
      dropCapabilities: (holder, dropped) =>
        Effect.sync(() => {
          for (const c of dropped) caps.get(holderOf(holder))?.delete(key(c))
        }),
      processExists: (id) => mailboxes.has(holderOf(id))
    })

    const call = (service: string, source: string, body: unknown, options: CallOptions = {}) =>
      Effect.gen(function*() {
        const mailbox = mailboxes.get(`${service}:distro:sys`)
        if (mailbox === undefined) return yield* Effect.die(`no service ${service}`)
        const id = nextId++
        const src = Result.getOrThrow(parseAddress(`${options.node ?? NODE}@${source}`))
        const bytes = body instanceof Uint8Array ? body : Json.toBytes(body)
        const km: KernelMessage = {
          id,
          source: src,
          target: new Address({ node: NODE, process: pid(`${service}:distro:sys`) }, { disableChecks: true }),
          rsvp: null,
          message: request({ body: bytes, ...(options.noResponse ? {} : { expectsResponse: 30n }) }),
          blob: options.blob === undefined ? undefined : { mime: undefined, bytes: options.blob }
        }
        if (options.noResponse) {
          yield* Queue.offer(mailbox, km)
          return { body: undefined, raw: new Uint8Array(0), blob: undefined }
        }
        const d = yield* Deferred.make<{ response: Response; blob: LazyLoadBlob | undefined }>()
        pending.set(id, d)
        yield* Queue.offer(mailbox, km)
        const r = yield* Deferred.await(d)
        return { body: Result.getOrThrow(Json.parseBytes(r.response.body)), raw: r.response.body, blob: r.blob }
      })

    return Context.make(Runtime, runtime).pipe(
      Context.add(TestRuntime, TestRuntime.of({ call, caps: (h) => [...(caps.get(h) ?? [])] }))
    )
  }))
}
