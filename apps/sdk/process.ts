/** Identity, logging, spawning and capabilities of the running process. */
import * as wit from "kinode:process/standard@1.0.0"
import type { Address, Capability, OnExit, ProcessId } from "kinode:process/standard@1.0.0"

import { payloadOf, SpawnFailed } from "./errors.ts"

export const our = (): Address => wit.our()

/** Shown at the node's terminal when its verbosity is at least `level` (0 always). */
export const print = (message: string, level = 0): void => wit.printToTerminal(level, message)

export const messaging = (target: Address): Capability => ({ issuer: target, params: "\"messaging\"" })

export interface SpawnOptions {
  readonly name?: string
  readonly onExit?: OnExit
  /** Caps handed to the child (only ones we hold or issued). */
  readonly capabilities?: Array<Capability>
  /** Processes that get a cap issued by the child, with these params. */
  readonly grants?: Array<[ProcessId, string]>
  readonly public?: boolean
}

const KIMAP_SAFE = /^[a-z0-9-]+$/
/** Packages installed under Kinode's older names (`app_store`) may also spawn names with `_`. */
const LEGACY_SAFE = /^[a-z0-9_-]+$/

/**
 * Starts a child `<name>:<our package>:<our publisher>` (a random number when no name is
 * given) from a Wasm component file: `pkg/x.wasm` is relative to our package's drive,
 * `/<package>:<publisher>/pkg/x.wasm` any drive we may read. The child holds messaging
 * to us, the `capabilities` we hold that we pass on, and runs `init` at once. Returns its
 * id. Throws `SpawnFailed` (`name-taken`, `no-file-at-path`, `bad-name`).
 */
export const spawn = (wasmPath: string, options: SpawnOptions = {}): ProcessId => {
  const self = wit.our().process
  const path = wasmPath.startsWith("/") ? wasmPath : `/${self.packageName}:${self.publisherNode}/${wasmPath}`
  const legacy = self.processName.includes("_") || self.packageName.includes("_")
  if (options.name !== undefined && !(legacy ? LEGACY_SAFE : KIMAP_SAFE).test(options.name)) {
    throw new SpawnFailed("bad-name", path, options.name)
  }
  try {
    return wit.spawn(options.name, path, options.onExit ?? { tag: "none" }, options.capabilities ?? [], options.grants ?? [], options.public ?? false)
  } catch (e) {
    const reason = payloadOf(e)
    if (reason === "name-taken" || reason === "no-file-at-path") throw new SpawnFailed(reason, path, options.name)
    throw e
  }
}

export const capabilities = (): Array<Capability> => wit.ourCapabilities()


