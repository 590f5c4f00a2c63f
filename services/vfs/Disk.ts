/**
 * The vfs's disk adapter: the only module touching `node:fs`. Plain async functions
 * that throw Node's errors; `Vfs.ts` wraps each call once into a typed `IOError`.
 *
 * Every file is opened with O_NOFOLLOW (a symlink swapped in after the path check still
 * is not followed), and every change is fsynced before the call returns: the file's
 * data, and the parent directory when an entry was created, renamed or removed, so an
 * acknowledged change survives a crash.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_NOFOLLOW, O_DIRECTORY } = fs.constants
const CHUNK = 1 << 20

export const syncDir = async (dir: string): Promise<void> => {
  const fh = await fs.promises.open(dir, O_RDONLY | O_DIRECTORY)
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

const withFile = async <A>(abs: string, flags: number, f: (fh: fs.promises.FileHandle) => Promise<A>): Promise<A> => {
  const fh = await fs.promises.open(abs, flags | O_NOFOLLOW, 0o644)
  try {
    return await f(fh)
  } finally {
    await fh.close()
  }
}

const exists = async (abs: string): Promise<boolean> => {
  try {
    await fs.promises.lstat(abs)
    return true
  } catch {
    return false
  }
}

const writeFully = async (fh: fs.promises.FileHandle, bytes: Uint8Array, position: number): Promise<void> => {
  let done = 0
  while (done < bytes.byteLength) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.byteLength - done, position + done)
    done += bytesWritten
  }
}

const readFully = async (fh: fs.promises.FileHandle, position: number, length: number): Promise<Uint8Array> => {
  const out = Buffer.allocUnsafe(length)
  let done = 0
  while (done < length) {
    const { bytesRead } = await fh.read(out, done, length - done, position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done === length ? out : out.subarray(0, done)
}

/** Replaces the file's contents (creating it). */
export const writeWhole = async (abs: string, bytes: Uint8Array): Promise<void> => {
  const created = !(await exists(abs))
  await withFile(abs, O_WRONLY | O_CREAT | O_TRUNC, async (fh) => {
    await writeFully(fh, bytes, 0)
    await fh.sync()
  })
  if (created) await syncDir(path.dirname(abs))
}

/** Writes at `position` of an existing file; returns the new cursor. */
export const writeAt = (abs: string, bytes: Uint8Array, position: number): Promise<number> =>
  withFile(abs, O_WRONLY, async (fh) => {
    await writeFully(fh, bytes, position)
    await fh.sync()
    return position + bytes.byteLength
  })

/** Appends to an existing file; returns the new end. */
export const append = (abs: string, bytes: Uint8Array): Promise<number> =>
  withFile(abs, O_WRONLY, async (fh) => {
    const { size } = await fh.stat()
    await writeFully(fh, bytes, size)
    await fh.sync()
    return size + bytes.byteLength
  })

/** Opens (and with `create`, creates) a file, as a check that it can be used. */
export const open = async (abs: string, create: boolean): Promise<void> => {
  const created = create && !(await exists(abs))
  await withFile(abs, create ? O_RDWR | O_CREAT : O_RDONLY, async (fh) => {
    if (created) await fh.sync()
    if ((await fh.stat()).isDirectory()) throw Object.assign(new Error("is a directory"), { code: "EISDIR" })
  })
  if (created) await syncDir(path.dirname(abs))
}

export const sync = (abs: string): Promise<void> => withFile(abs, O_RDONLY, (fh) => fh.sync())

export const size = (abs: string): Promise<number> => withFile(abs, O_RDONLY, async (fh) => (await fh.stat()).size)

/** Bytes from `position`; `length` undefined reads to the end. */
export const readFrom = (abs: string, position: number, length: number | undefined): Promise<Uint8Array> =>
  withFile(abs, O_RDONLY, async (fh) => {
    const st = await fh.stat()
    if (st.isDirectory()) throw Object.assign(new Error("is a directory"), { code: "EISDIR" })
    const available = Math.max(0, st.size - position)
    if (length !== undefined && length > available) {
      throw Object.assign(new Error("failed to fill whole buffer"), { code: "UNEXPECTED_EOF" })
    }
    return readFully(fh, position, length ?? available)
  })

export const setLen = (abs: string, len: number): Promise<void> =>
  withFile(abs, O_WRONLY, async (fh) => {
    await fh.truncate(len)
    await fh.sync()
  })

export const sha256 = (abs: string): Promise<Uint8Array> =>
  withFile(abs, O_RDONLY, async (fh) => {
    const hash = createHash("sha256")
    const buf = Buffer.allocUnsafe(CHUNK)
    let position = 0
    while (true) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, position)
      if (bytesRead === 0) break
      hash.update(buf.subarray(0, bytesRead))
      position += bytesRead
    }
    return new Uint8Array(hash.digest())
  })

export const mkdir = async (abs: string): Promise<void> => {
  await fs.promises.mkdir(abs)
  await syncDir(path.dirname(abs))
}

export const mkdirAll = async (abs: string): Promise<void> => {
  const first = await fs.promises.mkdir(abs, { recursive: true })
  if (first !== undefined) await syncDir(path.dirname(first))
}

export const removeFile = async (abs: string): Promise<void> => {
  if ((await fs.promises.lstat(abs)).isDirectory()) {
    throw Object.assign(new Error("is a directory"), { code: "EISDIR" })
  }
  await fs.promises.unlink(abs)
  await syncDir(path.dirname(abs))
}

export const removeDir = async (abs: string): Promise<void> => {
  await fs.promises.rmdir(abs)
  await syncDir(path.dirname(abs))
}

/** `rm -r`: removes symlinks found inside as entries, never following them. */
export const removeDirAll = async (abs: string): Promise<void> => {
  if (!(await fs.promises.lstat(abs)).isDirectory()) {
    throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" })
  }
  await fs.promises.rm(abs, { recursive: true })
  await syncDir(path.dirname(abs))
}

export const rename = async (from: string, to: string): Promise<void> => {
  await fs.promises.rename(from, to)
  await syncDir(path.dirname(to))
  if (path.dirname(from) !== path.dirname(to)) await syncDir(path.dirname(from))
}

export const copy = async (from: string, to: string): Promise<void> => {
  const bytes = await readFrom(from, 0, undefined)
  await writeWhole(to, bytes)
}

export type EntryType = "File" | "Directory" | "Symlink" | "Other"
const typeOf = (d: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): EntryType =>
  d.isSymbolicLink() ? "Symlink" : d.isDirectory() ? "Directory" : d.isFile() ? "File" : "Other"

export const readDir = async (abs: string): Promise<Array<{ name: string; type: EntryType }>> =>
  (await fs.promises.readdir(abs, { withFileTypes: true })).map((d) => ({ name: d.name, type: typeOf(d) }))

export const metadata = async (abs: string): Promise<{ type: EntryType; len: number }> => {
  const st = await fs.promises.lstat(abs)
  return { type: typeOf(st), len: st.size }
}

/** Writes unzipped entries below `abs` (names already checked); directories end in `/`. */
export const writeTree = async (abs: string, entries: ReadonlyArray<readonly [string, Uint8Array]>): Promise<void> => {
  await mkdirAll(abs)
  for (const [name, bytes] of entries) {
    const target = path.join(abs, name)
    if (name.endsWith("/")) {
      await mkdirAll(target)
    } else {
      await mkdirAll(path.dirname(target))
      await writeWhole(target, bytes)
    }
  }
}

/** Writes a new file (replacing one) from chunks `fill` hands to `write`, then syncs it. */
export const writeChunks = async (
  abs: string,
  fill: (write: (chunk: Uint8Array) => Promise<void>) => Promise<void>
): Promise<void> => {
  await withFile(abs, O_WRONLY | O_CREAT | O_TRUNC, async (fh) => {
    let at = 0
    await fill(async (chunk) => {
      await writeFully(fh, chunk, at)
      at += chunk.byteLength
    })
    await fh.sync()
  })
}

/** Size of a file, or 0 if there is none (a directory counts 0 too). */
export const sizeOrZero = async (abs: string): Promise<number> => {
  try {
    const st = await fs.promises.lstat(abs)
    return st.isFile() ? st.size : 0
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ENOTDIR") return 0
    throw e
  }
}

/** Bytes of the regular files below `abs` (or of `abs` itself), never following symlinks; 0 if absent. */
export const treeSize = async (abs: string): Promise<number> => {
  let st: fs.Stats
  try {
    st = await fs.promises.lstat(abs)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ENOTDIR") return 0
    throw e
  }
  if (st.isFile()) return st.size
  if (!st.isDirectory()) return 0
  let total = 0
  const dirs = [abs]
  while (dirs.length > 0) {
    const dir = dirs.pop()!
    for (const d of await fs.promises.readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, d.name)
      if (d.isDirectory()) dirs.push(p)
      else if (d.isFile()) total += (await fs.promises.lstat(p)).size
    }
  }
  return total
}

/**
 * Moves unpacked entries from `staging` into `abs` (names already checked; directories
 * end in `/`): each file by one rename, replacing what was there; then syncs every
 * directory that changed.
 */
export const moveTree = async (staging: string, abs: string, names: ReadonlyArray<string>): Promise<void> => {
  await mkdirAll(abs)
  const touched = new Set<string>()
  for (const name of names) {
    const target = path.join(abs, name)
    if (name.endsWith("/")) {
      await mkdirAll(target)
      continue
    }
    await mkdirAll(path.dirname(target))
    await fs.promises.rename(path.join(staging, name), target)
    touched.add(path.dirname(target))
  }
  for (const dir of touched) await syncDir(dir)
}

/**
 * Writes entries into a fresh directory `dir` (names already checked; directories end in
 * `/`), each file from the chunks its `fill` hands over.
 */
export const unpackInto = async (
  dir: string,
  items: ReadonlyArray<{ readonly name: string; readonly fill: (write: (chunk: Uint8Array) => Promise<void>) => Promise<void> }>
): Promise<void> => {
  await fs.promises.mkdir(dir, { recursive: true })
  for (const { name, fill } of items) {
    const target = path.join(dir, name)
    if (name.endsWith("/")) {
      await fs.promises.mkdir(target, { recursive: true })
    } else {
      await fs.promises.mkdir(path.dirname(target), { recursive: true })
      await writeChunks(target, fill)
    }
  }
}

/** `rm -rf`, ignoring a missing path. */
export const removeQuietly = (abs: string): Promise<void> => fs.promises.rm(abs, { recursive: true, force: true })
