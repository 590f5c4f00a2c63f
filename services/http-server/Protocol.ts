/**
 * `http-server:distro:sys` wire protocol (kinode-semantics §6.7): the serde JSON shapes
 * Kinode apps send (`HttpServerAction`) and receive (`HttpServerRequest`, replies), and
 * the body of the local RPC path `POST /rpc:distro:sys/message`.
 */
import { Schema } from "effect"
import { U64 } from "../../src/Json.ts"

const U32 = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 0xffff_ffff }))

export const WsMessageType = Schema.Literals(["Text", "Binary", "Ping", "Pong", "Close"])
export type WsMessageType = typeof WsMessageType.Type

export const MessageKind = Schema.Literals(["Request", "Response"])

/** What an app asks of http-server. Unknown struct keys are ignored, as serde does. */
export const HttpServerAction = Schema.Union([
  Schema.Struct({
    Bind: Schema.Struct({ path: Schema.String, authenticated: Schema.Boolean, local_only: Schema.Boolean, cache: Schema.Boolean })
  }),
  Schema.Struct({ SecureBind: Schema.Struct({ path: Schema.String, cache: Schema.Boolean }) }),
  Schema.Struct({ Unbind: Schema.Struct({ path: Schema.String }) }),
  Schema.Struct({
    WebSocketBind: Schema.Struct({ path: Schema.String, authenticated: Schema.Boolean, extension: Schema.Boolean })
  }),
  Schema.Struct({ WebSocketSecureBind: Schema.Struct({ path: Schema.String, extension: Schema.Boolean }) }),
  Schema.Struct({ WebSocketUnbind: Schema.Struct({ path: Schema.String }) }),
  /** Only http-server sends this (to apps); an app sending it is `MalformedRequest`. */
  Schema.Struct({ WebSocketOpen: Schema.Struct({ path: Schema.String, channel_id: U32 }) }),
  Schema.Struct({ WebSocketPush: Schema.Struct({ channel_id: U32, message_type: WsMessageType }) }),
  Schema.Struct({
    WebSocketExtPushOutgoing: Schema.Struct({ channel_id: U32, message_type: WsMessageType, desired_reply_type: MessageKind })
  }),
  /** Extension wire only: never valid from an app. */
  Schema.Struct({
    WebSocketExtPushData: Schema.Struct({ id: U64, kinode_message_type: MessageKind, blob: Schema.Array(Schema.Int) })
  }),
  Schema.Struct({ WebSocketClose: U32 })
])
export type HttpServerAction = typeof HttpServerAction.Type

export type HttpServerError = "MalformedRequest" | "NoBlob" | "InvalidSourceProcess" | "WsPingPongTooLong" | "WsChannelNotFound"

/** A request http-server forwards to the app that bound its path. */
export interface IncomingHttpRequest {
  readonly source_socket_addr: string | null
  readonly method: string
  /** `http://<host><path>`, without the query. */
  readonly url: string
  readonly bound_path: string
  readonly headers: Record<string, string>
  readonly url_params: Record<string, string>
  readonly query_params: Record<string, string>
}

/** What http-server sends apps (bodies of its requests to them). */
export type HttpServerRequest =
  | { readonly Http: IncomingHttpRequest }
  | { readonly WebSocketOpen: { readonly path: string; readonly channel_id: number } }
  | { readonly WebSocketPush: { readonly channel_id: number; readonly message_type: WsMessageType } }
  | { readonly WebSocketClose: number }

/** The app's answer to `{Http}`: the status and headers; the HTTP body is the blob. */
export const HttpResponse = Schema.Struct({
  status: Schema.Int.check(Schema.isBetween({ minimum: 100, maximum: 999 })),
  headers: Schema.Record(Schema.String, Schema.String)
})
export type HttpResponse = typeof HttpResponse.Type

/** `POST /rpc:distro:sys/message`: a request from http-server on behalf of a local tool. */
export const RpcMessage = Schema.Struct({
  node: Schema.optional(Schema.NullOr(Schema.String)),
  process: Schema.String,
  inherit: Schema.optional(Schema.NullOr(Schema.Boolean)),
  expects_response: Schema.optional(Schema.NullOr(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 86_400 })))),
  body: Schema.optional(Schema.NullOr(Schema.String)),
  metadata: Schema.optional(Schema.NullOr(Schema.String)),
  context: Schema.optional(Schema.NullOr(Schema.String)),
  mime: Schema.optional(Schema.NullOr(Schema.String)),
  /** The blob, base64. */
  data: Schema.optional(Schema.NullOr(Schema.String))
})
export type RpcMessage = typeof RpcMessage.Type

/** `POST /login`. */
export const LoginRequest = Schema.Struct({
  password_hash: Schema.String,
  subdomain: Schema.optional(Schema.NullOr(Schema.String))
})
export type LoginRequest = typeof LoginRequest.Type

/** The extension protocol's frame (named-form MessagePack both ways). */
export interface ExtPushData {
  readonly WebSocketExtPushData: {
    readonly id: bigint | number
    readonly kinode_message_type: "Request" | "Response"
    readonly blob: Uint8Array | ReadonlyArray<number>
  }
}
