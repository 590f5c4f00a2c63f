/**
 * `vfs:distro:sys`: package drives on disk under `<home>/vfs` (kinode-semantics §6.1).
 *
 * Access: the kernel skips checks; a caller may do anything inside its own package's
 * drives; otherwise it needs the drive's read or write cap issued by vfs, or the root
 * cap. `CreateDrive` grants the requester read+write on the drive.
 *
 * Files are opened per request (O_NOFOLLOW) rather than kept open: Kinode caches up to
 * fd-manager's limit of handles and remembers the cursors of evicted ones, so observable
 * behaviour is the cursor map, which is kept here (bounded, least recently used first).
 *
 * Requests from one process are served in arrival order (their cursors depend on it);
 * different processes' requests run concurrently.
 *
 * Each drive has a disk quota (`VfsLimits`: a default and overrides per drive): a
 * request that would grow a drive past it fails with `IOError` "Disk quota exceeded".
 * What a drive holds is counted once (a walk of its files) and then kept up to date.
 * `AddZip` unpacks off the event loop (`Zip.ts`: zlib on the thread pool, chunk by
 * chunk) into a staging directory, checking every entry against its declared size and
 * CRC-32, and moves the result into place only when all of it is good: a zip that
 * lies, is cut short or would pass the quota leaves nothing behind.
 */
import { Context, Effect, Layer, Result } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Home } from "../../src/Home.ts"
import { Address, KERNEL, pid } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import type { LazyLoadBlob } from "../../src/Message.ts"
import { ModuleHost } from "../../src/ModuleHost.ts"
import * as ServiceShell from "../../src/ServiceShell.ts"
import type { Reply } from "../../src/ServiceShell.ts"
import * as Disk from "./Disk.ts"
import { findSymlink, isProblem, resolve } from "./Paths.ts"
import type { VfsPath } from "./Paths.ts"
import { driveCap, ROOT_CAP, VfsFailure, VfsRequest } from "./Protocol.ts"
import type { SeekFrom, VfsAction, VfsErrorBody, VfsResponse } from "./Protocol.ts"
import * as Zip from "./Zip.ts"

/** Cursors remembered for files (Kinode keeps them for every file it ever opened). */
export const MAX_CURSORS = 4096
/** Bytes an `AddZip` may unpack to (zip bombs). */
export const MAX_UNZIPPED_BYTES = 1 << 30
const MAX_IN_FLIGHT = 4096

export interface VfsLimitSettings {
  /** Bytes of files one drive may hold. */
  readonly driveQuotaBytes: number
  /** Quotas of particular drives (`/<package>:<publisher>/<drive>`), instead of the default. */
  readonly driveQuotas: Readonly<Record<string, number>>
  /** Bytes one `AddZip` may unpack to. */
  readonly maxUnzippedBytes: number
  /** Entries one `AddZip` may hold. */
  readonly maxZipEntries: number
}

export const DEFAULT_VFS_LIMITS: VfsLimitSettings = {
  driveQuotaBytes: 4 * 1024 * 1024 * 1024,
  driveQuotas: {},
  maxUnzippedBytes: MAX_UNZIPPED_BYTES,
  maxZipEntries: 65_536
}

/** The vfs's limits; the defaults apply unless a layer provides others (`Vfs.limits`). */
export const VfsLimits = Context.Reference<VfsLimitSettings>("services/vfs/VfsLimits", {
  defaultValue: () => DEFAULT_VFS_LIMITS
})

const fail = (error: VfsErrorBody) => Effect.fail(new VfsFailure({ error }))
const ok = (r: VfsResponse, blob?: LazyLoadBlob): Reply => ({ body: Json.toBytes(r), blob })
const octets = (bytes: Uint8Array): LazyLoadBlob => ({ mime: "application/octet-stream", bytes })

/** Rust's io::Error texts for the common cases; never leaks the home path. */
const ioText: Record<string, string> = {
  ENOENT: "No such file or directory (os error 2)",
  EEXIST: "File exists (os error 17)",
  ENOTDIR: "Not a directory (os error 20)",
  EISDIR: "Is a directory (os error 21)",
  ENOTEMPTY: "Directory not empty (os error 39)",
  EACCES: "Permission denied (os error 13)",
  ELOOP: "Too many levels of symbolic links (os error 40)",
  ENOSPC: "No space left on device (os error 28)",
  EINVAL: "Invalid argument (os error 22)",
  EFBIG: "File too large (os error 27)",
  EDQUOT: "Disk quota exceeded (os error 122)",
  UNEXPECTED_EOF: "failed to fill whole buffer",
  INVALID_UTF8: "stream did not contain valid UTF-8"
}
const ioError = (cause: unknown) => {
  const code = (cause as { code?: unknown } | undefined)?.code
  const text = typeof code === "string" ? ioText[code] ?? code : "unknown I/O error"
  return new VfsFailure({ error: { IOError: text } })
}
const io = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: ioError })

type Access = "read" | "write"
const WRITE_ACTIONS: ReadonlySet<string> = new Set([
  "CreateDir", "CreateDirAll", "CreateFile", "OpenFile", "CloseFile", "Write", "WriteAll", "Append", "SyncAll",
  "RemoveFile", "RemoveDir", "RemoveDirAll", "AddZip", "SetLen"
])
const tagOf = (a: VfsAction): string => typeof a === "string" ? a : Object.keys(a)[0]!

const utf8 = new TextDecoder("utf-8", { fatal: true })

export class Vfs extends Context.Service<Vfs, {
  readonly handle: ServiceShell.Handle
}>()("services/vfs/Vfs") {
  static readonly layerNoDeps = Layer.effect(
    Vfs,
    Effect.gen(function*() {
      const host = yield* ModuleHost
      const home = yield* Home
      const root = yield* Effect.sync(() => {
        const dir = path.join(home.path, "vfs")
        fs.mkdirSync(dir, { recursive: true })
        return fs.realpathSync(dir)
      })
      const limits = yield* VfsLimits
      // Unpacked zips wait here until all of them is good; left-overs of a crash go at boot.
      const stagingRoot = path.join(home.path, "vfs-staging")
      yield* Effect.promise(() => Disk.removeQuietly(stagingRoot))
      let staged = 0
      const our = new Address({ node: host.node, process: pid("vfs:distro:sys") }, { disableChecks: true })
      const cursors = new Map<string, number>()

      // ---- quotas: bytes per drive, counted once then kept up to date ----------------
      const usage = new Map<string, number>()
      const quotaOf = (drive: string) => limits.driveQuotas[drive] ?? limits.driveQuotaBytes
      const driveDir = (p: VfsPath) => path.join(root, p.segments[0]!, p.segments[1]!)
      /** Counts `delta` bytes more on the drive (less, when negative) if it was counted. */
      const adjust = (drive: string, delta: number) => {
        const used = usage.get(drive)
        if (used !== undefined) usage.set(drive, Math.max(0, used + delta))
      }
      /** Takes `delta` more bytes on `p`'s drive, or fails past its quota; `release` gives them back. */
      const reserve = Effect.fnUntraced(function*(p: VfsPath, delta: number) {
        const drive = p.drive!
        if (delta <= 0) return
        if (!usage.has(drive)) {
          const walked = yield* io(() => Disk.treeSize(driveDir(p)))
          if (!usage.has(drive)) usage.set(drive, walked)
        }
        const used = usage.get(drive)!
        if (used + delta > quotaOf(drive)) return yield* fail({ IOError: ioText.EDQUOT! })
        usage.set(drive, used + delta)
      })
      /** Runs `write` with `delta` bytes reserved on the drive, given back if it fails. */
      const growing = <A>(p: VfsPath, delta: number, write: Effect.Effect<A, VfsFailure>) =>
        Effect.andThen(
          reserve(p, delta),
          Effect.onError(write, () => Effect.sync(() => adjust(p.drive!, -Math.max(0, delta))))
        )
      /** The size of the file at `abs` now (0 if none): what a write replaces. */
      const sizeNow = (abs: string) => io(() => Disk.sizeOrZero(abs))

      const cursorOf = (abs: string) => cursors.get(abs) ?? 0
      const setCursor = (abs: string, at: number) => {
        cursors.delete(abs)
        cursors.set(abs, at)
        if (cursors.size > MAX_CURSORS) cursors.delete(cursors.keys().next().value!)
      }

      /** Resolves a request path (or `new_path`), refusing escapes and symlinks. */
      const locate = Effect.fnUntraced(function*(raw: string) {
        const p = resolve(root, raw)
        if (isProblem(p)) {
          return yield* fail(p._tag === "Malformed" ? "MalformedRequest" : { ParseError: { error: p.error, path: raw } })
        }
        const link = yield* io(() => findSymlink(root, p))
        if (link !== undefined) {
          return yield* fail({ ParseError: { error: "path goes through a symlink, which the vfs never follows", path: raw } })
        }
        return p
      })

      const has = (source: Address, params: string) => host.hasCapability(source.process, { issuer: our, params })

      const ownedBy = (source: Address, p: VfsPath) =>
        p.pkg !== undefined && p.pkg.packageName === source.process.packageName &&
        p.pkg.publisherNode === source.process.publisherNode

      /** Kinode's rule set: own package, else the drive's cap, root overriding everything. */
      const allowed = (source: Address, p: VfsPath, access: Access) =>
        ownedBy(source, p) || (p.drive !== undefined && has(source, driveCap(access, p.drive))) ||
        has(source, ROOT_CAP)

      const needBlob = (blob: LazyLoadBlob | undefined) =>
        blob === undefined ? fail("NoBlob") : Effect.succeed(blob.bytes)

      const seek = Effect.fnUntraced(function*(abs: string, from: SeekFrom) {
        let next: bigint
        if ("Start" in from) next = from.Start
        else if ("End" in from) next = BigInt(yield* io(() => Disk.size(abs))) + from.End
        else next = BigInt(cursorOf(abs)) + from.Current
        if (next < 0n || next > BigInt(Number.MAX_SAFE_INTEGER)) {
          return yield* fail({ IOError: "invalid seek to a negative or overflowing position (os error 22)" })
        }
        // Kinode seeks the open file: it must exist.
        yield* io(() => Disk.size(abs))
        setCursor(abs, Number(next))
        return ok({ SeekFrom: { new_offset: next } })
      })

      const addZip = Effect.fnUntraced(function*(p: VfsPath, raw: string, bytes: Uint8Array) {
        const listed = Zip.readEntries(bytes, limits.maxZipEntries)
        if (Result.isFailure(listed)) return yield* fail("UnzipError")
        let total = 0
        const seen = new Set<string>()
        const items: Array<{ readonly name: string; readonly entry: Zip.ZipEntry; readonly abs: string }> = []
        for (const entry of listed.success) {
          const name = entry.name
          // zip-slip: every entry must stay below the target, as a plain relative name.
          const sub = resolve(root, `${raw}/${name}`)
          if (
            name.startsWith("/") || name.includes("\\") || isProblem(sub) ||
            !sub.abs.startsWith(p.abs + path.sep) || name.split("/").includes("..")
          ) {
            return yield* fail("UnzipError")
          }
          // Files and directories only; nothing encrypted or oddly compressed; no name twice.
          const type = entry.unixType
          if (type !== undefined && type !== 0 && type !== Zip.S_IFREG && type !== Zip.S_IFDIR) return yield* fail("UnzipError")
          if ((entry.method !== 0 && entry.method !== 8) || entry.encrypted) return yield* fail("UnzipError")
          const rel = path.relative(p.abs, sub.abs) + (name.endsWith("/") ? "/" : "")
          if (seen.has(rel)) return yield* fail("UnzipError")
          seen.add(rel)
          if (!name.endsWith("/")) total += entry.size
          if (total > limits.maxUnzippedBytes) return yield* fail("UnzipError")
          if ((yield* io(() => findSymlink(root, sub))) !== undefined) return yield* fail("UnzipError")
          items.push({ name: rel, entry, abs: sub.abs })
        }
        // The declared sizes are what will be written (a lying entry fails): reserve them first.
        yield* reserve(p, total)
        const release = Effect.sync(() => adjust(p.drive!, -total))
        const staging = path.join(stagingRoot, String(++staged))
        const unpacked = Effect.tryPromise({
          try: () =>
            Disk.unpackInto(
              staging,
              items.map(({ name, entry }) => ({ name, fill: (write) => Zip.inflateEntry(bytes, entry, write) }))
            ),
          catch: (cause) => cause instanceof Zip.ZipDataError ? new VfsFailure({ error: "UnzipError" }) : ioError(cause)
        })
        const replaced = yield* Effect.gen(function*() {
          yield* unpacked
          let old = 0
          for (const { name, abs } of items) if (!name.endsWith("/")) old += yield* sizeNow(abs)
          yield* io(() => Disk.moveTree(staging, p.abs, items.map((i) => i.name)))
          return old
        }).pipe(
          Effect.onError(() => release),
          Effect.ensuring(Effect.promise(() => Disk.removeQuietly(staging)))
        )
        adjust(p.drive!, -replaced)
        return ok("Ok")
      })

      const serve = Effect.fnUntraced(function*(
        source: Address,
        req: VfsRequest,
        blob: LazyLoadBlob | undefined
      ): Effect.fn.Return<Reply, VfsFailure> {
        const isKernel = source.process.toString() === KERNEL
        const action = req.action
        const tag = tagOf(action)
        const p = yield* locate(req.path)
        const abs = p.abs

        if (p.pkg === undefined) {
          // Only `ReadDir` of the root itself, with the root cap: lists packages.
          if (tag !== "ReadDir") return yield* fail("MalformedRequest")
          if (!isKernel && !has(source, ROOT_CAP)) return yield* fail("NoReadCap")
        } else if (p.drive === undefined) {
          return yield* fail("MalformedRequest")
        } else if (!isKernel) {
          if (tag === "CreateDrive") {
            if (!ownedBy(source, p) && !has(source, ROOT_CAP)) return yield* fail("NoWriteCap")
          } else if (tag === "Rename" || tag === "CopyFile") {
            // checked below, once the second path is known
          } else {
            const access: Access = WRITE_ACTIONS.has(tag) ? "write" : "read"
            if (!allowed(source, p, access)) return yield* fail(access === "write" ? "NoWriteCap" : "NoReadCap")
          }
        }

        if (typeof action === "string") {
          switch (action) {
            case "CreateDrive": {
              yield* io(() => Disk.mkdirAll(abs))
              if (!isKernel) {
                yield* host.grantCapabilities(source.process, [
                  { issuer: our, params: driveCap("read", p.drive!) },
                  { issuer: our, params: driveCap("write", p.drive!) }
                ])
              }
              return ok("Ok")
            }
            case "CreateDir":
              yield* io(() => Disk.mkdir(abs))
              return ok("Ok")
            case "CreateDirAll":
              yield* io(() => Disk.mkdirAll(abs))
              return ok("Ok")
            case "CreateFile": {
              const old = yield* sizeNow(abs)
              yield* io(() => Disk.writeWhole(abs, new Uint8Array(0)))
              adjust(p.drive!, -old)
              setCursor(abs, 0)
              return ok("Ok")
            }
            case "CloseFile":
              cursors.delete(abs)
              return ok("Ok")
            case "Write": {
              const bytes = yield* needBlob(blob)
              const delta = bytes.byteLength - (yield* sizeNow(abs))
              yield* growing(p, delta, io(() => Disk.writeWhole(abs, bytes)))
              if (delta < 0) adjust(p.drive!, delta)
              return ok("Ok")
            }
            case "WriteAll": {
              const bytes = yield* needBlob(blob)
              const delta = Math.max(0, cursorOf(abs) + bytes.byteLength - (yield* sizeNow(abs)))
              const at = yield* growing(p, delta, io(() => Disk.writeAt(abs, bytes, cursorOf(abs))))
              setCursor(abs, at)
              return ok("Ok")
            }
            case "Append": {
              const bytes = yield* needBlob(blob)
              const end = yield* growing(p, bytes.byteLength, io(() => Disk.append(abs, bytes)))
              setCursor(abs, end)
              return ok("Ok")
            }
            case "SyncAll":
              yield* io(() => Disk.sync(abs))
              return ok("Ok")
            case "Read":
              return ok("Read", octets(yield* io(() => Disk.readFrom(abs, 0, undefined))))
            case "ReadToEnd": {
              const bytes = yield* io(() => Disk.readFrom(abs, cursorOf(abs), undefined))
              setCursor(abs, cursorOf(abs) + bytes.byteLength)
              return ok("Read", octets(bytes))
            }
            case "ReadToString": {
              const bytes = yield* io(() => Disk.readFrom(abs, cursorOf(abs), undefined))
              let text: string
              try {
                text = utf8.decode(bytes)
              } catch {
                return yield* fail({ IOError: ioText.INVALID_UTF8! })
              }
              setCursor(abs, cursorOf(abs) + bytes.byteLength)
              return ok({ ReadToString: text })
            }
            case "ReadDir": {
              const entries = yield* io(() => Disk.readDir(abs))
              const prefix = p.segments.join("/")
              return ok({
                ReadDir: entries.map((e) => ({
                  path: prefix === "" ? e.name : `${prefix}/${e.name}`,
                  file_type: e.type
                }))
              })
            }
            case "RemoveFile": {
              const old = yield* sizeNow(abs)
              yield* io(() => Disk.removeFile(abs))
              adjust(p.drive!, -old)
              cursors.delete(abs)
              return ok("Ok")
            }
            case "RemoveDir":
              yield* io(() => Disk.removeDir(abs))
              return ok("Ok")
            case "RemoveDirAll":
              // What goes is counted again at the next write that grows the drive.
              yield* io(() => Disk.removeDirAll(abs)).pipe(Effect.ensuring(Effect.sync(() => usage.delete(p.drive!))))
              for (const k of cursors.keys()) if (k.startsWith(abs + path.sep)) cursors.delete(k)
              return ok("Ok")
            case "Metadata": {
              const m = yield* io(() => Disk.metadata(abs))
              return ok({ Metadata: { file_type: m.type, len: BigInt(m.len) } })
            }
            case "Len":
              return ok({ Len: BigInt(yield* io(() => Disk.size(abs))) })
            case "Hash":
              return ok({ Hash: Array.from(yield* io(() => Disk.sha256(abs))) })
            case "AddZip":
              return yield* addZip(p, req.path, yield* needBlob(blob))
          }
        }
        if ("OpenFile" in action) {
          yield* io(() => Disk.open(abs, action.OpenFile.create))
          setCursor(abs, 0)
          return ok("Ok")
        }
        if ("ReadExact" in action) {
          const length = action.ReadExact.length
          // Anything longer than the file fails the same way; never allocate it first.
          const size = yield* io(() => Disk.size(abs))
          if (length > BigInt(size - cursorOf(abs))) return yield* fail({ IOError: ioText.UNEXPECTED_EOF! })
          const bytes = yield* io(() => Disk.readFrom(abs, cursorOf(abs), Number(length)))
          setCursor(abs, cursorOf(abs) + bytes.byteLength)
          return ok("Read", octets(bytes))
        }
        if ("Seek" in action) return yield* seek(abs, action.Seek)
        if ("SetLen" in action) {
          if (action.SetLen > BigInt(Number.MAX_SAFE_INTEGER)) return yield* fail({ IOError: ioText.EFBIG! })
          const delta = Number(action.SetLen) - (yield* sizeNow(abs))
          yield* growing(p, delta, io(() => Disk.setLen(abs, Number(action.SetLen))))
          if (delta < 0) adjust(p.drive!, delta)
          return ok("Ok")
        }
        // Rename / CopyFile: `new_path` is relative to the vfs root.
        const isRename = "Rename" in action
        const target = yield* locate(isRename ? action.Rename.new_path : action.CopyFile.new_path)
        if (target.drive === undefined) return yield* fail("MalformedRequest")
        if (!isKernel) {
          const bothOwned = ownedBy(source, p) && ownedBy(source, target)
          const ok1 = bothOwned || allowed(source, p, "write")
          const ok2 = bothOwned || (target.drive === p.drive ? ok1 : allowed(source, target, "write"))
          if (!ok1 || !ok2) return yield* fail("NoWriteCap")
        }
        if (isRename) {
          if (target.drive === p.drive) {
            const old = yield* sizeNow(target.abs)
            yield* io(() => Disk.rename(abs, target.abs))
            adjust(p.drive!, -old)
          } else {
            // Bytes move from one drive to the other; both are counted again afterwards.
            const moved = yield* io(() => Disk.treeSize(abs))
            yield* growing(target, moved, io(() => Disk.rename(abs, target.abs)))
            usage.delete(p.drive!)
            usage.delete(target.drive)
          }
          const at = cursors.get(abs)
          cursors.delete(abs)
          if (at !== undefined) setCursor(target.abs, at)
        } else {
          const delta = (yield* sizeNow(abs)) - (yield* sizeNow(target.abs))
          yield* growing(target, delta, io(() => Disk.copy(abs, target.abs)))
          if (delta < 0) adjust(target.drive, delta)
        }
        return ok("Ok")
      })

      const shell = ServiceShell.make({
        request: VfsRequest,
        malformed: (): VfsErrorBody => "MalformedRequest",
        serve
      })
      return Vfs.of({ handle: shell.handle })
    })
  )

  /** Registers `vfs:distro:sys`: one lane per source process, lanes run concurrently. */
  static readonly serve = Layer.unwrap(Effect.map(Vfs, (vfs) =>
    ServiceShell.serveLayer("vfs:distro:sys", { _tag: "lanes", maxInFlight: MAX_IN_FLIGHT }, vfs.handle)))

  static readonly layer = Vfs.serve.pipe(Layer.provide(Vfs.layerNoDeps))

  /** Limits other than the defaults (drive quotas, what one AddZip may unpack). */
  static readonly limits = (settings: Partial<VfsLimitSettings>) =>
    Layer.succeed(VfsLimits, { ...DEFAULT_VFS_LIMITS, ...settings })
}
