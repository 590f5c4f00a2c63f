/**
 * MessagePack, as much as `net:distro:sys` speaks (kinode-semantics §6.8): nil, bool,
 * ints, floats, strings, bin, arrays and maps; no extension types. Maps decode to
 * objects (keys as strings), bin to `Uint8Array`. Enough for `NetAction` requests and
 * `NetResponse` answers in both rmp-serde's positional form and the map form.
 */
const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

export const encode = (value: unknown): Uint8Array => {
  const out: Array<number> = []
  const u8 = (n: number) => out.push(n & 0xff)
  const u16 = (n: number) => out.push((n >>> 8) & 0xff, n & 0xff)
  const u32 = (n: number) => out.push((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff)
  const length = (n: number, fix: number, fixMax: number, c8: number | undefined, c16: number, c32: number) => {
    if (n <= fixMax) u8(fix | n)
    else if (c8 !== undefined && n < 0x100) out.push(c8, n)
    else if (n < 0x10000) (u8(c16), u16(n))
    else (u8(c32), u32(n))
  }
  const write = (v: unknown): void => {
    if (v === null || v === undefined) return void u8(0xc0)
    if (v === false) return void u8(0xc2)
    if (v === true) return void u8(0xc3)
    if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 2 ** 32) {
      if (v < 0x80) return void u8(v)
      if (v < 0x100) return void out.push(0xcc, v)
      if (v < 0x10000) return void (u8(0xcd), u16(v))
      return void (u8(0xce), u32(v))
    }
    if (typeof v === "number") {
      const b = new DataView(new ArrayBuffer(8))
      b.setFloat64(0, v)
      u8(0xcb)
      for (let i = 0; i < 8; i++) u8(b.getUint8(i))
      return
    }
    if (typeof v === "string") {
      const bytes = utf8.encode(v)
      length(bytes.length, 0xa0, 31, 0xd9, 0xda, 0xdb)
      for (const b of bytes) out.push(b)
      return
    }
    if (ArrayBuffer.isView(v)) {
      const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength)
      if (bytes.length < 0x100) out.push(0xc4, bytes.length)
      else if (bytes.length < 0x10000) (u8(0xc5), u16(bytes.length))
      else (u8(0xc6), u32(bytes.length))
      for (const b of bytes) out.push(b)
      return
    }
    if (Array.isArray(v)) {
      length(v.length, 0x90, 15, undefined, 0xdc, 0xdd)
      for (const x of v) write(x)
      return
    }
    const entries = Object.entries(v as Record<string, unknown>)
    length(entries.length, 0x80, 15, undefined, 0xde, 0xdf)
    for (const [k, x] of entries) (write(k), write(x))
  }
  write(value)
  return Uint8Array.from(out)
}

export class NotMessagePack extends Error {
  readonly _tag = "NotMessagePack"
}

export const decode = (bytes: Uint8Array): unknown => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let at = 0
  const need = (n: number) => {
    if (at + n > bytes.length) throw new NotMessagePack(`truncated at byte ${at}`)
  }
  const u8 = () => (need(1), bytes[at++]!)
  const u16 = () => (need(2), at += 2, view.getUint16(at - 2))
  const u32 = () => (need(4), at += 4, view.getUint32(at - 4))
  const str = (n: number) => (need(n), at += n, fromUtf8.decode(bytes.subarray(at - n, at)))
  const bin = (n: number) => (need(n), at += n, bytes.slice(at - n, at))
  const arr = (n: number): Array<unknown> => Array.from({ length: n }, () => read())
  const map = (n: number): Record<string, unknown> => {
    const o: Record<string, unknown> = {}
    for (let i = 0; i < n; i++) {
      const k = read()
      o[typeof k === "string" ? k : JSON.stringify(k)] = read()
    }
    return o
  }
  const read = (): unknown => {
    const c = u8()
    if (c < 0x80) return c
    if (c >= 0xe0) return c - 0x100
    if ((c & 0xf0) === 0x80) return map(c & 0x0f)
    if ((c & 0xf0) === 0x90) return arr(c & 0x0f)
    if ((c & 0xe0) === 0xa0) return str(c & 0x1f)
    switch (c) {
      case 0xc0:
        return null
      case 0xc2:
        return false
      case 0xc3:
        return true
      case 0xc4:
        return bin(u8())
      case 0xc5:
        return bin(u16())
      case 0xc6:
        return bin(u32())
      case 0xca:
        return (need(4), at += 4, view.getFloat32(at - 4))
      case 0xcb:
        return (need(8), at += 8, view.getFloat64(at - 8))
      case 0xcc:
        return u8()
      case 0xcd:
        return u16()
      case 0xce:
        return u32()
      case 0xcf:
        return (need(8), at += 8, Number(view.getBigUint64(at - 8)))
      case 0xd0:
        return (need(1), at += 1, view.getInt8(at - 1))
      case 0xd1:
        return (need(2), at += 2, view.getInt16(at - 2))
      case 0xd2:
        return (need(4), at += 4, view.getInt32(at - 4))
      case 0xd3:
        return (need(8), at += 8, Number(view.getBigInt64(at - 8)))
      case 0xd9:
        return str(u8())
      case 0xda:
        return str(u16())
      case 0xdb:
        return str(u32())
      case 0xdc:
        return arr(u16())
      case 0xdd:
        return arr(u32())
      case 0xde:
        return map(u16())
      case 0xdf:
        return map(u32())
      default:
        throw new NotMessagePack(`unsupported type byte 0x${c.toString(16)} at byte ${at - 1}`)
    }
  }
  const value = read()
  if (at !== bytes.length) throw new NotMessagePack(`${bytes.length - at} bytes after the value`)
  return value
}
