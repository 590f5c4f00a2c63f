/**
 * A node for end-to-end Wasm tests: the real kernel on real LMDB (`testKernel`)
 * plus the storage runtime modules (vfs, state, kv, sqlite), so get/set-state,
 * spawn's vfs read and the per-package tmp drive are the real ones. Helpers
 * start WAT-built components as processes (`kernel.initialize` with the bytes,
 * then `run`) and put component files into package drives for `spawn`.
 */
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { StorageLive } from "../../layers/Storage.ts"
import { testKernel } from "../../layers/TestLive.ts"
import { Home } from "../../src/Home.ts"
import { address, pid } from "../../src/Ids.ts"
import { Kernel, messagingCap } from "../../src/Kernel.ts"
import type { Capability, OnExit } from "../../src/Message.ts"
import type { Printed } from "../../src/Printout.ts"
import { Lmdb } from "../../services/lmdb/Lmdb.ts"
import { buildPuppet } from "../fixtures/wasm/build.ts"
import { makePuppet, type Version } from "./Puppet.ts"

export const NODE = "test.dev"
/** The package every test process lives in. */
export const PKG = "e2e:sys"

export const wasmNode = (options: { readonly home?: string } = {}) => {
  const k = testKernel(options.home === undefined ? {} : { home: options.home })
  const layer = StorageLive.pipe(Layer.provide(Lmdb.layer), Layer.provideMerge(k.layer))
  return { layer, lines: k.lines }
}

const built = new Map<string, Promise<Uint8Array>>()
/** Builds a fixture once per test file. */
export const once = (key: string, build: () => Promise<Uint8Array>): Effect.Effect<Uint8Array> =>
  Effect.promise(() => {
    let p = built.get(key)
    if (p === undefined) {
      p = build()
      built.set(key, p)
    }
    return p
  })

export const puppetBytes = (version: Version = "1.0.0") => once(`puppet-${version}`, () => buildPuppet(version))

/** Writes `bytes` to `<home>/vfs/<drive path>` (e.g. `/e2e:sys/pkg/kid.wasm`), as an installed package has it. */
export const putFile = (drivePath: string, bytes: Uint8Array) =>
  Effect.gen(function*() {
    const home = yield* Home
    const file = path.join(home.path, "vfs", drivePath)
    yield* Effect.sync(() => {
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(file, bytes)
    })
    return file
  })

export interface StartOptions {
  readonly bytes: Uint8Array
  readonly onExit?: OnExit
  readonly public?: boolean
  readonly capabilities?: ReadonlyArray<Capability>
  readonly witVersion?: number | null
}

/** `kernel.initialize` with the component bytes, then `run`. */
export const startWasm = (id: string, options: StartOptions) =>
  Effect.gen(function*() {
    const k = yield* Kernel
    const p = pid(id)
    yield* k.initialize({
      id: p,
      handle: `/${p.packageName}:${p.publisherNode}/pkg/${p.processName}.wasm`,
      witVersion: options.witVersion ?? 1,
      onExit: options.onExit ?? { _tag: "None" },
      public: options.public ?? false,
      capabilities: options.capabilities ?? [],
      bytes: options.bytes
    })
    yield* k.run(id)
  })

/** A session that may message `targets` (public, so processes can answer or report to it). */
export const session = (id: string, targets: ReadonlyArray<string> = []) =>
  Effect.flatMap(Kernel, (k) => k.session(id, { capabilities: targets.map((t) => messagingCap(k.node, t)), public: true }))

/**
 * Starts the puppet as `<name>:e2e:sys` with a driver and a reports session
 * (`<name>-driver`, `<name>-reports`).
 */
export const startPuppet = (
  name: string,
  options: Omit<StartOptions, "bytes"> & { readonly version?: Version } = {}
) =>
  Effect.gen(function*() {
    const id = `${name}:${PKG}`
    const version = options.version ?? "1.0.0"
    yield* startWasm(id, { ...options, bytes: yield* puppetBytes(version), witVersion: version === "1.0.0" ? 1 : 0 })
    return yield* connectPuppet(name, version)
  })

/** Driver and reports sessions for a puppet that is (or will be) running as `<name>:e2e:sys`. */
export const connectPuppet = (name: string, version: Version = "1.0.0", suffix = "") =>
  Effect.gen(function*() {
    const id = `${name}:${PKG}`
    const driver = yield* session(`${name}-driver${suffix}:${PKG}`, [id])
    const reports = yield* session(`${name}-reports${suffix}:${PKG}`)
    return makePuppet({ target: address(`${NODE}@${id}`), driver, reports, version })
  })

export const at = (id: string) => address(`${NODE}@${id}`)

/** Runs `body` on a fresh Wasm node (its printed lines handed in), closed afterwards. */
export const onNode = <A, E, R>(body: (lines: Array<Printed>) => Effect.Effect<A, E, R>) => {
  const node = wasmNode()
  return body(node.lines).pipe(Effect.provide(node.layer), Effect.scoped) as Effect.Effect<A, E, never>
}

/** Waits, polling every 10 ms for at most `tries` times, until `cond` holds. */
export const waitFor = (cond: () => boolean, what: string, tries = 1000) =>
  Effect.gen(function*() {
    for (let i = 0; i < tries; i++) {
      if (cond()) return
      yield* Effect.sleep("10 millis")
    }
    return yield* Effect.die(new Error(`never happened: ${what}`))
  })
