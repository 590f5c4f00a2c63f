/**
 * Renames exports inside a component binary, for the build (apps/build.ts): a toolchain
 * may claim an export name the world needs (componentize-qjs keeps its start-up entry
 * as `init`, Kinode's entry point), so the app is built under a stand-in name and the
 * names are swapped afterwards. Structural, not textual: only names where exports are
 * bound are touched, and only same-length renames, so no byte moves and no size or
 * offset has to be rewritten.
 */
const leb = (b: Uint8Array, p: number): [number, number] => {
  let r = 0
  let s = 0
  let x: number
  do {
    x = b[p++]!
    r += (x & 0x7f) * 2 ** s
    s += 7
  } while (x & 0x80)
  return [r, p]
}

/** A rename: `from` becomes `to`; `optional` ones may be absent (else absence throws). */
export type ExportRename = readonly [from: string, to: string, optional?: "optional"]

/**
 * Renames a component's functions in a copy, by exact name and only where names are
 * bound, at every level of nesting (componentize-qjs nests its modules in an inner
 * component): export sections (11), the export sections of core modules (1 -> 7) and
 * export aliases (6) that refer to them by name. Renames apply at once (a swap works).
 * Same-length names only, so no size changes. Throws if a required name was never found.
 */
export const renameComponentExports = (bytes: Uint8Array, renames: ReadonlyArray<ExportRename>): Uint8Array => {
  const out = bytes.slice()
  const enc = new TextEncoder()
  const dec = new TextDecoder()
  const map = new Map(renames.map(([from, to]) => [from, to]))
  for (const [from, to] of renames) if (from.length !== to.length) throw new Error("renames must keep the length")
  const seen = new Set<string>()
  /** The name at `p` (LEB length + UTF-8), renamed if mapped; returns the position after it. */
  const name = (p: number): number => {
    const [len, q] = leb(out, p)
    const n = dec.decode(out.subarray(q, q + len))
    const to = map.get(n)
    if (to !== undefined) {
      out.set(enc.encode(to), q)
      seen.add(n)
    }
    return q + len
  }
  const coreExports = (start: number, end: number) => {
    let p = start + 8
    while (p < end) {
      const id = out[p]!
      const [size, q] = leb(out, p + 1)
      if (id === 7) {
        let [n, r] = leb(out, q)
        for (; n > 0; n--) {
          r = name(r)
          r = leb(out, r + 1)[1]
        }
      }
      p = q + size
    }
  }
  const component = (start: number, end: number) => {
    let p = start + 8
    while (p < end) {
      const id = out[p]!
      const [size, q] = leb(out, p + 1)
      if (id === 1) coreExports(q, q + size)
      else if (id === 4) component(q, q + size)
      else if (id === 6) {
        let [n, r] = leb(out, q)
        for (; n > 0; n--) {
          const sort = out[r++]!
          if (sort === 0x00) r++
          const target = out[r++]!
          if (target === 0x02) r = leb(out, leb(out, r)[1])[1]
          else r = name(leb(out, r)[1]) // 0x00 instance export, 0x01 core instance export: idx, name
        }
      } else if (id === 11) {
        let [n, r] = leb(out, q)
        for (; n > 0; n--) {
          if (out[r] !== 0x00) throw new Error("unexpected export name form")
          r = name(r + 1)
          const sort = out[r++]!
          if (sort === 0x00) r++
          r = leb(out, r)[1]
          if (out[r++] === 0x01) r = skipExternDesc(out, r)
        }
      }
      p = q + size
    }
  }
  component(0, out.length)
  for (const [from, , optional] of renames) if (optional === undefined && !seen.has(from)) throw new Error(`no export ${from}`)
  return out
}

/** Skips an externdesc (component binary format). */
const skipExternDesc = (b: Uint8Array, p: number): number => {
  const kind = b[p++]!
  if (kind === 0x00) return leb(b, p + 1)[1] // core module: 0x11 typeidx
  if (kind === 0x03) return b[p] === 0x00 ? leb(b, p + 1)[1] : p + 1 // type bound: eq idx | sub resource
  return leb(b, p)[1] // func, value(type), component, instance: idx
}

