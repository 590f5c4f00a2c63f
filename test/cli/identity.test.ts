/**
 * Identity as a user meets it: `node dist/main.js` registering names on a real anvil
 * (started by this file), the keyfile, later boots, and every way login can go wrong.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { makeRegistry, namehash } from "../../services/chain/index.ts"
import { encodeKeyfile, generate, generateSecrets, passwordHash } from "../../services/identity/index.ts"
import { type Running, runNode } from "../support/NodeProcess.ts"
import { tempDirs } from "../support/TempDirs.ts"
import { startTestChain, type TestChain } from "../support/TestChain.ts"


let chain: TestChain
let pw: string
let badPw: string
const dirs = tempDirs()
const mkdir = dirs.mkdir

beforeAll(async () => {
  chain = await startTestChain()
  const dir = mkdir("kinode-ts-pw-")
  pw = path.join(dir, "pw")
  badPw = path.join(dir, "bad")
  fs.writeFileSync(pw, "correct horse\n")
  fs.writeFileSync(badPw, "wrong horse\n")
}, 30_000)
afterAll(async () => {
  await chain?.stop()
  dirs.removeAll()
})

const run = (args: ReadonlyArray<string>, port = chain.port): Running =>
  runNode(["--chain-port", String(port), ...args], { env: { KINODE_PASSWORD: "" } })

/** Boots until the prompt, then ends input (Ctrl-D); the whole output and exit code. */
const bootOnce = async (args: ReadonlyArray<string>, port?: number) => {
  const r = run(args, port)
  r.child.stdin.end()
  const code = await r.exited
  return { code, out: r.output() }
}

const readNode = (url: string, name: string) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const registry = yield* makeRegistry({ url, chainId: 31337 })
    return yield* registry.readNode(name)
  })))

const uniq = (label: string) => `${label}-${process.pid}-${Math.floor(Math.random() * 1e6)}`

describe("identity on a chain", () => {
  it("first boot registers the name (direct) and writes Kinode's keyfile; a later boot logs in with the password", async () => {
    const home = mkdir("kinode-ts-id-")
    const name = `${uniq("alice")}.os`
    const first = await bootOnce(["--home", home, "--name", name, "--password-file", pw, "--tcp-port", "10123"])
    assert.strictEqual(first.code, 0, first.out)
    assert.match(first.out, new RegExp(`registered ${name} on ${chain.url} \\(chain 31337\\), direct at 127\\.0\\.0\\.1:10123`))
    const key = /networking key (0x[0-9a-f]{64}) \(new\)/.exec(first.out)?.[1]
    assert.isDefined(key, first.out)
    // Kinode's keyfile: [name, routers, salt(32), net, jwt, file]
    const keyfile = JSON.parse(fs.readFileSync(path.join(home, ".keys"), "utf8")) as Array<unknown>
    assert.strictEqual(keyfile.length, 6)
    assert.strictEqual(keyfile[0], name)
    assert.deepStrictEqual(keyfile[1], [])
    assert.strictEqual((keyfile[2] as Array<number>).length, 32)
    assert.strictEqual(fs.statSync(path.join(home, ".keys")).mode & 0o777, 0o600)
    // the chain holds the key and how to reach the node
    const record = await readNode(chain.url, name)
    assert.strictEqual(record.netKey, key)
    assert.strictEqual(record.ip, "127.0.0.1")
    assert.strictEqual(record.tcpPort, 10123)
    // later boot: no --name needed, same key, not "new"
    const later = await bootOnce(["--home", home, "--password-file", pw])
    assert.strictEqual(later.code, 0, later.out)
    assert.include(later.out, `${name}: networking key ${key}\n`)
    assert.match(later.out, new RegExp(`node ${name.replace(/\./g, "\\.")} booted`))
    // --reset with a new --tcp-port moves the node on chain (same key) and it listens there
    const moved = await bootOnce(["--home", home, "--password-file", pw, "--reset", "--tcp-port", "10124"])
    assert.strictEqual(moved.code, 0, moved.out)
    assert.include(moved.out, `--reset: ${name} is now direct at 127.0.0.1:10124 on chain`)
    assert.include(moved.out, "net: listening on 127.0.0.1:10124 (tcp)")
    const after = await readNode(chain.url, name)
    assert.strictEqual(after.netKey, key)
    assert.strictEqual(after.tcpPort, 10124)
  }, 90_000)

  it("a wrong password is one line and exit code 3, and changes nothing on disk", async () => {
    const home = mkdir("kinode-ts-id-")
    const name = `${uniq("carol")}.dev`
    assert.strictEqual((await bootOnce(["--home", home, "--name", name, "--password-file", pw])).code, 0)
    const before = fs.readFileSync(path.join(home, ".keys"))
    const listing = fs.readdirSync(home).sort()
    const wrong = await bootOnce(["--home", home, "--password-file", badPw])
    assert.strictEqual(wrong.code, 3)
    assert.include(wrong.out, `wrong password for the keyfile ${path.join(home, ".keys")}; nothing was changed`)
    assert.notInclude(wrong.out, "booted")
    assert.deepStrictEqual(fs.readFileSync(path.join(home, ".keys")), before)
    assert.deepStrictEqual(fs.readdirSync(home).sort(), listing)
  }, 90_000)

  it("without a terminal, a missing name or password is named in one line (exit 2)", async () => {
    const noName = await bootOnce(["--home", mkdir("kinode-ts-id-"), "--password-file", pw])
    assert.strictEqual(noName.code, 2)
    assert.include(noName.out, "no node name given and no terminal to ask: pass --name <name>")
    const noPassword = await bootOnce(["--home", mkdir("kinode-ts-id-"), "--name", `${uniq("dave")}.os`])
    assert.strictEqual(noPassword.code, 2)
    assert.include(noPassword.out, "no password given and no terminal to ask: pass --password-file <file> or KINODE_PASSWORD")
  }, 60_000)

  it("a name another node registered is refused (exit 4) and nothing is written", async () => {
    const name = `${uniq("erin")}.os`
    assert.strictEqual((await bootOnce(["--home", mkdir("kinode-ts-id-"), "--name", name, "--password-file", pw])).code, 0)
    const before = await readNode(chain.url, name)
    const thief = mkdir("kinode-ts-id-")
    const taken = await bootOnce(["--home", thief, "--name", name, "--password-file", pw])
    assert.strictEqual(taken.code, 4)
    assert.include(taken.out, `${name} is already registered by ${before.owner}: choose another --name; nothing was written`)
    assert.isFalse(fs.existsSync(path.join(thief, ".keys")))
    assert.deepStrictEqual(await readNode(chain.url, name), before)
  }, 90_000)

  it("a keyfile whose key differs from the chain's ~net-key refuses the boot and says how to fix it", async () => {
    const name = `${uniq("frank")}.os`
    assert.strictEqual((await bootOnce(["--home", mkdir("kinode-ts-id-"), "--name", name, "--password-file", pw])).code, 0)
    const onChain = (await readNode(chain.url, name)).netKey!
    // another home holding a keyfile for the same name with another key
    const impostor = mkdir("kinode-ts-id-")
    const bytes = await Effect.runPromise(Effect.gen(function*() {
      const key = yield* generate
      const hash = yield* passwordHash("correct horse", name)
      return yield* encodeKeyfile({ name, routers: [], key, ...(yield* generateSecrets) }, hash)
    }))
    fs.writeFileSync(path.join(impostor, ".keys"), bytes, { mode: 0o600 })
    const refused = await bootOnce(["--home", impostor, "--password-file", pw])
    assert.strictEqual(refused.code, 4)
    assert.include(refused.out, `${name}'s ~net-key on chain is ${onChain}, but this node's keyfile holds 0x`)
    assert.include(refused.out, "--reset")
    // --reset from a home that does not own the name cannot take it
    const reset = await bootOnce(["--home", impostor, "--password-file", pw, "--reset"])
    assert.strictEqual(reset.code, 4)
    assert.include(reset.out, "is already registered by")
    assert.strictEqual((await readNode(chain.url, name)).netKey, onChain)
  }, 90_000)

  it("an indirect node is registered with its routers' namehashes", async () => {
    const router = `${uniq("router")}.os`
    assert.strictEqual((await bootOnce(["--home", mkdir("kinode-ts-id-"), "--name", router, "--password-file", pw])).code, 0)
    const name = `${uniq("gina")}.os`
    const home = mkdir("kinode-ts-id-")
    const r = await bootOnce(["--home", home, "--name", name, "--password-file", pw, "--routers", router])
    assert.strictEqual(r.code, 0, r.out)
    assert.include(r.out, `indirect through ${router}`)
    const record = await readNode(chain.url, name)
    assert.deepStrictEqual(record.routers, [namehash(router)])
    assert.isUndefined(record.ip)
    const keyfile = JSON.parse(fs.readFileSync(path.join(home, ".keys"), "utf8")) as Array<unknown>
    assert.deepStrictEqual(keyfile[1], [router])
  }, 90_000)

  it("a chain that does not answer: first boot refuses (exit 5, nothing written); a later boot runs on the keyfile and says so", async () => {
    const own = await startTestChain()
    const home = mkdir("kinode-ts-id-")
    const name = `${uniq("hana")}.os`
    try {
      assert.strictEqual((await bootOnce(["--home", home, "--name", name, "--password-file", pw], own.port)).code, 0)
    } finally {
      await own.stop()
    }
    // nothing listens on own.port any more; --rpc names it so the node cannot start a chain there
    const later = await bootOnce(["--home", home, "--password-file", pw, "--rpc", own.url])
    assert.strictEqual(later.code, 0, later.out)
    assert.match(later.out, /does not answer .*booting on the keyfile/)
    assert.match(later.out, new RegExp(`node ${name.replace(/\./g, "\\.")} booted`))
    const fresh = mkdir("kinode-ts-id-")
    const first = await bootOnce(["--home", fresh, "--name", `${uniq("ivan")}.os`, "--password-file", pw, "--rpc", own.url])
    assert.strictEqual(first.code, 5, first.out)
    assert.isFalse(fs.existsSync(path.join(fresh, ".keys")))
  }, 120_000)

  it("two running nodes look each other up through their KNS indexers (and `kfetch` shows their own)", async () => {
    const a = `${uniq("kim")}.os`
    const b = `${uniq("lee")}.os`
    const alice = run(["--home", mkdir("kinode-ts-id-"), "--name", a, "--password-file", pw])
    const bob = run(["--home", mkdir("kinode-ts-id-"), "--name", b, "--password-file", pw])
    try {
      await alice.waitFor(new RegExp(`${a.replace(/\./g, "\\.")} > `), 60_000)
      await bob.waitFor(new RegExp(`${b.replace(/\./g, "\\.")} > `), 60_000)
      const keyA = /networking key (0x[0-9a-f]{64})/.exec(alice.output())![1]!
      const keyB = /networking key (0x[0-9a-f]{64})/.exec(bob.output())![1]!
      bob.child.stdin.write(`kns ${a}\n`)
      await bob.waitFor(new RegExp(`${a.replace(/\./g, "\\.")}\nnetworking key ${keyA}\ndirect, 127\.0\.0\.1 tcp \\d+`))
      alice.child.stdin.write(`kns ${b}\n`)
      await alice.waitFor(new RegExp(`${b.replace(/\./g, "\\.")}\nnetworking key ${keyB}\ndirect`))
      alice.child.stdin.write("kfetch\n")
      await alice.waitFor(new RegExp(` ${a.replace(/\./g, "\\.")}\n[^\n]*\n[^\n]* pubkey: ${keyA}\n`))
      alice.child.stdin.write("kns nobody-at-all.os\n")
      await alice.waitFor(/kns: nobody-at-all\.os is not a known node/)
    } finally {
      alice.child.stdin.end()
      bob.child.stdin.end()
      assert.strictEqual(await alice.exited, 0)
      assert.strictEqual(await bob.exited, 0)
    }
  }, 120_000)

  it("the chain dying under a running node is said at once; the node keeps answering", async () => {
    const own = await startTestChain()
    const name = `${uniq("jo")}.os`
    const node = run(["--home", mkdir("kinode-ts-id-"), "--name", name, "--password-file", pw], own.port)
    try {
      await node.waitFor(new RegExp(`${name.replace(/\./g, "\\.")} > `), 60_000)
      await own.stop()
      await node.waitFor(/the chain went away .*names are not checked or updated until it is back/, 30_000)
      node.child.stdin.write("kfetch\n")
      await node.waitFor(new RegExp(` ${name.replace(/\./g, "\\.")}\n[^\n]*\n[^\n]* pubkey: 0x[0-9a-f]{64}\n`))
    } finally {
      node.child.stdin.end()
      assert.strictEqual(await node.exited, 0)
    }
  }, 90_000)
})
