/**
 * Serving HTTP and WebSockets through `http-server:distro:sys` (kinode-semantics §6.7),
 * in the shapes of Kinode's `process_lib::http::server`.
 *
 * An app binds paths; http-server serves them at `/<process id><path>` (trailing `/`
 * stripped), so counter's `/` is `/counter:counter:sys`. Requests for a bound path
 * reach the app as requests from http-server: `parseRequest` decodes them, `respond`
 * answers an HTTP one. Static content (`bindStatic`, `serveUi`) is served by
 * http-server itself for GET, other methods still reach the app.
 *
 *   http.serveUi("ui", { authenticated: true })           // pkg/ui/** at /..., index.html at /
 *   http.bind("/api", { authenticated: true, localOnly: false })
 *   http.bindWebSocket("/updates", { authenticated: true, extension: false })
 *   const m = awaitMessage()
 *   if (m.kind === "request" && http.isHttpServer(m.source)) {
 *     const r = http.parseRequest(m.request.body)
 *     if (r.kind === "http" && r.path === "/api") http.respond(200, { "Content-Type": "application/json" }, { json: { ok: true } })
 *   }
 *
 * Every action awaits http-server's `{"Ok": null}` (5 s by default), so once `bind`
 * returns the path is live. Throws `SendFailed` (no http-server, or no answer in time),
 * `HttpServerRefused` (`{"Err": ...}`), `BadBody` (any other answer) and, for `serveUi`,
 * `VfsFailed`.
 */
import * as wit from "kinode:process/standard@1.0.0"
import type { Address } from "kinode:process/standard@1.0.0"
import { processIdText } from "./address.ts"
import { BadBody, HttpServerRefused, VfsFailed } from "./errors.ts"
import { type Body, call, json, response, send, toBytes } from "./message.ts"

export const HTTP_SERVER = "http-server:distro:sys"
export const HOMEPAGE = "homepage:homepage:sys"
const VFS = "vfs:distro:sys"

/** Seconds an action waits for http-server (or vfs) to answer, unless told otherwise. */
export const DEFAULT_TIMEOUT = 5

export type WsMessageType = "Text" | "Binary" | "Ping" | "Pong" | "Close"

/** What http-server tells the app about an HTTP request (serde's field names). */
export interface IncomingHttpRequest {
  readonly source_socket_addr: string | null
  readonly method: string
  /** `http://<host><path>`, without the query. */
  readonly url: string
  /** The bound path that matched, with our process id in front. */
  readonly bound_path: string
  readonly headers: Record<string, string>
  readonly url_params: Record<string, string>
  readonly query_params: Record<string, string>
}

/** A request from http-server, decoded by `parseRequest`. */
export type ServerRequest =
  | {
    readonly kind: "http"
    readonly method: string
    /** The bound path as the app bound it (`/api`), i.e. without `/<process id>`. */
    readonly path: string
    readonly request: IncomingHttpRequest
    /** The HTTP body (the message's blob; empty without one). */
    readonly body: Uint8Array
  }
  | { readonly kind: "ws-open"; readonly path: string; readonly channelId: number }
  | { readonly kind: "ws-push"; readonly channelId: number; readonly messageType: WsMessageType; readonly data: Uint8Array }
  | { readonly kind: "ws-close"; readonly channelId: number }

export interface BindOptions {
  /** Needs the node's login cookie (else http-server answers with the login page). */
  readonly authenticated: boolean
  /** Only loopback clients (others get 403). */
  readonly localOnly: boolean
  /** Serve the blob sent with the bind for GET (use `bindStatic`, which sends one). */
  readonly cache?: boolean
  /** Seconds to wait for http-server; default `DEFAULT_TIMEOUT`. */
  readonly timeout?: number
}

export interface StaticOptions {
  readonly authenticated: boolean
  readonly localOnly?: boolean
  readonly timeout?: number
}

export interface WebSocketOptions {
  readonly authenticated: boolean
  /** Kinode's extension protocol (MessagePack frames, loopback clients only). */
  readonly extension: boolean
  readonly timeout?: number
}

const httpServer = (): Address => ({ node: wit.our().node, process: { processName: "http-server", packageName: "distro", publisherNode: "sys" } })

const nameOf = (action: object): string => Object.keys(action)[0] ?? "?"

/** Sends one action to http-server and waits for `{"Ok": null}`. */
const act = (action: object, path: string, options: { timeout?: number; blob?: Uint8Array; mime?: string } = {}): void => {
  const { response: r } = call(httpServer(), { json: action }, {
    timeout: options.timeout ?? DEFAULT_TIMEOUT,
    ...(options.blob === undefined ? {} : { blob: options.blob }),
    ...(options.mime === undefined ? {} : { mime: options.mime })
  })
  const answer = json<unknown>(r.body)
  if (typeof answer === "object" && answer !== null) {
    if ("Ok" in answer) return
    if ("Err" in answer) throw new HttpServerRefused(nameOf(action), path, (answer as { Err: unknown }).Err)
  }
  throw new BadBody(JSON.stringify(answer), `expected {"Ok": null} or {"Err": ...} from ${HTTP_SERVER}`)
}

/** Binds `path`: its requests come to us as `{Http}` requests. */
export const bind = (path: string, options: BindOptions): void =>
  act({ Bind: { path, authenticated: options.authenticated, local_only: options.localOnly, cache: options.cache ?? false } }, path, options)

/** Binds `path` to fixed content that http-server serves for GET with `Content-Type: mime`. */
export const bindStatic = (path: string, bytes: Uint8Array, mime: string, options: StaticOptions): void =>
  act(
    { Bind: { path, authenticated: options.authenticated, local_only: options.localOnly ?? false, cache: true } },
    path,
    { ...options, blob: bytes, mime }
  )

/** Binds `path` on the app's own subdomain (`<package>-<publisher>.<host>`), always authenticated. */
export const secureBind = (path: string, options: { readonly cache?: boolean; readonly timeout?: number } = {}): void =>
  act({ SecureBind: { path, cache: options.cache ?? false } }, path, options)

/** Removes a binding (HTTP or, with `webSocket: true`, WebSocket); its path answers 404 again. */
export const unbind = (path: string, options: { readonly webSocket?: boolean; readonly timeout?: number } = {}): void =>
  act(options.webSocket === true ? { WebSocketUnbind: { path } } : { Unbind: { path } }, path, options)

/** Accepts WebSocket connections at `path`; they arrive as `ws-open`, `ws-push`, `ws-close`. */
export const bindWebSocket = (path: string, options: WebSocketOptions): void =>
  act({ WebSocketBind: { path, authenticated: options.authenticated, extension: options.extension } }, path, options)

/** `bindWebSocket` on the app's own subdomain (see `secureBind`). */
export const secureBindWebSocket = (path: string, options: { readonly extension: boolean; readonly timeout?: number }): void =>
  act({ WebSocketSecureBind: { path, extension: options.extension } }, path, options)

const MIME: Record<string, string> = {
  html: "text/html; charset=utf-8",
  htm: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json",
  map: "application/json",
  txt: "text/plain; charset=utf-8",
  md: "text/markdown; charset=utf-8",
  xml: "application/xml",
  svg: "image/svg+xml",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  ico: "image/x-icon",
  woff: "font/woff",
  woff2: "font/woff2",
  ttf: "font/ttf",
  wasm: "application/wasm",
  pdf: "application/pdf"
}

/** The MIME type of a file name, by extension (`application/octet-stream` if unknown). */
export const mimeOf = (file: string): string => {
  const dot = file.lastIndexOf(".")
  return (dot < 0 ? undefined : MIME[file.slice(dot + 1).toLowerCase()]) ?? "application/octet-stream"
}

/** One vfs request; the JSON answer, or throws `VfsFailed`. */
const vfs = (path: string, action: string, timeout: number): unknown => {
  const self = wit.our()
  const { response: r } = call({ node: self.node, process: { processName: "vfs", packageName: "distro", publisherNode: "sys" } }, {
    json: { path, action }
  }, { timeout })
  const answer = json<unknown>(r.body)
  if (typeof answer === "object" && answer !== null && "Err" in answer) throw new VfsFailed(action, path, (answer as { Err: unknown }).Err)
  return answer
}

interface DirEntry {
  readonly path: string
  readonly file_type: string
}

/**
 * Serves every file under our package's `pkg/<directory>` (read through `vfs:distro:sys`)
 * as static content at `/<path relative to the directory>`, and `index.html` also at
 * `/`. Returns the bound paths. Needs messaging to vfs and http-server.
 */
export const serveUi = (directory: string, options: StaticOptions): Array<string> => {
  const timeout = options.timeout ?? DEFAULT_TIMEOUT
  const self = wit.our().process
  // vfs names entries relative to its root, without the leading `/`.
  const root = `${self.packageName}:${self.publisherNode}/pkg/${directory.replace(/^\/+|\/+$/g, "")}`
  const bound: Array<string> = []
  const queue = [root]
  while (queue.length > 0) {
    const dir = queue.shift()!
    const answer = vfs(`/${dir}`, "ReadDir", timeout) as { ReadDir?: Array<DirEntry> }
    if (!Array.isArray(answer.ReadDir)) throw new BadBody(JSON.stringify(answer), `expected {"ReadDir": [...]} from ${VFS}`)
    for (const entry of [...answer.ReadDir].sort((a, b) => (a.path < b.path ? -1 : 1))) {
      if (entry.file_type === "Directory") queue.push(entry.path)
      if (entry.file_type !== "File") continue
      vfs(`/${entry.path}`, "Read", timeout)
      const bytes = wit.getBlob()?.bytes ?? new Uint8Array()
      const rel = entry.path.slice(root.length)
      const mime = mimeOf(rel)
      const paths = rel === "/index.html" ? ["/", rel] : [rel]
      for (const p of paths) {
        bindStatic(p, bytes, mime, options)
        bound.push(p)
      }
    }
  }
  return bound
}

/** Whether a message comes from our node's http-server (check before trusting `parseRequest`). */
export const isHttpServer = (source: Address): boolean =>
  source.node === wit.our().node && processIdText(source.process) === HTTP_SERVER

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

/**
 * Decodes the body of a request from http-server; the HTTP body or WebSocket frame is
 * the blob of the message being handled (call this right after `awaitMessage`).
 * Throws `BadBody` for anything else.
 */
export const parseRequest = (bytes: Uint8Array): ServerRequest => {
  const v = json<unknown>(bytes)
  const blob = () => wit.getBlob()?.bytes ?? new Uint8Array()
  if (isRecord(v)) {
    if (isRecord(v["Http"]) && typeof v["Http"]["method"] === "string" && typeof v["Http"]["bound_path"] === "string") {
      const request = v["Http"] as unknown as IncomingHttpRequest
      const prefix = `/${processIdText(wit.our().process)}`
      const bound = request.bound_path.startsWith(prefix) ? request.bound_path.slice(prefix.length) : request.bound_path
      return { kind: "http", method: request.method, path: bound === "" ? "/" : bound, request, body: blob() }
    }
    const open = v["WebSocketOpen"]
    if (isRecord(open) && typeof open["path"] === "string" && typeof open["channel_id"] === "number") {
      return { kind: "ws-open", path: open["path"], channelId: open["channel_id"] }
    }
    const push = v["WebSocketPush"]
    if (isRecord(push) && typeof push["channel_id"] === "number" && typeof push["message_type"] === "string") {
      return { kind: "ws-push", channelId: push["channel_id"], messageType: push["message_type"] as WsMessageType, data: blob() }
    }
    if (typeof v["WebSocketClose"] === "number") return { kind: "ws-close", channelId: v["WebSocketClose"] }
  }
  throw new BadBody(JSON.stringify(v), "expected {\"Http\"}, {\"WebSocketOpen\"}, {\"WebSocketPush\"} or {\"WebSocketClose\"}")
}

/** Answers the `{Http}` request being handled: status and headers, `body` as the HTTP body. */
export const respond = (status: number, headers: Record<string, string> = {}, body: Body = new Uint8Array()): void =>
  wit.sendResponse(response({ json: { status, headers } }), { mime: undefined, bytes: toBytes(body) })

/** Sends a frame to a WebSocket client (fire-and-forget: an unknown channel is ignored). */
export const wsPush = (channelId: number, messageType: "Text" | "Binary", data: Body): void =>
  send(httpServer(), { json: { WebSocketPush: { channel_id: channelId, message_type: messageType } } }, { blob: toBytes(data) })

/** Closes a client's WebSocket (fire-and-forget). */
export const wsClose = (channelId: number): void => send(httpServer(), { json: { WebSocketClose: channelId } })

/**
 * The open WebSocket channels of the app, by bound path, kept from `ws-open` /
 * `ws-close` (as `process_lib`'s `HttpServer` does): feed it every parsed request.
 */
export const wsChannels = () => {
  const byPath = new Map<string, Set<number>>()
  return {
    /** Records opens and closes; returns whether the request was one. */
    track: (r: ServerRequest): boolean => {
      if (r.kind === "ws-open") {
        const set = byPath.get(r.path) ?? new Set<number>()
        set.add(r.channelId)
        byPath.set(r.path, set)
        return true
      }
      if (r.kind === "ws-close") {
        for (const set of byPath.values()) set.delete(r.channelId)
        return true
      }
      return false
    },
    ids: (path: string): Array<number> => [...(byPath.get(path) ?? [])],
    /** Pushes one frame to every open channel of `path`. */
    pushAll: (path: string, messageType: "Text" | "Binary", data: Body): void => {
      const bytes = toBytes(data)
      for (const id of byPath.get(path) ?? []) wsPush(id, messageType, bytes)
    }
  }
}

export type WsChannels = ReturnType<typeof wsChannels>

/**
 * Puts a tile on the node's homepage (`homepage:homepage:sys`, Kinode's `Add`): `path`
 * is where it links, e.g. `/counter:counter:sys/`. Fire-and-forget; needs messaging to
 * the homepage.
 */
export const homepageAdd = (label: string, path: string, options: { readonly icon?: string; readonly widget?: string } = {}): void =>
  send({ node: wit.our().node, process: { processName: "homepage", packageName: "homepage", publisherNode: "sys" } }, {
    json: { Add: { label, icon: options.icon ?? null, path, widget: options.widget ?? null } }
  })
