/**
 * The provider table: per chain id, an ordered list of URL providers (tried first to
 * last; the one that answers moves to the front, one that fails moves to the back) and
 * the node providers of the saved configs (kept, saved, listed, never used: see the
 * README).
 *
 * A URL provider is reached by its scheme:
 * - `http://` / `https://`: requests over HTTP; subscriptions over the WebSocket at the
 *   same host, port and path (`ws://` / `wss://`), which is where anvil, geth, reth and
 *   most hosted providers serve them.
 * - `ws://` / `wss://`: requests and subscriptions over one socket (Kinode's only kind).
 * - anything else is kept in the config but never answers (printed when added).
 */
import * as HttpRpc from "./HttpRpc.ts"
import type { KnsUpdate, ProviderConfig } from "./Protocol.ts"
import { ProviderDown } from "./RpcErrors.ts"
import * as SocketRpc from "./SocketRpc.ts"

export interface UrlProvider {
  readonly url: string
  readonly trusted: boolean
  /** `method(params)` within `timeoutMillis`: `done` gets the outcome once; the cancel drops it. */
  readonly send: SocketRpc.Send
  /** The socket subscriptions go over; undefined for a URL that is not http(s) or ws(s). */
  readonly socket: SocketRpc.SocketLink | undefined
  readonly close: () => void
}

interface NodeProvider {
  readonly trusted: boolean
  readonly kns_update: KnsUpdate
  readonly use_as_provider: boolean
}

interface ChainProviders {
  urls: Array<UrlProvider>
  nodes: Array<NodeProvider>
}

/** What the module can do with a URL: `http`, `ws`, or nothing. */
export const schemeOf = (url: string): "http" | "ws" | undefined => {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return undefined
  }
  if (u.protocol === "http:" || u.protocol === "https:") return "http"
  if (u.protocol === "ws:" || u.protocol === "wss:") return "ws"
  return undefined
}

/** The WebSocket URL at the same host, port and path as an HTTP one. */
export const socketTwin = (url: string): string => {
  const u = new URL(url)
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:"
  return u.href
}

const makeUrlProvider = (url: string, trusted: boolean, socket: SocketRpc.SocketOptions): UrlProvider => {
  switch (schemeOf(url)) {
    case "http": {
      const http = HttpRpc.make(url)
      const link = SocketRpc.make(socketTwin(url), socket)
      return { url, trusted, send: http.send, socket: link, close: link.close }
    }
    case "ws": {
      const link = SocketRpc.make(url, socket)
      return { url, trusted, send: link.send, socket: link, close: link.close }
    }
    case undefined: {
      const down = new ProviderDown({ url, reason: "not an http(s):// or ws(s):// URL" })
      return {
        url,
        trusted,
        send: (_method, _params, _timeoutMillis, done) => {
          done({ ok: false, error: down })
          return () => {}
        },
        socket: undefined,
        close: () => {}
      }
    }
  }
}

const chainKey = (chainId: bigint): string => chainId.toString()

export class ProviderTable {
  private readonly chains = new Map<string, ChainProviders>()
  private readonly socket: SocketRpc.SocketOptions

  constructor(socket: SocketRpc.SocketOptions) {
    this.socket = socket
  }

  private entry(chainId: bigint): ChainProviders {
    const key = chainKey(chainId)
    let e = this.chains.get(key)
    if (e === undefined) this.chains.set(key, e = { urls: [], nodes: [] })
    return e
  }

  /**
   * Adds at the front of its chain's list, replacing an entry with the same URL (node
   * name); a URL already present keeps its open socket (its subscriptions stay up).
   */
  add(config: ProviderConfig): void {
    const e = this.entry(config.chain_id)
    const p = config.provider
    if ("RpcUrl" in p) {
      const existing = e.urls.find((u) => u.url === p.RpcUrl)
      e.urls = e.urls.filter((u) => u.url !== p.RpcUrl)
      e.nodes = e.nodes.filter((n) => n.kns_update.name !== p.RpcUrl)
      const provider = existing !== undefined && existing.trusted === config.trusted
        ? existing
        : existing !== undefined
        ? { ...existing, trusted: config.trusted }
        : makeUrlProvider(p.RpcUrl, config.trusted, this.socket)
      e.urls.unshift(provider)
    } else {
      const name = p.Node.kns_update.name
      for (const u of e.urls.filter((u) => u.url === name)) u.close()
      e.urls = e.urls.filter((u) => u.url !== name)
      e.nodes = e.nodes.filter((n) => n.kns_update.name !== name)
      e.nodes.unshift({ trusted: config.trusted, kns_update: p.Node.kns_update, use_as_provider: p.Node.use_as_provider })
    }
  }

  /** Removes URL providers with this URL and node providers with this name from the chain. */
  remove(chainId: bigint, name: string): boolean {
    const e = this.chains.get(chainKey(chainId))
    if (e === undefined) return false
    for (const u of e.urls.filter((u) => u.url === name)) u.close()
    e.urls = e.urls.filter((u) => u.url !== name)
    e.nodes = e.nodes.filter((n) => n.kns_update.name !== name)
    return true
  }

  /** Replaces every provider; sockets of URLs that stay are kept. */
  set(configs: ReadonlyArray<ProviderConfig>): void {
    const old = [...this.chains.entries()]
    this.chains.clear()
    // Reuse the open providers of URLs that stay on the same chain.
    const keep = new Map<string, UrlProvider>()
    for (const [key, e] of old) for (const u of e.urls) keep.set(`${key} ${u.url}`, u)
    for (const config of [...configs].reverse()) {
      const p = config.provider
      if ("RpcUrl" in p) {
        const reused = keep.get(`${chainKey(config.chain_id)} ${p.RpcUrl}`)
        if (reused !== undefined) {
          keep.delete(`${chainKey(config.chain_id)} ${p.RpcUrl}`)
          const e = this.entry(config.chain_id)
          e.urls = e.urls.filter((u) => u.url !== p.RpcUrl)
          e.urls.unshift(reused.trusted === config.trusted ? reused : { ...reused, trusted: config.trusted })
          continue
        }
      }
      this.add(config)
    }
    for (const u of keep.values()) u.close()
  }

  /** The chain's URL providers in the order to try them; undefined when the chain has no entry. */
  urlsFor(chainId: bigint): ReadonlyArray<UrlProvider> | undefined {
    return this.chains.get(chainKey(chainId))?.urls
  }

  /** Moves a provider that answered to the front of its chain's list. */
  promote(chainId: bigint, provider: UrlProvider): void {
    const e = this.chains.get(chainKey(chainId))
    if (e === undefined || e.urls[0] === provider || !e.urls.includes(provider)) return
    e.urls = [provider, ...e.urls.filter((u) => u !== provider)]
  }

  /** Moves a provider that failed to the back of its chain's list. */
  demote(chainId: bigint, provider: UrlProvider): void {
    const e = this.chains.get(chainKey(chainId))
    if (e === undefined || e.urls[e.urls.length - 1] === provider || !e.urls.includes(provider)) return
    e.urls = [...e.urls.filter((u) => u !== provider), provider]
  }

  /** Every provider as saved configs: per chain, URL providers then node providers (Kinode's order). */
  toConfigs(): Array<ProviderConfig> {
    const out: Array<ProviderConfig> = []
    for (const [key, e] of this.chains) {
      const chain_id = BigInt(key)
      for (const u of e.urls) out.push({ chain_id, trusted: u.trusted, provider: { RpcUrl: u.url } })
      for (const n of e.nodes) {
        out.push({ chain_id, trusted: n.trusted, provider: { Node: { kns_update: n.kns_update, use_as_provider: n.use_as_provider } } })
      }
    }
    return out
  }

  closeAll(): void {
    for (const e of this.chains.values()) for (const u of e.urls) u.close()
    this.chains.clear()
  }
}
