/**
 * Home integrity as a user meets it, each case a real `node dist/main.js`: one node per
 * home (the lock, and taking over a dead node's), a home that cannot be created or
 * written, a damaged process map (`lmdb/data.mdb` cut short or overwritten) refused
 * before LMDB maps it, and a home with data but no process map refused instead of
 * booting as a new node. Each refusal is one line and its exit code, at once.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { type Running, runNode } from "../support/NodeProcess.ts"
import { tempDirs } from "../support/TempDirs.ts"
import { startTestChain, type TestChain } from "../support/TestChain.ts"

let chain: TestChain
let pw: string
/** A home a real node booted in (processes, capabilities, bundled apps) and stopped. */
let booted: string
const dirs = tempDirs()
const mkdir = dirs.mkdir

const run = (args: ReadonlyArray<string>, options: { readonly uid?: number; readonly gid?: number } = {}): Running =>
  runNode(["--password-file", pw, "--chain-port", String(chain.port), "--offline", ...args], options)

/** Runs to the end (input closed at once: Ctrl-D at the prompt); exit code, output, time. */
const runOnce = async (args: ReadonlyArray<string>, options: { readonly uid?: number; readonly gid?: number } = {}) => {
  const t0 = performance.now()
  const r = run(args, options)
  r.child.stdin.end()
  const code = await r.exited
  return { code, out: r.output(), ms: performance.now() - t0 }
}

/** A copy of the booted home, to damage. */
const copyOfBooted = () => {
  const home = mkdir("kinode-ts-home-")
  fs.cpSync(booted, home, { recursive: true })
  return home
}

const dataMdb = (home: string) => path.join(home, "lmdb", "data.mdb")

beforeAll(async () => {
  chain = await startTestChain()
  const dir = mkdir("kinode-ts-pw-")
  pw = path.join(dir, "pw")
  fs.writeFileSync(pw, "correct horse\n")
  fs.chmodSync(dir, 0o755)
  fs.chmodSync(pw, 0o644)
  booted = mkdir("kinode-ts-home-")
  const first = await runOnce(["--home", booted, "--name", `home-${process.pid}.dev`])
  if (first.code !== 0) throw new Error(`first boot failed:\n${first.out}`)
}, 60_000)
afterAll(async () => {
  await chain?.stop()
  dirs.removeAll()
})

/** A refusal: exactly one line, the exit code, well within the time a boot takes. */
const assertRefused = (r: { code: number | null; out: string; ms: number }, code: number, line: RegExp) => {
  assert.strictEqual(r.code, code, r.out)
  assert.match(r.out, line)
  assert.strictEqual(r.out.trim().split("\n").length, 1, r.out)
  assert.isBelow(r.ms, 15_000)
}

describe("one node per home", () => {
  it("a second node on a home in use exits at once naming the first's pid (exit 7); a dead node's lock is taken over", async () => {
    const home = copyOfBooted()
    const first = run(["--home", home])
    try {
      await first.waitFor(/booted/)
      const second = await runOnce(["--home", home])
      assertRefused(second, 7, new RegExp(`^home \\S+ is in use by another node \\(pid ${first.child.pid}\\); stop it first`))
      // The first runs on, its lock intact.
      first.child.stdin.write("top\n")
      await first.waitFor(/\brunning\b/)
      assert.strictEqual(fs.readFileSync(path.join(home, ".lock"), "utf8").split(" ")[0], String(first.child.pid))
    } finally {
      first.child.kill("SIGKILL")
    }
    await first.exited
    // SIGKILL left the lock behind: the next node takes it over and says so.
    const next = await runOnce(["--home", home])
    assert.strictEqual(next.code, 0, next.out)
    assert.include(next.out, `took over the lock of node pid ${first.child.pid}, which is gone`)
    assert.match(next.out, /booted/)
    assert.isFalse(fs.existsSync(path.join(home, ".lock")), "a clean shutdown removes the lock")
  }, 60_000)
})

describe("a home that cannot be created or written", () => {
  it("--home /proc/nope is one line and exit 8, at once (Node's mkdir -p spun there forever)", async () => {
    assertRefused(await runOnce(["--home", "/proc/nope"]), 8, /^cannot create home \/proc\/nope \(ENOENT: the parent does not take new directories\)/)
    assertRefused(await runOnce(["--home", "/proc/nope/deeper"]), 8, /^cannot create home \/proc\/nope\/deeper at \/proc\/nope \(ENOENT/)
  }, 30_000)

  it("a file instead of a directory is one line and exit 8", async () => {
    const file = path.join(mkdir("kinode-ts-home-"), "a-file")
    fs.writeFileSync(file, "not a home")
    assertRefused(await runOnce(["--home", file]), 8, /^home \S+a-file is not a directory; give --home a directory/)
    assertRefused(await runOnce(["--home", path.join(file, "sub")]), 8, /is not a directory: \S+a-file is a file/)
  }, 30_000)

  it("a read-only directory is one line and exit 8 (as a user who may not write it)", async () => {
    const parent = mkdir("kinode-ts-home-")
    const home = path.join(parent, "ro")
    fs.mkdirSync(home)
    fs.chmodSync(parent, 0o755)
    fs.chmodSync(home, 0o555)
    // root writes anywhere: the node runs as nobody then, as a user would meet it.
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}
    assertRefused(await runOnce(["--home", home], asUser), 8, /^home \S+ro is not writable \(EACCES: permission denied\)/)
    assert.deepStrictEqual(fs.readdirSync(home), [])
  }, 30_000)
})

describe("a damaged process map is refused before LMDB maps it (never SIGBUS/SIGSEGV)", () => {
  it("data.mdb cut short: exit 9, the sizes named, the file untouched", async () => {
    const home = copyOfBooted()
    const size = fs.statSync(dataMdb(home)).size
    fs.truncateSync(dataMdb(home), Math.floor(size / 2 / 4096) * 4096 + 100)
    const before = fs.readFileSync(dataMdb(home))
    const r = await runOnce(["--home", home])
    assertRefused(r, 9, /lmdb\/data\.mdb is damaged: it is cut short: \d+ bytes, its newest snapshot needs \d+\. The node did not open it/)
    assert.deepStrictEqual(fs.readFileSync(dataMdb(home)), before)
  }, 30_000)

  it("data.mdb shorter than its meta pages: exit 9", async () => {
    const home = copyOfBooted()
    fs.truncateSync(dataMdb(home), 3000)
    assertRefused(await runOnce(["--home", home]), 9, /data\.mdb is damaged: it is 3000 bytes, shorter than LMDB's two meta pages/)
  }, 30_000)

  it("header scribbled: exit 9", async () => {
    const home = copyOfBooted()
    const fd = fs.openSync(dataMdb(home), "r+")
    fs.writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 0)
    fs.closeSync(fd)
    assertRefused(await runOnce(["--home", home]), 9, /data\.mdb is damaged: it does not start with LMDB's magic number \(not an LMDB file, or its header is overwritten\)/)
  }, 30_000)

  it("the newest meta page's fields or a root page scribbled: exit 9", async () => {
    const home = copyOfBooted()
    const bytes = fs.readFileSync(dataMdb(home))
    const pageSize = bytes.readUInt32LE(48)
    // the meta with the higher txnid (u64 at 24 + 128 in each meta page) is the one LMDB uses
    const newest = bytes.readBigUInt64LE(pageSize + 152) > bytes.readBigUInt64LE(152) ? pageSize : 0
    const mainRoot = Number(bytes.readBigUInt64LE(newest + 24 + 72 + 40))
    const rootScribbled = copyOfBooted()
    const fdRoot = fs.openSync(dataMdb(rootScribbled), "r+")
    fs.writeSync(fdRoot, Buffer.alloc(64, 0xab), 0, 64, mainRoot * pageSize)
    fs.closeSync(fdRoot)
    assertRefused(await runOnce(["--home", rootScribbled]), 9, /data\.mdb is damaged: a tree's root page is not where its meta page says/)
    const fd = fs.openSync(dataMdb(home), "r+")
    fs.writeSync(fd, Buffer.alloc(40, 0xff), 0, 40, newest + 24 + 72 + 32) // main tree's entries, root, last page
    fs.closeSync(fd)
    assertRefused(await runOnce(["--home", home]), 9, /data\.mdb is damaged: its meta pages contradict each other/)
  }, 30_000)
})

describe("a home with data but no process map", () => {
  it("lmdb/ missing or data.mdb empty beside stored files is refused (exit 9), never booted as a new node; --new-process-map boots it; a keyfile alone boots", async () => {
    const missing = copyOfBooted()
    fs.rmSync(path.join(missing, "lmdb"), { recursive: true })
    const r1 = await runOnce(["--home", missing])
    assertRefused(r1, 9, /^this home has data but no process map: \S+ holds \.keys, vfs\/ but lmdb\/data\.mdb is missing/)
    assert.include(r1.out, "--new-process-map")
    assert.isFalse(fs.existsSync(path.join(missing, "lmdb")), "nothing was created")

    const empty = copyOfBooted()
    fs.writeFileSync(dataMdb(empty), "")
    assertRefused(await runOnce(["--home", empty]), 9, /^this home has data but no process map: .* lmdb\/data\.mdb is empty/)
    assert.strictEqual(fs.statSync(dataMdb(empty)).size, 0)

    const again = await runOnce(["--home", missing, "--new-process-map"])
    assert.strictEqual(again.code, 0, again.out)
    assert.include(again.out, "started an empty process map beside .keys, vfs/ (kept)")
    assert.match(again.out, /booted/)
    // and from then on it is an ordinary home
    const later = await runOnce(["--home", missing])
    assert.strictEqual(later.code, 0, later.out)
    assert.notInclude(later.out, "process map")

    // A keyfile alone is how a node is restored: it boots, saying so.
    const keyOnly = mkdir("kinode-ts-home-")
    fs.copyFileSync(path.join(booted, ".keys"), path.join(keyOnly, ".keys"))
    const restored = await runOnce(["--home", keyOnly])
    assert.strictEqual(restored.code, 0, restored.out)
    assert.include(restored.out, "started an empty process map beside .keys (kept)")
    assert.match(restored.out, /booted/)
  }, 90_000)

  it("a fresh home gets its process map before the keyfile: a first boot cut short after registering boots again", async () => {
    const home = mkdir("kinode-ts-home-")
    // The registered port is taken: the first boot registers, writes the keyfile, then cannot listen (exit 6).
    const busy = net.createServer()
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve))
    const port = (busy.address() as net.AddressInfo).port
    const online = (args: ReadonlyArray<string>) => {
      const r = runNode(["--password-file", pw, "--chain-port", String(chain.port), ...args])
      r.child.stdin.end()
      return r.exited.then((code) => ({ code, out: r.output() }))
    }
    const cut = await online(["--home", home, "--name", `cut-${process.pid}.dev`, "--tcp-port", String(port)])
    await new Promise<void>((resolve) => busy.close(() => resolve()))
    assert.strictEqual(cut.code, 6, cut.out)
    assert.isTrue(fs.existsSync(path.join(home, ".keys")), cut.out)
    assert.isTrue(fs.existsSync(dataMdb(home)), cut.out)
    const again = await online(["--home", home])
    assert.strictEqual(again.code, 0, again.out)
    assert.match(again.out, /booted/)
  }, 60_000)
})
