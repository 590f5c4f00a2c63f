/**
 * `http-client:distro:sys` wire protocol (kinode-semantics §6.6): Kinode's serde JSON
 * shapes. Enums are externally tagged (`{"Http":{…}}`, `"WebSocketAck"`); replies are a
 * `Result`, so `{"Ok":…}` or `{"Err":…}`. An outgoing request's body and a response's
 * body travel as the message blob, never in the JSON.
 */
import { Schema } from "effect"

/** `u32`, as serde reads it: an integer 0 ..= 4294967295. */
export const U32 = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 4_294_967_295 }))

/** `HashMap<String, String>`. */
export const HeaderMap = Schema.Record(Schema.String, Schema.String)
export type HeaderMap = typeof HeaderMap.Type

/** A WebSocket frame kind (`WsMessageType` of `http-server`'s types, shared by both modules). */
export const WsMessageType = Schema.Literals(["Text", "Binary", "Ping", "Pong", "Close"])
export type WsMessageType = typeof WsMessageType.Type

/** `OutgoingHttpRequest`; the body is the request's blob, the timeout its `expects_response`. */
export const OutgoingHttpRequest = Schema.Struct({
  method: Schema.String,
  /** serde reads a missing `Option` as `None`: absent or null. */
  version: Schema.optional(Schema.NullOr(Schema.String)),
  url: Schema.String,
  headers: HeaderMap
})
export type OutgoingHttpRequest = typeof OutgoingHttpRequest.Type

export const WebSocketOpen = Schema.Struct({ url: Schema.String, headers: HeaderMap, channel_id: U32 })
export type WebSocketOpen = typeof WebSocketOpen.Type
export const WebSocketPush = Schema.Struct({ channel_id: U32, message_type: WsMessageType })
export type WebSocketPush = typeof WebSocketPush.Type
export const WebSocketClose = Schema.Struct({ channel_id: U32 })
export type WebSocketClose = typeof WebSocketClose.Type

/** `HttpClientAction`: what a process sends `http-client:distro:sys`. */
export const HttpClientAction = Schema.Union([
  Schema.Struct({ Http: OutgoingHttpRequest }),
  Schema.Struct({ WebSocketOpen }),
  Schema.Struct({ WebSocketPush }),
  Schema.Struct({ WebSocketClose })
])
export type HttpClientAction = typeof HttpClientAction.Type

/** `HttpResponse`: status and headers (names Pascal-Cased, one value per name); body in the blob. */
export const HttpResponse = Schema.Struct({ status: Schema.Int, headers: HeaderMap })
export type HttpResponse = typeof HttpResponse.Type

/** `HttpClientResponse`. */
export const HttpClientResponse = Schema.Union([
  Schema.Struct({ Http: HttpResponse }),
  Schema.Literal("WebSocketAck")
])
export type HttpClientResponse = typeof HttpClientResponse.Type

/** `HttpClientError`, externally tagged; the two `…Failed(String)` variants are newtypes. */
export const HttpClientError = Schema.Union([
  Schema.Literals(["MalformedRequest", "WsPushNoBlob", "WsPushBadText"]),
  Schema.Struct({ BadMethod: Schema.Struct({ method: Schema.String }) }),
  Schema.Struct({ BadUrl: Schema.Struct({ url: Schema.String }) }),
  Schema.Struct({ BadVersion: Schema.Struct({ version: Schema.String }) }),
  Schema.Struct({ BuildRequestFailed: Schema.String }),
  Schema.Struct({ ExecuteRequestFailed: Schema.String }),
  Schema.Struct({ WsOpenFailed: Schema.Struct({ url: Schema.String }) }),
  Schema.Struct({ WsPushUnknownChannel: Schema.Struct({ channel_id: U32 }) }),
  Schema.Struct({ WsCloseFailed: Schema.Struct({ channel_id: U32 }) })
])
export type HttpClientError = typeof HttpClientError.Type

/** Every reply body: `Result<HttpClientResponse, HttpClientError>`. */
export const HttpClientReply = Schema.Union([
  Schema.Struct({ Ok: HttpClientResponse }),
  Schema.Struct({ Err: HttpClientError })
])
export type HttpClientReply = typeof HttpClientReply.Type

/** `HttpClientRequest`: what the module sends a channel's owner (frame in the blob). */
export const HttpClientRequest = Schema.Union([
  Schema.Struct({ WebSocketPush }),
  Schema.Struct({ WebSocketClose })
])
export type HttpClientRequest = typeof HttpClientRequest.Type

/** A refused action; `error` is what the caller receives inside `{"Err":…}`. */
export class HttpClientFailure extends Schema.TaggedError<HttpClientFailure>()("HttpClientFailure", {
  error: HttpClientError
}) {}

/** The process id the module runs under. */
export const PROCESS = "http-client:distro:sys"
