/**
 * The expected failures an app meets, as tagged error classes carrying data, so an
 * app can branch on `_tag` instead of parsing messages.
 */
import type { Address, Message } from "kinode:process/standard@1.0.0"

/** A request was not delivered or not answered in time. */
export class SendFailed extends Error {
  readonly _tag = "SendFailed"
  readonly kind: "offline" | "timeout"
  readonly target: Address
  readonly original: Message
  readonly context: Uint8Array | undefined
  constructor(kind: "offline" | "timeout", target: Address, original: Message, context: Uint8Array | undefined) {
    super(`request to ${target.node}@${target.process.processName}:${target.process.packageName}:${target.process.publisherNode}: ${kind}`)
    this.kind = kind
    this.target = target
    this.original = original
    this.context = context
  }
}

/** `spawn` refused: the name is in use, or the Wasm file cannot be read. */
export class SpawnFailed extends Error {
  readonly _tag = "SpawnFailed"
  readonly reason: "name-taken" | "no-file-at-path"
  readonly wasmPath: string
  constructor(reason: "name-taken" | "no-file-at-path", wasmPath: string) {
    super(`spawn ${wasmPath}: ${reason}`)
    this.reason = reason
    this.wasmPath = wasmPath
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

export type AppError = SendFailed | SpawnFailed | BadBody | HttpServerRefused | VfsFailed

/** The `payload` componentize-js attaches to an import's `result` error. */
export const payloadOf = (e: unknown): unknown =>
  typeof e === "object" && e !== null && "payload" in e ? (e as { payload: unknown }).payload : e
