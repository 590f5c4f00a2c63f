/**
 * How one attempt at a provider can fail. The module turns these into the caller's
 * `EthError`: a provider's own JSON-RPC error is the caller's answer (`RpcError`); a
 * provider that answers garbage or cannot be reached makes the module try the next one.
 */
import { Schema } from "effect"
import type { EthError } from "./Protocol.ts"

/** The provider answered with a JSON-RPC error object (`{code, message, data?}`). */
export class RpcErrorPayload extends Schema.TaggedError<RpcErrorPayload>()("RpcErrorPayload", {
  url: Schema.String,
  payload: Schema.Unknown
}) {}

/** The provider answered something that is not a JSON-RPC answer (not JSON, no `result`, a binary frame). */
export class RpcMalformed extends Schema.TaggedError<RpcMalformed>()("RpcMalformed", {
  url: Schema.String,
  reason: Schema.String
}) {}

/** The provider could not be reached or refused the exchange (connection refused, closed, HTTP 5xx). */
export class ProviderDown extends Schema.TaggedError<ProviderDown>()("ProviderDown", {
  url: Schema.String,
  reason: Schema.String
}) {}

/** No answer within the time left. */
export class RpcTimedOut extends Schema.TaggedError<RpcTimedOut>()("RpcTimedOut", {
  url: Schema.String
}) {}

export type AttemptError = RpcErrorPayload | RpcMalformed | ProviderDown | RpcTimedOut

/** How one attempt at a provider came out: its `result`, or why not. */
export type Attempt = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: AttemptError }

/** The caller's error for an attempt's failure. */
export const toEthError = (e: AttemptError): EthError => {
  switch (e._tag) {
    case "RpcErrorPayload":
      return { RpcError: e.payload }
    case "RpcMalformed":
      return "RpcMalformedResponse"
    case "ProviderDown":
      return "NoRpcForChain"
    case "RpcTimedOut":
      return "RpcTimeout"
  }
}

/** A one-line account of an attempt's failure, for printouts. */
export const describe = (e: AttemptError): string => {
  switch (e._tag) {
    case "RpcErrorPayload":
      return `${e.url} answered a JSON-RPC error`
    case "RpcMalformed":
      return `${e.url} answered garbage: ${e.reason}`
    case "ProviderDown":
      return `${e.url} is unreachable: ${e.reason}`
    case "RpcTimedOut":
      return `${e.url} did not answer in time`
  }
}

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** A JSON-RPC error object as alloy's `ErrorPayload` reads one: a numeric code and a message. */
export const isErrorObject = (u: unknown): boolean => isObject(u) && typeof u["code"] === "number" && typeof u["message"] === "string"

/**
 * Reads a JSON-RPC answer: its `result` (which may be `null`), or the failure it stands
 * for. Anything that is neither a result nor a well-formed error is garbage.
 */
export const readAnswer = (url: string, answer: unknown): Attempt => {
  if (!isObject(answer)) return { ok: false, error: new RpcMalformed({ url, reason: "the answer is not a JSON object" }) }
  if ("error" in answer && answer["error"] !== undefined && answer["error"] !== null) {
    return isErrorObject(answer["error"])
      ? { ok: false, error: new RpcErrorPayload({ url, payload: answer["error"] }) }
      : { ok: false, error: new RpcMalformed({ url, reason: "an error that is not a JSON-RPC error object" }) }
  }
  if (!("result" in answer)) return { ok: false, error: new RpcMalformed({ url, reason: "no result in the answer" }) }
  return { ok: true, value: answer["result"] }
}
