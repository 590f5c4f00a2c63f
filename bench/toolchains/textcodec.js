// UTF-8 TextEncoder/TextDecoder for engines without them (QuickJS): what apps/sdk uses
// (encode, encodeInto-free; decode of a byte view). Installed only where missing.
if (typeof globalThis.TextEncoder === "undefined") {
  globalThis.TextEncoder = class TextEncoder {
    get encoding() { return "utf-8" }
    encode(s = "") {
      s = String(s)
      const out = new Uint8Array(s.length * 3)
      let n = 0
      for (let i = 0; i < s.length; i++) {
        let c = s.charCodeAt(i)
        if (c < 0x80) { out[n++] = c; continue }
        if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
          const d = s.charCodeAt(i + 1)
          if (d >= 0xdc00 && d < 0xe000) { c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i++ } else c = 0xfffd
        } else if (c >= 0xd800 && c < 0xe000) c = 0xfffd
        if (c < 0x800) { out[n++] = 0xc0 | (c >> 6); out[n++] = 0x80 | (c & 63) }
        else if (c < 0x10000) { out[n++] = 0xe0 | (c >> 12); out[n++] = 0x80 | ((c >> 6) & 63); out[n++] = 0x80 | (c & 63) }
        else { out[n++] = 0xf0 | (c >> 18); out[n++] = 0x80 | ((c >> 12) & 63); out[n++] = 0x80 | ((c >> 6) & 63); out[n++] = 0x80 | (c & 63) }
      }
      return out.slice(0, n)
    }
  }
}
if (typeof globalThis.TextDecoder === "undefined") {
  globalThis.TextDecoder = class TextDecoder {
    get encoding() { return "utf-8" }
    decode(v) {
      if (v === undefined) return ""
      const b = v instanceof Uint8Array ? v : new Uint8Array(v.buffer ?? v, v.byteOffset ?? 0, v.byteLength)
      let s = ""
      for (let i = 0; i < b.length;) {
        const a = b[i++]
        let c
        if (a < 0x80) c = a
        else if (a >= 0xc2 && a < 0xe0 && i < b.length) c = ((a & 31) << 6) | (b[i++] & 63)
        else if (a >= 0xe0 && a < 0xf0 && i + 1 < b.length) { c = ((a & 15) << 12) | ((b[i] & 63) << 6) | (b[i + 1] & 63); i += 2 }
        else if (a >= 0xf0 && a < 0xf5 && i + 2 < b.length) { c = ((a & 7) << 18) | ((b[i] & 63) << 12) | ((b[i + 1] & 63) << 6) | (b[i + 2] & 63); i += 3 }
        else c = 0xfffd
        s += String.fromCodePoint(c)
      }
      return s
    }
  }
}
