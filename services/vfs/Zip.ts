/**
 * Reading zips without blocking the node: the central directory is parsed here (names,
 * declared sizes, CRC-32, Unix file types, where each entry's data starts), and each
 * entry is inflated by `node:zlib`'s stream, whose work runs on libuv's thread pool,
 * in chunks handed to the caller with back-pressure. The event loop only sees one
 * chunk at a time, and memory holds one chunk, not the whole unpacked entry.
 *
 * Every entry is checked against its header: data longer than the declared size is
 * refused as soon as it passes it (so a declared size bounds the work and the memory
 * of a lying entry), shorter data and a wrong CRC-32 are refused at its end. Nothing
 * is silently cut.
 *
 * Plain async functions that throw `ZipDataError` or Node's errors, like `Disk.ts`;
 * callers wrap them once.
 */
import { Result } from "effect"
import * as zlib from "node:zlib"

export interface ZipEntry {
  readonly name: string
  /** 0 stored, 8 deflated; anything else is the caller's to refuse. */
  readonly method: number
  readonly encrypted: boolean
  readonly compressedSize: number
  /** Declared unpacked size. */
  readonly size: number
  readonly crc32: number
  /** The Unix file type bits (`S_IFMT`) when the zip was made on Unix, else undefined. */
  readonly unixType: number | undefined
  /** Offset of the entry's local header. */
  readonly localOffset: number
}

/** An entry whose data does not match its header, or cannot be inflated. */
export class ZipDataError extends Error {
  readonly entry: string
  readonly problem: string
  constructor(entry: string, problem: string) {
    super(`${entry}: ${problem}`)
    this.entry = entry
    this.problem = problem
  }
}

export const S_IFMT = 0o170000
export const S_IFREG = 0o100000
export const S_IFDIR = 0o040000
export const S_IFLNK = 0o120000
/** Hosts whose external attributes carry a Unix mode in the high 16 bits (Unix, macOS). */
const UNIX_HOSTS = new Set([3, 19])
/** Bytes handed over per chunk. */
const CHUNK = 256 * 1024

const u16 = (d: Uint8Array, at: number) => d[at]! | (d[at + 1]! << 8)
const u32 = (d: Uint8Array, at: number) => (d[at]! | (d[at + 1]! << 8) | (d[at + 2]! << 16) | (d[at + 3]! << 24)) >>> 0
const u64 = (d: Uint8Array, at: number) => u32(d, at) + u32(d, at + 4) * 2 ** 32

const utf8 = new TextDecoder("utf-8")
const latin1 = new TextDecoder("latin1")

/**
 * The entries of a zip's central directory, in order, or why it cannot be read. More
 * than `maxEntries` entries fails with the count alone (nothing else is parsed).
 */
export const readEntries = (
  d: Uint8Array,
  maxEntries: number
): Result.Result<ReadonlyArray<ZipEntry>, { readonly reason: string } | { readonly tooMany: number }> => {
  if (d.length < 22) return Result.fail({ reason: "too short for a zip" })
  let e = d.length - 22
  while (u32(d, e) !== 0x06054b50) {
    if (e === 0 || d.length - e > 65557) return Result.fail({ reason: "no end of central directory record" })
    e -= 1
  }
  let count = u16(d, e + 10)
  let offset = u32(d, e + 16)
  if (e >= 20 && u32(d, e - 20) === 0x07064b50) {
    const ze = u64(d, e - 12)
    if (ze + 56 <= d.length && u32(d, ze) === 0x06064b50) {
      count = u64(d, ze + 32)
      offset = u64(d, ze + 48)
    }
  }
  if (count > maxEntries) return Result.fail({ tooMany: count })
  const entries: Array<ZipEntry> = []
  for (let i = 0; i < count; i++) {
    if (offset + 46 > d.length || u32(d, offset) !== 0x02014b50) return Result.fail({ reason: `central directory entry ${i} is corrupt` })
    const host = d[offset + 5]!
    const flags = u16(d, offset + 8)
    const nameLength = u16(d, offset + 28)
    const extraLength = u16(d, offset + 30)
    const commentLength = u16(d, offset + 32)
    const next = offset + 46 + nameLength + extraLength + commentLength
    if (next > d.length) return Result.fail({ reason: `central directory entry ${i} is corrupt` })
    let compressedSize = u32(d, offset + 20)
    let size = u32(d, offset + 24)
    let localOffset = u32(d, offset + 42)
    // Zip64: the sizes and offset that overflowed 32 bits are in extra field 0x0001, in this order.
    if (compressedSize === 0xffffffff || size === 0xffffffff || localOffset === 0xffffffff) {
      let x = offset + 46 + nameLength
      const end = x + extraLength
      while (x + 4 <= end) {
        const id = u16(d, x)
        const len = u16(d, x + 2)
        if (id === 0x0001) {
          let at = x + 4
          const take = () => {
            const v = at + 8 <= x + 4 + len ? u64(d, at) : undefined
            at += 8
            return v
          }
          if (size === 0xffffffff) size = take() ?? size
          if (compressedSize === 0xffffffff) compressedSize = take() ?? compressedSize
          if (localOffset === 0xffffffff) localOffset = take() ?? localOffset
          break
        }
        x += 4 + len
      }
    }
    const nameBytes = d.subarray(offset + 46, offset + 46 + nameLength)
    entries.push({
      name: (flags & 0x800) !== 0 ? utf8.decode(nameBytes) : latin1.decode(nameBytes),
      method: u16(d, offset + 10),
      encrypted: (flags & 1) !== 0,
      compressedSize,
      size,
      crc32: u32(d, offset + 16),
      unixType: UNIX_HOSTS.has(host) ? (u32(d, offset + 38) >>> 16) & S_IFMT : undefined,
      localOffset
    })
    offset = next
  }
  return Result.succeed(entries)
}

/** Where an entry's data starts, checked to lie inside the zip. */
const dataOf = (d: Uint8Array, e: ZipEntry): Uint8Array => {
  const at = e.localOffset
  if (at + 30 > d.length || u32(d, at) !== 0x04034b50) throw new ZipDataError(e.name, "local header missing")
  const start = at + 30 + u16(d, at + 26) + u16(d, at + 28)
  if (start + e.compressedSize > d.length) throw new ZipDataError(e.name, "data runs past the end of the zip")
  return d.subarray(start, start + e.compressedSize)
}

/**
 * Inflates one entry (stored or deflated), giving `take` its data chunk by chunk; the
 * next chunk is made once `take`'s promise settles. Throws `ZipDataError` when the data
 * is longer or shorter than declared, fails its CRC-32 or cannot be inflated.
 */
export const inflateEntry = async (
  zip: Uint8Array,
  e: ZipEntry,
  take: (chunk: Uint8Array) => Promise<void> | void
): Promise<void> => {
  if (e.method !== 0 && e.method !== 8) throw new ZipDataError(e.name, `compression method ${e.method}`)
  if (e.encrypted) throw new ZipDataError(e.name, "encrypted")
  const data = dataOf(zip, e)
  let seen = 0
  let crc = 0
  const step = async (chunk: Uint8Array) => {
    seen += chunk.byteLength
    if (seen > e.size) throw new ZipDataError(e.name, `holds more than its declared ${e.size} bytes`)
    crc = zlib.crc32(chunk, crc)
    await take(chunk)
  }
  if (e.method === 0) {
    for (let at = 0; at < data.byteLength; at += CHUNK) await step(data.subarray(at, at + CHUNK))
  } else {
    const inflater = zlib.createInflateRaw({ chunkSize: CHUNK })
    inflater.end(data)
    try {
      for await (const chunk of inflater) await step(chunk as Buffer)
    } catch (cause) {
      inflater.destroy()
      if (cause instanceof ZipDataError) throw cause
      throw new ZipDataError(e.name, `cannot inflate (${cause instanceof Error ? cause.message : String(cause)})`)
    }
  }
  if (seen !== e.size) throw new ZipDataError(e.name, `holds ${seen} bytes, not its declared ${e.size}`)
  if (crc >>> 0 !== e.crc32) throw new ZipDataError(e.name, "CRC-32 does not match its header")
}

/** Inflates one entry into memory: at most its declared size is ever allocated. */
export const inflateToMemory = async (zip: Uint8Array, e: ZipEntry): Promise<Uint8Array> => {
  const out = new Uint8Array(e.size)
  let at = 0
  await inflateEntry(zip, e, (chunk) => {
    out.set(chunk, at)
    at += chunk.byteLength
  })
  return out
}
