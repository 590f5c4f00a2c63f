/**
 * Identity: the KNS indexer catching up over a chain with 10,000 registered names,
 * `NodeInfo` through the kernel, and boots of `node dist/main.js` with registration and
 * login, on a bench-owned anvil with our Kimap-compatible registry.
 *
 * Names are registered the way Kinode's registration does (the `.os` zone account's
 * `mint` with the notes in the initialization), 100 to a transaction through Multicall3,
 * so each is a Mint, two Transfers and four Notes, exactly as the indexer meets them on
 * a real chain.
 */
import { Effect, Layer, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { createPublicClient, createWalletClient, encodeFunctionData, http, parseAbi, stringToHex } from "viem"
import { privateKeyToAccount } from "viem/accounts"
import { foundry } from "viem/chains"
import { testKernel } from "../../layers/TestLive.ts"
import {
  ANVIL_ACCOUNT_0_KEY,
  anvilBinary,
  encodeIp,
  encodePort,
  ensureRegistry,
  freePort,
  KIMAP_ADDRESS,
  kimapAbi,
  KINO_ACCOUNT_IMPLEMENTATION,
  MULTICALL_ADDRESS,
  multicallAbi,
  namehash,
  notesInitialization
} from "../../services/chain/index.ts"
import { EphemeralIdentity } from "../../services/identity/index.ts"
import { KNS_INDEXER, KnsIndexer, memoryCheckpoint } from "../../services/kns-indexer/index.ts"
import { Lmdb } from "../../services/lmdb/index.ts"
import { Identity } from "../../src/Identity.ts"
import { address } from "../../src/Ids.ts"
import { Kernel, messagingCap } from "../../src/Kernel.ts"
import { request, text } from "../../src/Message.ts"
import { percentile, type Row } from "../Row.ts"
import { bootToPrompt } from "./wasm.bench.ts"

const SUITE = "identity"
const NAMES = 10_000
const PER_TX = 100
const LOOKUPS = 2_000

const zoneMint = parseAbi(["function mint(address to, bytes label, bytes initialization, address implementation) returns (address)"])

const startChain = async (): Promise<{ url: string; port: number; child: ChildProcess }> => {
  const port = await Effect.runPromise(freePort)
  const url = `http://127.0.0.1:${port}`
  const child = spawn(anvilBinary(), ["--host", "127.0.0.1", "--port", String(port), "--silent", "--disable-block-gas-limit"], { stdio: "ignore" })
  for (let i = 0; i < 300; i++) {
    try {
      const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }) })
      if (res.ok) return { url, port, child }
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error("anvil did not start")
}

/** 10,000 direct nodes `bench-<i>.os`, 100 per transaction. */
const registerMany = async (url: string) => {
  const publicClient = createPublicClient({ chain: foundry, transport: http(url) })
  const wallet = createWalletClient({ chain: foundry, transport: http(url), account: privateKeyToAccount(ANVIL_ACCOUNT_0_KEY) })
  const [zoneTba] = await publicClient.readContract({ address: KIMAP_ADDRESS, abi: kimapAbi, functionName: "get", args: [namehash("os")] }) as readonly [`0x${string}`, `0x${string}`, `0x${string}`]
  const key = new Uint8Array(32).fill(0xab)
  const ip = encodeIp("127.0.0.1")
  const port = encodePort(9000)
  if (ip._tag === "Failure" || port._tag === "Failure") throw new Error("note encoding")
  for (let i = 0; i < NAMES; i += PER_TX) {
    const calls = Array.from({ length: Math.min(PER_TX, NAMES - i) }, (_, j) => ({
      target: zoneTba,
      callData: encodeFunctionData({
        abi: zoneMint,
        functionName: "mint",
        args: [wallet.account.address, stringToHex(`bench-${i + j}`), notesInitialization([
          { label: "~net-key", data: key },
          { label: "~ip", data: ip.success },
          { label: "~tcp-port", data: port.success },
          { label: "~ws-port", data: port.success }
        ]), KINO_ACCOUNT_IMPLEMENTATION]
      })
    }))
    const hash = await wallet.writeContract({ address: MULTICALL_ADDRESS, abi: multicallAbi, functionName: "aggregate", args: [calls], gas: 900_000_000n })
    const receipt = await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 20 })
    if (receipt.status !== "success") throw new Error(`registration batch ${i} reverted`)
  }
}

const catchUp = (url: string) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const t0 = performance.now()
    const ctx = yield* Layer.buildWithScope(
      KnsIndexer.layerWith({ rpcUrl: url, contract: KIMAP_ADDRESS, chainId: 31337, firstBlock: 0, pollInterval: "20 millis" }, memoryCheckpoint())
        .pipe(Layer.provideMerge(EphemeralIdentity("indexer.bench"))),
      scope
    )
    const identity = ctx.mapUnsafe.get(Identity.key) as Identity["Service"]
    const indexer = ctx.mapUnsafe.get(KnsIndexer.key) as KnsIndexer["Service"]
    while (!(identity.records().length >= NAMES && indexer.status()._tag === "Live")) yield* Effect.sleep("5 millis")
    const seconds = (performance.now() - t0) / 1000
    const logs = indexer.stats().logs
    yield* Scope.close(scope, Effect.void as never)
    return { seconds, logs }
  })

/** `NodeInfo` from a process through the kernel, answered from the index. */
const lookups = (url: string) =>
  Effect.gen(function*() {
    const kernel = yield* Kernel
    const identity = yield* Identity
    const client = yield* kernel.session("client:bench:sys", { capabilities: [messagingCap(kernel.node, KNS_INDEXER)], public: false })
    while (identity.records().length < NAMES) yield* Effect.sleep("10 millis")
    const target = address(`${kernel.node}@${KNS_INDEXER}`)
    const samples: Array<number> = []
    for (let i = 0; i < LOOKUPS; i++) {
      const body = text(JSON.stringify({ NodeInfo: { name: `bench-${(i * 7919) % NAMES}.os`, block: 0 } }))
      const t = performance.now()
      const r = yield* client.sendAndAwaitEffect(target, request({ body, expectsResponse: 5n }))
      samples.push(performance.now() - t)
      if (!("message" in r)) return yield* Effect.die(new Error("NodeInfo failed"))
    }
    samples.sort((a, b) => a - b)
    return { p50: percentile(samples, 50) * 1000, p99: percentile(samples, 99) * 1000 }
  }).pipe(
    Effect.provide(KnsIndexer.layerNode({ rpcUrl: url, contract: KIMAP_ADDRESS, chainId: 31337, firstBlock: 0 }).pipe(
      Layer.provide(Lmdb.layer),
      Layer.provideMerge(testKernel({ node: "lookup.bench" }).layer)
    )),
    Effect.scoped
  )

/** The `boot: ... ms` phases line a node prints at verbosity 2. */
const bootPhases = async (home: string, flags: ReadonlyArray<string>) => {
  const { spawn: spawnChild } = await import("node:child_process")
  return new Promise<Record<string, number>>((resolve, reject) => {
    const child = spawnChild(process.execPath, [path.resolve(import.meta.dirname, "../../dist/main.js"), "--home", home, "-v", "2", ...flags], { stdio: ["pipe", "pipe", "pipe"] })
    let out = ""
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString()
      const m = /boot: (.*); prompt at (\d+) ms/.exec(out)
      if (m !== null) {
        const phases: Record<string, number> = { prompt: Number(m[2]) }
        for (const part of m[1]!.split(", ")) {
          const [name, ms] = part.split(" ")
          phases[name!] = Number(ms)
        }
        child.stdin.end()
        child.on("exit", () => resolve(phases))
      }
    })
    setTimeout(() => reject(new Error(`no boot line: ${out.slice(-400)}`)), 60_000)
  })
}

export async function run(): Promise<Array<Row>> {
  const rows: Array<Row> = []
  const chain = await startChain()
  try {
    await Effect.runPromise(ensureRegistry(chain.url, 31337))
    const t0 = performance.now()
    await registerMany(chain.url)
    process.stdout.write(`registered ${NAMES} names in ${Math.round(performance.now() - t0)} ms\n`)
    const catchup = await Effect.runPromise(catchUp(chain.url))
    rows.push({ suite: SUITE, metric: "indexer catch-up, 10k names", value: catchup.logs / catchup.seconds, unit: "events/s" })
    rows.push({ suite: SUITE, metric: "indexer time to complete index", value: catchup.seconds * 1000, unit: "ms" })
    rows.push({ suite: SUITE, metric: "indexer events indexed", value: catchup.logs, unit: "events" })
    const l = await Effect.runPromise(lookups(chain.url))
    rows.push({ suite: SUITE, metric: "NodeInfo through the kernel p50", value: l.p50, unit: "us" })
    rows.push({ suite: SUITE, metric: "NodeInfo through the kernel p99", value: l.p99, unit: "us" })

    const home = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-idboot-"))
    const pw = `${home}.pw`
    fs.writeFileSync(pw, "bench password\n")
    const flags = ["--password-file", pw, "--chain-port", String(chain.port)]
    try {
      rows.push({ suite: SUITE, metric: "first boot to prompt (registers)", value: await bootToPrompt(home, [...flags, "--name", `idbench-${process.pid}.os`]), unit: "ms" })
      rows.push({ suite: SUITE, metric: "later boot to prompt", value: await bootToPrompt(home, flags), unit: "ms" })
      const phases = await bootPhases(home, flags)
      rows.push({ suite: SUITE, metric: "later boot: chain connect", value: phases["chain"] ?? 0, unit: "ms" })
      rows.push({ suite: SUITE, metric: "later boot: login (keyfile + chain)", value: phases["login"] ?? 0, unit: "ms" })
      rows.push({ suite: SUITE, metric: "later boot: rest (kernel, apps)", value: (phases["prompt"] ?? 0) - (phases["chain"] ?? 0) - (phases["login"] ?? 0) - (phases["start"] ?? 0), unit: "ms" })
      rows.push({ suite: SUITE, metric: "later boot: process start + modules", value: phases["start"] ?? 0, unit: "ms" })
    } finally {
      fs.rmSync(home, { recursive: true, force: true })
      fs.rmSync(pw, { force: true })
    }
  } finally {
    chain.child.kill("SIGTERM")
  }
  return rows
}
