/**
 * The vfs under hostile zips and hungry writers (issue #11): zip bombs are refused by
 * the drive's quota before anything is inflated, inflating never holds the event loop,
 * an entry whose data differs from its header is refused (never silently cut) and the
 * whole `AddZip` leaves nothing, and every write that grows a drive counts against its
 * quota. Real kernel, real files.
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as zlib from "node:zlib"
import { Home } from "../../src/Home.ts"
import { readPackageZip, ZIP_LIMITS } from "../../services/packages/index.ts"
import { Vfs } from "../../services/vfs/index.ts"
import { TestRuntime } from "./support/TestRuntime.ts"
import { withServices } from "./support/Storage.ts"

const APP = "main:app:pub.os"
const MiB = 1024 * 1024
const QUOTA = "Disk quota exceeded (os error 122)"
const enc = (s: string) => new TextEncoder().encode(s)

const vfs = (source: string, p: string, action: unknown, blob?: Uint8Array) =>
  Effect.flatMap(TestRuntime, (t) => t.call("vfs", source, { path: p, action }, blob === undefined ? {} : { blob }))

interface RawEntry {
  readonly name: string
  readonly data: Uint8Array
  readonly deflate?: boolean
  /** Declared unpacked size, if not the real one (a lying header). */
  readonly size?: number
  readonly crc?: number
}

/** A zip written byte by byte, so headers can lie. */
const rawZip = (entries: ReadonlyArray<RawEntry>): Uint8Array => {
  const parts: Array<Buffer> = []
  const central: Array<Buffer> = []
  let offset = 0
  for (const e of entries) {
    const name = Buffer.from(e.name)
    const body = e.deflate === false ? Buffer.from(e.data) : zlib.deflateRawSync(e.data, { level: 9 })
    const method = e.deflate === false ? 0 : 8
    const crc = e.crc ?? zlib.crc32(e.data)
    const size = e.size ?? e.data.byteLength
    const local = Buffer.alloc(30)
    local.writeUInt32LE(0x04034b50, 0)
    local.writeUInt16LE(20, 4)
    local.writeUInt16LE(0x800, 6)
    local.writeUInt16LE(method, 8)
    local.writeUInt32LE(crc, 14)
    local.writeUInt32LE(body.byteLength, 18)
    local.writeUInt32LE(size, 22)
    local.writeUInt16LE(name.byteLength, 26)
    const c = Buffer.alloc(46)
    c.writeUInt32LE(0x02014b50, 0)
    c.writeUInt16LE((3 << 8) | 20, 4)
    c.writeUInt16LE(20, 6)
    c.writeUInt16LE(0x800, 8)
    c.writeUInt16LE(method, 10)
    c.writeUInt32LE(crc, 16)
    c.writeUInt32LE(body.byteLength, 20)
    c.writeUInt32LE(size, 24)
    c.writeUInt16LE(name.byteLength, 28)
    c.writeUInt32LE(((e.name.endsWith("/") ? 0o040755 : 0o100644) << 16) >>> 0, 38)
    c.writeUInt32LE(offset, 42)
    parts.push(local, name, body)
    central.push(c, name)
    offset += 30 + name.byteLength + body.byteLength
  }
  const cd = Buffer.concat(central)
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0)
  end.writeUInt16LE(entries.length, 8)
  end.writeUInt16LE(entries.length, 10)
  end.writeUInt32LE(cd.byteLength, 12)
  end.writeUInt32LE(offset, 16)
  return new Uint8Array(Buffer.concat([...parts, cd, end]))
}

/** Runs `effect` while a 5 ms timer ticks; the longest gap between ticks, in ms. */
const longestStall = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    let last = performance.now()
    let worst = 0
    const timer = setInterval(() => {
      const now = performance.now()
      worst = Math.max(worst, now - last)
      last = now
    }, 5)
    const result = yield* effect.pipe(Effect.ensuring(Effect.sync(() => clearInterval(timer))))
    return { result, worst: Math.max(worst, performance.now() - last) }
  })

const driveOnDisk = (home: string, drive: string) => path.join(home, "vfs", "app:pub.os", drive)
const listed = (dir: string) => fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).map(String).sort() : []

const zeros = new Uint8Array(64 * MiB)
const bomb = rawZip([{ name: "zeros.bin", data: zeros }])

describe("vfs limits", () => {
  layer(withServices(Vfs.layer.pipe(Layer.provide(Vfs.limits({ driveQuotaBytes: 100 * MiB, driveQuotas: { "/app:pub.os/small": 1000 } })))))((it) => {
    it.effect("a zip bomb is unpacked off the event loop; the next one past the drive's quota is refused before inflating", () =>
      Effect.gen(function*() {
        const home = (yield* Home).path
        yield* vfs(APP, "/app:pub.os/bombs", "CreateDrive")
        assert.isBelow(bomb.byteLength, 200 * 1024) // 64 KiB of zip for 64 MiB of data
        const first = yield* longestStall(vfs(APP, "/app:pub.os/bombs/one", "AddZip", bomb))
        assert.deepStrictEqual(first.result.body, "Ok")
        assert.strictEqual(fs.statSync(path.join(driveOnDisk(home, "bombs"), "one", "zeros.bin")).size, 64 * MiB)
        // Before, unzipSync held the loop for the whole inflation (5.2 s for 1 GiB).
        assert.isBelow(first.worst, 250, `event loop stalled ${first.worst} ms`)
        const second = yield* longestStall(vfs(APP, "/app:pub.os/bombs/two", "AddZip", bomb))
        assert.deepStrictEqual(second.result.body, { Err: { IOError: QUOTA } })
        assert.isBelow(second.worst, 100)
        assert.deepStrictEqual(listed(driveOnDisk(home, "bombs")), ["one", "one/zeros.bin"])
        // Removing the first frees its place.
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/bombs/one", "RemoveDirAll")).body, "Ok")
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/bombs/two", "AddZip", bomb)).body, "Ok")
      }), { timeout: 60_000 })

    it.effect("an entry whose data is longer or shorter than declared, or fails its CRC, is refused and the AddZip leaves nothing", () =>
      Effect.gen(function*() {
        const home = (yield* Home).path
        yield* vfs(APP, "/app:pub.os/lies", "CreateDrive")
        const data = enc("x".repeat(1000))
        const good = { name: "good.txt", data: enc("fine") }
        const cases: Array<[string, RawEntry]> = [
          ["understated, deflated", { name: "liar.bin", data, size: 10 }],
          ["understated, stored", { name: "liar.bin", data, size: 10, deflate: false }],
          ["overstated", { name: "liar.bin", data, size: 5000 }],
          ["wrong CRC-32", { name: "liar.bin", data, crc: 12345 }]
        ]
        for (const [what, liar] of cases) {
          const r = yield* vfs(APP, "/app:pub.os/lies/out", "AddZip", rawZip([good, liar]))
          assert.deepStrictEqual(r.body, { Err: "UnzipError" }, what)
          assert.deepStrictEqual(listed(driveOnDisk(home, "lies")), [], what)
        }
        // The same entries with honest headers unpack.
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/lies/out", "AddZip", rawZip([good, { name: "liar.bin", data }]))).body, "Ok")
        assert.strictEqual(fs.readFileSync(path.join(driveOnDisk(home, "lies"), "out", "liar.bin")).byteLength, 1000)
        // No staging left behind.
        assert.deepStrictEqual(fs.readdirSync(path.join(home, "vfs-staging")), [])
      }))

    it.effect("every write that grows a drive counts against its quota, files already on disk too; shrinking frees", () =>
      Effect.gen(function*() {
        const home = (yield* Home).path
        yield* vfs(APP, "/app:pub.os/small", "CreateDrive")
        fs.writeFileSync(path.join(driveOnDisk(home, "small"), "before.bin"), new Uint8Array(200))
        const w = (p: string, action: unknown, n?: number) => Effect.map(vfs(APP, `/app:pub.os/small/${p}`, action, n === undefined ? undefined : new Uint8Array(n)), (r) => r.body)
        assert.deepStrictEqual(yield* w("a", "Write", 600), "Ok") // 800 of 1000
        assert.deepStrictEqual(yield* w("b", "Write", 300), { Err: { IOError: QUOTA } })
        assert.isFalse(fs.existsSync(path.join(driveOnDisk(home, "small"), "b")))
        assert.deepStrictEqual(yield* w("a", "Write", 790), "Ok") // replaces: 990
        assert.deepStrictEqual(yield* w("a", "Append", 20), { Err: { IOError: QUOTA } })
        assert.deepStrictEqual(yield* w("a", { SetLen: 2000 }), { Err: { IOError: QUOTA } })
        assert.deepStrictEqual(yield* w("before.bin", { CopyFile: { new_path: "/app:pub.os/small/copy" } }), { Err: { IOError: QUOTA } })
        const zip = rawZip([{ name: "f", data: new Uint8Array(100) }])
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/small/z", "AddZip", zip)).body, { Err: { IOError: QUOTA } })
        assert.deepStrictEqual(yield* w("before.bin", "RemoveFile"), "Ok") // 790
        assert.deepStrictEqual(yield* w("a", { SetLen: 100 }), "Ok") // 100
        assert.deepStrictEqual(yield* w("b", "Write", 300), "Ok") // 400
        assert.deepStrictEqual(yield* w("b", { CopyFile: { new_path: "/app:pub.os/small/c" } }), "Ok") // 700
        assert.deepStrictEqual(yield* w("c", { Rename: { new_path: "/app:pub.os/small/a" } }), "Ok") // 700 - 100 = 600
        assert.deepStrictEqual(yield* w("d", "Write", 400), "Ok") // 1000
        assert.deepStrictEqual(yield* w("e", "Write", 1), { Err: { IOError: QUOTA } })
        // Other drives have the default quota.
        yield* vfs(APP, "/app:pub.os/big", "CreateDrive")
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/big/x", "Write", new Uint8Array(5000))).body, "Ok")
      }))

    it.effect("package zips inflate off the event loop and refuse an entry whose data is longer than declared", () =>
      Effect.gen(function*() {
        const big = rawZip([{ name: "manifest.json", data: enc("[]") }, { name: "big.bin", data: new Uint8Array(ZIP_LIMITS.entryBytes) }])
        const r = yield* longestStall(Effect.result(readPackageZip("p:test.dev", big)))
        assert.strictEqual(r.result._tag, "Success")
        assert.isBelow(r.worst, 250, `event loop stalled ${r.worst} ms`)
        const lying = yield* Effect.flip(readPackageZip("p:test.dev", rawZip([{ name: "manifest.json", data: enc("[]") }, { name: "x.wasm", data: new Uint8Array(5000), size: 100 }])))
        assert.strictEqual(lying._tag, "ZipEntryRefused")
        if (lying._tag === "ZipEntryRefused") assert.include(lying.reason, "more than its declared 100 bytes")
      }), { timeout: 60_000 })
  })
})
