/**
 * One HTTP request, start to end: the node's own paths (login, logout, the Argon2
 * script, RPC), then the path table: the secure subdomain, the cookie (else the login
 * page, status 200 as Kinode), local-only (else 403), cached static content for GET,
 * else the request goes to the app as `{"Http": IncomingHttpRequest}` with the body as
 * blob, and the app's `HttpResponse` + blob is the answer: 408 if none comes in time,
 * 500 if it cannot be read, 503 if the kernel refused to deliver it (with the reason).
 */
import { Result, Schema } from "effect"
import type * as http from "node:http"
import { type Address, localAddress } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { type KernelMessage, request } from "../../src/Message.ts"
import { cleanSubdomain, hostLabel } from "./Auth.ts"
import type { HttpBinding } from "./Bindings.ts"
import { isLoopback, readBody } from "./Body.ts"
import type { Gateway } from "./Gateway.ts"
import { argon2Script, loginPage } from "./LoginPage.ts"
import { HttpResponse, type IncomingHttpRequest, LoginRequest } from "./Protocol.ts"
import { handleRpc } from "./Rpc.ts"

const decodeResponse = Schema.decodeUnknownResult(HttpResponse)
const decodeLogin = Schema.decodeUnknownResult(LoginRequest)

const plain = (res: http.ServerResponse, status: number, text: string, headers: http.OutgoingHttpHeaders = {}) => {
  if (res.headersSent || res.destroyed) return
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers })
  res.end(text)
}

const html = (res: http.ServerResponse, status: number, page: string) => {
  res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" })
  res.end(page)
}

/** Query string → map (the last value of a repeated key wins, as serde_urlencoded into a HashMap). */
const queryOf = (query: string): Record<string, string> => {
  const out: Record<string, string> = {}
  if (query === "") return out
  for (const [k, v] of new URLSearchParams(query)) out[k] = v
  return out
}


/** Whether an answer with this status carries a body (and so a Content-Length). */
const hasBody = (status: number) => status >= 200 && status !== 204 && status !== 304

/** Whether the app's headers already frame the body (Content-Length or Transfer-Encoding, any case). */
const framed = (headers: Record<string, string>) => {
  for (const k in headers) {
    const l = k.toLowerCase()
    if (l === "content-length" || l === "transfer-encoding") return true
  }
  return false
}

const encoder = new TextEncoder()

export const makeRequestHandler = (g: Gateway) => {
  const script = argon2Script()
  let loginsInFlight = 0
  const expectsResponse = BigInt(Math.ceil(g.limits.appTimeoutMs / 1000))
  /** Bound processes' addresses (parsing one for every request cost ~2 us of ~45). */
  const targets = new Map<string, Address>()
  const targetOf = (process: string): Address => {
    let a = targets.get(process)
    if (a === undefined) {
      if (targets.size >= 4096) targets.clear()
      a = localAddress(g.node, process)
      targets.set(process, a)
    }
    return a
  }

  const login = (req: http.IncomingMessage, res: http.ServerResponse, query: string) => {
    if (req.method === "GET" || req.method === "HEAD") return html(res, 200, loginPage(g.node, null))
    if (req.method !== "POST") return plain(res, 405, "use GET or POST", { allow: "GET, POST" })
    readBody(req, 4096, (body) => {
      if (body._tag === "TooLarge") return plain(res, 413, "login body too large", { connection: "close" })
      if (body._tag === "Aborted") return
      const parsed = Json.parseBody(body.bytes)
      const decoded = Result.isSuccess(parsed) ? decodeLogin(parsed.success) : undefined
      if (decoded === undefined || Result.isFailure(decoded)) return plain(res, 400, "expected JSON {\"password_hash\": \"0x...\"}")
      if (loginsInFlight >= g.limits.maxLoginsInFlight) return plain(res, 429, "too many logins at once; try again", { "retry-after": "1" })
      loginsInFlight++
      g.login(decoded.success.password_hash).then((keyfile) => {
        loginsInFlight--
        // Kinode answers a wrong password with 500 [quirk]: it is the client's error.
        if (keyfile === undefined) return plain(res, 401, "wrong password")
        const subdomain = decoded.success.subdomain == null ? null : cleanSubdomain(decoded.success.subdomain)
        const cookie = g.auth.setCookie(subdomain === "" ? null : subdomain)
        const redirect = new URLSearchParams(query).get("redirect")
        if (redirect !== null && redirect.startsWith("/") && !redirect.startsWith("//")) {
          res.writeHead(303, { location: redirect, "set-cookie": cookie })
          return res.end()
        }
        res.writeHead(200, { "content-type": "application/json", "set-cookie": cookie, "cache-control": "no-store" })
        res.end(JSON.stringify(Buffer.from(keyfile).toString("base64")))
      }, (e: unknown) => {
        loginsInFlight--
        g.print(0, `login check failed: ${e instanceof Error ? e.message : String(e)}`)
        plain(res, 500, "login check failed")
      })
    })
  }

  const logout = (res: http.ServerResponse) => {
    res.writeHead(303, { location: "/login", "set-cookie": g.auth.clearCookie(null), "cache-control": "no-store" })
    res.end()
  }

  /** Forwards the request to the bound app and answers the client with what it says. */
  const toApp = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    binding: HttpBinding,
    path: string,
    params: Record<string, string>,
    query: string
  ) => {
    readBody(req, g.limits.maxBodyBytes, (body) => {
      if (body._tag === "TooLarge") return plain(res, 413, `body over ${g.limits.maxBodyBytes} bytes`, { connection: "close" })
      if (body._tag === "Aborted") return
      const socket = req.socket
      const incoming: IncomingHttpRequest = {
        source_socket_addr: socket.remoteAddress === undefined ? null : `${socket.remoteAddress}:${socket.remotePort}`,
        method: req.method ?? "GET",
        url: `http://${req.headers.host ?? "localhost"}${path}`,
        bound_path: binding.path,
        headers: headersOf(req),
        url_params: params,
        query_params: queryOf(query)
      }
      // Ready for the answer before sending: a local app can answer before `send` returns.
      const id = g.ctx.newId()
      const forget = g.pending.wait(id, g.limits.appTimeoutMs, {
        answer: (km) => answerFromApp(res, binding.process, km),
        expire: () => plain(res, 408, `${binding.process} did not answer in ${g.limits.appTimeoutMs / 1000} s`)
      })
      const sent = g.ctx.send(
        targetOf(binding.process),
        // Only strings in it: plain JSON.stringify (Json.toBytes' bigint replacer costs a call per value).
        request({ body: encoder.encode(JSON.stringify({ Http: incoming })), expectsResponse }),
        { mime: req.headers["content-type"], bytes: body.bytes },
        id
      )
      if (typeof sent !== "bigint") {
        forget()
        return plain(res, 503, `${binding.process} cannot take the request: ${sent.reason}`)
      }
      res.on("close", forget)
    })
  }

  const answerFromApp = (res: http.ServerResponse, process: string, km: KernelMessage) => {
    if (res.destroyed) return
    const parsed = Json.parseBody(km.message.body)
    const decoded = Result.isSuccess(parsed) ? decodeResponse(parsed.success) : undefined
    if (decoded === undefined || Result.isFailure(decoded)) {
      g.print(1, `${process} answered an HTTP request with a body that is not an HttpResponse`)
      return plain(res, 500, `${process} answered with something that is not an HttpResponse`)
    }
    const blob = km.blob?.bytes
    const { status, headers } = decoded.success
    try {
      // The blob is the whole body: say its length (as Kinode's server does) rather than
      // chunk it. A HEAD answer without a blob says nothing (the app knows the length).
      const length = hasBody(status) && !framed(headers) && (blob !== undefined || res.req.method !== "HEAD")
      res.writeHead(status, length ? { ...headers, "content-length": blob?.byteLength ?? 0 } : headers)
      res.end(blob === undefined ? undefined : Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength))
    } catch (e) {
      // A header name or value Node refuses (newlines, bad characters).
      g.print(1, `${process} answered with headers that cannot be sent: ${e instanceof Error ? e.message : String(e)}`)
      if (!res.headersSent) plain(res, 500, `${process} answered with headers that cannot be sent`)
      else res.destroy()
    }
  }

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const raw = req.url ?? "/"
    const q = raw.indexOf("?")
    const path = q < 0 ? raw : raw.slice(0, q)
    const query = q < 0 ? "" : raw.slice(q + 1)
    if (path === "/login") return login(req, res, query)
    if (path === "/logout") return logout(res)
    if (path === "/login/argon2.js") {
      res.writeHead(200, { "content-type": "text/javascript", "cache-control": "max-age=86400" })
      return void res.end(script)
    }
    if (path === "/rpc:distro:sys/message") return handleRpc(g, req, res)

    const found = g.bindings.http.lookup(path)
    if (found === undefined) return plain(res, 404, "not found")
    const b = found.binding
    const cookie = req.headers.cookie
    if (b.secureSubdomain !== null) {
      const label = hostLabel(req.headers.host)
      if (label === "") return plain(res, 401, "no host")
      if (label !== b.secureSubdomain) {
        const proto = req.headers["x-forwarded-proto"] ?? "http"
        const location = `${proto}://${b.secureSubdomain}.${req.headers.host}${path}${query === "" ? "" : `?${query}`}`
        res.writeHead(307, { location })
        return void res.end()
      }
      if (!g.auth.authenticated(cookie, b.process)) return html(res, 200, loginPage(g.node, b.process))
    } else if (b.authenticated && !g.auth.authenticated(cookie, null)) {
      return html(res, 200, loginPage(g.node, null))
    }
    if (b.localOnly && !isLoopback(req.socket.remoteAddress)) return plain(res, 403, "local only")
    if (b.static !== null && (req.method === "GET" || req.method === "HEAD")) {
      res.writeHead(200, { "content-type": b.static.contentType, "content-length": b.static.body.length })
      return void res.end(req.method === "HEAD" ? undefined : b.static.body)
    }
    toApp(req, res, b, path, found.params, query)
  }

  return handle
}

/** Request headers as one value per name (repeated headers joined as Node does). */
const headersOf = (req: http.IncomingMessage): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue
    out[k] = Array.isArray(v) ? v.join(", ") : v
  }
  return out
}
