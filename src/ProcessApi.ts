/**
 * What a running process can do: the `kinode:process/standard` interface in kernel
 * types. The kernel builds one `ProcessApi` per process, bound to its id, so nothing
 * is ambient. Native TypeScript actors use it directly; the Wasm host adapts it to
 * the canonical ABI.
 *
 * Hot operations (send, receive when a message is waiting, blobs) are synchronous
 * so the Wasm glue can call them without entering the Effect runtime; anything that
 * has to wait returns a Promise (the Wasm stack suspends on it through JSPI) and
 * has an Effect twin for native code.
 */
import type { Effect } from "effect"
import { Schema } from "effect"
import type { Address, ProcessId } from "./Ids.ts"
import type { Capability, LazyLoadBlob, Message, OnExit, Received, Request, Response, SendError } from "./Message.ts"

/** Why the router refused a message. A Wasm sender sees these as `SendError { timeout }`. */
export const RefusalReason = Schema.Literals([
  "NoSuchProcess",
  "NotRunning",
  "CapabilityDenied",
  "MailboxFull",
  "MessageTooLarge",
  "UnknownSource",
  "NoNetworkCapability",
  "Offline"
])
export type RefusalReason = typeof RefusalReason.Type

export class SendRefused extends Schema.TaggedError<SendRefused>()("SendRefused", {
  target: Schema.String,
  reason: RefusalReason
}) {
  override get message(): string {
    return `message to ${this.target} refused: ${this.reason}`
  }
}

/** `send-response` with no request to answer. */
export class NothingToAnswer extends Schema.TaggedError<NothingToAnswer>()("NothingToAnswer", {
  process: Schema.String
}) {}

/** A failed send, as `send-and-await-response` reports it. */
export class AwaitFailed extends Schema.TaggedError<AwaitFailed>()("AwaitFailed", {
  kind: Schema.Literals(["offline", "timeout"]),
  target: Schema.String
}) {}

export class StateUnavailable extends Schema.TaggedError<StateUnavailable>()("StateUnavailable", {
  process: Schema.String,
  reason: Schema.String
}) {}

export const SpawnFailure = Schema.Literals(["name-taken", "no-file-at-path"])
export type SpawnFailure = typeof SpawnFailure.Type

/**
 * Which spawn limit refused a spawn: the parent's live children, its package's live
 * processes, or its package's spawn rate. The WIT `spawn-error` has no word for these:
 * a Wasm guest sees `no-file-at-path`, and the terminal is told which limit it was.
 */
export const SpawnLimit = Schema.Literals(["children", "package", "rate"])
export type SpawnLimit = typeof SpawnLimit.Type

export class SpawnFailed extends Schema.TaggedError<SpawnFailed>()("SpawnFailed", {
  reason: SpawnFailure,
  limit: Schema.optional(SpawnLimit)
}) {
  override get message(): string {
    return this.limit === undefined ? `spawn failed: ${this.reason}` : `spawn refused: ${this.limit} limit reached`
  }
}

/** A process did something the interface forbids (Kinode traps the Wasm instance). */
export class ProcessTrap extends Schema.TaggedError<ProcessTrap>()("ProcessTrap", {
  process: Schema.String,
  reason: Schema.String
}) {}

export interface SpawnOptions {
  /** Undefined picks a random u64 name, as Kinode does. */
  readonly name: string | undefined
  /** A path in the caller's package drive, or a `native:` program name. */
  readonly wasmPath: string
  readonly onExit: OnExit
  readonly requestCapabilities: ReadonlyArray<Capability>
  /** Each process gets a capability issued by the child with these params (JSON text). */
  readonly grantCapabilities: ReadonlyArray<readonly [ProcessId, string]>
  readonly public: boolean
}

export interface ProcessApi {
  readonly our: Address

  /** Prints `text` tagged with this process if the terminal's level is at least `verbosity`. */
  readonly printToTerminal: (verbosity: number, text: string) => void

  readonly getOnExit: () => OnExit
  readonly setOnExit: (onExit: OnExit) => void

  readonly getState: () => Promise<Uint8Array | undefined>
  readonly setState: (bytes: Uint8Array) => Promise<void>
  readonly clearState: () => Promise<void>

  readonly spawn: (options: SpawnOptions) => Promise<ProcessId | SpawnFailed>

  readonly saveCapabilities: (caps: ReadonlyArray<Capability>) => Promise<void>
  readonly dropCapabilities: (caps: ReadonlyArray<Capability>) => Promise<void>
  readonly ourCapabilities: () => ReadonlyArray<Capability>

  /** The next deliverable item if one is ready now, else undefined. */
  readonly tryReceive: () => Received | undefined
  /** The next deliverable item, waiting for it. */
  readonly receive: () => Promise<Received>

  readonly hasBlob: () => boolean
  readonly getBlob: () => LazyLoadBlob | undefined
  readonly lastBlob: () => LazyLoadBlob | undefined

  /**
   * Sends a request. A refusal by the router is returned (native callers) and, when a
   * response was expected, also delivered later as `SendError { timeout }`, as Kinode does.
   */
  readonly sendRequest: (
    target: Address,
    request: Request,
    context: Uint8Array | undefined,
    blob: LazyLoadBlob | undefined
  ) => SendRefused | undefined
  /** Answers the message being handled; `NothingToAnswer` if there is none. */
  readonly sendResponse: (response: Response, blob: LazyLoadBlob | undefined) => SendRefused | NothingToAnswer | undefined
  /** Sends and waits for the response; other arrivals stay queued for later `receive`s. */
  readonly sendAndAwaitResponse: (
    target: Address,
    request: Request,
    blob: LazyLoadBlob | undefined
  ) => Promise<{ readonly source: Address; readonly message: Message } | SendError | ProcessTrap>
}

/** `ProcessApi` plus Effect forms of the waiting calls, for programs written in TypeScript. */
export interface NativeApi extends ProcessApi {
  readonly receiveEffect: Effect.Effect<Received>
  readonly sendAndAwaitEffect: (
    target: Address,
    request: Request,
    blob?: LazyLoadBlob
  ) => Effect.Effect<{ readonly source: Address; readonly message: Message } | SendError, ProcessTrap>
}

/** A process program: the body of `init`, run as the process's fiber; returning ends the process. */
export type NativeProgram = (api: NativeApi) => Effect.Effect<void, unknown>
