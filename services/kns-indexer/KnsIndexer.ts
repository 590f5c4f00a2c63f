/**
 * `kns-indexer:kns-indexer:sys`: follows Kimap on an RPC endpoint, keeps `IndexerState`,
 * pushes every changed complete node record to the identity port, answers the §1.8 API.
 *
 * Order at start (Kinode's): load the checkpoint → push every saved complete record →
 * follow from the checkpoint.
 *
 * Following is **polling by block number**, not subscriptions: each round reads the head
 * block, checks the recorded hashes of the unfinal blocks against the chain (a mismatch is
 * a reorg: `rollbackTo` the fork point), then fetches `[last+1, head]` in chunks of
 * `chunkSize` blocks with two `eth_getLogs` per chunk (all `Mint`s; `Note`s with topic3 ∈
 * the five KNS label hashes), merged in `(blockNumber, logIndex)` order. Why: it is one
 * code path for backfill and live, works on HTTP and WebSocket alike, has no
 * subscribe/backfill race to dedupe (§4.2), and detects reorgs even where no `removed`
 * logs are delivered (anvil's `evm_revert`, a restarted RPC). Latency is one poll
 * interval (default 1 s, Kinode's tick).
 *
 * Failure policy: every RPC has a timeout and two quick retries; a failing round sets the
 * status to `Unreachable` and is retried with exponential back-off up to `maxBackoff`,
 * forever; answers that do not decode count as failures. A `getLogs` range that fails
 * while the head answered is halved at once (providers cap ranges and results, viem
 * refuses bodies over 10 MiB) and the half becomes a ceiling, so a provider's range cap
 * is not hit again on every chunk; the ceiling doubles back towards `chunkSize` after 16
 * good ranges in a row (a dense stretch of blocks passes).
 *
 * Checkpoints: the state as of the last final block (`head - confirmations`), every
 * `checkpointBlocks` final blocks or `checkpointInterval`, when the backfill is done,
 * and when the layer's scope closes.
 */
import { Cause, Clock, Context, Duration, Effect, Exit, Layer, Result, Schedule, Schema } from "effect"
import type { Hex } from "viem"
import { createPublicClient, decodeAbiParameters, decodeFunctionResult, encodeFunctionData, hexToBytes, http, webSocket, zeroAddress } from "viem"
import { Address, ProcessId } from "../../src/Ids.ts"
import { Identity, NodeRecord } from "../../src/Identity.ts"
import { ModuleHost } from "../../src/ModuleHost.ts"
import * as ServiceShell from "../../src/ServiceShell.ts"
import {
  Anvil,
  BASE_CHAIN_ID,
  decodeIp,
  decodeNetKey,
  decodePort,
  decodeRouters,
  KIMAP_ADDRESS,
  KIMAP_FIRST_BLOCK,
  kimapAbi,
  KNS_NOTE_LABEL_HASHES,
  KNS_NOTE_LABELS,
  leaf,
  MINT_TOPIC,
  namehash,
  NOTE_TOPIC,
  validNodeName
} from "../chain/index.ts"
import type { CheckpointStore } from "./Checkpoint.ts"
import { lmdbCheckpoint } from "./Checkpoint.ts"
import type { KimapLog, KnsUpdate, Outcome } from "./IndexerState.ts"
import { IndexerState } from "./IndexerState.ts"
import { IndexerRequest } from "./Protocol.ts"
import type { IndexerResponse, WitKnsUpdate, WitState, WitStatus } from "./Protocol.ts"

/** The indexer's process id. */
export const KNS_INDEXER = "kns-indexer:kns-indexer:sys"

export interface KnsIndexerConfig {
  /** `http(s)://` or `ws(s)://` JSON-RPC endpoint. */
  readonly rpcUrl: string
  /** Kimap's address (default: the Base deployment, also used on the fake chain). */
  readonly contract?: string
  readonly chainId?: number
  /** First block to index (default: Kimap's first Base block). */
  readonly firstBlock?: number
  /** Names known without a Mint, as Kinode's fakenet seeds `os` and `dev`. */
  readonly seedNames?: ReadonlyArray<string>
  /** Blocks per `eth_getLogs` range (default 10,000). */
  readonly chunkSize?: number
  /** Blocks below the head before a block is final (default 12). */
  readonly confirmations?: number
  /** Between rounds once caught up (default 1 s, Kinode's tick). */
  readonly pollInterval?: Duration.Input
  /** Per RPC call (default 10 s). */
  readonly rpcTimeout?: Duration.Input
  /** Longest wait between failing rounds (default 30 s; starts at 250 ms, doubling). */
  readonly maxBackoff?: Duration.Input
  /** Checkpoint after this many new final blocks (default 10,000) … */
  readonly checkpointBlocks?: number
  /** … or this long after the last one when anything became final (default 30 s). */
  readonly checkpointInterval?: Duration.Input
  /** Who may `Reset` (default: processes of the indexer's own package). */
  readonly authorizeReset?: (source: Address) => boolean
}

export type IndexerStatus =
  | { readonly _tag: "Starting"; readonly lastBlock: number }
  | { readonly _tag: "CatchingUp"; readonly lastBlock: number; readonly head: number }
  | { readonly _tag: "Live"; readonly lastBlock: number; readonly head: number }
  | {
    readonly _tag: "Unreachable"
    readonly lastBlock: number
    /** Epoch ms of the first failure of this streak. */
    readonly since: number
    readonly failures: number
    readonly error: string
  }

export interface IndexerStats {
  /** `[from, to]` ranges fetched (each = one Mint + one Note `eth_getLogs`). */
  ranges: number
  logs: number
  rpcCalls: number
  rpcFailures: number
  reorgs: number
  checkpoints: number
  /** Last block of the last checkpoint written (-1: none this run). */
  checkpointBlock: number
}

export class RpcError extends Schema.TaggedError<RpcError>()("RpcError", {
  method: Schema.String,
  reason: Schema.String
}) {}

export class KnsIndexer extends Context.Service<KnsIndexer, {
  /**
   * Answers one request body of the §1.8 API (the service shell's handler); every
   * outcome is a reply, a body that is not a request gets `{"Err":{"BadRequest":…}}`.
   */
  readonly handle: ServiceShell.Handle
  readonly status: () => IndexerStatus
  readonly stats: () => IndexerStats
  /** The live state (read it, do not write it). */
  readonly state: () => IndexerState
  /** Writes a checkpoint now. */
  readonly checkpoint: Effect.Effect<void>
}>()("services/kns-indexer/KnsIndexer") {
  /** The indexer over a given checkpoint store; the follower runs in the layer's scope. */
  static readonly layerWith = (config: KnsIndexerConfig, store: CheckpointStore) =>
    Layer.effect(KnsIndexer, make(config, store))

  /** The indexer with its checkpoint in the node's LMDB (key = the process id). */
  static readonly layer = (config: KnsIndexerConfig) =>
    Layer.effect(KnsIndexer, Effect.flatMap(lmdbCheckpoint(KNS_INDEXER), (store) => make(config, store)))

  /**
   * Hosts the indexer as the process `kns-indexer:kns-indexer:sys` through the service
   * shell: local requests only, one source's requests in order, sources concurrently
   * (a `NodeInfo` chain read does not hold up other callers).
   */
  static readonly serve = Layer.unwrap(Effect.map(KnsIndexer, (indexer) =>
    ServiceShell.serveLayer(KNS_INDEXER, { _tag: "lanes", maxInFlight: MAX_IN_FLIGHT }, indexer.handle)))

  /**
   * What a node adds: the indexer (checkpoint in LMDB) hosted as its process, `Reset`
   * allowed to the indexer's package and to holders of its `{"root":true}` capability
   * (Kinode's rule). Needs `ModuleHost`, `Lmdb`, `Identity`.
   */
  static readonly layerNode = (config: KnsIndexerConfig) =>
    KnsIndexer.serve.pipe(Layer.provideMerge(Layer.unwrap(Effect.map(ModuleHost, (host) =>
      KnsIndexer.layer({ ...config, authorizeReset: config.authorizeReset ?? resetRule(host) })))))

  /**
   * `layerNode` on the embedded chain (`Anvil` of services/chain): Kimap at its address,
   * indexed from block 0 (the installer's `init` mints the zones, so nothing is seeded).
   */
  static readonly layerAnvil = (config: Partial<KnsIndexerConfig> = {}) =>
    Layer.unwrap(Effect.map(Anvil, (chain) =>
      KnsIndexer.layerNode({ rpcUrl: chain.url, contract: KIMAP_ADDRESS, chainId: chain.chainId, firstBlock: 0, ...config })))
}

const MAX_IN_FLIGHT = 1024

/** Kinode: the caller is in the indexer's package, or holds `{"root":true}` from it. */
export const resetRule = (host: ModuleHost["Service"]) => {
  const issuer = new Address({ node: host.node, process: new ProcessId(KNS_PID, { disableChecks: true }) }, { disableChecks: true })
  const root = { issuer, params: JSON.stringify({ root: true }) }
  return (source: Address): boolean =>
    source.node === host.node && (samePackage(source) || host.hasCapability(source.process, root))
}

const KNS_PID = { processName: "kns-indexer", packageName: "kns-indexer", publisherNode: "sys" }
const samePackage = (source: Address) =>
  source.process.packageName === KNS_PID.packageName && source.process.publisherNode === KNS_PID.publisherNode

// ---------------------------------------------------------------------------
// RPC answers
// ---------------------------------------------------------------------------

const Quantity = Schema.String.check(Schema.isPattern(/^0x[0-9a-fA-F]{1,16}$/))
const Data = Schema.String.check(Schema.isPattern(/^0x([0-9a-fA-F]{2})*$/))
const Hash = Schema.String.check(Schema.isPattern(/^0x[0-9a-fA-F]{64}$/))
const RawBlock = Schema.Struct({ number: Quantity, hash: Hash })
const RawLog = Schema.Struct({
  address: Schema.String,
  topics: Schema.Array(Hash),
  data: Data,
  blockNumber: Quantity,
  blockHash: Hash,
  logIndex: Quantity,
  removed: Schema.optional(Schema.Boolean)
})
const decodeBlock = Schema.decodeUnknownResult(Schema.NullOr(RawBlock))
const decodeLogs = Schema.decodeUnknownResult(Schema.Array(RawLog))
const decodeCallResult = Schema.decodeUnknownResult(Data)

const message = (cause: unknown): string => cause instanceof Error ? cause.message.split("\n")[0]! : String(cause)
const toHex = (n: number) => `0x${n.toString(16)}`
const KNS_HASHES = KNS_NOTE_LABELS.map((l) => KNS_NOTE_LABEL_HASHES[l])
/** Two quick retries per call; longer outages are the follower's back-off. */
const quickRetry = Schedule.exponential("100 millis")
const bytesParams = [{ type: "bytes" }] as const
const twoBytesParams = [{ type: "bytes" }, { type: "bytes" }] as const

/** A raw log → a decoded Mint/Note, or a reason it is not one. */
export const decodeKimapLog = (raw: typeof RawLog.Type): KimapLog | string => {
  const pos = {
    blockNumber: Number(raw.blockNumber),
    logIndex: Number(raw.logIndex),
    blockHash: raw.blockHash.toLowerCase(),
    removed: raw.removed
  }
  const [t0, t1, t2] = raw.topics
  if (t1 === undefined || t2 === undefined || raw.topics.length !== 4) return `${raw.topics.length} topics`
  try {
    if (t0 === MINT_TOPIC) {
      const [label] = decodeAbiParameters(bytesParams, raw.data as Hex)
      return { _tag: "Mint", ...pos, parenthash: t1.toLowerCase(), childhash: t2.toLowerCase(), label: hexToBytes(label) }
    }
    if (t0 === NOTE_TOPIC) {
      const [label, data] = decodeAbiParameters(twoBytesParams, raw.data as Hex)
      return {
        _tag: "Note",
        ...pos,
        parenthash: t1.toLowerCase(),
        notehash: t2.toLowerCase(),
        label: hexToBytes(label),
        data: hexToBytes(data)
      }
    }
    return `topic0 ${t0}`
  } catch (e) {
    return `undecodable data: ${message(e)}`
  }
}

export const toWit = (r: KnsUpdate): WitKnsUpdate => ({
  name: r.name,
  public_key: r.public_key,
  ips: [...r.ips],
  ports: Object.keys(r.ports).sort().map((k) => [k, r.ports[k]!] as const),
  routers: [...r.routers]
})

export const toNodeRecord = (r: KnsUpdate): NodeRecord =>
  new NodeRecord({ name: r.name, publicKey: r.public_key, ips: [...r.ips], ports: { ...r.ports }, routers: [...r.routers] }, {
    disableChecks: true
  })

// ---------------------------------------------------------------------------
// The indexer
// ---------------------------------------------------------------------------

const make = Effect.fnUntraced(function*(config: KnsIndexerConfig, store: CheckpointStore) {
  const identity = yield* Identity
  const contract = (config.contract ?? KIMAP_ADDRESS).toLowerCase()
  const chainId = config.chainId ?? BASE_CHAIN_ID
  const firstBlock = config.firstBlock ?? Number(KIMAP_FIRST_BLOCK)
  const maxChunk = Math.max(1, config.chunkSize ?? 10_000)
  const depth = Math.max(0, config.confirmations ?? 12)
  const pollInterval = Duration.fromInputUnsafe(config.pollInterval ?? "1 second")
  const rpcTimeout = Duration.fromInputUnsafe(config.rpcTimeout ?? "10 seconds")
  const maxBackoff = Duration.toMillis(Duration.fromInputUnsafe(config.maxBackoff ?? "30 seconds"))
  const checkpointBlocks = Math.max(1, config.checkpointBlocks ?? 10_000)
  const checkpointMillis = Duration.toMillis(Duration.fromInputUnsafe(config.checkpointInterval ?? "30 seconds"))
  const authorizeReset = config.authorizeReset ?? samePackage
  const seedNames = (config.seedNames ?? []).map((n) => [namehash(n), n] as const)
  const fresh = () => IndexerState.make({ chainId, contract, firstBlock, seedNames })

  const client = createPublicClient({
    transport: /^wss?:/.test(config.rpcUrl)
      ? webSocket(config.rpcUrl, {
        retryCount: 0,
        timeout: Duration.toMillis(rpcTimeout) + 1_000,
        reconnect: { attempts: Number.MAX_SAFE_INTEGER, delay: 1_000 }
      })
      : http(config.rpcUrl, { retryCount: 0, timeout: Duration.toMillis(rpcTimeout) + 1_000 })
  })
  const request = client.request as unknown as (args: { method: string; params: ReadonlyArray<unknown> }) => Promise<unknown>
  const socket = (client.transport as { getRpcClient?: () => Promise<{ close: () => void }> }).getRpcClient
  if (socket !== undefined) {
    // A WebSocket would otherwise outlive the indexer, reconnecting forever.
    yield* Effect.addFinalizer(() => Effect.ignore(Effect.tryPromise(() => socket().then((c) => c.close()))))
  }

  const stats: IndexerStats = { ranges: 0, logs: 0, rpcCalls: 0, rpcFailures: 0, reorgs: 0, checkpoints: 0, checkpointBlock: -1 }

  // --- load (Kinode: load state → push every saved node) ---
  let state: IndexerState
  const loaded = yield* store.load({ chainId, contract })
  if (loaded._tag === "Found") {
    state = IndexerState.restore(loaded.persisted)
    yield* Effect.logInfo(`kns-indexer: resuming after block ${state.lastBlock} (${state.nodeCount()} nodes)`)
  } else {
    if (loaded._tag === "Unusable") {
      yield* Effect.logWarning(`kns-indexer: stored state unusable (${loaded.reason}); re-indexing from block ${firstBlock}`)
    }
    state = fresh()
  }
  for (const r of state.completeRecords()) identity.upsert(toNodeRecord(r))
  let status: IndexerStatus = { _tag: "Starting", lastBlock: state.lastBlock }
  /** Bumped by `Reset`: a round that started before it discards what it fetched. */
  let generation = 0
  /** Hashes of unfinal blocks we indexed (log blocks and round heads), for reorg checks. */
  const hashes = new Map<number, string>()
  let savedBlock = loaded._tag === "Found" ? state.lastFinalBlock : -1
  let savedAt = yield* Clock.currentTimeMillis
  /** Blocks per range now, and the most we try until 16 good ranges in a row. */
  let chunk = maxChunk
  let ceiling = maxChunk
  let goodRanges = 0

  const publish = (outcome: Outcome) =>
    Effect.gen(function*() {
      for (const w of outcome.warnings) yield* Effect.logWarning(`kns-indexer: ${w}`)
      for (const c of outcome.changes) {
        if (c.record === undefined) identity.remove(c.name)
        else identity.upsert(toNodeRecord(c.record))
      }
    })

  // --- RPC ---
  const rpc = (method: string, params: ReadonlyArray<unknown>, retries = 2): Effect.Effect<unknown, RpcError> =>
    Effect.tryPromise({
      try: () => {
        stats.rpcCalls++
        return request({ method, params })
      },
      catch: (cause) => new RpcError({ method, reason: message(cause) })
    }).pipe(
      Effect.timeoutOrElse({
        duration: rpcTimeout,
        orElse: () => Effect.fail(new RpcError({ method, reason: `no answer in ${Duration.format(rpcTimeout)}` }))
      }),
      Effect.tapError(() => Effect.sync(() => stats.rpcFailures++)),
      Effect.retry({ times: retries, schedule: quickRetry })
    )

  const garbage = (method: string, what: string) => new RpcError({ method, reason: `unexpected answer: ${what}` })

  const getBlock = (tag: number | "latest") =>
    Effect.flatMap(rpc("eth_getBlockByNumber", [typeof tag === "number" ? toHex(tag) : tag, false]), (raw) => {
      const b = decodeBlock(raw)
      if (Result.isFailure(b)) return Effect.fail(garbage("eth_getBlockByNumber", "not a block"))
      if (b.success === null) return Effect.succeed(undefined)
      return Effect.succeed({ number: Number(b.success.number), hash: b.success.hash.toLowerCase() })
    })

  const getLogs = (from: number, to: number, topics: ReadonlyArray<unknown>) =>
    Effect.flatMap(
      // A multi-block range that fails is split instead of retried (see `round`).
      rpc("eth_getLogs", [{ address: contract, fromBlock: toHex(from), toBlock: toHex(to), topics }], to > from ? 0 : 2),
      (raw) => {
        const logs = decodeLogs(raw)
        if (Result.isFailure(logs)) return Effect.fail(garbage("eth_getLogs", "not a log list"))
        for (const l of logs.success) {
          const n = Number(l.blockNumber)
          if (n < from || n > to || l.address.toLowerCase() !== contract) {
            return Effect.fail(garbage("eth_getLogs", `log of block ${n} / ${l.address} outside the query`))
          }
        }
        return Effect.succeed(logs.success)
      }
    )

  // --- one round ---
  const setStatus = (s: IndexerStatus) => {
    status = s
  }

  /**
   * Where the chain forked from what we indexed: `undefined` if the highest recorded block
   * is still canonical, else the highest recorded block that is, or `"deep"` when none
   * is (not even the anchor at or below the final block).
   */
  const findFork = (head: { number: number; hash: string }) =>
    Effect.gen(function*() {
      const recorded = [...hashes.entries()].sort((a, b) => b[0] - a[0])
      let first = true
      for (const [n, h] of recorded) {
        const canonical = n > head.number ? undefined : n === head.number ? head.hash : (yield* getBlock(n))?.hash
        if (canonical === h) return first ? undefined : n
        first = false
      }
      return first ? undefined : "deep" as const
    })

  /** The chain no longer holds what we made final: retract everything, index again. */
  const reindex = (why: string) =>
    Effect.gen(function*() {
      yield* Effect.logError(`kns-indexer: ${why}; re-indexing from block ${firstBlock}`)
      const old = state.completeRecords()
      generation++
      state = fresh()
      hashes.clear()
      savedBlock = -1
      stats.reorgs++
      for (const r of old) identity.remove(r.name)
    })

  /** Keeps the hashes of unfinal blocks plus one anchor at or below the final block. */
  const pruneHashes = () => {
    const final = state.lastFinalBlock
    let anchor = -1
    for (const n of hashes.keys()) if (n <= final && n > anchor) anchor = n
    for (const n of hashes.keys()) if (n < anchor) hashes.delete(n)
  }

  const round: Effect.Effect<"more" | "idle", RpcError> = Effect.gen(function*() {
    const gen = generation
    const head = yield* getBlock("latest")
    if (head === undefined) return yield* Effect.fail(garbage("eth_getBlockByNumber", "no latest block"))
    if (head.number < state.lastFinalBlock) {
      yield* reindex(`the chain's head ${head.number} is below our final block ${state.lastFinalBlock} (a reset chain?)`)
      return "more" as const
    }
    const fork = yield* findFork(head)
    if (gen !== generation) return "more" as const
    if (fork === "deep") {
      yield* reindex(`reorg below the final block ${state.lastFinalBlock} (deeper than ${depth} confirmations)`)
      return "more" as const
    }
    if (fork !== undefined) {
      stats.reorgs++
      yield* Effect.logWarning(`kns-indexer: reorg: blocks after ${fork} changed; rolling back`)
      const outcome = state.rollbackTo(Math.max(fork, state.lastFinalBlock))
      for (const n of hashes.keys()) if (n > fork) hashes.delete(n)
      yield* publish(outcome)
    }
    const from = state.lastBlock + 1
    if (from > head.number) {
      hashes.set(head.number, head.hash)
      state.finalize(head.number, depth)
      pruneHashes()
      setStatus({ _tag: "Live", lastBlock: state.lastBlock, head: head.number })
      return "idle" as const
    }
    const to = Math.min(head.number, from + chunk - 1)
    const result = yield* Effect.result(Effect.all([
      getLogs(from, to, [MINT_TOPIC]),
      getLogs(from, to, [NOTE_TOPIC, null, null, KNS_HASHES])
    ], { concurrency: 2 }))
    if (Result.isFailure(result)) {
      // The head answered, the range did not: most likely a range or response-size cap
      // (viem refuses bodies over 10 MiB, providers cap ranges): halve it, go on at once.
      if (to === from) return yield* Effect.fail(result.failure)
      chunk = ceiling = Math.max(1, Math.floor((to - from + 1) / 2))
      goodRanges = 0
      yield* Effect.logWarning(`kns-indexer: eth_getLogs ${from}..${to} failed (${result.failure.reason}); trying ${chunk} blocks`)
      return "more" as const
    }
    const fetched = result.success
    if (gen !== generation) return "more" as const
    if (++goodRanges >= 16 && ceiling < maxChunk) {
      ceiling = Math.min(maxChunk, ceiling * 2)
      goodRanges = 0
    }
    chunk = Math.min(ceiling, chunk * 2)
    stats.ranges++
    const logs: Array<KimapLog> = []
    for (const raw of [...fetched[0], ...fetched[1]]) {
      const log = decodeKimapLog(raw)
      if (typeof log === "string") {
        yield* Effect.logWarning(`kns-indexer: log ${raw.blockNumber}/${raw.logIndex} ignored: ${log}`)
        continue
      }
      const known = hashes.get(log.blockNumber)
      if (known !== undefined && known !== log.blockHash) {
        // The chain moved under us between the head read and getLogs: the next round
        // re-checks the recorded hashes (after a pause, in case the RPC keeps doing it).
        yield* Effect.logWarning(`kns-indexer: log of block ${log.blockNumber} from another fork than its head; re-checking`)
        return "idle" as const
      }
      logs.push(log)
    }
    logs.sort((a, b) => a.blockNumber - b.blockNumber || a.logIndex - b.logIndex)
    stats.logs += logs.length
    const applied = state.applyAll(logs)
    for (const l of logs) if (l.blockNumber > head.number - depth - 1) hashes.set(l.blockNumber, l.blockHash)
    if (to === head.number) hashes.set(head.number, head.hash)
    const advanced = state.advance(to)
    state.finalize(head.number, depth)
    pruneHashes()
    yield* publish(applied)
    yield* publish(advanced)
    setStatus(
      to < head.number
        ? { _tag: "CatchingUp", lastBlock: state.lastBlock, head: head.number }
        : { _tag: "Live", lastBlock: state.lastBlock, head: head.number }
    )
    return to < head.number ? "more" as const : "idle" as const
  })

  // --- checkpoints ---
  const saveCheckpoint = Effect.gen(function*() {
    const persisted = state.persisted()
    const result = yield* Effect.result(store.save(persisted))
    if (Result.isFailure(result)) {
      yield* Effect.logWarning(`kns-indexer: checkpoint not saved: ${message(result.failure.cause)}`)
      return
    }
    savedBlock = persisted.lastBlock
    savedAt = yield* Clock.currentTimeMillis
    stats.checkpoints++
    stats.checkpointBlock = persisted.lastBlock
  })

  const maybeCheckpoint = (force: boolean) =>
    Effect.gen(function*() {
      const final = state.lastFinalBlock
      if (final <= savedBlock) return
      const now = yield* Clock.currentTimeMillis
      if (force || final - savedBlock >= checkpointBlocks || now - savedAt >= checkpointMillis) yield* saveCheckpoint
    })

  // --- the follower ---
  const follower = Effect.gen(function*() {
    let failures = 0
    let since = 0
    let caughtUp = false
    while (true) {
      const result = yield* Effect.result(round)
      if (Result.isFailure(result)) {
        if (failures === 0) {
          since = yield* Clock.currentTimeMillis
          yield* Effect.logWarning(`kns-indexer: chain unreachable: ${result.failure.method}: ${result.failure.reason}`)
        }
        failures++
        setStatus({ _tag: "Unreachable", lastBlock: state.lastBlock, since, failures, error: result.failure.reason })
        yield* Effect.sleep(Math.min(maxBackoff, 250 * 2 ** Math.min(failures - 1, 20)))
        continue
      }
      if (failures > 0) yield* Effect.logInfo(`kns-indexer: chain reachable again after ${failures} failed rounds`)
      failures = 0
      const idle = result.success === "idle"
      yield* maybeCheckpoint(idle && !caughtUp)
      if (idle) caughtUp = true
      if (idle) yield* Effect.sleep(pollInterval)
    }
  })

  /** A defect (a bug) in a round must not end indexing: log it, pause, follow again. */
  const supervised = Effect.forever(Effect.gen(function*() {
    const exit = yield* Effect.exit(follower)
    if (Exit.isFailure(exit)) yield* Effect.logError("kns-indexer: follower died; restarting in 1 s", Cause.pretty(exit.cause))
    yield* Effect.sleep("1 second")
  })).pipe(Effect.annotateLogs({ process: KNS_INDEXER }))

  yield* Effect.addFinalizer(() => Effect.suspend(() => state.lastFinalBlock > savedBlock ? saveCheckpoint : Effect.void))
  yield* Effect.forkScoped(supervised)

  // --- the API ---
  const readGet = (hash: Hex) =>
    Effect.flatMap(
      rpc("eth_call", [{ to: contract, data: encodeFunctionData({ abi: kimapAbi, functionName: "get", args: [hash] }) }, "latest"]),
      (raw) => {
        const data = decodeCallResult(raw)
        if (Result.isFailure(data)) return Effect.fail(garbage("eth_call", "not bytes"))
        try {
          const [tba, , bytes] = decodeFunctionResult({ abi: kimapAbi, functionName: "get", data: data.success as Hex })
          return Effect.succeed({ tba, data: hexToBytes(bytes) })
        } catch (e) {
          return Effect.fail(garbage("eth_call", message(e)))
        }
      }
    )

  /** Names the chain did not know, until when (ms): a flood of misses costs no RPC. */
  const absent = new Map<string, number>()
  const MISS_TTL = 10_000
  const MAX_ABSENT = 10_000

  /** Kinode's `NodeInfo` miss: the name and its five notes read from the chain at its head. */
  const fetchNode = (name: string) =>
    Effect.gen(function*() {
      if (!validNodeName(name)) return undefined
      const now = yield* Clock.currentTimeMillis
      const until = absent.get(name)
      if (until !== undefined && until > now) return undefined
      const hash = namehash(name)
      const [entry, ...notes] = yield* Effect.all(
        [readGet(hash), ...KNS_NOTE_LABELS.map((l) => readGet(leaf(hash, l)))],
        { concurrency: "unbounded" }
      )
      if (entry!.tba === zeroAddress) {
        if (absent.size >= MAX_ABSENT) absent.clear()
        absent.set(name, now + MISS_TTL)
        return undefined
      }
      const note = (label: typeof KNS_NOTE_LABELS[number]) => {
        const d = notes[KNS_NOTE_LABELS.indexOf(label)]!.data
        return d.length === 0 ? undefined : d
      }
      const key = note("~net-key")
      const ip = note("~ip")
      const tcp = note("~tcp-port")
      const ws = note("~ws-port")
      const routersData = note("~routers")
      const keyHex = key === undefined ? undefined : Result.getOrUndefined(decodeNetKey(key))
      const ipText = ip === undefined ? undefined : Result.getOrUndefined(decodeIp(ip))
      const ports: Record<string, number> = {}
      const tcpPort = tcp === undefined ? undefined : Result.getOrUndefined(decodePort(tcp, "~tcp-port"))
      const wsPort = ws === undefined ? undefined : Result.getOrUndefined(decodePort(ws, "~ws-port"))
      if (tcpPort !== undefined) ports["tcp"] = tcpPort
      if (wsPort !== undefined) ports["ws"] = wsPort
      const routerHashes = routersData === undefined ? [] : Result.getOrElse(decodeRouters(routersData), () => [])
      const routers = routerHashes.flatMap((h) => {
        const r = state.nameOf(h)
        return r === undefined ? [] : [r]
      })
      const record: KnsUpdate = {
        name,
        public_key: keyHex === undefined ? "" : keyHex.slice(2),
        ips: ipText === undefined ? [] : [ipText],
        ports,
        routers
      }
      return { hash, record }
    })

  const witState = (): WitState => ({
    chain_id: state.chainId,
    contract_address: Array.from(hexToBytes(contract as Hex)),
    names: [...state.allNames()],
    nodes: [...state.allNodes()].map((n) => [n.name, toWit(n)] as const),
    last_block: state.lastBlock
  })

  const witStatus = (): WitStatus => {
    const s = status
    const base = { status: s._tag, last_block: state.lastBlock, final_block: state.lastFinalBlock }
    switch (s._tag) {
      case "Starting":
        return base
      case "CatchingUp":
      case "Live":
        return { ...base, head: s.head }
      case "Unreachable":
        return { ...base, since: s.since, failures: s.failures, error: s.error }
    }
  }

  const serve = (source: Address, req: IndexerRequest): Effect.Effect<IndexerResponse> => {
    if (req === "Reset") {
      if (!authorizeReset(source)) return Effect.succeed({ Reset: { Err: "NoRootCap" } })
      return Effect.gen(function*() {
        const cleared = yield* Effect.result(store.clear)
        if (Result.isFailure(cleared)) return { Reset: { Err: { DbError: message(cleared.failure.cause) } } }
        generation++
        state = fresh()
        hashes.clear()
        savedBlock = -1
        yield* Effect.logInfo(`kns-indexer: reset; re-indexing from block ${firstBlock}`)
        return { Reset: "Success" } as const
      })
    }
    if (req === "Status") return Effect.sync(() => ({ Status: witStatus() }))
    if ("NamehashToName" in req) return Effect.succeed({ Name: state.nameOf(req.NamehashToName.hash) ?? null })
    if ("GetState" in req) return Effect.sync(() => ({ GetState: witState() }))
    const name = req.NodeInfo.name
    const known = state.node(name)
    if (known !== undefined) return Effect.succeed({ NodeInfo: toWit(known) })
    return fetchNode(name).pipe(
      Effect.flatMap((found) =>
        Effect.gen(function*() {
          if (found === undefined) return { NodeInfo: null }
          // The follower may have indexed it meanwhile; its record wins.
          const now = state.node(name)
          if (now !== undefined) return { NodeInfo: toWit(now) }
          yield* publish(state.insertFromChain(found.hash, found.record))
          return { NodeInfo: toWit(found.record) }
        })
      ),
      Effect.catch((e: RpcError) =>
        Effect.as(Effect.logWarning(`kns-indexer: NodeInfo ${name}: chain read failed: ${e.reason}`), { NodeInfo: null })
      )
    )
  }

  const shell = ServiceShell.make({
    request: IndexerRequest,
    malformed: (reason: string) => ({ BadRequest: reason }),
    serve: (source: Address, req: IndexerRequest) => Effect.map(serve(source, req), (r) => ServiceShell.jsonReply(r))
  })

  return KnsIndexer.of({
    handle: shell.handle,
    status: () => status,
    stats: () => stats,
    state: () => state,
    checkpoint: saveCheckpoint
  })
})
