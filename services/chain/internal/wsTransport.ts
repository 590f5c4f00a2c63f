/**
 * A JSON-RPC over WebSocket transport for viem that recovers by itself: one
 * socket, opened on demand; when it closes, errors or a request times out,
 * every pending request fails at once and the next request opens a new
 * socket. (viem's own `webSocket` keeps a broken client cached after its
 * reconnect attempts run out, and logs to the console while retrying.)
 * @internal
 */
import { type CustomTransport, RpcRequestError, SocketClosedError, TimeoutError, custom } from "viem"

interface Pending {
  readonly resolve: (value: unknown) => void
  readonly reject: (error: Error) => void
  readonly timer: ReturnType<typeof setTimeout>
}

/** @internal */
export interface WsTransport {
  readonly transport: CustomTransport
  /** Closes the socket; later requests fail. */
  readonly close: () => void
}

/** @internal */
export const makeWsTransport = (url: string, timeoutMs: number): WsTransport => {
  let socket: WebSocket | undefined
  let opening: Promise<WebSocket> | undefined
  let closed = false
  let nextId = 1
  const pending = new Map<number, Pending>()

  const failAll = (error: Error) => {
    for (const p of pending.values()) {
      clearTimeout(p.timer)
      p.reject(error)
    }
    pending.clear()
  }

  const drop = (ws: WebSocket, error: Error) => {
    if (socket === ws) socket = undefined
    failAll(error)
    try {
      ws.close()
    } catch {
      // already closed
    }
  }

  const connect = (): Promise<WebSocket> => {
    if (socket !== undefined && socket.readyState === WebSocket.OPEN) return Promise.resolve(socket)
    if (opening !== undefined) return opening
    const attempt = new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url)
      let open = false
      const timer = setTimeout(() => {
        if (!open) {
          reject(new TimeoutError({ body: { connect: url }, url }))
          drop(ws, new SocketClosedError({ url }))
        }
      }, timeoutMs)
      ws.onopen = () => {
        open = true
        clearTimeout(timer)
        socket = ws
        resolve(ws)
      }
      ws.onerror = () => {
        clearTimeout(timer)
        if (!open) reject(new SocketClosedError({ url }))
        drop(ws, new SocketClosedError({ url }))
      }
      ws.onclose = () => {
        clearTimeout(timer)
        if (!open) reject(new SocketClosedError({ url }))
        drop(ws, new SocketClosedError({ url }))
      }
      ws.onmessage = (event: MessageEvent) => {
        let msg: { id?: unknown; result?: unknown; error?: { code: number; message: string; data?: unknown } }
        try {
          msg = JSON.parse(String(event.data)) as typeof msg
        } catch {
          drop(ws, new SocketClosedError({ url }))
          return
        }
        if (typeof msg.id !== "number") return
        const p = pending.get(msg.id)
        if (p === undefined) return
        pending.delete(msg.id)
        clearTimeout(p.timer)
        if (msg.error !== undefined) p.reject(new RpcRequestError({ body: { id: msg.id }, error: msg.error, url }))
        else p.resolve(msg.result)
      }
    })
    opening = attempt
    const reset = () => {
      if (opening === attempt) opening = undefined
    }
    attempt.then(reset, reset)
    return attempt
  }

  const request = async ({ method, params }: { method: string; params?: unknown }): Promise<unknown> => {
    if (closed) throw new SocketClosedError({ url })
    const ws = await connect()
    const id = nextId++
    const body = { jsonrpc: "2.0", id, method, params }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(new TimeoutError({ body, url }))
        // A request that got no answer: assume the socket is dead.
        drop(ws, new SocketClosedError({ url }))
      }, timeoutMs)
      pending.set(id, { resolve, reject, timer })
      try {
        ws.send(JSON.stringify(body))
      } catch (e) {
        pending.delete(id)
        clearTimeout(timer)
        reject(e instanceof Error ? e : new SocketClosedError({ url }))
      }
    })
  }

  return {
    transport: custom({ request }, { retryCount: 0, key: "kimap-ws", name: "Kimap WebSocket" }),
    close: () => {
      closed = true
      if (socket !== undefined) drop(socket, new SocketClosedError({ url }))
    }
  }
}
