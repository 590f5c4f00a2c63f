/** Shared test helpers: sessions with capabilities, JSON bodies, kernel commands. */
import { Effect } from "effect"
import { testKernel } from "../../layers/TestLive.ts"
import { address, type Address, parseProcessId, type ProcessId } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { Kernel, messagingCap } from "../../src/Kernel.ts"
import { request, text } from "../../src/Message.ts"
import type { NativeApi } from "../../src/ProcessApi.ts"

export const NODE = "test.dev"

/** Runs `effect` on a fresh test kernel, closed at the end. */
export const withKernel = <A, E>(effect: Effect.Effect<A, E, any>, options: Parameters<typeof testKernel>[0] = {}) =>
  Effect.scoped(Effect.provide(effect, testKernel(options).layer)) as Effect.Effect<A, E, never>

/** A ProcessId from a literal the test trusts. */
export const pidOf = (s: string): ProcessId => {
  const r = parseProcessId(s)
  if (r._tag === "Failure") throw r.failure
  return r.success
}
export const at = (pid: string): Address => address(`${NODE}@${pid}`)
export const json = (v: unknown) => Json.toBytes(v)
export const decodeBody = (b: Uint8Array) => {
  const r = Json.parseBytes(b)
  if (r._tag === "Failure") throw new Error(r.failure.reason)
  return r.success
}

/** A driver process (like the terminal) holding messaging to the given processes. */
export const driver = (id: string, canMessage: ReadonlyArray<string>, isPublic = false) =>
  Effect.flatMap(Kernel, (k) =>
    k.session(id, { capabilities: canMessage.map((t) => messagingCap(k.node, t)), public: isPublic }))

/** Starts `native:<program>` as `id` through the kernel API (no messages involved). */
export const startNative = (id: string, program: string, options: { public?: boolean; onExit?: "None" | "Restart" } = {}) =>
  Effect.gen(function*() {
    const k = yield* Kernel
    const { parseProcessId } = yield* Effect.promise(() => import("../../src/Ids.ts"))
    const pidR = parseProcessId(id)
    if (pidR._tag === "Failure") return yield* Effect.die(pidR.failure)
    yield* k.initialize({
      id: pidR.success,
      handle: `native:${program}`,
      witVersion: null,
      onExit: { _tag: options.onExit ?? "None" },
      public: options.public ?? false,
      capabilities: [],
      bytes: undefined
    })
    yield* k.run(id)
  })

/** Sends a kernel command from `api` and returns the decoded reply. */
export const kernelCall = (api: NativeApi, command: unknown, blob?: Uint8Array) =>
  Effect.map(
    api.sendAndAwaitEffect(at("kernel:distro:sys"), request({ body: json(command), expectsResponse: 5n }),
      blob === undefined ? undefined : { mime: undefined, bytes: blob }),
    (r) => ("message" in r && "source" in r ? decodeBody(r.message.body) : r)
  )

export const ask = (api: NativeApi, target: string, body: string, seconds = 5n) =>
  api.sendAndAwaitEffect(at(target), request({ body: text(body), expectsResponse: seconds }))
