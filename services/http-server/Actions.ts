/**
 * What apps ask of http-server (`HttpServerAction`s), applied to the path table and the
 * WebSocket channels. Answers as Kinode's: `{"Ok":null}` when the request wanted one,
 * `{"Err":…}` always.
 *
 * Departure from Kinode 1.0: only processes of this node may bind paths or push to
 * sockets. Kinode takes actions from any node that can reach it [quirk], so another
 * node could bind this node's paths.
 */
import { Result, Schema } from "effect"
import * as Json from "../../src/Json.ts"
import { type KernelMessage, response } from "../../src/Message.ts"
import { wantsReply } from "../../src/ModuleHost.ts"
import { subdomainLabel } from "./Auth.ts"
import { type HttpBinding, staticOf, storedPath } from "./Bindings.ts"
import type { Gateway } from "./Gateway.ts"
import { HttpServerAction, type HttpServerError } from "./Protocol.ts"
import type { WebSockets } from "./WebSockets.ts"

const decodeAction = Schema.decodeUnknownResult(HttpServerAction)
const OK = Json.toBytes({ Ok: null })

export const makeActions = (g: Gateway, ws: WebSockets) => {
  const answer = (km: KernelMessage, error: HttpServerError | undefined) => {
    if (error !== undefined) g.ctx.reply(km, response({ body: Json.toBytes({ Err: error }) }))
    else if (wantsReply(km)) g.ctx.reply(km, response({ body: OK }))
  }

  const secureLabel = (km: KernelMessage) => subdomainLabel(km.source.process.packageName, km.source.process.publisherNode)

  /** Applies one action; the error body, undefined on success, or "pending" when the answer comes later. */
  const apply = (km: KernelMessage, action: HttpServerAction): HttpServerError | undefined | "pending" => {
    const process = km.source.process.toString()
    if ("Bind" in action || "SecureBind" in action) {
      // Secure binds are always authenticated (with the app's own cookie), never local-only.
      const a = "SecureBind" in action
        ? { ...action.SecureBind, authenticated: true, local_only: false, subdomain: secureLabel(km) }
        : { ...action.Bind, subdomain: null }
      if (a.cache && km.blob === undefined) return "NoBlob"
      const binding: HttpBinding = {
        kind: "http",
        process,
        path: storedPath(process, a.path),
        authenticated: a.authenticated,
        localOnly: a.local_only,
        secureSubdomain: a.subdomain,
        static: a.cache && km.blob !== undefined ? staticOf(km.blob) : null
      }
      return g.bindings.http.set(binding) ? undefined : "MalformedRequest"
    }
    if ("Unbind" in action) {
      g.bindings.http.remove(storedPath(process, action.Unbind.path))
      return undefined
    }
    if ("WebSocketBind" in action || "WebSocketSecureBind" in action) {
      const a = "WebSocketSecureBind" in action
        ? { ...action.WebSocketSecureBind, authenticated: true, subdomain: secureLabel(km) }
        : { ...action.WebSocketBind, subdomain: null }
      const ok = g.bindings.ws.set({
        kind: "ws",
        process,
        path: storedPath(process, a.path),
        authenticated: a.authenticated,
        extension: a.extension,
        secureSubdomain: a.subdomain
      })
      return ok ? undefined : "MalformedRequest"
    }
    if ("WebSocketUnbind" in action) {
      const path = storedPath(process, action.WebSocketUnbind.path)
      g.bindings.ws.remove(path)
      ws.closePath(path)
      return undefined
    }
    if ("WebSocketPush" in action) return ws.push(process, action.WebSocketPush.channel_id, action.WebSocketPush.message_type, km.blob)
    if ("WebSocketExtPushOutgoing" in action) {
      const a = action.WebSocketExtPushOutgoing
      const error = ws.extPush(km, a.channel_id, a.desired_reply_type)
      if (error !== undefined) return error
      // The client's Response is the answer to this request.
      return a.desired_reply_type === "Response" && km.message._tag === "Request" && km.message.expectsResponse !== undefined
        ? "pending"
        : undefined
    }
    if ("WebSocketClose" in action) return ws.close(process, action.WebSocketClose)
    // WebSocketOpen and WebSocketExtPushData are ours to send, never an app's.
    return "MalformedRequest"
  }

  /** One message for the module: a local process's action (remote ones are refused). */
  const onRequest = (km: KernelMessage) => {
    if (km.source.node !== g.node) {
      g.print(1, `refused an http-server action from another node (${km.source.toString()})`)
      return answer(km, "InvalidSourceProcess")
    }
    const parsed = Json.parseBody(km.message.body)
    const action = Result.isSuccess(parsed) ? decodeAction(parsed.success) : undefined
    if (action === undefined || Result.isFailure(action)) return answer(km, "MalformedRequest")
    const result = apply(km, action.success)
    if (result !== "pending") answer(km, result)
  }

  return { onRequest }
}
