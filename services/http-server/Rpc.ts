/**
 * `POST /rpc:distro:sys/message`: local tools (scripts, `curl`, the developer tool) send
 * a request into the node as http-server. Loopback clients only, no cookie (Kinode).
 *
 * Without `expects_response` the answer is 200 at once. With it, the target's answer
 * comes back as JSON `{"body": [bytes], "lazy_load_blob": {"mime", "bytes": [bytes]} |
 * null}`. Kinode puts the ASCII of the blob's base64 in `bytes` [quirk]; here `bytes`
 * are the blob's own bytes, as the field promises.
 */
import { Result, Schema } from "effect"
import type * as http from "node:http"
import { parseAddress } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { request } from "../../src/Message.ts"
import { isLoopback, readBody } from "./Body.ts"
import type { Gateway } from "./Gateway.ts"
import { RpcMessage } from "./Protocol.ts"

const decodeRpc = Schema.decodeUnknownResult(RpcMessage)

const send = (res: http.ServerResponse, status: number, contentType: string, body: string) => {
  if (res.headersSent || res.destroyed) return
  res.writeHead(status, { "content-type": contentType })
  res.end(body)
}

export const handleRpc = (g: Gateway, req: http.IncomingMessage, res: http.ServerResponse): void => {
  if (!isLoopback(req.socket.remoteAddress)) return send(res, 403, "text/plain", "local only")
  if (req.method !== "POST") return send(res, 405, "text/plain", "use POST")
  readBody(req, g.limits.maxBodyBytes, (body) => {
    if (body._tag === "TooLarge") return send(res, 413, "text/plain", "body too large")
    if (body._tag === "Aborted") return
    const parsed = Json.parseBody(body.bytes)
    if (Result.isFailure(parsed)) return send(res, 400, "text/plain", `not JSON: ${parsed.failure.reason}`)
    const decoded = decodeRpc(parsed.success)
    if (Result.isFailure(decoded)) return send(res, 400, "text/plain", `not an RPC message: ${decoded.failure.message}`)
    const m = decoded.success
    const target = parseAddress(`${m.node ?? g.node}@${m.process}`)
    if (Result.isFailure(target)) return send(res, 400, "text/plain", `bad target ${m.node ?? g.node}@${m.process}: ${target.failure.reason}`)
    const timeout = m.expects_response ?? undefined
    const blob = m.data == null ? undefined : { mime: m.mime ?? undefined, bytes: new Uint8Array(Buffer.from(m.data, "base64")) }
    const id = g.ctx.newId()
    const forget = timeout === undefined ? () => undefined : g.pending.wait(id, timeout * 1000, {
      answer: (km) => {
        const b = km.blob
        send(res, 200, "application/json", JSON.stringify({
          body: Array.from(km.message.body),
          lazy_load_blob: b === undefined ? null : { mime: b.mime ?? null, bytes: Array.from(b.bytes) }
        }))
      },
      expire: () => send(res, 408, "text/plain", `no answer from ${target.success.toString()} in ${timeout} s`)
    })
    const sent = g.ctx.send(
      target.success,
      request({
        body: new TextEncoder().encode(m.body ?? ""),
        metadata: m.metadata ?? undefined,
        expectsResponse: timeout === undefined ? undefined : BigInt(timeout)
      }),
      blob,
      id
    )
    if (typeof sent !== "bigint") {
      forget()
      return send(res, 503, "text/plain", `refused: ${sent.reason}`)
    }
    if (timeout === undefined) return send(res, 200, "text/plain", "")
    res.on("close", forget)
  })
}
