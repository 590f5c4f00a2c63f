/**
 * WebSocket channels: upgrades on WS-bound paths, one random u32 channel per connection,
 * owned by the app that bound the path. Client frames become `{WebSocketPush}` requests
 * with the frame as blob; the app pushes back with `WebSocketPush` + blob.
 *
 * Bounds (a client cannot hurt the node or other clients): at most `maxWsConnections`
 * connections (then 503); frames over `maxWsFrameBytes` close the connection (ws's
 * `maxPayload`, 1009); more than `maxWsFramesPerSecond` frames in a second, or an app
 * mailbox that refuses them (full), close it with 1008; a client that stops reading
 * while `maxWsBufferedBytes` pile up towards it is dropped.
 *
 * Departures from Kinode 1.0: pushing `message_type: "Close"` closes the connection
 * (Kinode's module crashes on it [quirk]); an unauthenticated upgrade gets 401 (Kinode
 * 404s it); an extension client's Response answers only a push sent on its own channel
 * (message ids are sequential, so another client could guess them); frames a client
 * sends after the server closed its connection reach no app.
 */
import { randomInt } from "node:crypto"
import type * as http from "node:http"
import type { Duplex } from "node:stream"
import { Packr } from "msgpackr"
import { WebSocket, WebSocketServer } from "ws"
import { localAddress } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { type KernelMessage, type LazyLoadBlob, request, response } from "../../src/Message.ts"
import { hostLabel } from "./Auth.ts"
import type { WsBinding } from "./Bindings.ts"
import { isLoopback } from "./Body.ts"
import type { Gateway } from "./Gateway.ts"
import type { HttpServerError, HttpServerRequest, WsMessageType } from "./Protocol.ts"

interface Channel {
  readonly id: number
  readonly socket: WebSocket
  readonly binding: WsBinding
}

/** Named-form MessagePack, as Kinode's extension clients speak it. */
const packr = new Packr({ useRecords: false, mapsAsObjects: true })

const refuseUpgrade = (socket: Duplex, status: number, reason: string) => {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
}

export const makeWebSockets = (g: Gateway) => {
  const channels = new Map<number, Channel>()
  /** Extension pushes waiting for the client's Response, by message id, with the channel they went to. */
  const extWaiting = new Map<bigint, { readonly km: KernelMessage; readonly channel: number }>()
  // clientTracking: `server.clients` holds closing connections too (no longer channels).
  const server = new WebSocketServer({ noServer: true, maxPayload: g.limits.maxWsFrameBytes, clientTracking: true })

  const toApp = (channel: Channel, body: HttpServerRequest, blob?: LazyLoadBlob) =>
    g.ctx.send(localAddress(g.node, channel.binding.process), request({ body: Json.toBytes(body) }), blob)

  const newChannelId = (): number => {
    for (;;) {
      const id = randomInt(0, 0xffff_ffff)
      if (!channels.has(id)) return id
    }
  }

  const upgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const raw = req.url ?? "/"
    const q = raw.indexOf("?")
    const path = q < 0 ? raw : raw.slice(0, q)
    const found = g.bindings.ws.lookup(path)
    if (found === undefined) return refuseUpgrade(socket, 404, "Not Found")
    const b = found.binding
    if (b.secureSubdomain !== null) {
      const label = hostLabel(req.headers.host)
      if (label !== b.secureSubdomain || !g.auth.authenticated(req.headers.cookie, b.process)) {
        return refuseUpgrade(socket, 401, "Unauthorized")
      }
    } else if (b.authenticated && !g.auth.authenticated(req.headers.cookie, null)) {
      return refuseUpgrade(socket, 401, "Unauthorized")
    }
    if (b.extension && !isLoopback(req.socket.remoteAddress)) return refuseUpgrade(socket, 403, "Forbidden")
    if (channels.size >= g.limits.maxWsConnections) return refuseUpgrade(socket, 503, "Service Unavailable")
    server.handleUpgrade(req, socket, head, (ws) => open(ws, b))
  }

  const open = (ws: WebSocket, binding: WsBinding) => {
    const channel: Channel = { id: newChannelId(), socket: ws, binding }
    channels.set(channel.id, channel)
    const prefix = `/${binding.process}`
    const appPath = binding.path.startsWith(prefix) ? binding.path.slice(prefix.length) || "/" : binding.path
    const opened = toApp(channel, { WebSocketOpen: { path: appPath, channel_id: channel.id } })
    if (typeof opened !== "bigint") {
      channels.delete(channel.id)
      return ws.close(1011, `app cannot take it: ${opened.reason}`)
    }
    let second = 0
    let framesThisSecond = 0
    ws.on("message", (data: Buffer | ArrayBuffer | Array<Buffer>, isBinary: boolean) => {
      // ws still reads while closing: once the server closed the connection (the app
      // closed it, unbound its path, a flood, a Close push), nothing more reaches the app.
      if (ws.readyState !== WebSocket.OPEN) return
      const now = Math.floor(performance.now() / 1000)
      if (now !== second) {
        second = now
        framesThisSecond = 0
      }
      if (++framesThisSecond > g.limits.maxWsFramesPerSecond) return ws.close(1008, "too many frames")
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer)
      if (binding.extension && isBinary && fromExtension(channel, bytes)) return
      const sent = toApp(channel, { WebSocketPush: { channel_id: channel.id, message_type: isBinary ? "Binary" : "Text" } }, {
        mime: isBinary ? "application/octet-stream" : "text/plain",
        bytes
      })
      if (typeof sent !== "bigint") ws.close(1008, `app cannot take more: ${sent.reason}`)
    })
    ws.on("close", () => {
      // Its pushes cannot be answered any more (the apps' requests time out as before).
      for (const [id, w] of extWaiting) if (w.channel === channel.id) extWaiting.delete(id)
      if (channels.delete(channel.id)) toApp(channel, { WebSocketClose: channel.id })
    })
    ws.on("error", () => ws.terminate())
  }

  /** A client frame in the extension protocol: a Request or Response with the given id. */
  const fromExtension = (channel: Channel, bytes: Buffer): boolean => {
    let value: unknown
    try {
      value = packr.unpack(bytes)
    } catch {
      return false
    }
    const data = (value as { WebSocketExtPushData?: { id?: unknown; kinode_message_type?: unknown; blob?: unknown } } | null)
      ?.WebSocketExtPushData
    // An id that is no integer (1.5, NaN) is not the extension form: BigInt() would throw it at the node.
    if (data === undefined || (typeof data.id !== "bigint" && !Number.isSafeInteger(data.id))) return false
    const blobBytes = data.blob instanceof Uint8Array ? data.blob : Array.isArray(data.blob) ? Uint8Array.from(data.blob as Array<number>) : undefined
    if (blobBytes === undefined) return false
    const body = Json.toBytes({ WebSocketPush: { channel_id: channel.id, message_type: "Binary" } })
    const blob = { mime: "application/octet-stream", bytes: blobBytes }
    if (data.kinode_message_type === "Response") {
      // Only the channel the push went to may answer it (ids are sequential, so guessable).
      const id = BigInt(data.id as number | bigint)
      const waiting = extWaiting.get(id)
      if (waiting === undefined || waiting.channel !== channel.id) return true
      extWaiting.delete(id)
      g.ctx.reply(waiting.km, response({ body }), blob)
      return true
    }
    if (data.kinode_message_type !== "Request") return false
    toApp(channel, { WebSocketPush: { channel_id: channel.id, message_type: "Binary" } }, blob)
    return true
  }

  /** The channel if `source` owns it. */
  const owned = (source: string, id: number): Channel | undefined => {
    const c = channels.get(id)
    return c !== undefined && c.binding.process === source ? c : undefined
  }

  const sendFrame = (c: Channel, data: Buffer | string, binary: boolean) => {
    if (c.socket.bufferedAmount > g.limits.maxWsBufferedBytes) {
      // The client stopped reading: drop it rather than buffer without end.
      c.socket.terminate()
      return
    }
    c.socket.send(data, { binary })
  }

  /** An app's `WebSocketPush`; an error body, or undefined when sent. */
  const push = (source: string, id: number, type: WsMessageType, blob: LazyLoadBlob | undefined): HttpServerError | undefined => {
    const c = owned(source, id)
    if (c === undefined) return "WsChannelNotFound"
    const bytes = blob === undefined ? undefined : Buffer.from(blob.bytes)
    switch (type) {
      case "Text": {
        if (bytes === undefined) return "NoBlob"
        const text = new TextDecoder("utf-8", { fatal: true })
        let s: string
        try {
          s = text.decode(bytes)
        } catch {
          return "MalformedRequest"
        }
        sendFrame(c, s, false)
        return undefined
      }
      case "Binary":
        if (bytes === undefined) return "NoBlob"
        sendFrame(c, bytes, true)
        return undefined
      case "Ping":
      case "Pong":
        if (bytes !== undefined && bytes.length > 125) return "WsPingPongTooLong"
        if (type === "Ping") c.socket.ping(bytes)
        else c.socket.pong(bytes)
        return undefined
      case "Close":
        // Kinode's module crashes here [quirk]; a close frame is what the app asked for.
        c.socket.close(1000)
        return undefined
    }
  }

  /** `WebSocketExtPushOutgoing`: the blob wrapped for an extension client; the reply waits on it. */
  const extPush = (km: KernelMessage, id: number, desired: "Request" | "Response"): HttpServerError | undefined => {
    const c = owned(km.source.process.toString(), id)
    if (c === undefined) return "WsChannelNotFound"
    if (km.blob === undefined) return "NoBlob"
    const frame = packr.pack({ WebSocketExtPushData: { id: km.id, kinode_message_type: desired, blob: km.blob.bytes } })
    if (desired === "Response" && km.message._tag === "Request" && km.message.expectsResponse !== undefined) extWaiting.set(km.id, { km, channel: id })
    sendFrame(c, frame, true)
    return undefined
  }

  const close = (source: string, id: number): HttpServerError | undefined => {
    const c = owned(source, id)
    if (c === undefined) return "WsChannelNotFound"
    channels.delete(id)
    c.socket.close(1000)
    return undefined
  }

  /** Closes every connection of a binding that went away (unbound). */
  const closePath = (path: string) => {
    for (const c of channels.values()) {
      if (c.binding.path === path) {
        channels.delete(c.id)
        c.socket.close(1001, "unbound")
      }
    }
  }

  const closeAll = () => {
    // Closing ones too: a client that never answers a close would hold the shutdown 30 s.
    for (const socket of server.clients) socket.terminate()
    channels.clear()
    server.close()
  }

  return { upgrade, push, extPush, close, closePath, closeAll, count: () => channels.size }
}
export type WebSockets = ReturnType<typeof makeWebSockets>

export { WebSocket }
