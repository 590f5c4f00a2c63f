/**
 * Messages: builders for requests and responses, and the receive loop helpers.
 * Bodies are bytes on the wire; `json`/`text` helpers cover the usual encodings.
 */
import * as wit from "kinode:process/standard@1.0.0"
import type { Address, Capability, LazyLoadBlob, Message, Request, Response } from "kinode:process/standard@1.0.0"
import { BadBody, CallToSelf, payloadOf, SendFailed } from "./errors.ts"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export type Body = Uint8Array | string | { readonly json: unknown }

/**
 * Bytes as given; a string as UTF-8; `{ json }` as JSON text. Byte views are checked
 * with `ArrayBuffer.isView`, not `instanceof Uint8Array`: componentize-js lifts
 * `list<u8>` into views that are not always `Uint8Array`s of this realm.
 */
export const toBytes = (body: Body): Uint8Array => {
  if (typeof body === "string") return encoder.encode(body)
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
  if (Array.isArray(body)) return Uint8Array.from(body as Array<number>)
  return encoder.encode(JSON.stringify((body as { json: unknown }).json))
}

export const text = (bytes: Uint8Array): string => decoder.decode(bytes)

/** Parses a JSON body; throws `BadBody`. */
export const json = <T = unknown>(bytes: Uint8Array): T => {
  const s = decoder.decode(bytes)
  try {
    return JSON.parse(s) as T
  } catch (e) {
    throw new BadBody(s, e instanceof Error ? e.message : String(e))
  }
}

export interface RequestOptions {
  /** Seconds to wait for a response; absent = fire-and-forget. */
  readonly timeout?: number
  readonly inherit?: boolean
  readonly metadata?: string
  readonly capabilities?: Array<Capability>
}

export const request = (body: Body, options: RequestOptions = {}): Request => ({
  inherit: options.inherit ?? false,
  // A u64 crosses as a whole number (componentize-qjs traps on a bigint or a fraction).
  expectsResponse: options.timeout === undefined ? undefined : Math.max(0, Math.trunc(options.timeout)),
  body: toBytes(body),
  metadata: options.metadata,
  capabilities: options.capabilities ?? []
})

export const response = (body: Body, options: { metadata?: string; capabilities?: Array<Capability> } = {}): Response => ({
  inherit: false,
  body: toBytes(body),
  metadata: options.metadata,
  capabilities: options.capabilities ?? []
})

const blobOf = (bytes: Uint8Array | undefined, mime?: string): LazyLoadBlob | undefined =>
  bytes === undefined ? undefined : { mime, bytes }

/** What `awaitMessage` yields: a request, a response (with its context), or a failed send of ours. */
export type Incoming =
  | { readonly kind: "request"; readonly source: Address; readonly request: Request }
  | { readonly kind: "response"; readonly source: Address; readonly response: Response; readonly context: Uint8Array | undefined }
  | { readonly kind: "error"; readonly error: SendFailed }

/** Blocks until the next message (the Wasm stack suspends; other processes run). */
export const awaitMessage = (): Incoming => {
  try {
    const [source, message] = wit.receive()
    return message.tag === "request"
      ? { kind: "request", source, request: message.val }
      : { kind: "response", source, response: message.val[0], context: message.val[1] ?? undefined }
  } catch (e) {
    const [err, context] = payloadOf(e) as [wit.SendError, wit.Option<Uint8Array>]
    return { kind: "error", error: new SendFailed(err.kind, err.target, err.message, context ?? undefined) }
  }
}

/** Answers the request being handled. */
export const respond = (body: Body, blob?: Uint8Array) => wit.sendResponse(response(body), blobOf(blob))

/** A blob to send with a request, and its MIME type (absent = none). */
export interface BlobOptions {
  readonly blob?: Uint8Array
  readonly mime?: string
}

/**
 * Sends a request and returns at once; never throws. With `timeout`, its answer (with
 * `context`) or its failure (`{kind: "error"}`, a `SendFailed`) comes later through
 * `awaitMessage`; without, a refusal is silent (the node prints it).
 */
export const send = (target: Address, body: Body, options: RequestOptions & BlobOptions & { context?: Uint8Array } = {}): void =>
  wit.sendRequest(target, request(body, options), options.context, blobOf(options.blob, options.mime))

const sameAddress = (a: Address, b: Address): boolean =>
  a.node === b.node && a.process.processName === b.process.processName &&
  a.process.packageName === b.process.packageName && a.process.publisherNode === b.process.publisherNode

/**
 * Sends a request and waits for its answer (`timeout` seconds, default 5); other
 * messages arriving meanwhile wait for the next `awaitMessage`. Throws `SendFailed`
 * (not delivered, refused, or no answer in time) and `CallToSelf`.
 */
export const call = (target: Address, body: Body, options: RequestOptions & BlobOptions = {}): { source: Address; response: Response } => {
  const our = wit.our()
  if (sameAddress(target, our) || (target.node === "our" && sameAddress({ ...target, node: our.node }, our))) {
    throw new CallToSelf(target)
  }
  try {
    const [source, message] = wit.sendAndAwaitResponse(target, request(body, { timeout: 5, ...options }), blobOf(options.blob, options.mime))
    if (message.tag !== "response") throw new Error("send-and-await-response returned a request")
    return { source, response: message.val[0] }
  } catch (e) {
    const p = payloadOf(e)
    if (typeof p === "object" && p !== null && "kind" in p) {
      const err = p as wit.SendError
      throw new SendFailed(err.kind, err.target, err.message, undefined)
    }
    throw e
  }
}

/** `call` with a JSON answer; throws `BadBody` too, when the answer is not JSON. */
export const callJson = <T = unknown>(target: Address, body: Body, options: RequestOptions = {}): T =>
  json<T>(call(target, body, options).response.body)

export type { Message }
