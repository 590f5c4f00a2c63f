import { assert, describe, layer } from "@effect/vitest"
import { Effect } from "effect"
import { zipSync } from "fflate"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Home } from "../../src/Home.ts"
import { Vfs } from "../../services/vfs/index.ts"
import { TestRuntime } from "./support/TestRuntime.ts"
import { withServices } from "./support/Storage.ts"

const APP = "main:app:pub.os"
const STRANGER = "main:other:pub.os"
const KERNEL = "kernel:distro:sys"
const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

const vfs = (source: string, p: string, action: unknown, blob?: Uint8Array) =>
  Effect.flatMap(TestRuntime, (t) => t.call("vfs", source, { path: p, action }, blob === undefined ? {} : { blob }))

describe("vfs", () => {
  layer(withServices(Vfs.layer))((it) => {
    it.effect("drive lifecycle: CreateDrive, Write/Read, cursors, Seek, Append, Len, Metadata, Hash", () =>
      Effect.gen(function*() {
        const home = yield* Home
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/data", "CreateDrive")).body, "Ok")
        assert.ok(fs.statSync(path.join(home.path, "vfs", "app:pub.os", "data")).isDirectory())
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/data/f.txt", "Write", enc("hello world"))).body, "Ok")
        const read = yield* vfs(APP, "/app:pub.os/data/f.txt", "Read")
        assert.deepStrictEqual(read.body, "Read")
        assert.strictEqual(dec(read.blob!.bytes), "hello world")
        assert.strictEqual(read.blob!.mime, "application/octet-stream")
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/data/f.txt", { OpenFile: { create: false } })).body, "Ok")
        const five = yield* vfs(APP, "/app:pub.os/data/f.txt", { ReadExact: { length: 5 } })
        assert.strictEqual(dec(five.blob!.bytes), "hello")
        assert.strictEqual(dec((yield* vfs(APP, "/app:pub.os/data/f.txt", "ReadToEnd")).blob!.bytes), " world")
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/data/f.txt", { Seek: { Start: 6 } })).body, { SeekFrom: { new_offset: 6 } })
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/data/f.txt", "WriteAll", enc("WORLD"))).body, "Ok")
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/data/f.txt", { Seek: { End: -5 } })).body, { SeekFrom: { new_offset: 6 } })
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/data/f.txt", "ReadToString")).body, { ReadToString: "WORLD" })
        assert.ok("Err" in ((yield* vfs(APP, "/app:pub.os/data/f.txt", { Seek: { Current: -100 } })).body as object))
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/data/f.txt", "Append", enc("!"))).body, "Ok")
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/data/f.txt", "Len")).body, { Len: 12 })
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/data/f.txt", "Metadata")).body, {
          Metadata: { file_type: "File", len: 12 }
        })
        const hash = Array.from(createHash("sha256").update("hello WORLD!").digest())
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/data/f.txt", "Hash")).body, { Hash: hash })
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/data/f.txt", { SetLen: 5 })).body, "Ok")
        assert.strictEqual(dec((yield* vfs(APP, "/app:pub.os/data/f.txt", "Read")).blob!.bytes), "hello")
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/data/f.txt", { ReadExact: { length: 2n ** 63n } })).body, {
          Err: { IOError: "failed to fill whole buffer" }
        })
      }))

    it.effect("directories: CreateDir(All), ReadDir relative to the root, Rename, CopyFile, Remove*", () =>
      Effect.gen(function*() {
        yield* vfs(APP, "/app:pub.os/d", "CreateDrive")
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/d/a/b/c", "CreateDirAll")).body, "Ok")
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/d/x", "CreateDir")).body, "Ok")
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/d/x", "CreateDir")).body, {
          Err: { IOError: "File exists (os error 17)" }
        })
        yield* vfs(APP, "/app:pub.os/d/a/file", "CreateFile")
        const listing = (yield* vfs(APP, "/app:pub.os/d/a", "ReadDir")).body as { ReadDir: Array<{ path: string; file_type: string }> }
        assert.deepStrictEqual(
          [...listing.ReadDir].sort((x, y) => x.path.localeCompare(y.path)),
          [{ path: "app:pub.os/d/a/b", file_type: "Directory" }, { path: "app:pub.os/d/a/file", file_type: "File" }]
        )
        yield* vfs(APP, "/app:pub.os/d/a/file", "Write", enc("data"))
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/d/a/file", { CopyFile: { new_path: "app:pub.os/d/copy" } })).body, "Ok")
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/d/copy", { Rename: { new_path: "/app:pub.os/d/moved" } })).body, "Ok")
        assert.strictEqual(dec((yield* vfs(APP, "/app:pub.os/d/moved", "Read")).blob!.bytes), "data")
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/d/moved", "RemoveFile")).body, "Ok")
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/d/a", "RemoveDir")).body, {
          Err: { IOError: "Directory not empty (os error 39)" }
        })
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/d/a", "RemoveDirAll")).body, "Ok")
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/d/a", "Metadata")).body, {
          Err: { IOError: "No such file or directory (os error 2)" }
        })
        // root listing needs the root cap
        assert.deepStrictEqual((yield* vfs(APP, "/", "ReadDir")).body, { Err: "NoReadCap" })
        const rootList = (yield* vfs(KERNEL, "/", "ReadDir")).body as { ReadDir: Array<{ path: string }> }
        assert.ok(rootList.ReadDir.some((e) => e.path === "app:pub.os"))
      }))

    it.effect("access: foreign package needs drive caps; CreateDrive grants read+write; root cap overrides", () =>
      Effect.gen(function*() {
        yield* vfs(APP, "/app:pub.os/priv", "CreateDrive")
        yield* vfs(APP, "/app:pub.os/priv/s", "Write", enc("secret"))
        assert.deepStrictEqual((yield* vfs(STRANGER, "/app:pub.os/priv/s", "Read")).body, { Err: "NoReadCap" })
        assert.deepStrictEqual((yield* vfs(STRANGER, "/app:pub.os/priv/s", "Write", enc("x"))).body, { Err: "NoWriteCap" })
        assert.deepStrictEqual((yield* vfs(STRANGER, "/app:pub.os/new", "CreateDrive")).body, { Err: "NoWriteCap" })
        assert.deepStrictEqual(
          (yield* vfs(STRANGER, "/app:pub.os/priv/s", { CopyFile: { new_path: "/other:pub.os/x/s" } })).body,
          { Err: "NoWriteCap" }
        )
        // a sibling process of the same package may do anything in the package's drives
        assert.strictEqual(dec((yield* vfs("worker:app:pub.os", "/app:pub.os/priv/s", "Read")).blob!.bytes), "secret")
        const t = yield* TestRuntime
        assert.ok(t.caps(APP).some((c) => c.includes(`"drive":"/app:pub.os/priv"`) && c.includes(`"write"`)))
        assert.ok(t.caps(APP).some((c) => c.includes(`"drive":"/app:pub.os/priv"`) && c.includes(`"read"`)))
        // kernel skips checks
        assert.deepStrictEqual((yield* vfs(KERNEL, "/app:pub.os/priv/s", "Len")).body, { Len: 6 })
      }))

    it.effect("paths never escape their drive; symlinks refused; nothing touched", () =>
      Effect.gen(function*() {
        const home = yield* Home
        yield* vfs(APP, "/app:pub.os/safe", "CreateDrive")
        const outside = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-outside-"))
        fs.writeFileSync(path.join(outside, "victim"), "untouched")
        const drive = path.join(home.path, "vfs", "app:pub.os", "safe")
        fs.symlinkSync(outside, path.join(drive, "link"))
        fs.symlinkSync(path.join(outside, "victim"), path.join(drive, "flink"))
        const attempts: Array<[string, unknown]> = [
          ["/../../etc/passwd", "Read"],
          ["/app:pub.os/safe/../../../../etc/passwd", "Read"],
          ["/app:pub.os/safe/link/victim", "Read"],
          ["/app:pub.os/safe/link/victim", "Write"],
          ["/app:pub.os/safe/flink", "Write"],
          ["/app:pub.os/safe/flink", "Read"],
          ["/app:pub.os/safe/flink", "RemoveFile"],
          ["/app:pub.os/safe/link", "RemoveDirAll"],
          ["/app:pub.os/safe/link/new", "CreateDirAll"],
          ["/app:pub.os/safe/x\0y", "Write"],
          [`/app:pub.os/safe/${"a".repeat(300)}`, "Write"],
          [`/app:pub.os/safe/${"a/".repeat(2100)}`, "CreateDirAll"],
          ["/app:pub.os/safe/ok", { Rename: { new_path: "../../outside" } }],
          ["/app:pub.os/safe/ok", { CopyFile: { new_path: "app:pub.os/safe/link/victim" } }],
          ["/not-a-package/drive/x", "Read"],
          ["/app:pub.os", "Read"],
          ["", "Read"]
        ]
        yield* vfs(APP, "/app:pub.os/safe/ok", "Write", enc("ok"))
        for (const [p, action] of attempts) {
          const r = yield* vfs(APP, p, action, enc("pwned"))
          const err = (r.body as { Err?: unknown }).Err
          assert.ok(
            err === "MalformedRequest" || (typeof err === "object" && err !== null && "ParseError" in err),
            `${p.slice(0, 60)} ${JSON.stringify(action)} -> ${JSON.stringify(r.body)}`
          )
        }
        assert.strictEqual(fs.readFileSync(path.join(outside, "victim"), "utf8"), "untouched")
        assert.deepStrictEqual(fs.readdirSync(outside), ["victim"])
        assert.ok(fs.lstatSync(path.join(drive, "link")).isSymbolicLink())
        fs.rmSync(outside, { recursive: true, force: true })
      }))

    it.effect("AddZip unpacks files and dirs; zip-slip and garbage are UnzipError", () =>
      Effect.gen(function*() {
        yield* vfs(APP, "/app:pub.os/zip", "CreateDrive")
        const zip = zipSync({ "a.txt": enc("A"), "dir/": new Uint8Array(0), "dir/b.txt": enc("B") })
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/zip/out", "AddZip", zip)).body, "Ok")
        assert.strictEqual(dec((yield* vfs(APP, "/app:pub.os/zip/out/dir/b.txt", "Read")).blob!.bytes), "B")
        const slip = zipSync({ "../../../evil.txt": enc("E") })
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/zip/out2", "AddZip", slip)).body, { Err: "UnzipError" })
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/zip/out3", "AddZip", enc("not a zip"))).body, { Err: "UnzipError" })
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/zip/out4", "AddZip")).body, { Err: "NoBlob" })
      }))

    it.effect("bad input: typed errors, never a crash", () =>
      Effect.gen(function*() {
        const t = yield* TestRuntime
        yield* vfs(APP, "/app:pub.os/bad", "CreateDrive")
        for (
          const body of [
            enc("{{{"),
            { path: "/app:pub.os/bad/x", action: "Explode" },
            { path: 7, action: "Read" },
            { path: "/app:pub.os/bad/x", action: { Seek: { Start: -1 } } },
            { path: "/app:pub.os/bad/x", action: { OpenFile: { create: "yes" } } },
            { path: "/app:pub.os/bad/x", action: { SetLen: 1.5 } },
            { path: "/app:pub.os/bad/x" },
            null
          ]
        ) {
          assert.deepStrictEqual((yield* t.call("vfs", APP, body)).body, { Err: "MalformedRequest" })
        }
        for (const action of ["Write", "WriteAll", "Append"]) {
          assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/bad/x", action)).body, { Err: "NoBlob" })
        }
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/bad/missing", "WriteAll", enc("x"))).body, {
          Err: { IOError: "No such file or directory (os error 2)" }
        })
        yield* vfs(APP, "/app:pub.os/bad/bin", "Write", new Uint8Array([0xff, 0xfe]))
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/bad/bin", "ReadToString")).body, {
          Err: { IOError: "stream did not contain valid UTF-8" }
        })
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/bad", "Read")).body, {
          Err: { IOError: "Is a directory (os error 21)" }
        })
        // a 9 MB file round trips
        const big = new Uint8Array(9 * 1024 * 1024).fill(3)
        assert.deepStrictEqual((yield* vfs(APP, "/app:pub.os/bad/big", "Write", big)).body, "Ok")
        assert.strictEqual((yield* vfs(APP, "/app:pub.os/bad/big", "Read")).blob!.bytes.byteLength, big.byteLength)
      }))
  })
})
