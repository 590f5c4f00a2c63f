/**
 * The message model of `kinode:process` and the kernel's envelope around it.
 *
 * Types are plain readonly objects (the router builds millions of them per second);
 * the schemas beside them decode the same shapes wherever they cross a boundary
 * (Wasm ABI, kernel commands, the wire).
 */
import { Schema } from "effect"
import { Address, AddressFromString } from "./Ids.ts"

/** A capability: something `issuer` lets its holder do; `params` is JSON text. */
export interface Capability {
  readonly issuer: Address
  readonly params: string
}
export const Capability = Schema.Struct({ issuer: AddressFromString, params: Schema.String })

/** A capability as the kernel carries it on a message: signed by the node key. */
export interface SignedCapability extends Capability {
  readonly signature: Uint8Array
}

export interface LazyLoadBlob {
  readonly mime: string | undefined
  readonly bytes: Uint8Array
}
export const LazyLoadBlob = Schema.Struct({
  mime: Schema.UndefinedOr(Schema.String),
  bytes: Schema.Uint8Array
})

export interface Request {
  readonly _tag: "Request"
  readonly inherit: boolean
  /** Seconds to wait for a response; undefined means no response is expected. */
  readonly expectsResponse: bigint | undefined
  readonly body: Uint8Array
  readonly metadata: string | undefined
  /** Signed `SignedCapability`s once the router has them; plain ones when a process sends. */
  readonly capabilities: ReadonlyArray<Capability>
}

export interface Response {
  readonly _tag: "Response"
  readonly inherit: boolean
  readonly body: Uint8Array
  readonly metadata: string | undefined
  readonly capabilities: ReadonlyArray<Capability>
  /** The context the original requester attached; filled in by its process host. */
  readonly context: Uint8Array | undefined
}

export type Message = Request | Response

/** What reaches the router: Kinode's `KernelMessage`. */
export interface KernelMessage {
  /** u64; a response carries the id of the request it answers. */
  readonly id: bigint
  readonly source: Address
  readonly target: Address
  /** Where responses to this request go; null means back to `source`. */
  readonly rsvp: Address | null
  readonly message: Message
  readonly blob: LazyLoadBlob | undefined
}

export type SendErrorKind = "offline" | "timeout"

export interface SendError {
  readonly kind: SendErrorKind
  readonly target: Address
  /** The request that failed, as it was sent. */
  readonly message: Message
  readonly blob: LazyLoadBlob | undefined
}

/** What a process gets from `receive`: a message or a failed send of its own. */
export type Received =
  | { readonly _tag: "Message"; readonly source: Address; readonly message: Message }
  | { readonly _tag: "SendError"; readonly error: SendError; readonly context: Uint8Array | undefined }

export type OnExit =
  | { readonly _tag: "None" }
  | { readonly _tag: "Restart" }
  | {
    readonly _tag: "Requests"
    readonly requests: ReadonlyArray<{
      readonly target: Address
      readonly request: Request
      readonly blob: LazyLoadBlob | undefined
    }>
  }

export const MAX_MESSAGE_BYTES = 10 * 1024 * 1024

/** Bytes a message puts on the router: body, blob and metadata. */
export const messageSize = (km: KernelMessage): number =>
  km.message.body.byteLength + (km.blob?.bytes.byteLength ?? 0) + (km.message.metadata?.length ?? 0)

const emptyBytes = new Uint8Array(0)

/** A request with Kinode's defaults: no inherit, no response expected, no caps. */
export const request = (fields: Partial<Omit<Request, "_tag">> = {}): Request => ({
  _tag: "Request",
  inherit: fields.inherit ?? false,
  expectsResponse: fields.expectsResponse,
  body: fields.body ?? emptyBytes,
  metadata: fields.metadata,
  capabilities: fields.capabilities ?? []
})

export const response = (fields: Partial<Omit<Response, "_tag" | "context">> = {}): Response => ({
  _tag: "Response",
  inherit: fields.inherit ?? false,
  body: fields.body ?? emptyBytes,
  metadata: fields.metadata,
  capabilities: fields.capabilities ?? [],
  context: undefined
})

const utf8 = new TextEncoder()
const utf8Decoder = new TextDecoder()
export const text = (s: string): Uint8Array => utf8.encode(s)
export const bodyText = (m: Message): string => utf8Decoder.decode(m.body)
