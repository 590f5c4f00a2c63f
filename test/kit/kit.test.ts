/**
 * kit-ts as a user runs it: `node kit/bin.js <command>` started by the machine's older
 * Node when there is one (Node 20 here: the tool re-runs itself with the bundled Node
 * 24), with node_modules/.bin off the PATH, from folders outside the checkout.
 *
 * - `new hello` -> `build` (type check, componentize, zip path and size printed) ->
 *   `boot-dev-node` (a real `node dist/main.js` on a test chain, its prompt on our pipe)
 *   -> `start-package` into it -> answers over the RPC path and at the node's prompt;
 *   the same node takes a WAT package and refuses one whose process traps at init (the
 *   reason printed); Ctrl-D stops it and its home is removed.
 * - `run-tests`: the template's test passes as generated; a failing test fails the run.
 * - `build` stops at a type error (src/ or test/) before building anything, and packs
 *   nothing stale: a copied folder with a renamed Wasm file is refused (the issue's
 *   `cp -r apps/echo apps/myapp`), a copied folder or a Wasm file replaced by hand is
 *   rebuilt, an unchanged one is not; start-package refuses a zip older than its sources.
 * - `--help` for each command; the tool through `npm exec --prefix <checkout>` elsewhere.
 *
 * One TypeScript build (~20-40 s) serves the whole file; WAT packages build in ms.
 * Prints the figures: new -> first answer, start-package -> first answer.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { tempDirs } from "../support/TempDirs.ts"
import { startTestChain, type TestChain } from "../support/TestChain.ts"

const root = path.resolve(import.meta.dirname, "../..")
const bin = path.join(root, "kit", "bin.js")
const dirs = tempDirs()

/** PATH as a user's shell has it: without the checkout's node_modules/.bin (npm scripts and npx add it). */
const userPath = (process.env["PATH"] ?? "").split(path.delimiter).filter((p) => !p.includes(`node_modules${path.sep}.bin`)).join(path.delimiter)

/** The first `node` on the user's PATH older than 24 (the case the tool must handle), else this one. */
const userNode = (() => {
  for (const dir of userPath.split(path.delimiter)) {
    const candidate = path.join(dir, "node")
    try {
      const v = execFileSync(candidate, ["--version"], { encoding: "utf8" }).trim()
      if (Number(/^v(\d+)/.exec(v)?.[1] ?? "24") < 24) return { node: candidate, version: v }
    } catch {
      continue
    }
  }
  return { node: process.execPath, version: process.version }
})()

const env = (): NodeJS.ProcessEnv => {
  const e: NodeJS.ProcessEnv = { ...process.env, PATH: userPath }
  delete e["KINODE_PASSWORD"]
  delete e["KIT_TS_REEXEC"]
  delete e["KINODE_TS_REEXEC"]
  return e
}

interface Run {
  readonly child: ChildProcessWithoutNullStreams
  readonly output: () => string
  /** Waits for `pattern` in the output after offset `from`. */
  readonly waitFor: (pattern: RegExp, ms?: number, from?: number) => Promise<RegExpExecArray>
  readonly exited: Promise<number | null>
}

const start = (args: ReadonlyArray<string>, cwd: string): Run => {
  const child = spawn(userNode.node, [bin, ...args], { cwd, env: env() })
  let out = ""
  child.stdout.on("data", (d: Buffer) => (out += d.toString()))
  child.stderr.on("data", (d: Buffer) => (out += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  const waitFor = async (pattern: RegExp, ms = 60_000, from = 0) => {
    const t0 = Date.now()
    for (;;) {
      const m = pattern.exec(out.slice(from))
      if (m !== null) return m
      if (Date.now() - t0 > ms || child.exitCode !== null) throw new Error(`no ${pattern} (exit ${child.exitCode}); output:\n${out}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }
  return { child, output: () => out, waitFor, exited }
}

/** Runs `kit-ts <args>` in `cwd` to its end: exit code and everything printed. */
const kit = async (args: ReadonlyArray<string>, cwd: string) => {
  const r = start(args, cwd)
  const code = await r.exited
  return { code, out: r.output() }
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer()
    s.listen(0, "127.0.0.1", () => {
      const a = s.address()
      s.close(() => resolve(typeof a === "object" && a !== null ? a.port : 0))
    })
  })

const rpc = async (url: string, process: string, body: string) => {
  const res = await fetch(`${url}/rpc:distro:sys/message`, {
    method: "POST",
    body: JSON.stringify({ process, body, expects_response: 10 })
  })
  const t = await res.text()
  assert.strictEqual(res.status, 200, t)
  return Buffer.from((JSON.parse(t) as { body: Array<number> }).body).toString("utf8")
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

let chain: TestChain
let work: string
let hello: string
let wat: string
const figures: Array<string> = []
const t = { new: 0, built: 0 }

beforeAll(async () => {
  chain = await startTestChain()
  work = dirs.mkdir("kit-ts-e2e-")
  hello = path.join(work, "hello")
  wat = path.join(work, "wat-echo")
}, 60_000)
afterAll(async () => {
  await chain?.stop()
  dirs.removeAll()
  if (figures.length > 0) console.log(`kit-ts figures (${userNode.version} -> Node 24):\n  ${figures.join("\n  ")}`)
})

describe("kit-ts, end to end", () => {
  it("new hello, then build: it type-checks and builds; the zip's path and size are printed", async () => {
    t.new = Date.now()
    const created = await kit(["new", "hello"], work)
    assert.strictEqual(created.code, 0, created.out)
    assert.match(created.out, /^created hello\/ \(TypeScript\): hello:template\.os$/m)
    for (const f of ["metadata.json", "pkg/manifest.json", "src/main.ts", "tsconfig.json", "test/hello.test.ts", "test/tsconfig.json", ".gitignore"]) {
      assert.isTrue(fs.existsSync(path.join(hello, f)), f)
    }
    // No package.json of its own: it would hide the checkout's kit-ts from npx inside the checkout.
    assert.isFalse(fs.existsSync(path.join(hello, "package.json")))
    const built = await kit(["build"], hello)
    t.built = Date.now()
    assert.strictEqual(built.code, 0, built.out)
    assert.match(built.out, /^type-checking hello:template\.os against the SDK: done in [\d.]+ s$/m)
    assert.match(built.out, /^componentizing src\/main\.ts -> pkg\/hello\.wasm: done in [\d.]+ s$/m)
    const line = /^hello:template\.os built in ([\d.]+) s: (target\/hello:template\.os\.zip) \(([\d.]+) (kB|MB)\)$/m.exec(built.out)
    assert.isNotNull(line, built.out)
    const size = fs.statSync(path.join(hello, line![2]!)).size
    assert.strictEqual((size / (line![4] === "kB" ? 1e3 : 1e6)).toFixed(1), line![3])
    figures.push(`new hello -> built: ${seconds(t.built - t.new)} (build ${line![1]} s)`)
    // Built again without a change: nothing to do.
    const again = await kit(["build"], hello)
    assert.match(again.out, /^hello:template\.os up to date in [\d.]+ s: target\/hello:template\.os\.zip/m)
    assert.notMatch(again.out, /componentizing/)
    // The WAT template builds in milliseconds.
    const w = await kit(["new", "wat-echo", "--template", "wat"], work)
    assert.strictEqual(w.code, 0, w.out)
    const wb = await kit(["build"], wat)
    assert.strictEqual(wb.code, 0, wb.out)
    assert.match(wb.out, /^wat-echo:template\.os built in [\d.]+ s: target\/wat-echo:template\.os\.zip \([\d.]+ kB\)$/m)
  }, 240_000)

  it("boot-dev-node, start-package into it: the app answers over RPC and at the prompt; a WAT package too; a refusal says why", async () => {
    const port = await freePort()
    const booting = Date.now()
    const node = start(["boot-dev-node", "--port", String(port), "--", "--chain-port", String(chain.port), "--tcp-port", String(await freePort())], work)
    try {
      const [, name, password, home] = await node.waitFor(/^booting dev node (dev-[0-9a-f]{6}\.dev), password (\S+), home (\S+) \(removed when it exits\)$/m)
      assert.isAtLeast(password!.length, 12)
      const url = (await node.waitFor(/open (http:\/\/\S+) in a browser/, 90_000))[1]!
      const booted = Date.now() - booting
      assert.strictEqual(url, `http://127.0.0.1:${port}`)
      assert.isTrue(fs.existsSync(home!))

      const t0 = Date.now()
      const started = await kit(["start-package", "--url", url], hello)
      assert.strictEqual(started.code, 0, started.out)
      assert.match(started.out, /^installed hello:template\.os, version [0-9a-f]{64}$/m)
      assert.match(started.out, /^ {2}started hello:hello:template\.os$/m)
      assert.strictEqual(await rpc(url, "hello:hello:template.os", "kinode"), "hello, kinode")
      const now = Date.now()
      const build = t.built - t.new
      figures.push(`boot-dev-node -> its URL printed (a first boot): ${seconds(booted)}`)
      figures.push(`start-package -> first answer: ${seconds(now - t0)}`)
      figures.push(`new hello -> first answer: ${seconds(build + booted + now - t0)} one step after another; ` +
        `${seconds(Math.max(build, booted) + now - t0)} with the node booting (another terminal) while it builds`)

      // At the node's prompt, as a user types it.
      const mark = node.output().length
      node.child.stdin.write("m our@hello:hello:template.os 'from the prompt' -a 5\n")
      await node.waitFor(/hello, from the prompt/, 20_000, mark)

      // A WAT package, into the same node.
      const w = await kit(["start-package", "--url", url], wat)
      assert.strictEqual(w.code, 0, w.out)
      assert.match(w.out, /^ {2}started wat-echo:wat-echo:template\.os$/m)
      assert.strictEqual(await rpc(url, "wat-echo:wat-echo:template.os", "echo me"), "echo me")

      // A package whose process traps at init: the node's reason, and nothing installed.
      const trap = path.join(work, "trap")
      assert.strictEqual((await kit(["new", "trap", "--template", "wat"], work)).code, 0)
      const main = path.join(trap, "src", "main.wat")
      fs.writeFileSync(main, fs.readFileSync(main, "utf8").replace("(loop $forever", "(unreachable) (loop $forever"))
      assert.strictEqual((await kit(["build"], trap)).code, 0)
      const refused = await kit(["start-package", "--url", url], trap)
      assert.strictEqual(refused.code, 1, refused.out)
      assert.match(refused.out, /^kit-ts start-package: the node did not install trap:template\.os: cannot install trap:template\.os: .*trap:trap:template\.os.*$/m)

      // No node there: said at once.
      const nobody = await kit(["start-package", "--url", `http://127.0.0.1:${await freePort()}`], hello)
      assert.strictEqual(nobody.code, 1)
      assert.match(nobody.out, /no node answers at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/)

      // Ctrl-D: the node stops cleanly and its home is gone.
      node.child.stdin.end()
      assert.strictEqual(await node.exited, 0, node.output())
      assert.isFalse(fs.existsSync(home!), `${home} removed`)
      assert.match(node.output(), new RegExp(`node ${name!.replace(/\./g, "\\.")} booted`))
    } finally {
      if (node.child.exitCode === null) {
        node.child.kill("SIGKILL")
        await node.exited
      }
    }
  }, 180_000)

  it("run-tests: the template's test passes as generated, on a throwaway node removed afterwards", async () => {
    const r = await kit(["run-tests", "--", "--chain-port", String(chain.port), "--tcp-port", String(await freePort())], hello)
    assert.strictEqual(r.code, 0, r.out)
    assert.match(r.out, /^ {2}ok {4}test\/hello\.test\.ts > greets \(\d+ ms\)$/m)
    assert.match(r.out, /^1 passed, 0 failed$/m)
    const home = /booting a throwaway node \S* meanwhile \(home (\S+), removed at the end\)/.exec(r.out)?.[1]
    assert.isDefined(home, r.out)
    assert.isFalse(fs.existsSync(home!))
  }, 120_000)

  it("run-tests: a failing test fails the run, with its error and what the node printed", async () => {
    fs.writeFileSync(path.join(wat, "test", "more.test.ts"), `import assert from "node:assert/strict"
import type { TestNode } from "kinode-ts/testing"

export async function answersUpperCase(node: TestNode): Promise<void> {
  assert.equal((await node.request("wat-echo:wat-echo:template.os", "abc")).text, "ABC")
}
`)
    const r = await kit(["run-tests", "--", "--chain-port", String(chain.port), "--tcp-port", String(await freePort())], wat)
    assert.strictEqual(r.code, 1, r.out)
    assert.match(r.out, /^ {2}ok {4}test\/wat-echo\.test\.ts > echoes \(\d+ ms\)$/m)
    assert.match(r.out, /^ {2}FAIL {2}test\/more\.test\.ts > answersUpperCase \(\d+ ms\)$/m)
    assert.match(r.out, /AssertionError/)
    assert.match(r.out, /^1 passed, 1 failed$/m)
    fs.rmSync(path.join(wat, "test", "more.test.ts"))
  }, 120_000)

  it("build stops at a type error in src/ or test/, before building anything", async () => {
    const copy = path.join(dirs.mkdir("kit-ts-typo-"), "hello")
    fs.cpSync(hello, copy, { recursive: true })
    const zip = path.join(copy, "target", "hello:template.os.zip")
    const before = fs.readFileSync(zip)
    const main = path.join(copy, "src", "main.ts")
    const source = fs.readFileSync(main, "utf8")
    fs.writeFileSync(main, source.replace("respond(`hello, ${text(m.request.body)}`)", "respond(42)"))
    const r = await kit(["build"], copy)
    assert.strictEqual(r.code, 1, r.out)
    assert.match(r.out, /src\/main\.ts\(\d+,\d+\): error TS2345: Argument of type 'number' is not assignable to parameter of type 'Body'/)
    assert.match(r.out, /^build stopped: type errors in src\/ of \. \(nothing was built\)$/m)
    assert.notMatch(r.out, /componentizing/)
    assert.deepStrictEqual(fs.readFileSync(zip), before)
    // A test that no longer type-checks stops it too.
    fs.writeFileSync(main, source)
    const test = path.join(copy, "test", "hello.test.ts")
    fs.writeFileSync(test, fs.readFileSync(test, "utf8").replace("answer.text", "answer.txt"))
    const t2 = await kit(["build"], copy)
    assert.strictEqual(t2.code, 1, t2.out)
    assert.match(t2.out, /test\/hello\.test\.ts\(\d+,\d+\): error TS2551: Property 'txt' does not exist/)
    assert.match(t2.out, /^build stopped: type errors in test\/ of \./m)
  }, 60_000)

  it("build packs nothing stale: copied folders, renamed and replaced Wasm files; start-package refuses an old zip", async () => {
    // The cp -r apps/echo apps/myapp: the old Wasm file is still in pkg/.
    const myapp = path.join(work, "myapp")
    fs.cpSync(hello, myapp, { recursive: true })
    const manifest = path.join(myapp, "pkg", "manifest.json")
    fs.writeFileSync(manifest, fs.readFileSync(manifest, "utf8").replaceAll("hello", "myapp"))
    const meta = path.join(myapp, "metadata.json")
    fs.writeFileSync(meta, fs.readFileSync(meta, "utf8").replaceAll("hello", "myapp"))
    const refused = await kit(["build"], myapp)
    assert.strictEqual(refused.code, 1, refused.out)
    assert.match(refused.out, /^kit-ts build: .*myapp\/pkg\/hello\.wasm: not built from this package \(it builds myapp\.wasm: .*\); it would be packed as it is: remove it$/m)
    assert.isFalse(fs.existsSync(path.join(myapp, "target", "myapp:template.os.zip")))

    // A copied folder (outputs and .build-hash included) is built again, not trusted.
    const copy = path.join(dirs.mkdir("kit-ts-copy-"), "wat-echo")
    fs.cpSync(wat, copy, { recursive: true })
    const rebuilt = await kit(["build"], copy)
    assert.strictEqual(rebuilt.code, 0, rebuilt.out)
    assert.match(rebuilt.out, /^assembling src\/main\.wat -> pkg\/wat-echo\.wasm: done in/m)
    assert.match(rebuilt.out, /^wat-echo:template\.os built in/m)
    assert.match(fs.readFileSync(path.join(copy, "pkg", ".build-hash"), "utf8"), new RegExp(`"dir":"${copy.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}"`))
    // Unchanged: up to date.
    const same = await kit(["build"], copy)
    assert.match(same.out, /^wat-echo:template\.os up to date in/m)
    assert.notMatch(same.out, /assembling/)
    // A Wasm file replaced by hand: rebuilt, never packed.
    const wasm = path.join(copy, "pkg", "wat-echo.wasm")
    const good = fs.readFileSync(wasm)
    fs.writeFileSync(wasm, "not the build")
    const repaired = await kit(["build"], copy)
    assert.match(repaired.out, /^assembling src\/main\.wat/m)
    assert.deepStrictEqual(fs.readFileSync(wasm), good)

    // Sources changed since the build: start-package refuses the old zip.
    const main = path.join(copy, "src", "main.wat")
    fs.appendFileSync(main, "\n;; edited\n")
    const old = await kit(["start-package", "--url", "http://127.0.0.1:1"], copy)
    assert.strictEqual(old.code, 1, old.out)
    assert.match(old.out, /target\/wat-echo:template\.os\.zip is not the build of .* as it is now .*: run kit-ts build first/)
  }, 120_000)

  it("--help for each command; from any folder through npm exec --prefix <checkout>", async () => {
    for (const command of ["new", "build", "start-package", "boot-dev-node", "run-tests"]) {
      const r = await kit([command, "--help"], work)
      assert.strictEqual(r.code, 0, r.out)
      assert.match(r.out, new RegExp(`^usage: kit-ts ${command}`))
    }
    const usage = await kit(["--help"], work)
    assert.match(usage.out, /^kit-ts: write, build, install and test Kinode apps/)
    const unknown = await kit(["frobnicate"], work)
    assert.strictEqual(unknown.code, 2)
    assert.match(unknown.out, /^kit-ts: no command frobnicate$/m)
    const bad = await kit(["build", "--nope"], work)
    assert.strictEqual(bad.code, 2)
    assert.match(bad.out, /^kit-ts build: Unknown option '--nope'/m)

    // As README says: npx kit-ts inside the checkout; npm exec --prefix <checkout> kit-ts -- elsewhere.
    const npmBin = (name: string) => userPath.split(path.delimiter).map((d) => path.join(d, name)).find((p) => fs.existsSync(p))
    const npm = npmBin("npm")
    const npx = npmBin("npx")
    if (npm === undefined || npx === undefined) return
    const run = (command: string, args: ReadonlyArray<string>, cwd: string) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(command, args, { cwd, env: env() })
        let out = ""
        child.stdout.on("data", (d: Buffer) => (out += d.toString()))
        child.stderr.on("data", (d: Buffer) => (out += d.toString()))
        child.on("exit", (code) => resolve({ code, out }))
      })
    const viaNpx = await run(npx, ["--no-install", "kit-ts", "build", "--help"], path.join(root, "apps"))
    assert.strictEqual(viaNpx.code, 0, viaNpx.out)
    assert.match(viaNpx.out, /^usage: kit-ts build/)
    const viaNpm = await run(npm, ["exec", "--prefix", root, "kit-ts", "--", "new", "from-npm", "--template", "wat"], work)
    assert.strictEqual(viaNpm.code, 0, viaNpm.out)
    assert.isTrue(fs.existsSync(path.join(work, "from-npm", "src", "main.wat")), "created in the folder npm exec ran in")
  }, 60_000)
})
