/** Identity, logging, spawning and capabilities of the running process. */
import * as wit from "kinode:process/standard@1.0.0"
import type { Address, Capability, OnExit, ProcessId } from "kinode:process/standard@1.0.0"
import { processIdText } from "./address.ts"
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

/**
 * Starts a child from a Wasm file in our package (`/pkg:pub/pkg/x.wasm` or
 * `pkg/x.wasm`, relative to our package drive). Throws `SpawnFailed`.
 */
export const spawn = (wasmPath: string, options: SpawnOptions = {}): ProcessId => {
  const self = wit.our().process
  const path = wasmPath.startsWith("/") ? wasmPath : `/${self.packageName}:${self.publisherNode}/${wasmPath}`
  try {
    return wit.spawn(options.name, path, options.onExit ?? { tag: "none" }, options.capabilities ?? [], options.grants ?? [], options.public ?? false)
  } catch (e) {
    const reason = payloadOf(e)
    if (reason === "name-taken" || reason === "no-file-at-path") throw new SpawnFailed(reason, path)
    throw e
  }
}

export const capabilities = (): Array<Capability> => wit.ourCapabilities()

export { processIdText }
