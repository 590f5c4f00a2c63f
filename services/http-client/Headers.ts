/**
 * Headers across the module's edge, as Kinode's `http-client` treats them:
 * - outgoing: a name that is not an HTTP token or a value that is not visible ASCII (or
 *   tab) is skipped in silence (Kinode's `HeaderName::from_bytes`/`HeaderValue::from_str`
 *   filter; Kinode would also send a non-ASCII value's UTF-8 bytes, which we skip).
 *   Names are lower-cased; of two names differing only in case the later wins.
 *   Framing and connection headers are skipped as well: the client computes them from
 *   the blob and its connection pool (undici refuses some of them outright).
 * - incoming: names Pascal-Cased per `-`-separated word (`content-type` →
 *   `Content-Type`), one value per name (the last, as Kinode's `HashMap` insert keeps),
 *   and a value that is not visible ASCII becomes `""` (Kinode's `to_str().unwrap_or_default()`).
 */
import type { HeaderMap } from "./Protocol.ts"

const token = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const visibleAscii = /^[\t\x20-\x7e]*$/

/** Headers the client sets itself from the body and its connections. */
const managed = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "expect", "content-length", "te", "proxy-connection"])

export const isToken = (s: string): boolean => token.test(s)

/** The headers to send, as `[name, value]` pairs (lower-case names, no duplicates). */
export const outgoing = (headers: HeaderMap): Array<readonly [string, string]> => {
  const out = new Map<string, string>()
  for (const [name, value] of Object.entries(headers)) {
    if (!token.test(name) || !visibleAscii.test(value)) continue
    const lower = name.toLowerCase()
    if (managed.has(lower)) continue
    out.delete(lower)
    out.set(lower, value)
  }
  return [...out]
}

/** `content-type` → `Content-Type` (Kinode's `to_pascal_case`). */
export const pascalCase = (name: string): string =>
  name.split("-").map((w) => w.length === 0 ? w : w[0]!.toUpperCase() + w.slice(1)).join("-")

/** A response's headers as Kinode reports them. */
export const incoming = (headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>): HeaderMap => {
  const out = new Map<string, string>()
  for (const [name, raw] of Object.entries(headers)) {
    if (raw === undefined || name.startsWith(":")) continue
    const value = typeof raw === "string" ? raw : raw[raw.length - 1] ?? ""
    out.set(pascalCase(name), visibleAscii.test(value) ? value : "")
  }
  // fromEntries defines own properties, so a header named `__proto__` stays a header.
  return Object.fromEntries(out)
}
