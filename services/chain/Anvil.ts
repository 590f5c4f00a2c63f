/**
 * The embedded chain: an anvil on `host:port`, started by this process or
 * joined when one already answers there, with the Kimap-compatible registry
 * installed (see `Install.ts`).
 *
 * Started vs joined. Every node uses the same fixed port by default (8545),
 * so the first node to boot starts anvil and the others join it. Two modes:
 *
 * - `detached: false` (tests, one-shot tools): anvil is a child of this
 *   process and the scope's finalizer stops it (SIGTERM, SIGKILL after 5 s).
 *   Nodes that joined lose the chain when the starter exits; their `exited`
 *   completes (liveness polling), and later RPC calls fail with
 *   `ChainUnavailable` after their timeout — they do not hang.
 * - `detached: true` (the embedded default, `embeddedOptions`): anvil runs in
 *   its own process group, unreferenced, and outlives the node that started
 *   it, so a chain shared by several nodes never disappears under them.
 *   With `stateFile` it runs with `--state <file> --state-interval 1`; the
 *   file is home-independent (`os.tmpdir()/kinode-ts-chain/anvil-<port>.json`)
 *   because the chain is shared by all nodes of the machine, not owned by one
 *   home. If the process is killed, the next node to boot restarts it from
 *   that file, names included. Its pid is written to `<stateFile>.pid`
 *   (stop it with `kill $(cat <stateFile>.pid)`), its stderr appended to
 *   `<stateFile>.log`.
 *
 * Why detached is the default for nodes: identity lives on the chain; a
 * chain owned by whichever node booted first would take every other node's
 * PKI down with it, and an unowned one costs one idle process.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Clock, Context, Duration, Effect, Layer, type Scope } from "effect"
import { type ArtifactsUnavailable, type CompileFailed, locate } from "./Artifacts.ts"
import { ChainUnavailable, type Reverted } from "./ChainError.ts"
import { ensureRegistry } from "./Install.ts"
import { type RpcPolicy, defaultPolicy } from "./internal/rpc.ts"
import { FAKE_CHAIN_ID } from "./Kimap.ts"

/** @category models */
export interface AnvilOptions {
  /** Default 8545. */
  readonly port?: number
  /** Default 127.0.0.1. */
  readonly host?: string
  /** Default 31337; a joined chain answering another id is refused. */
  readonly chainId?: number
  /** Run anvil in its own process group and leave it running (default false). */
  readonly detached?: boolean
  /** `--state` file (load at start, dump every second and at exit). */
  readonly stateFile?: string
  /** Deadline for anvil to answer `eth_chainId` after spawning (default 15 s). */
  readonly startTimeout?: Duration.Input
  /** Install the registry when absent (default true). */
  readonly install?: boolean
  /** anvil binary (default: the @foundry-rs platform binary, else node_modules/.bin/anvil). */
  readonly binary?: string
  /** Timeout/retries of the install's RPC calls. */
  readonly policy?: RpcPolicy
  /** Period of the liveness probe behind `exited` for a joined/detached chain (default 1 s). */
  readonly livenessInterval?: Duration.Input
}

/** How the chain went away. @category models */
export type ChainExit =
  | { readonly _tag: "Exited"; readonly code: number | null; readonly signal: string | null }
  | { readonly _tag: "Unreachable"; readonly reason: string }

/** @category models */
export interface Chain {
  /** HTTP JSON-RPC URL. */
  readonly url: string
  /** WebSocket URL of the same anvil (for subscriptions). */
  readonly wsUrl: string
  readonly host: string
  readonly port: number
  readonly chainId: number
  /** Whether this process started anvil or joined one already listening. */
  readonly mode: "started" | "joined"
  readonly detached: boolean
  /** Process id when started here. */
  readonly pid: number | undefined
  /** Whether this call installed the registry (false: it was there). */
  readonly installed: boolean
  /**
   * Completes when the chain goes away: the child's exit when started
   * attached, else three failed liveness probes in a row. Never fails.
   */
  readonly exited: Effect.Effect<ChainExit>
}

/** The embedded chain a node starts or joins by default. @category models */
export class Anvil extends Context.Service<Anvil, Chain>()("services/chain/Anvil") {
  /** Starts or joins per `options`; an attached anvil stops with the layer. */
  static readonly layer = (options: AnvilOptions = {}) => Layer.effect(Anvil, start(options))
}

/** Default `--state` file of the shared chain on `port`. @category constants */
export const defaultStateFile = (port = 8545): string =>
  path.join(os.tmpdir(), "kinode-ts-chain", `anvil-${port}.json`)

/** What a node uses without `--rpc`: port 8545, detached, persistent state. @category constants */
export const embeddedOptions = (port = 8545): AnvilOptions => ({
  port,
  detached: true,
  stateFile: defaultStateFile(port)
})

/** The anvil executable: the platform package's binary, else the npm shim. @category paths */
export const anvilBinary = (): string => {
  const arch = process.arch === "x64" ? "amd64" : process.arch
  const exe = process.platform === "win32" ? "anvil.exe" : "anvil"
  try {
    const require = createRequire(import.meta.url)
    const p = require.resolve(`@foundry-rs/anvil-${process.platform}-${arch}/bin/${exe}`)
    if (fs.existsSync(p)) return p
  } catch {
    // fall through to the shim
  }
  return path.join(locate().root, "node_modules", ".bin", "anvil")
}

/** A free TCP port on 127.0.0.1 (for tests). @category ports */
export const freePort: Effect.Effect<number> = Effect.callback<number>((resume) => {
  const server = net.createServer()
  server.unref()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/**
 * `eth_chainId` with a deadline, over plain fetch (no viem retries).
 * Fails with `ChainUnavailable` on refusal, timeout or an answer that is not
 * a JSON-RPC hex quantity.
 * @category probes
 */
export const probeChainId = (url: string, timeout: Duration.Input = "1 second"): Effect.Effect<number, ChainUnavailable> =>
  Effect.tryPromise({
    try: async (signal) => {
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
        signal
      })
      const body = await res.json() as { result?: unknown }
      if (typeof body.result !== "string" || !/^0x[0-9a-f]+$/i.test(body.result)) throw new Error("bad eth_chainId answer")
      return Number.parseInt(body.result, 16)
    },
    catch: (cause) => new ChainUnavailable({ url, reason: cause instanceof Error ? cause.message : String(cause) })
  }).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(new ChainUnavailable({ url, reason: "eth_chainId timed out" }))
    })
  )

const livenessWatch = (url: string, interval: Duration.Input): Effect.Effect<ChainExit> =>
  Effect.gen(function*() {
    let failures = 0
    let reason = ""
    while (failures < 3) {
      yield* Effect.sleep(interval)
      const ok = yield* probeChainId(url, interval).pipe(
        Effect.as(true),
        Effect.catch((e) => Effect.sync(() => {
          reason = e.reason
          return false
        }))
      )
      failures = ok ? 0 : failures + 1
    }
    return { _tag: "Unreachable", reason } as const
  })

interface Spawned {
  readonly child: ChildProcess
  readonly exit: Promise<ChainExit & { readonly _tag: "Exited" }>
  readonly exitInfo: () => (ChainExit & { readonly _tag: "Exited" }) | undefined
  readonly stderr: () => string
}

const spawnAnvil = (binary: string, args: ReadonlyArray<string>, detached: boolean, logFile: string | undefined): Spawned => {
  // A detached anvil cannot write to our pipes once we are gone: its stderr
  // goes to `logFile` when there is one.
  const logFd = detached && logFile !== undefined ? fs.openSync(logFile, "a") : undefined
  const child = spawn(binary, args, {
    detached,
    stdio: detached ? ["ignore", "ignore", logFd ?? "ignore"] : ["ignore", "ignore", "pipe"]
  })
  if (logFd !== undefined) fs.closeSync(logFd)
  let info: (ChainExit & { readonly _tag: "Exited" }) | undefined
  let err = ""
  // An attached anvil must not outlive this process even when it exits
  // without running finalizers (process.exit); SIGKILL of this process
  // still orphans it (no parent-death signal from Node).
  const killOnExit = () => {
    if (info === undefined) child.kill("SIGKILL")
  }
  if (!detached) process.once("exit", killOnExit)
  child.once("exit", () => process.off("exit", killOnExit))
  child.stderr?.setEncoding("utf8")
  child.stderr?.on("data", (d: string) => {
    err = (err + d).slice(-2000)
  })
  const exit = new Promise<ChainExit & { readonly _tag: "Exited" }>((resolve) => {
    child.once("exit", (code, signal) => {
      info = { _tag: "Exited", code, signal }
      resolve(info)
    })
    child.once("error", (e) => {
      err = (err + e.message).slice(-2000)
      info = { _tag: "Exited", code: null, signal: null }
      resolve(info)
    })
  })
  const stderr = () => {
    if (logFile === undefined || !detached) return err
    try {
      return fs.readFileSync(logFile, "utf8").slice(-2000)
    } catch {
      return err
    }
  }
  return { child, exit, exitInfo: () => info, stderr }
}

const stopChild = (s: Spawned): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (s.exitInfo() !== undefined) return
    s.child.kill("SIGTERM")
    yield* Effect.promise(() => s.exit).pipe(
      Effect.timeoutOrElse({
        duration: "5 seconds",
        orElse: () =>
          Effect.sync(() => {
            s.child.kill("SIGKILL")
          })
      }),
      Effect.asVoid
    )
  })

/**
 * Starts anvil (or joins the one answering on the port), waits until it
 * answers `eth_chainId`, installs the registry if absent.
 * @category constructors
 */
export const start = Effect.fn("Anvil.start")(function*(
  options: AnvilOptions = {}
): Effect.fn.Return<Chain, ChainUnavailable | Reverted | CompileFailed | ArtifactsUnavailable, Scope.Scope> {
  const host = options.host ?? "127.0.0.1"
  const port = options.port ?? 8545
  const chainId = options.chainId ?? FAKE_CHAIN_ID
  const detached = options.detached ?? false
  const url = `http://${host}:${port}`
  const wsUrl = `ws://${host}:${port}`
  const policy = options.policy ?? defaultPolicy
  const liveness = options.livenessInterval ?? "1 second"

  const checkId = (id: number) =>
    id === chainId
      ? Effect.void
      : Effect.fail(new ChainUnavailable({ url, reason: `chain id ${id}, expected ${chainId}` }))

  const finish = Effect.fnUntraced(function*(mode: "started" | "joined", spawned: Spawned | undefined) {
    if (spawned !== undefined && detached && options.stateFile !== undefined && spawned.child.pid !== undefined) {
      const pidFile = `${options.stateFile}.pid`
      const pid = spawned.child.pid
      yield* Effect.try({
        try: () => fs.writeFileSync(pidFile, `${pid}\n`),
        catch: (cause) => new ChainUnavailable({ url, reason: `cannot write ${pidFile}: ${String(cause)}` })
      })
    }
    const installed = options.install === false ? false : yield* ensureRegistry(url, chainId, policy)
    const attached = spawned !== undefined && !detached
    const exited: Effect.Effect<ChainExit> = attached
      ? Effect.promise(() => spawned.exit)
      : livenessWatch(url, liveness)
    return {
      url,
      wsUrl,
      host,
      port,
      chainId,
      mode,
      detached,
      pid: spawned?.child.pid,
      installed,
      exited
    } satisfies Chain
  })

  const existing = yield* probeChainId(url, "1 second").pipe(Effect.option)
  if (existing._tag === "Some") {
    yield* checkId(existing.value)
    return yield* finish("joined", undefined)
  }

  const args = ["--host", host, "--port", String(port), "--chain-id", String(chainId), "--silent"]
  if (options.stateFile !== undefined) {
    const dir = path.dirname(options.stateFile)
    yield* Effect.try({
      try: () => fs.mkdirSync(dir, { recursive: true }),
      catch: (cause) => new ChainUnavailable({ url, reason: `cannot create ${dir}: ${String(cause)}` })
    })
    args.push("--state", options.stateFile, "--state-interval", "1")
  }
  const spawned = yield* Effect.acquireRelease(
    Effect.sync(() =>
      spawnAnvil(
        options.binary ?? anvilBinary(),
        args,
        detached,
        options.stateFile === undefined ? undefined : `${options.stateFile}.log`
      )
    ),
    (s) => detached ? Effect.void : stopChild(s)
  )
  if (detached) spawned.child.unref()

  const ready = Effect.gen(function*() {
    const deadline = Duration.toMillis(options.startTimeout ?? "15 seconds")
    const begun = yield* Clock.currentTimeMillis
    while ((yield* Clock.currentTimeMillis) - begun < deadline) {
      const id = yield* probeChainId(url, "500 millis").pipe(Effect.option)
      if (id._tag === "Some") {
        yield* checkId(id.value)
        // The answer may come from another starter that won the bind race; our
        // anvil then exits at once ("address in use"). Give it a moment to.
        if (spawned.exitInfo() === undefined) yield* Effect.sleep("250 millis")
        return yield* spawned.exitInfo() === undefined ? finish("started", spawned) : finish("joined", undefined)
      }
      const exit = spawned.exitInfo()
      if (exit !== undefined) {
        const again = yield* probeChainId(url, "1 second").pipe(Effect.option)
        if (again._tag === "Some") {
          yield* checkId(again.value)
          return yield* finish("joined", undefined)
        }
        return yield* new ChainUnavailable({
          url,
          reason: `anvil exited (code ${exit.code}, signal ${exit.signal}): ${spawned.stderr().trim()}`
        })
      }
      yield* Effect.sleep("100 millis")
    }
    return yield* new ChainUnavailable({ url, reason: "anvil did not answer eth_chainId in time" })
  })
  // A detached anvil is left running only once it is up and installed.
  return yield* detached ? ready.pipe(Effect.onError(() => stopChild(spawned))) : ready
})
