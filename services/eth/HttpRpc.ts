/**
 * One JSON-RPC exchange over HTTP(S), through viem's HTTP RPC client (`fetch`, a
 * timeout that also covers reading the body, credentials in the URL as Basic auth).
 * The exchange is aborted when the caller cancels it. u64 params that arrived as
 * bigints go out as bare JSON integers, digit for digit.
 */
import { HttpRequestError, ResponseBodyTooLargeError, RpcRequestError, TimeoutError } from "viem"
import { getHttpRpcClient, type HttpRpcClient } from "viem/utils"
import { MAX_MESSAGE_BYTES } from "../../src/Message.ts"
import { type AttemptError, ProviderDown, readAnswer, RpcErrorPayload, RpcMalformed, RpcTimedOut } from "./RpcErrors.ts"
import type { Send } from "./SocketRpc.ts"

const rawJson = (JSON as unknown as { rawJSON: (text: string) => unknown }).rawJSON

/** Replaces bigints by raw JSON integers, which viem's `stringify` prints as they are. */
export const rawBigInts = (value: unknown): unknown => {
  if (typeof value === "bigint") return rawJson(value.toString())
  if (Array.isArray(value)) return value.map(rawBigInts)
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = rawBigInts(v)
    return out
  }
  return value
}

const reasonOf = (cause: unknown): string => {
  if (!(cause instanceof Error)) return String(cause)
  const inner = (cause as { cause?: unknown }).cause
  const code = typeof inner === "object" && inner !== null ? (inner as { code?: unknown }).code : undefined
  return typeof code === "string" ? `${cause.message} (${code})` : cause.message
}

const classify = (url: string, e: unknown): AttemptError => {
  if (e instanceof TimeoutError) return new RpcTimedOut({ url })
  if (e instanceof RpcRequestError) {
    // A JSON-RPC error object sent with a non-2xx status: still the provider's answer.
    return new RpcErrorPayload({ url, payload: { code: e.code, message: e.details, ...(e.data === undefined ? {} : { data: e.data }) } })
  }
  if (e instanceof ResponseBodyTooLargeError) return new RpcMalformed({ url, reason: "the answer is larger than a message can carry" })
  if (e instanceof HttpRequestError) {
    if (e.cause instanceof SyntaxError) return new RpcMalformed({ url, reason: "the answer is not JSON" })
    if (e.status !== undefined) return new ProviderDown({ url, reason: `HTTP ${e.status}` })
    return new ProviderDown({ url, reason: reasonOf(e.cause) })
  }
  if (e instanceof Error && e.name === "AbortError") return new RpcTimedOut({ url })
  return new ProviderDown({ url, reason: reasonOf(e) })
}

export interface HttpRpc {
  readonly url: string
  /** `method(params)` within `timeoutMillis`: `done` gets the result, or why not; the cancel aborts it. */
  readonly send: Send
}

export const make = (url: string): HttpRpc => {
  const client: HttpRpcClient = getHttpRpcClient(url, { maxResponseBodySize: MAX_MESSAGE_BYTES })
  return {
    url,
    send: (method, params, timeoutMillis, done) => {
      const abort = new AbortController()
      let settled = false
      client.request({
        body: { method, params: rawBigInts(params) },
        timeout: Math.max(1, Math.floor(timeoutMillis)),
        fetchOptions: { signal: abort.signal }
      }).then(
        (answer) => {
          if (settled) return
          settled = true
          done(readAnswer(url, answer))
        },
        (e) => {
          if (settled) return
          settled = true
          done({ ok: false, error: classify(url, e) })
        }
      )
      return () => {
        if (settled) return
        settled = true
        abort.abort()
      }
    }
  }
}
