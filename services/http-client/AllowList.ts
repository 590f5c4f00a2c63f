/**
 * Restricted mode: the hosts `http-client` may reach (`--http-allow host[:port],...`).
 *
 * An entry is a host name or IP literal (`api.example.com`, `127.0.0.1`, `[::1]`),
 * optionally with a port; without one, any port of that host is allowed. Hosts are
 * compared after WHATWG URL normalisation (lower case, punycode, canonical IPv4), so
 * `API.Example.com` and `api.example.com` are one host, but names are not resolved:
 * `localhost` and `127.0.0.1` are different entries, and `*.example.com` is no pattern.
 * A URL's port is its explicit one or its scheme's default (80 for http/ws, 443 for
 * https/wss).
 */
import { Result } from "effect"

export interface AllowEntry {
  readonly host: string
  /** Undefined: every port. */
  readonly port: number | undefined
}

export type AllowList = ReadonlyArray<AllowEntry>

const entryShape = /^(\[[^\]]*\]|[^:/?#@\s[\]]+)(?::(\d{1,5}))?$/

const normalHost = (host: string): string | undefined => {
  try {
    const u = new URL(`http://${host}/`)
    return u.pathname === "/" && u.username === "" && u.password === "" ? u.hostname : undefined
  } catch {
    return undefined
  }
}

/** Parses `host[:port]` entries; the first bad one is the failure, said in a sentence. */
export const parse = (entries: ReadonlyArray<string>): Result.Result<AllowList, string> => {
  const out: Array<AllowEntry> = []
  for (const raw of entries) {
    const entry = raw.trim()
    const m = entryShape.exec(entry)
    const host = m === null ? undefined : normalHost(m[1]!)
    if (m === null || host === undefined) {
      return Result.fail(`not a host[:port]: ${JSON.stringify(raw)}`)
    }
    const port = m[2] === undefined ? undefined : Number(m[2])
    if (port !== undefined && (port < 1 || port > 65535)) return Result.fail(`port out of range in ${JSON.stringify(raw)}`)
    out.push({ host, port })
  }
  return Result.succeed(out)
}

const defaultPorts: Record<string, number> = { "http:": 80, "https:": 443, "ws:": 80, "wss:": 443 }

/** `host:port` of a URL, as refusals name it. */
export const target = (url: URL): { readonly host: string; readonly port: number; readonly label: string } => {
  const port = url.port === "" ? defaultPorts[url.protocol] ?? 0 : Number(url.port)
  return { host: url.hostname, port, label: `${url.hostname}:${port}` }
}

/** Undefined when `url` may be reached; else the refusal text, `not allowed: <host>:<port>`. */
export const refusal = (list: AllowList | undefined, url: URL): string | undefined => {
  if (list === undefined) return undefined
  const t = target(url)
  for (const e of list) {
    if (e.host === t.host && (e.port === undefined || e.port === t.port)) return undefined
  }
  return `not allowed: ${t.label}`
}
