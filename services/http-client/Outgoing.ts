/**
 * One outgoing HTTP exchange over undici: Kinode's checks in Kinode's order (method,
 * URL, version, then building), the allow-list, redirects, and a bounded body.
 *
 * - Method: any HTTP token (extension methods included, case kept), else `BadMethod`.
 * - URL: WHATWG-parsed, else `BadUrl`; only http/https, else `BuildRequestFailed`.
 *   Credentials in the URL become a Basic `Authorization` header, as reqwest does.
 * - Version → connection pool: `HTTP/2.0` speaks HTTP/2 (ALPN over TLS, prior
 *   knowledge (h2c) over plain http); `HTTP/0.9|1.0|1.1` go out as HTTP/1.1 (undici
 *   writes no other request line); `HTTP/3.0` and none negotiate (h2 if a TLS server
 *   offers it, else 1.1). Anything else is `BadVersion`.
 * - Redirects (301/302/303/307/308 with a parseable `Location`) are followed up to 10
 *   times, as reqwest's default policy: 301/302/303 turn into a bodiless GET (HEAD
 *   stays), 307/308 keep method and body, and a hop to another origin drops
 *   credentials headers. Every hop is checked against the allow-list.
 * - The response body is read up to a limit given by the caller (what fits a kernel
 *   message); a larger one is cut off: `ExecuteRequestFailed`.
 *
 * Interrupting the effect (the caller's timeout) aborts the request and the body.
 */
import { Effect, type Scope } from "effect"
import { Agent, type Dispatcher, request } from "undici"
import * as AllowList from "./AllowList.ts"
import * as Headers from "./Headers.ts"
import { type HeaderMap, HttpClientFailure, type OutgoingHttpRequest } from "./Protocol.ts"

/** Which pool carries a request. */
export type Protocol = "negotiate" | "http1" | "http2"

/** The connection pools, one per protocol choice. */
export interface Pools {
  readonly negotiate: Dispatcher
  readonly http1: Dispatcher
  readonly http2: Dispatcher
}

/** reqwest's default redirect limit. */
export const MAX_REDIRECTS = 10

const REDIRECTS = new Set([301, 302, 303, 307, 308])

/** Headers reqwest removes when a redirect leaves the origin. */
const CREDENTIALS = new Set(["authorization", "cookie", "cookie2", "proxy-authorization", "www-authenticate"])
/** Headers describing a body, removed when a redirect drops it. */
const BODY_HEADERS = new Set(["content-type", "content-encoding", "content-length", "transfer-encoding"])

/**
 * The pools, closed with the scope. Our own deadline (the caller's timeout) bounds each
 * request, so undici's own 300 s header/body timers are off.
 */
export const pools: Effect.Effect<Pools, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    const common = { headersTimeout: 0, bodyTimeout: 0 }
    // `useH2c` (prior knowledge on plain http) is read by the pool at the top level.
    const h2: Agent.Options & { readonly useH2c: boolean } = { ...common, allowH2: true, useH2c: true }
    return {
      negotiate: new Agent({ ...common, allowH2: true }),
      http1: new Agent({ ...common, allowH2: false }),
      http2: new Agent(h2)
    } satisfies Pools
  }),
  (p) =>
    Effect.all([p.negotiate, p.http1, p.http2].map((d) =>
      Effect.tryPromise(() => d.destroy()).pipe(Effect.catch(() => Effect.void))
    ), { discard: true })
)

const fail = (error: HttpClientFailure["error"]) => Effect.fail(new HttpClientFailure({ error }))
const executeFailed = (reason: string) => fail({ ExecuteRequestFailed: reason })
const buildFailed = (reason: string) => fail({ BuildRequestFailed: reason })

/** A sentence for a foreign error (undici's, a socket's): message, else code, else the value. */
export const describe = (e: unknown): string => {
  if (e instanceof AggregateError && e.errors.length > 0) return e.errors.map(describe).join("; ")
  if (e instanceof Error) {
    const code = (e as { readonly code?: unknown }).code
    return e.message !== "" ? e.message : typeof code === "string" ? code : e.name
  }
  return String(e)
}

/** A request that passed Kinode's checks, ready to send. */
export interface Prepared {
  readonly method: string
  readonly url: URL
  readonly protocol: Protocol
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: Uint8Array | undefined
}

const protocolOf = (version: string | null | undefined): Protocol | undefined => {
  switch (version) {
    case undefined:
    case null:
    case "HTTP/3.0":
      return "negotiate"
    case "HTTP/0.9":
    case "HTTP/1.0":
    case "HTTP/1.1":
      return "http1"
    case "HTTP/2.0":
      return "http2"
    default:
      return undefined
  }
}

const basicAuth = (url: URL): string =>
  `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}`

/** Kinode's checks, in its order: method, URL, version, then building (scheme, allow-list). */
export const prepare = (
  req: OutgoingHttpRequest,
  body: Uint8Array | undefined,
  allow: AllowList.AllowList | undefined
): Effect.Effect<Prepared, HttpClientFailure> => {
  if (!Headers.isToken(req.method)) return fail({ BadMethod: { method: req.method } })
  let url: URL
  try {
    url = new URL(req.url)
  } catch {
    return fail({ BadUrl: { url: req.url } })
  }
  const protocol = protocolOf(req.version)
  if (protocol === undefined) return fail({ BadVersion: { version: req.version! } })
  if (url.protocol !== "http:" && url.protocol !== "https:") return buildFailed(`URL scheme is not allowed: ${url.protocol}`)
  const refused = AllowList.refusal(allow, url)
  if (refused !== undefined) return buildFailed(refused)
  let headers = Headers.outgoing(req.headers)
  if (url.username !== "" || url.password !== "") {
    headers = [...headers.filter(([n]) => n !== "authorization"), ["authorization", basicAuth(url)]]
    url = new URL(url.href)
    url.username = ""
    url.password = ""
  }
  return Effect.succeed({ method: req.method, url, protocol, headers, body: body !== undefined && body.byteLength > 0 ? body : undefined })
}

/** What came back: status, Kinode's header map, the body. */
export interface Answer {
  readonly status: number
  readonly headers: HeaderMap
  readonly body: Uint8Array
}

/** undici refuses some requests before sending: those are build failures. */
const isBuildError = (e: unknown): boolean => {
  const code = (e as { readonly code?: unknown } | null)?.code
  return code === "UND_ERR_INVALID_ARG" || code === "UND_ERR_NOT_SUPPORTED"
}

const send = (pool: Dispatcher, url: URL, method: string, headers: ReadonlyArray<readonly [string, string]>, body: Uint8Array | undefined) =>
  Effect.tryPromise({
    try: (signal) => request(url, { dispatcher: pool, method, headers: headers.flat(), body: body ?? null, signal }),
    catch: (e) => new HttpClientFailure({ error: isBuildError(e) ? { BuildRequestFailed: describe(e) } : { ExecuteRequestFailed: describe(e) } })
  })

/** Drops a body we will not read (destroying emits an abort error: heard, not thrown). */
const discard = (body: Dispatcher.ResponseData["body"]) => {
  body.on("error", () => {})
  body.destroy()
}

/** Reads a body up to `limit` bytes; more is refused, and the body destroyed. */
const readBody = (body: Dispatcher.ResponseData["body"], declared: number | undefined, limit: number) =>
  Effect.callback<Uint8Array, HttpClientFailure>((resume) => {
    const tooLarge = (size: string) =>
      executeFailed(`response body ${size} is larger than the ${limit} bytes a message can carry`)
    if (declared !== undefined && declared > limit) {
      discard(body)
      return resume(tooLarge(`(${declared} bytes declared)`))
    }
    const chunks: Array<Buffer> = []
    let size = 0
    body.on("data", (chunk: Buffer) => {
      size += chunk.byteLength
      if (size > limit) {
        discard(body)
        return resume(tooLarge(`(over ${limit} bytes read)`))
      }
      chunks.push(chunk)
    })
    body.on("end", () => resume(Effect.succeed(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))))
    body.on("error", (e) => resume(executeFailed(`reading the response body failed: ${describe(e)}`)))
    return Effect.sync(() => discard(body))
  })

const lastValue = (v: string | ReadonlyArray<string> | undefined): string | undefined =>
  typeof v === "string" ? v : v === undefined ? undefined : v[v.length - 1]

const sameOrigin = (a: URL, b: URL) => a.protocol === b.protocol && a.host === b.host

/**
 * Sends a prepared request, following redirects, and reads the body. `limit` says how
 * many body bytes fit beside the reply for this status and headers.
 */
export const perform = (
  pools: Pools,
  allow: AllowList.AllowList | undefined,
  prepared: Prepared,
  limit: (status: number, headers: HeaderMap) => number
): Effect.Effect<Answer, HttpClientFailure> =>
  Effect.gen(function*() {
    const pool = pools[prepared.protocol]
    let { body, headers, method, url } = prepared
    for (let hop = 0; ; hop++) {
      const res = yield* send(pool, url, method, headers, body)
      const location = lastValue(res.headers["location"])
      const next = REDIRECTS.has(res.statusCode) && location !== undefined ? URL.parse(location, url) : null
      if (next !== null) {
        discard(res.body)
        if (hop >= MAX_REDIRECTS) return yield* executeFailed(`too many redirects (more than ${MAX_REDIRECTS}), the last to ${next.href}`)
        if (next.protocol !== "http:" && next.protocol !== "https:") {
          return yield* executeFailed(`redirect to ${next.href} refused: URL scheme is not allowed`)
        }
        const refused = AllowList.refusal(allow, next)
        if (refused !== undefined) return yield* executeFailed(`redirect to ${next.href} refused: ${refused}`)
        if (res.statusCode <= 303) {
          body = undefined
          headers = headers.filter(([n]) => !BODY_HEADERS.has(n))
          if (method !== "GET" && method !== "HEAD") method = "GET"
        }
        if (!sameOrigin(url, next)) headers = headers.filter(([n]) => !CREDENTIALS.has(n))
        url = next
        continue
      }
      const answerHeaders = Headers.incoming(res.headers)
      const declared = lastValue(res.headers["content-length"])
      const bytes = yield* readBody(res.body, declared === undefined ? undefined : Number(declared), limit(res.statusCode, answerHeaders))
      return { status: res.statusCode, headers: answerHeaders, body: bytes }
    }
  })
