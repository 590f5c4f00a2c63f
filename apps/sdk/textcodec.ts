/**
 * UTF-8 `TextEncoder`/`TextDecoder` for engines that lack them. QuickJS (the engine
 * componentize-qjs puts in every TypeScript app) has neither, and the SDK encodes and
 * decodes every body. Installed only where missing, so the same SDK runs anywhere.
 * The build imports this module before any other of an app (its entry's first import),
 * as other modules make their encoders at load time.
 */
const encodeUtf8 = (input: string = ""): Uint8Array => {
  const s = String(input)
  const out = new Uint8Array(s.length * 3)
  let n = 0
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i)
    if (c < 0x80) {
      out[n++] = c
      continue
    }
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d < 0xe000) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00)
        i++
      } else c = 0xfffd
    } else if (c >= 0xd800 && c < 0xe000) c = 0xfffd // a lone surrogate
    if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6)
      out[n++] = 0x80 | (c & 63)
    } else if (c < 0x10000) {
      out[n++] = 0xe0 | (c >> 12)
      out[n++] = 0x80 | ((c >> 6) & 63)
      out[n++] = 0x80 | (c & 63)
    } else {
      out[n++] = 0xf0 | (c >> 18)
      out[n++] = 0x80 | ((c >> 12) & 63)
      out[n++] = 0x80 | ((c >> 6) & 63)
      out[n++] = 0x80 | (c & 63)
    }
  }
  return out.slice(0, n)
}

/** Whether `b` is a UTF-8 continuation byte. */
const cont = (b: number | undefined): b is number => b !== undefined && (b & 0xc0) === 0x80

const decodeUtf8 = (input?: ArrayBufferView | ArrayBuffer): string => {
  if (input === undefined) return ""
  const b = input instanceof Uint8Array
    ? input
    : ArrayBuffer.isView(input)
    ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
    : new Uint8Array(input)
  const codes: Array<number> = []
  let s = ""
  for (let i = 0; i < b.length;) {
    const a = b[i++]!
    let c = 0xfffd
    if (a < 0x80) c = a
    else if (a >= 0xc2 && a < 0xe0 && cont(b[i])) c = ((a & 31) << 6) | (b[i++]! & 63)
    else if (a >= 0xe0 && a < 0xf0 && cont(b[i]) && cont(b[i + 1])) {
      c = ((a & 15) << 12) | ((b[i]! & 63) << 6) | (b[i + 1]! & 63)
      i += 2
    } else if (a >= 0xf0 && a < 0xf5 && cont(b[i]) && cont(b[i + 1]) && cont(b[i + 2])) {
      c = ((a & 7) << 18) | ((b[i]! & 63) << 12) | ((b[i + 1]! & 63) << 6) | (b[i + 2]! & 63)
      i += 3
    }
    codes.push(c)
    // Flushed in chunks: one String.fromCodePoint call per code point is slow in QuickJS.
    if (codes.length === 4096) {
      s += String.fromCodePoint(...codes)
      codes.length = 0
    }
  }
  return s + String.fromCodePoint(...codes)
}

const g = globalThis as Record<string, unknown>
if (typeof g.TextEncoder === "undefined") {
  g.TextEncoder = class TextEncoder {
    get encoding() {
      return "utf-8"
    }
    encode(input?: string) {
      return encodeUtf8(input)
    }
  }
}
if (typeof g.TextDecoder === "undefined") {
  g.TextDecoder = class TextDecoder {
    get encoding() {
      return "utf-8"
    }
    decode(input?: ArrayBufferView | ArrayBuffer) {
      return decodeUtf8(input)
    }
  }
}

export {}
