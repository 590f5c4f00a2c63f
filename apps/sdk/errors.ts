/**
 * The expected failures an app meets, as tagged error classes carrying data, so an
 * app can branch on `_tag` instead of parsing messages.
 */
import type { Address, Message } from "kinode:process/standard@1.0.0"
import type { BadAddress } from "./address.ts"

const addressText = (a: Address): string =>
  `${a.node}@${a.process.processName}:${a.process.packageName}:${a.process.publisherNode}`

/**
 * A request was not delivered or not answered in time: `offline` (the target's node
 * cannot be reached), `timeout` (no answer in time, or refused at once by the node: no
 * such process, no capability to message it, a full mailbox, a message too large; the
 * node prints the reason).
 */
export class SendFailed extends Error {
  readonly _tag = "SendFailed"
  readonly kind: "offline" | "timeout"
  readonly target: Address
  readonly original: Message
  readonly context: Uint8Array | undefined
  constructor(kind: "offline" | "timeout", target: Address, original: Message, context: Uint8Array | undefined) {
    super(`request to ${addressText(target)}: ${kind}`)
    this.kind = kind
    this.target = target
    this.original = original
    this.context = context
  }
  /** `{_tag, kind, target}` (the original message's bytes would print as a long list of numbers). */
  toJSON() {
    return { _tag: this._tag, kind: this.kind, target: addressText(this.target) }
  }
}

/** Why `spawn` failed (see `SpawnFailed`). */
export type SpawnFailure = "name-taken" | "no-file-at-path" | "bad-name"

/**
 * `spawn` refused: `name-taken` (a process of that name is running), `no-file-at-path`
 * (no Wasm component at that path, or not one we may read, or a spawn limit reached: the
 * node prints which), `bad-name` (the name is not Kimap-safe: a-z, 0-9, -; found by the
 * SDK before asking, as the node traps a process that asks).
 */
export class SpawnFailed extends Error {
  readonly _tag = "SpawnFailed"
  readonly reason: SpawnFailure
  readonly wasmPath: string
  /** The name asked for (undefined: a random one). */
  readonly processName: string | undefined
  constructor(reason: SpawnFailure, wasmPath: string, processName?: string) {
    super(`spawn ${wasmPath}${processName === undefined ? "" : ` as ${processName}`}: ${reason}`)
    this.reason = reason
    this.wasmPath = wasmPath
    this.processName = processName
  }
  toJSON() {
    return { _tag: this._tag, reason: this.reason, wasmPath: this.wasmPath, processName: this.processName }
  }
}

/**
 * `call` to our own address: it would wait for its own answer forever (the node traps a
 * process that tries). Found by the SDK before sending.
 */
export class CallToSelf extends Error {
  readonly _tag = "CallToSelf"
  readonly target: Address
  constructor(target: Address) {
    super(`call to ${addressText(target)}: a process cannot wait for its own answer`)
    this.target = target
  }
  toJSON() {
    return { _tag: this._tag, target: addressText(this.target) }
  }
}

/** A message body that is not the JSON the app expected. */
export class BadBody extends Error {
  readonly _tag = "BadBody"
  readonly body: string
  constructor(body: string, why: string) {
    super(`bad body (${why}): ${body.slice(0, 200)}`)
    this.body = body
  }
}

/**
 * `http-server:distro:sys` answered an action with `{"Err": error}`: `error` is its
 * `HttpServerError` (`"MalformedRequest"`, `"NoBlob"`, `"InvalidSourceProcess"`,
 * `"WsPingPongTooLong"`, `"WsChannelNotFound"`).
 */
export class HttpServerRefused extends Error {
  readonly _tag = "HttpServerRefused"
  /** The action's name, e.g. `Bind`, `WebSocketBind`. */
  readonly action: string
  readonly path: string
  readonly error: unknown
  constructor(action: string, path: string, error: unknown) {
    super(`http-server refused ${action} ${path}: ${JSON.stringify(error)}`)
    this.action = action
    this.path = path
    this.error = error
  }
}

/** `vfs:distro:sys` answered `{"Err": error}` (a `VfsError`, e.g. `"NoReadCap"` or `{"IOError": "..."}`). */
export class VfsFailed extends Error {
  readonly _tag = "VfsFailed"
  /** `Read`, `ReadDir`, ... */
  readonly action: string
  readonly path: string
  readonly error: unknown
  constructor(action: string, path: string, error: unknown) {
    super(`vfs ${action} ${path}: ${JSON.stringify(error)}`)
    this.action = action
    this.path = path
    this.error = error
  }
}

export type AppError = SendFailed | SpawnFailed | CallToSelf | BadAddress | BadBody | HttpServerRefused | VfsFailed

/** The `payload` componentize-js attaches to an import's `result` error. */
export const payloadOf = (e: unknown): unknown =>
  typeof e === "object" && e !== null && "payload" in e ? (e as { payload: unknown }).payload : e
