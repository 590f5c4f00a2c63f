/**
 * Checks an LMDB data file (`data.mdb`) with plain reads before anything maps it.
 *
 * LMDB maps the whole file and trusts what it finds: a file cut short faults with SIGBUS
 * on the first page past its end, a scribbled meta page or root pointer with SIGSEGV.
 * Neither can be caught in JavaScript, so the node reads the file's first pages here and
 * refuses a damaged one with a reason instead.
 *
 * The layout (lmdb-js 3's liblmdb, data format 2, 64-bit; `dependencies/lmdb/libraries/
 * liblmdb/mdb.c`): pages 0 and 1 are meta pages (with lmdb-js's overlapping sync, a third
 * meta sits half a page in). A page starts with a 24-byte header: page number (u64),
 * txnid (u64), pad (u16), flags (u16; 0x08 meta, 0x01 branch, 0x02 leaf), bounds (u32).
 * The meta follows: magic 0xBEEFC0DE (u32), version 2 (u32), fixed address (u64), map
 * size (u64), the free and main trees (48 bytes each: page size in the first's pad, u16
 * flags, u16 depth, three page counts, entries, root page), the last used page (u64) and
 * the txnid that wrote it (u64). LMDB uses the meta with the highest txnid. Every page up
 * to its last used page is in the file once the node closed it (`extendToLastPage`): a
 * running LMDB (without WRITEMAP) never writes a page freed in the transaction that
 * allocated it ("loose" pages, skipped by `mdb_page_flush`), so after a transaction that
 * frees many pages (hundreds of deletes at once) the file can end before its last used
 * page; LMDB itself allows for it (`mdb_env_copy` stops at the file's end).
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"

const PAGE_HEADER = 24
const MAGIC = 0xbeefc0de
const DATA_VERSION = 2
const P_BRANCH = 0x01
const P_LEAF = 0x02
const P_META = 0x08
const P_INVALID = 0xffffffffffffffffn
const MIN_PAGE = 512
const MAX_PAGE = 65536

const META = {
  magic: PAGE_HEADER,
  version: PAGE_HEADER + 4,
  mapSize: PAGE_HEADER + 16,
  pageSize: PAGE_HEADER + 24,
  trees: PAGE_HEADER + 24,
  lastPage: PAGE_HEADER + 120,
  txnid: PAGE_HEADER + 128
} as const
const TREE = { depth: 6, root: 40, size: 48 } as const

/** What is wrong with a data file; `describeLmdbDamage` words it. */
export const LmdbDamage = Schema.Literals([
  "TooShort", // shorter than the two meta pages
  "NotMetaPage", // page 0 or 1 is not marked as a meta page
  "BadMagic", // not an LMDB file (or another byte order)
  "BadVersion", // another LMDB data format
  "BadPageSize", // the page size is not a power of two in 512..65536
  "BadMeta", // a meta page's fields contradict each other
  "Truncated", // pages the newest meta uses lie past the end of the file
  "BadRoot" // a tree's root page is not a branch or leaf page with its own number
])
export type LmdbDamage = typeof LmdbDamage.Type

export class LmdbDamaged extends Schema.TaggedError<LmdbDamaged>()("LmdbDamaged", {
  file: Schema.String,
  damage: LmdbDamage,
  /** The file's size in bytes. */
  size: Schema.Number,
  /** With `Truncated` and `TooShort`: the size the file needs. */
  expected: Schema.optional(Schema.Number)
}) {}

export class LmdbUnreadable extends Schema.TaggedError<LmdbUnreadable>()("LmdbUnreadable", {
  file: Schema.String,
  cause: Schema.Defect()
}) {}

/** `Missing`: no file; `Empty`: zero bytes (LMDB would start a new database); `Ok`: checked. */
export type LmdbFileState = "Missing" | "Empty" | "Ok"

export const describeLmdbDamage = (e: LmdbDamaged): string => {
  const what: Record<LmdbDamage, string> = {
    TooShort: `it is ${e.size} bytes, shorter than LMDB's two meta pages`,
    NotMetaPage: "its first pages are not LMDB meta pages (header overwritten)",
    BadMagic: "it does not start with LMDB's magic number (not an LMDB file, or its header is overwritten)",
    BadVersion: "it is another LMDB data format than this node reads (version 2)",
    BadPageSize: "its header gives an impossible page size (header overwritten)",
    BadMeta: "its meta pages contradict each other (header overwritten)",
    Truncated: `it is cut short: ${e.size} bytes, its newest snapshot needs ${e.expected ?? "more"}`,
    BadRoot: "a tree's root page is not where its meta page says (overwritten)"
  }
  return `${e.file} is damaged: ${what[e.damage]}`
}

interface Meta {
  readonly pageSize: number
  readonly mapSize: bigint
  readonly lastPage: bigint
  readonly txnid: bigint
  readonly roots: ReadonlyArray<{ readonly root: bigint; readonly depth: number }>
}

const readMeta = (page: Buffer, at: number): Meta => ({
  pageSize: page.readUInt32LE(at + META.pageSize),
  mapSize: page.readBigUInt64LE(at + META.mapSize),
  lastPage: page.readBigUInt64LE(at + META.lastPage),
  txnid: page.readBigUInt64LE(at + META.txnid),
  roots: [0, 1].map((i) => ({
    root: page.readBigUInt64LE(at + META.trees + i * TREE.size + TREE.root),
    depth: page.readUInt16LE(at + META.trees + i * TREE.size + TREE.depth)
  }))
})

const readAt = (fd: number, offset: number, length: number): Buffer => {
  const buf = Buffer.alloc(length)
  return buf.subarray(0, fs.readSync(fd, buf, 0, length, offset))
}

/** The verdict on an open data file: its state, or what is damaged (as data, not thrown). */
const inspect = (fd: number, file: string): LmdbFileState | LmdbDamaged => {
  const size = fs.fstatSync(fd).size
  if (size === 0) return "Empty"
  const damaged = (damage: LmdbDamage, expected?: number) =>
    new LmdbDamaged({ file, damage, size, ...(expected === undefined ? {} : { expected }) })
  const first = readAt(fd, 0, MIN_PAGE)
  if (first.length < PAGE_HEADER + META.txnid + 8) return damaged("TooShort", 2 * MIN_PAGE)
  if ((first.readUInt16LE(18) & P_META) === 0) return damaged("NotMetaPage")
  if (first.readUInt32LE(META.magic) !== MAGIC) return damaged("BadMagic")
  if ((first.readUInt32LE(META.version) & 0xffff) !== DATA_VERSION) return damaged("BadVersion")
  const pageSize = first.readUInt32LE(META.pageSize)
  if (pageSize < MIN_PAGE || pageSize > MAX_PAGE || (pageSize & (pageSize - 1)) !== 0) return damaged("BadPageSize")
  if (size < 2 * pageSize) return damaged("TooShort", 2 * pageSize)
  const page0 = readAt(fd, 0, pageSize)
  const page1 = readAt(fd, pageSize, pageSize)
  if ((page1.readUInt16LE(18) & P_META) === 0 || page1.readBigUInt64LE(0) !== 1n) return damaged("NotMetaPage")
  if (page1.readUInt32LE(META.magic) !== MAGIC) return damaged("BadMagic")
  if ((page1.readUInt32LE(META.version) & 0xffff) !== DATA_VERSION) return damaged("BadVersion")
  // LMDB reads all three candidates when it opens the file and takes the newest.
  const metas = [readMeta(page0, 0), readMeta(page1, 0), readMeta(page0, pageSize >> 1)]
  const newest = metas.reduce((a, b) => (b.txnid > a.txnid ? b : a))
  for (const m of [metas[0]!, metas[1]!, newest]) {
    // LMDB keeps its map at least as large as the pages in use (mdb_env_open2).
    if (m.pageSize !== pageSize || m.lastPage < 1n || (m.lastPage + 1n) * BigInt(pageSize) > m.mapSize) return damaged("BadMeta")
    for (const t of m.roots) if (t.root !== P_INVALID && (t.root < 2n || t.root > m.lastPage)) return damaged("BadMeta")
  }
  const needed = (newest.lastPage + 1n) * BigInt(pageSize)
  if (BigInt(size) < needed) return damaged("Truncated", Number(needed))
  for (const t of newest.roots) {
    if (t.root === P_INVALID) continue
    const root = readAt(fd, Number(t.root) * pageSize, PAGE_HEADER)
    if (root.length < PAGE_HEADER || root.readBigUInt64LE(0) !== t.root) return damaged("BadRoot")
    if ((root.readUInt16LE(18) & (P_BRANCH | P_LEAF | P_META)) !== (t.depth > 1 ? P_BRANCH : P_LEAF)) return damaged("BadRoot")
  }
  return "Ok"
}

/**
 * After LMDB closed `file`: extends it (sparse, zeros) to its newest snapshot's last used
 * page if it ends before it, so the next open's check does not take the never-written
 * free pages at its end for a cut. Best effort: a file it cannot read is left as it is.
 */
export const extendToLastPage = (file: string): void => {
  let fd: number | undefined
  try {
    fd = fs.openSync(file, "r+")
    const size = fs.fstatSync(fd).size
    const first = readAt(fd, 0, MIN_PAGE)
    if (first.length < PAGE_HEADER + META.txnid + 8 || first.readUInt32LE(META.magic) !== MAGIC) return
    const pageSize = first.readUInt32LE(META.pageSize)
    if (pageSize < MIN_PAGE || pageSize > MAX_PAGE || (pageSize & (pageSize - 1)) !== 0 || size < 2 * pageSize) return
    const page0 = readAt(fd, 0, pageSize)
    const page1 = readAt(fd, pageSize, pageSize)
    const metas = [readMeta(page0, 0), readMeta(page1, 0), readMeta(page0, pageSize >> 1)]
    const newest = metas.reduce((a, b) => (b.txnid > a.txnid ? b : a))
    if (newest.pageSize !== pageSize || (newest.lastPage + 1n) * BigInt(pageSize) > newest.mapSize) return
    const needed = Number((newest.lastPage + 1n) * BigInt(pageSize))
    if (size < needed) fs.ftruncateSync(fd, needed)
  } catch {
    // Left as it is; the next open checks it.
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}

/**
 * Reads `file`'s meta pages and root pages (a few KiB, never mapped): `Missing`, `Empty`,
 * or `Ok`; fails with `LmdbDamaged` if LMDB could fault on it.
 */
export const checkLmdbFile = Effect.fn("LmdbCheck.checkLmdbFile")(function*(file: string) {
  const unreadable = (cause: unknown) => new LmdbUnreadable({ file, cause })
  const fd = yield* Effect.try({ try: () => fs.existsSync(file) ? fs.openSync(file, "r") : undefined, catch: unreadable })
  if (fd === undefined) return "Missing" as LmdbFileState
  const verdict = yield* Effect.try({ try: () => inspect(fd, file), catch: unreadable }).pipe(
    Effect.ensuring(Effect.sync(() => fs.closeSync(fd)))
  )
  if (verdict instanceof LmdbDamaged) return yield* verdict
  return verdict
})
