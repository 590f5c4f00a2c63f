/**
 * A node for app tests: the real kernel on real LMDB (`testKernel`), the storage
 * services (vfs, state, kv, sqlite) and the package installer; optionally on a given
 * home so a test can stop and boot the node again.
 */
import { Effect, Layer } from "effect"
import { zipSync } from "fflate"
import { StorageLive } from "../../../layers/Storage.ts"
import { testKernel } from "../../../layers/TestLive.ts"
import { Packages } from "../../../services/packages/index.ts"
import { address } from "../../../src/Ids.ts"
import * as Json from "../../../src/Json.ts"
import { Kernel, messagingCap } from "../../../src/Kernel.ts"
import { request } from "../../../src/Message.ts"
import type { NativeApi } from "../../../src/ProcessApi.ts"
import { Lmdb } from "../../../services/lmdb/Lmdb.ts"
import { buildEcho } from "../../fixtures/wasm/build.ts"

export const appNode = (options: { readonly home?: string } = {}) => {
  const k = testKernel(options.home === undefined ? {} : { home: options.home })
  const layer = Packages.layer.pipe(
    Layer.provideMerge(StorageLive),
    Layer.provide(Lmdb.layer),
    Layer.provideMerge(k.layer)
  )
  return { layer, lines: k.lines }
}

/** A public driver session that may message the given processes. */
export const driver = (canMessage: ReadonlyArray<string>) =>
  Effect.flatMap(Kernel, (k) =>
    k.session("driver:test:sys", { capabilities: canMessage.map((t) => messagingCap(k.node, t)), public: true }))

/** Sends a JSON (or raw text) request and decodes the JSON answer; dies on a send error. */
export const ask = (api: NativeApi, target: string, body: unknown, seconds = 10n) =>
  Effect.gen(function*() {
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : Json.toBytes(body)
    const r = yield* api.sendAndAwaitEffect(address(`${api.our.node}@${target}`), request({ body: bytes, expectsResponse: seconds }))
    if (!("message" in r && "source" in r)) return yield* Effect.die(new Error(`no answer from ${target}: ${JSON.stringify(r)}`))
    return r.message.body
  })

export const askJson = (api: NativeApi, target: string, body: unknown, seconds = 10n) =>
  Effect.map(ask(api, target, body, seconds), (b) => JSON.parse(new TextDecoder().decode(b)) as unknown)

export interface EntryOverrides {
  readonly [field: string]: unknown
}

export const entry = (overrides: EntryOverrides = {}) => ({
  process_name: "echo",
  process_wasm_path: "/echo.wasm",
  on_exit: "None",
  request_networking: false,
  request_capabilities: [],
  grant_capabilities: [],
  public: true,
  ...overrides
})

const utf8 = new TextEncoder()

/** A package zip around the WAT echo component. */
export const watPackage = async (manifest: unknown = [entry()], extra: Record<string, Uint8Array> = {}) =>
  zipSync({
    "manifest.json": utf8.encode(typeof manifest === "string" ? manifest : JSON.stringify(manifest)),
    "echo.wasm": await buildEcho(),
    ...extra
  })
