/**
 * The path table: which process answers which HTTP path and which WebSocket path.
 *
 * An app's path is stored as `/<process id><path>` with a trailing `/` stripped (so
 * `counter:counter:sys` binding `/` owns `/counter:counter:sys`); the homepage's
 * paths are stored as given. Route parameters (`/:id`) and wildcards (`/*rest`) fill
 * `url_params`; matching is find-my-way's radix tree (fastify's router), so a lookup
 * costs the same with 3 bindings or 3,000. Rebinding a path replaces its binding.
 *
 * Lookup (Kinode's order): the full path, else the binding of the path's first segment
 * (an app's root serves its deeper paths, as a single-page UI needs), else nothing.
 */
import FindMyWay from "find-my-way"
import type { LazyLoadBlob } from "../../src/Message.ts"

export const HOMEPAGE = "homepage:homepage:sys"

export interface HttpBinding {
  readonly kind: "http"
  /** The process that answers. */
  readonly process: string
  /** The stored path (`/<process id><path>`). */
  readonly path: string
  readonly authenticated: boolean
  readonly localOnly: boolean
  /** Secure binds: the subdomain label the request's host must start with. */
  readonly secureSubdomain: string | null
  /** Cached static content served for GET without asking the app. */
  readonly static: { readonly body: Buffer; readonly contentType: string } | null
}

export interface WsBinding {
  readonly kind: "ws"
  readonly process: string
  readonly path: string
  readonly authenticated: boolean
  readonly extension: boolean
  readonly secureSubdomain: string | null
}

export interface Found<B> {
  readonly binding: B
  readonly params: Record<string, string>
}

/** The stored form of a path `process` binds. */
export const storedPath = (process: string, path: string): string => {
  const p = path.startsWith("/") ? path : `/${path}`
  const full = process === HOMEPAGE ? p : `/${process}${p}`
  return full.length > 1 && full.endsWith("/") ? full.slice(0, -1) : full
}

/**
 * find-my-way route syntax for a stored path: the colons of the process-id prefix are
 * literal (`::`), colons starting a later segment are parameters, and a `*name`
 * wildcard becomes find-my-way's `*` (its name kept to rename the parameter).
 */
const routeOf = (process: string, stored: string): { readonly route: string; readonly wildcard: string | undefined } => {
  const prefix = process === HOMEPAGE ? "" : `/${process}`
  const rest = stored.slice(prefix.length)
  let wildcard: string | undefined
  const segments = rest.split("/").map((seg) => {
    const star = /^\*(.*)$/.exec(seg)
    if (star !== null) {
      wildcard = star[1] === "" ? "*" : star[1]
      return "*"
    }
    // A colon inside a segment (not at its start) is literal.
    return seg.startsWith(":") ? seg.slice(0, 1) + seg.slice(1).replaceAll(":", "::") : seg.replaceAll(":", "::")
  })
  return { route: prefix.replaceAll(":", "::") + segments.join("/"), wildcard }
}

interface Entry<B> {
  readonly binding: B
  readonly route: string
  readonly wildcard: string | undefined
}

const makeTable = <B extends { readonly process: string; readonly path: string }>() => {
  const router = FindMyWay({ caseSensitive: true, maxParamLength: 2048, ignoreTrailingSlash: true })
  const entries = new Map<string, Entry<B>>()
  const noop = () => undefined

  const set = (binding: B): boolean => {
    const old = entries.get(binding.path)
    if (old !== undefined) router.off("GET", old.route)
    const { route, wildcard } = routeOf(binding.process, binding.path)
    try {
      router.on("GET", route, noop, binding.path)
    } catch {
      // A path find-my-way cannot express (e.g. two wildcards): refuse it, keep the old one.
      if (old !== undefined) router.on("GET", old.route, noop, old.binding.path)
      return false
    }
    entries.set(binding.path, { binding, route, wildcard })
    return true
  }

  const remove = (path: string): boolean => {
    const old = entries.get(path)
    if (old === undefined) return false
    router.off("GET", old.route)
    entries.delete(path)
    return true
  }

  const match = (path: string): Found<B> | undefined => {
    let found: ReturnType<typeof router.find>
    try {
      found = router.find("GET", path)
    } catch {
      return undefined
    }
    if (found === null) return undefined
    const entry = entries.get(found.store as string)
    if (entry === undefined) return undefined
    const params: Record<string, string> = {}
    for (const [k, v] of Object.entries(found.params)) {
      if (v === undefined) continue
      params[k === "*" && entry.wildcard !== undefined ? entry.wildcard : k] = v
    }
    return { binding: entry.binding, params }
  }

  /** Full path, else the first segment's binding. */
  const lookup = (path: string): Found<B> | undefined => {
    const full = match(path)
    if (full !== undefined) return full
    const second = path.indexOf("/", 1)
    if (second < 0) return undefined
    const first = entries.get(path.slice(0, second))
    return first === undefined ? undefined : { binding: first.binding, params: {} }
  }

  return { set, remove, lookup, all: () => Array.from(entries.values(), (e) => e.binding) }
}

export const makeBindings = () => ({ http: makeTable<HttpBinding>(), ws: makeTable<WsBinding>() })
export type Bindings = ReturnType<typeof makeBindings>

/** The blob of a cached bind as served: its bytes and content type (Kinode: mime or `text/plain`). */
export const staticOf = (blob: LazyLoadBlob): { readonly body: Buffer; readonly contentType: string } => ({
  body: Buffer.from(blob.bytes),
  contentType: blob.mime ?? "text/plain"
})
