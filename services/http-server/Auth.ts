/**
 * The login cookie (kinode-semantics §9): an HS256 JWT signed with the keyfile's
 * `jwt_secret`, claims `{username, subdomain, expiration}`, in the cookie
 * `kinode-auth_<node>` (or `kinode-auth_<node>@<subdomain>` for secure binds).
 *
 * Checking a token is an HMAC and a JSON parse; a page load carries the cookie on every
 * request, so tokens that passed are remembered (bounded) until they expire.
 */
import { createHmac, timingSafeEqual } from "node:crypto"

/** Kinode's cookie lifetime: 26 weeks. */
export const COOKIE_SECONDS = 26 * 7 * 24 * 3600

export interface Claims {
  readonly username: string
  readonly subdomain: string | null
  /** Unix seconds. */
  readonly expiration: number
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url")
const HEADER = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))

/** Kinode keeps `[A-Za-z0-9-:.]` of a subdomain given at login. */
export const cleanSubdomain = (s: string): string => s.replace(/[^A-Za-z0-9\-:.]/g, "")

export const cookieName = (node: string, subdomain: string | null): string =>
  subdomain === null ? `kinode-auth_${node}` : `kinode-auth_${node}@${subdomain}`

/** A secure bind's subdomain label: `<package>-<publisher>`, non-alphanumerics as `-`. */
export const subdomainLabel = (packageName: string, publisher: string): string =>
  `${packageName}-${publisher}`.replace(/[^A-Za-z0-9]/g, "-")

/** The first label of the Host header (secure binds compare it to the app's subdomain). */
export const hostLabel = (host: string | undefined): string => (host ?? "").split(":")[0]!.split(".")[0]!

/** Cookie header → its pairs (Kinode splits on `; ` and `=`). */
export const parseCookies = (header: string | undefined): Map<string, string> => {
  const out = new Map<string, string>()
  if (header === undefined) return out
  for (const part of header.split(";")) {
    const i = part.indexOf("=")
    if (i <= 0) continue
    out.set(part.slice(0, i).trim(), part.slice(i + 1).trim())
  }
  return out
}

const MAX_REMEMBERED = 1024

export const makeAuth = (node: string, secret: Uint8Array, now: () => number = () => Date.now() / 1000) => {
  const key = Buffer.from(secret)
  const mac = (data: string) => createHmac("sha256", key).update(data).digest()
  /** token → claims, for tokens whose signature and node already checked out. */
  const remembered = new Map<string, Claims>()

  const sign = (subdomain: string | null): { readonly token: string; readonly claims: Claims } => {
    const claims: Claims = { username: node, subdomain, expiration: Math.floor(now()) + COOKIE_SECONDS }
    const body = `${HEADER}.${b64url(JSON.stringify(claims))}`
    return { token: `${body}.${mac(body).toString("base64url")}`, claims }
  }

  /** The claims of a token signed by this node's secret for this node, or undefined. */
  const verify = (token: string): Claims | undefined => {
    const known = remembered.get(token)
    if (known !== undefined) return known.expiration > now() ? known : undefined
    const parts = token.split(".")
    if (parts.length !== 3) return undefined
    const [h, p, s] = parts as [string, string, string]
    const expected = mac(`${h}.${p}`)
    const given = Buffer.from(s, "base64url")
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
    let header: unknown
    let claims: unknown
    try {
      header = JSON.parse(Buffer.from(h, "base64url").toString("utf8"))
      claims = JSON.parse(Buffer.from(p, "base64url").toString("utf8"))
    } catch {
      return undefined
    }
    if (typeof header !== "object" || header === null || (header as { alg?: unknown }).alg !== "HS256") return undefined
    if (typeof claims !== "object" || claims === null) return undefined
    const c = claims as Record<string, unknown>
    if (c["username"] !== node || typeof c["expiration"] !== "number") return undefined
    const subdomain = c["subdomain"] ?? null
    if (subdomain !== null && typeof subdomain !== "string") return undefined
    const ok: Claims = { username: node, subdomain, expiration: c["expiration"] }
    if (ok.expiration <= now()) return undefined
    if (remembered.size >= MAX_REMEMBERED) remembered.delete(remembered.keys().next().value!)
    remembered.set(token, ok)
    return ok
  }

  /** Whether the request's cookies authenticate it (for `subdomain`: that app's cookie). */
  const authenticated = (cookieHeader: string | undefined, subdomain: string | null): boolean => {
    if (cookieHeader === undefined) return false
    const token = parseCookies(cookieHeader).get(cookieName(node, subdomain))
    if (token === undefined) return false
    const claims = verify(token)
    return claims !== undefined && claims.subdomain === subdomain
  }

  /** `Set-Cookie` value for a fresh login. */
  const setCookie = (subdomain: string | null): string => {
    const { token } = sign(subdomain)
    return `${cookieName(node, subdomain)}=${token}; Path=/; Max-Age=${COOKIE_SECONDS}; HttpOnly; SameSite=Lax`
  }

  const clearCookie = (subdomain: string | null): string =>
    `${cookieName(node, subdomain)}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax`

  return { sign, verify, authenticated, setCookie, clearCookie }
}
export type Auth = ReturnType<typeof makeAuth>
