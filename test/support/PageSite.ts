/**
 * A page site for browser tests: a real Node HTTP server on 127.0.0.1 with a WebSocket
 * path, closed (sockets terminated) with the scope.
 */
import { Effect } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { type WebSocket, WebSocketServer } from "ws"

export interface PageSite {
  readonly port: number
  readonly wss: WebSocketServer
}

export const scopedPageSite = (
  handle: http.RequestListener,
  wsPath: string,
  onSocket: (socket: WebSocket, wss: WebSocketServer) => void
) =>
  Effect.acquireRelease(
    Effect.callback<PageSite & { readonly server: http.Server }>((resume) => {
      const server = http.createServer(handle)
      const wss = new WebSocketServer({ server, path: wsPath })
      wss.on("connection", (socket) => onSocket(socket, wss))
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, wss, port: (server.address() as AddressInfo).port })))
    }),
    ({ server, wss }) =>
      Effect.callback<void>((resume) => {
        for (const c of wss.clients) c.terminate()
        wss.close()
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )
