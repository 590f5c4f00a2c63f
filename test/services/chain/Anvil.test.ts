/**
 * The embedded chain resource: start vs join, death detection, and an RPC
 * that dies, hangs or answers garbage failing with ChainUnavailable in time.
 * Every anvil here runs on a random free port and is stopped by the test.
 */
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Scope } from "effect"
import { createPublicClient, http as viemHttp } from "viem"
import {
  buildArtifactsPath,
  freePort,
  KIMAP_ADDRESS,
  loadArtifacts,
  makeRegistry,
  MINT_TOPIC,
  namehash,
  probeChainId,
  startAnvil
} from "../../../services/chain/index.ts"
import { cachePaths, locate, readSources, sourceHash } from "../../../services/chain/Artifacts.ts"

const KEY = `0x${"c3".repeat(32)}` as const
const fast = { timeout: "400 millis", retries: 1, backoff: "50 millis" } as const

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const waitDead = (pid: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100 && alive(pid); i++) yield* Effect.sleep("50 millis")
    return !alive(pid)
  })

const elapsed = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const t0 = yield* Clock.currentTimeMillis
    const exit = yield* Effect.exit(self)
    return [exit, (yield* Clock.currentTimeMillis) - t0] as const
  })

/** An HTTP server on a free port: "hang" never answers, "garbage" answers non-JSON-RPC. */
const fakeRpc = (mode: "hang" | "garbage") =>
  Effect.acquireRelease(
    Effect.callback<{ server: http.Server; url: string }>((resume) => {
      const server = http.createServer((_req, res) => {
        if (mode === "garbage") res.end("<html>hello</html>")
      })
      server.listen(0, "127.0.0.1", () => {
        const a = server.address()
        resume(Effect.succeed({ server, url: `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}` }))
      })
    }),
    ({ server }) => Effect.sync(() => server.closeAllConnections()).pipe(
      Effect.andThen(Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
      }))
    )
  )

describe("Anvil", () => {
  it.live("compiles once: the artifacts are cached by the source hash", () =>
    Effect.gen(function*() {
      const a = yield* loadArtifacts()
      const { root, contracts } = locate()
      assert.isDefined(contracts)
      const hash = sourceHash(yield* readSources(contracts!))
      assert.strictEqual(a.sourceHash, hash)
      const cached = [buildArtifactsPath(root), ...cachePaths(root, hash)].some((f) => {
        try {
          return (JSON.parse(fs.readFileSync(f, "utf8")) as { sourceHash: string }).sourceHash === hash
        } catch {
          return false
        }
      })
      assert.isTrue(cached)
      assert.match(a.contracts.Kimap.deployedBytecode, /^0x[0-9a-f]{100,}$/)
    }))

  it.live("starts anvil, a second start on the port joins it; closing the starter's scope stops anvil", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const scope = yield* Scope.make()
      const first = yield* startAnvil({ port }).pipe(Scope.provide(scope))
      assert.strictEqual(first.mode, "started")
      assert.isTrue(first.installed)
      assert.strictEqual(first.url, `http://127.0.0.1:${port}`)
      assert.strictEqual(first.chainId, 31337)
      const pid = first.pid!
      assert.isTrue(alive(pid))

      const second = yield* startAnvil({ port, livenessInterval: "200 millis" })
      assert.strictEqual(second.mode, "joined")
      assert.isFalse(second.installed)
      assert.isUndefined(second.pid)

      // Both see the same chain.
      const r1 = yield* makeRegistry({ url: first.url })
      yield* r1.registerDirect({ name: "shared.os", netKey: KEY, ip: "127.0.0.1", tcpPort: 9100 })
      const r2 = yield* makeRegistry({ url: second.url, policy: fast })
      assert.strictEqual((yield* r2.readNode("shared.os")).tcpPort, 9100)

      // The starter exits: its anvil is stopped, the joiner notices, its calls fail fast.
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(yield* waitDead(pid))
      const [gone, ms] = yield* elapsed(second.exited.pipe(Effect.timeout("5 seconds")))
      assert.isTrue(Exit.isSuccess(gone))
      assert.strictEqual(Exit.isSuccess(gone) ? gone.value._tag : "", "Unreachable")
      assert.isBelow(ms, 5000)
      const [read, readMs] = yield* elapsed(r2.readNode("shared.os"))
      assert.isTrue(Exit.isFailure(read))
      const err = yield* Effect.flip(r2.readNode("shared.os"))
      assert.strictEqual(err._tag, "ChainUnavailable")
      assert.isBelow(readMs, 3000)
    }))

  it.live("two nodes starting at once on one port: one starts anvil, the other joins it", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const [a, b] = yield* Effect.all([startAnvil({ port }), startAnvil({ port })], { concurrency: 2 })
      assert.deepStrictEqual([a.mode, b.mode].sort(), ["joined", "started"])
      const starter = a.mode === "started" ? a : b
      assert.isTrue(alive(starter.pid!))
      const registry = yield* makeRegistry({ url: b.url })
      yield* registry.registerDirect({ name: "race.os", netKey: KEY, ip: "127.0.0.1", tcpPort: 9100 })
      assert.strictEqual((yield* registry.readNode("race.os")).tcpPort, 9100)
    }))

  it.live("anvil killed: exited completes and every call fails with ChainUnavailable within its timeout", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const chain = yield* startAnvil({ port })
      const registry = yield* makeRegistry({ url: chain.url, policy: fast, receiptTimeout: "2 seconds" })
      yield* registry.registerDirect({ name: "victim.os", netKey: KEY, ip: "127.0.0.1", tcpPort: 9100 })
      process.kill(chain.pid!, "SIGKILL")
      const exit = yield* chain.exited.pipe(Effect.timeout("5 seconds"))
      assert.deepStrictEqual(exit, { _tag: "Exited", code: null, signal: "SIGKILL" })
      const calls: ReadonlyArray<Effect.Effect<unknown, { readonly _tag: string }>> = [
        registry.readNode("victim.os"),
        registry.registerDirect({ name: "late.os", netKey: KEY, ip: "127.0.0.1", tcpPort: 1 }),
        registry.updateNotes({ name: "victim.os", notes: [] })
      ]
      for (const call of calls) {
        const [result, ms] = yield* elapsed(call)
        assert.isTrue(Exit.isFailure(result))
        assert.isBelow(ms, 3000)
        const e = yield* Effect.flip(call)
        assert.strictEqual(e._tag, "ChainUnavailable")
        assert.strictEqual((e as unknown as { url: string }).url, chain.url)
      }
      const ws = yield* makeRegistry({ url: chain.wsUrl, chainId: 31337, policy: fast })
      const [wsRead, wsMs] = yield* elapsed(ws.readNode("victim.os"))
      assert.isTrue(Exit.isFailure(wsRead))
      assert.isBelow(wsMs, 3000)
      assert.strictEqual((yield* Effect.flip(ws.readNode("victim.os")))._tag, "ChainUnavailable")
      assert.strictEqual((yield* Effect.flip(probeChainId(chain.url)))._tag, "ChainUnavailable")
      assert.strictEqual((yield* Effect.flip(makeRegistry({ url: chain.url, policy: fast })))._tag, "ChainUnavailable")
      // A chain back on the same port: the same clients (http and ws) work again.
      const again = yield* startAnvil({ port })
      assert.strictEqual(again.mode, "started")
      yield* registry.registerDirect({ name: "revived.os", netKey: KEY, ip: "127.0.0.1", tcpPort: 9101 })
      assert.strictEqual((yield* ws.readNode("revived.os")).tcpPort, 9101)
    }))

  it.live("an RPC that hangs or answers garbage fails with ChainUnavailable, never hangs", () =>
    Effect.gen(function*() {
      for (const mode of ["hang", "garbage"] as const) {
        const { url } = yield* fakeRpc(mode)
        const [made, ms] = yield* elapsed(makeRegistry({ url, policy: fast }))
        assert.isTrue(Exit.isFailure(made), mode)
        assert.isBelow(ms, 3000, mode)
        const e = yield* Effect.flip(makeRegistry({ url, chainId: 31337, policy: fast }).pipe(
          Effect.flatMap((r) => r.readNode("anyone.os"))
        ))
        assert.strictEqual(e._tag, "ChainUnavailable", mode)
        const wsUrl = url.replace("http://", "ws://")
        const [wsRead, wsMs] = yield* elapsed(makeRegistry({ url: wsUrl, chainId: 31337, policy: fast }).pipe(
          Effect.flatMap((r) => r.readNode("anyone.os"))
        ))
        assert.isTrue(Exit.isFailure(wsRead), mode)
        assert.isBelow(wsMs, 3000, mode)
        assert.strictEqual((yield* Effect.flip(makeRegistry({ url: wsUrl, policy: fast })))._tag, "ChainUnavailable")
        // start() on a port taken by something that is not an anvil: the
        // spawned anvil cannot bind, and start fails instead of waiting.
        const port = Number(new URL(url).port)
        const [started, startMs] = yield* elapsed(startAnvil({ port, startTimeout: "5 seconds" }))
        assert.isTrue(Exit.isFailure(started), mode)
        assert.isBelow(startMs, 6000)
      }
    }))

  it.live("a missing anvil binary is ChainUnavailable", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const e = yield* Effect.flip(startAnvil({ port, binary: "/nonexistent/anvil", startTimeout: "3 seconds" }))
      assert.strictEqual(e._tag, "ChainUnavailable")
    }))

  it.live("detached with --state: outlives its scope; killed and restarted, it keeps the names", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kinode-ts-chain-test-"))
      const stateFile = path.join(dir, "state.json")
      const pids: Array<number> = []
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL")
          fs.rmSync(dir, { recursive: true, force: true })
        })
      )
      const first = yield* Effect.scoped(Effect.gen(function*() {
        const chain = yield* startAnvil({ port, detached: true, stateFile })
        pids.push(chain.pid!)
        const registry = yield* makeRegistry({ url: chain.url })
        yield* registry.registerDirect({ name: "persisted.os", netKey: KEY, ip: "127.0.0.1", tcpPort: 9700 })
        return chain
      }))
      assert.strictEqual(first.mode, "started")
      assert.isTrue(first.detached)
      // The scope is closed, anvil still answers.
      assert.isTrue(alive(first.pid!))
      assert.strictEqual(yield* probeChainId(first.url), 31337)
      assert.strictEqual(fs.readFileSync(`${stateFile}.pid`, "utf8").trim(), String(first.pid))
      // A graceful stop dumps the state; the next start loads it.
      process.kill(first.pid!, "SIGTERM")
      assert.isTrue(yield* waitDead(first.pid!))
      assert.isTrue(fs.existsSync(stateFile))
      const second = yield* startAnvil({ port, detached: true, stateFile })
      pids.push(second.pid!)
      assert.strictEqual(second.mode, "started")
      assert.isFalse(second.installed)
      const registry = yield* makeRegistry({ url: second.url })
      const node = yield* registry.readNode("persisted.os")
      assert.strictEqual(node.tcpPort, 9700)
      // The Mint logs of the earlier run survive in the state (the indexer can backfill).
      const client = createPublicClient({ transport: viemHttp(second.url, { retryCount: 0 }) })
      const mints = yield* Effect.promise(() =>
        client.request({ method: "eth_getLogs", params: [{ address: KIMAP_ADDRESS, fromBlock: "0x0", toBlock: "latest", topics: [MINT_TOPIC] }] }))
      const children = (mints as ReadonlyArray<{ topics: ReadonlyArray<string> }>).map((l) => l.topics[2])
      assert.include(children, namehash("persisted.os"))

      // A corrupt state file: anvil refuses it, start fails with its words.
      const bad = path.join(dir, "bad.json")
      fs.writeFileSync(bad, "{ not json")
      const e = yield* Effect.flip(startAnvil({ port: yield* freePort, detached: true, stateFile: bad, startTimeout: "5 seconds" }))
      assert.strictEqual(e._tag, "ChainUnavailable")
      assert.match((e as { reason: string }).reason, /anvil exited/)
      assert.isTrue(fs.existsSync(`${bad}.log`))
    }))
})
