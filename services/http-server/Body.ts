/**
 * Reading a request body under a byte limit: a declared `Content-Length` over the limit
 * is refused before a byte is read, a body that grows past it is cut off (413 either
 * way), so no client can make the node buffer more than the limit per request.
 */
import type * as http from "node:http"

export type BodyResult =
  | { readonly _tag: "Body"; readonly bytes: Buffer }
  | { readonly _tag: "TooLarge" }
  | { readonly _tag: "Aborted" }

const EMPTY = Buffer.alloc(0)

export const readBody = (req: http.IncomingMessage, limit: number, done: (r: BodyResult) => void): void => {
  const declared = req.headers["content-length"]
  if (declared !== undefined && Number(declared) > limit) return done({ _tag: "TooLarge" })
  if (declared === "0" || (declared === undefined && req.headers["transfer-encoding"] === undefined)) {
    // No body: nothing to wait for (GET, HEAD...). Still drain, so keep-alive works.
    req.resume()
    return done({ _tag: "Body", bytes: EMPTY })
  }
  const chunks: Array<Buffer> = []
  let size = 0
  let finished = false
  const finish = (r: BodyResult) => {
    if (finished) return
    finished = true
    done(r)
  }
  req.on("data", (chunk: Buffer) => {
    if (finished) return
    size += chunk.length
    if (size > limit) {
      finish({ _tag: "TooLarge" })
      // Stop reading; the 413 goes out and the connection closes.
      req.pause()
      return
    }
    chunks.push(chunk)
  })
  req.on("end", () => finish({ _tag: "Body", bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) }))
  req.on("error", () => finish({ _tag: "Aborted" }))
  req.on("aborted", () => finish({ _tag: "Aborted" }))
}

/** Whether a socket address is this machine (local-only binds, the RPC path, extension sockets). */
export const isLoopback = (addr: string | undefined): boolean =>
  addr !== undefined && (addr === "::1" || addr.startsWith("127.") || addr.startsWith("::ffff:127."))
