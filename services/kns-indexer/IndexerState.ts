/**
 * The KNS indexer's state and Kinode's event rules (identity-and-network §1.8), pure:
 * no I/O, no clock. The follower feeds it decoded Kimap logs in `(blockNumber, logIndex)`
 * order and pushes the record changes each call returns.
 *
 * Kinode's rules, kept as they are (apps and `net` depend on them):
 * - **Mint**: label must pass `validName`; full name = `label.parentName` when the parent
 *   hash is known, else `label`; `names[childhash] = full`; `nodes[full]` reset to empty.
 * - **Note** (the five KNS labels): parent unknown → parked (retried on later blocks, at
 *   most `MAX_PENDING_RETRIES` rounds); `~ws-port`/`~tcp-port` (2 bytes) set the port and
 *   clear routers; `~ip` (4/16 bytes) sets `ips=[ip]` and clears routers; `~routers`
 *   (n×32 bytes) maps each hash through `names` (unknown ones dropped), clears ips/ports;
 *   `~net-key` (32 bytes) sets the key as lowercase hex without `0x`.
 * - A record is *complete* (pushed to the PKI) with a key and (ips and ports, or routers).
 *
 * Beyond Kinode:
 * - **Reorgs.** Every log applied above the final block keeps an undo record (the values it
 *   overwrote). A log with `removed: true` undoes exactly that log: the logs after it are
 *   undone, it is dropped, and they are applied again. `rollbackTo(b)` undoes every log
 *   above block `b` (the polling follower's fork point). A log arriving out of order is
 *   inserted at its position the same way; a log seen twice is ignored.
 * - **Confirmation depth.** `finalize(head, depth)` makes blocks up to `head - depth` (and
 *   at most the last fully processed block) final, dropping their undo records.
 *   `persisted()` is the state *as of the final block* (the unfinal logs undone on a copy),
 *   so a checkpoint never goes past it.
 * - **Malformed input** (bad lengths, bad UTF-8, invalid labels, unknown router hashes) is
 *   ignored; each call returns one warning line per ignored item, never throws.
 * - **Changes.** Each call reports the records whose *pushed* form changed: a complete
 *   record that is new or different (`record` set), or one that stopped being complete or
 *   vanished (`record: undefined`, e.g. a reorg undid its Mint). Kinode pushes after every
 *   note, even unchanged; it never retracts.
 */
import { Result } from "effect"
import { decodeIp, decodeNetKey, decodePort, decodeRouters, isKnsNoteLabel, validName, validNote } from "../chain/index.ts"

/** Kinode's `KnsUpdate` (§1.6). */
export interface KnsUpdate {
  readonly name: string
  /** Lowercase hex without `0x`; empty until a `~net-key` note. */
  readonly public_key: string
  readonly ips: ReadonlyArray<string>
  /** `"tcp"`/`"ws"` → port (`0` kept, as Kinode does: `net` treats it as absent). */
  readonly ports: Readonly<Record<string, number>>
  readonly routers: ReadonlyArray<string>
}

/** Where a log sits in the chain. Hashes are lowercase `0x` hex. */
export interface LogPosition {
  readonly blockNumber: number
  readonly logIndex: number
  readonly blockHash: string
  /** Set on a log a reorg took back (subscriptions deliver these). */
  readonly removed?: boolean | undefined
}

/** `Mint(parenthash, namehash, labelhash, label)`, decoded. */
export interface MintLog extends LogPosition {
  readonly _tag: "Mint"
  readonly parenthash: string
  readonly childhash: string
  readonly label: Uint8Array
}

/** `Note(parenthash, namehash, labelhash, label, data)`, decoded. */
export interface NoteLog extends LogPosition {
  readonly _tag: "Note"
  readonly parenthash: string
  readonly notehash: string
  readonly label: Uint8Array
  readonly data: Uint8Array
}

export type KimapLog = MintLog | NoteLog

/** A record whose pushed form changed: the new complete record, or `undefined` = retract. */
export interface RecordChange {
  readonly name: string
  readonly record: KnsUpdate | undefined
}

export interface Outcome {
  readonly changes: ReadonlyArray<RecordChange>
  /** One line per ignored input (malformed note, invalid label, unknown router …). */
  readonly warnings: ReadonlyArray<string>
}

/** A parked note (parent unknown) and how many retry rounds it has failed. */
export interface PendingNote {
  readonly log: NoteLog
  readonly retries: number
}

/** What a checkpoint holds: the state as of `lastBlock` (final), msgpack-friendly. */
export interface Persisted {
  readonly version: 1
  readonly chainId: number
  readonly contract: string
  readonly lastBlock: number
  readonly names: ReadonlyArray<readonly [string, string]>
  readonly nodes: ReadonlyArray<KnsUpdate>
  readonly pending: ReadonlyArray<PendingNote>
}

/** Kinode retries a parked note at most 3 times. */
export const MAX_PENDING_RETRIES = 3

export const emptyRecord = (name: string): KnsUpdate => ({ name, public_key: "", ips: [], ports: {}, routers: [] })

/** Kinode's rule for sending a record to `net`. */
export const isComplete = (r: KnsUpdate | undefined): r is KnsUpdate =>
  r !== undefined && r.public_key !== "" &&
  ((r.ips.length > 0 && Object.keys(r.ports).length > 0) || r.routers.length > 0)

const sameStrings = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) =>
  a.length === b.length && a.every((x, i) => x === b[i])

export const sameRecord = (a: KnsUpdate, b: KnsUpdate): boolean => {
  if (a.name !== b.name || a.public_key !== b.public_key) return false
  if (!sameStrings(a.ips, b.ips) || !sameStrings(a.routers, b.routers)) return false
  const ak = Object.keys(a.ports)
  return ak.length === Object.keys(b.ports).length && ak.every((k) => a.ports[k] === b.ports[k])
}

type Undo =
  | { readonly t: "name"; readonly key: string; readonly prev: string | undefined }
  | { readonly t: "node"; readonly key: string; readonly prev: KnsUpdate | undefined }
  | { readonly t: "pending"; readonly key: string; readonly prev: PendingNote | undefined }

/** One applied log (or a retry round, `log` undefined, ordered after the logs of `block`). */
interface Entry {
  readonly block: number
  readonly logIndex: number
  readonly log: KimapLog | undefined
  readonly undo: Array<Undo>
}

const utf8 = new TextDecoder("utf-8", { fatal: true })
const decodeLabel = (bytes: Uint8Array): string | undefined => {
  try {
    return utf8.decode(bytes)
  } catch {
    return undefined
  }
}

const at = (p: LogPosition) => `block ${p.blockNumber} log ${p.logIndex}`
const pendingKey = (p: LogPosition) => `${p.blockNumber}:${p.logIndex}:${p.blockHash}`
const before = (a: { block: number; logIndex: number }, b: { block: number; logIndex: number }) =>
  a.block < b.block || (a.block === b.block && a.logIndex < b.logIndex)
const RETRY_INDEX = Number.MAX_SAFE_INTEGER

export interface IndexerStateOptions {
  readonly chainId: number
  readonly contract: string
  /** The first block to index; the state starts as if every block before it were final. */
  readonly firstBlock: number
  /** Names known without a Mint (Kinode's fakenet seeds `os`, `dev`): `[namehash, name]`. */
  readonly seedNames?: ReadonlyArray<readonly [string, string]>
}

/**
 * Indexed names and nodes plus the undo journal of the unfinal blocks. Mutable, but only
 * through the methods below, each of which returns what changed.
 */
export class IndexerState {
  readonly chainId: number
  readonly contract: string
  private readonly names: Map<string, string>
  private readonly nodes: Map<string, KnsUpdate>
  private readonly pending: Map<string, PendingNote>
  private entries: Array<Entry> = []
  private finalBlock: number
  private processed: number
  /** Per call: record before its first change, warnings, the entry being journaled. */
  private touched = new Map<string, KnsUpdate | undefined>()
  private warnings: Array<string> = []
  private current: Entry | undefined = undefined

  private constructor(
    chainId: number,
    contract: string,
    lastBlock: number,
    names: Map<string, string>,
    nodes: Map<string, KnsUpdate>,
    pending: Map<string, PendingNote>
  ) {
    this.chainId = chainId
    this.contract = contract.toLowerCase()
    this.finalBlock = lastBlock
    this.processed = lastBlock
    this.names = names
    this.nodes = nodes
    this.pending = pending
  }

  static make(options: IndexerStateOptions): IndexerState {
    const names = new Map<string, string>()
    for (const [hash, name] of options.seedNames ?? []) names.set(hash.toLowerCase(), name)
    return new IndexerState(options.chainId, options.contract, options.firstBlock - 1, names, new Map(), new Map())
  }

  /** A state loaded from a checkpoint (already validated by the caller's schema). */
  static restore(p: Persisted): IndexerState {
    return new IndexerState(
      p.chainId,
      p.contract,
      p.lastBlock,
      new Map(p.names.map(([h, n]) => [h, n] as [string, string])),
      new Map(p.nodes.map((r) => [r.name, r])),
      new Map(p.pending.map((p) => [pendingKey(p.log), p]))
    )
  }

  // -------------------------------------------------------------------------
  // Reads
  // -------------------------------------------------------------------------

  /** Every block up to this one has been applied. */
  get lastBlock(): number {
    return this.processed
  }
  /** Every block up to this one is final (no undo kept); checkpoints stop here. */
  get lastFinalBlock(): number {
    return this.finalBlock
  }
  /** Blocks above the final one that still have undo records (for tests and metrics). */
  get undoEntries(): number {
    return this.entries.length
  }
  get pendingCount(): number {
    return this.pending.size
  }
  nameOf(hash: string): string | undefined {
    return this.names.get(hash.toLowerCase())
  }
  node(name: string): KnsUpdate | undefined {
    return this.nodes.get(name)
  }
  nameCount(): number {
    return this.names.size
  }
  nodeCount(): number {
    return this.nodes.size
  }
  allNames(): IterableIterator<[string, string]> {
    return this.names.entries()
  }
  allNodes(): IterableIterator<KnsUpdate> {
    return this.nodes.values()
  }
  completeRecords(): Array<KnsUpdate> {
    const out: Array<KnsUpdate> = []
    for (const r of this.nodes.values()) if (isComplete(r)) out.push(r)
    return out
  }

  // -------------------------------------------------------------------------
  // Writes
  // -------------------------------------------------------------------------

  /** Applies one log (or undoes it when `removed`). */
  apply(log: KimapLog): Outcome {
    return this.run(() => this.applyLog(log))
  }

  /** Applies several logs in the given order; one combined outcome. */
  applyAll(logs: Iterable<KimapLog>): Outcome {
    return this.run(() => {
      for (const log of logs) this.applyLog(log)
    })
  }

  /**
   * Every log up to `block` has been applied: a retry round for the parked notes of
   * blocks up to it (Kinode's tick retries those strictly below the latest block).
   */
  advance(block: number): Outcome {
    return this.run(() => {
      if (block <= this.processed) return
      this.processed = block
      if (this.pending.size === 0) return
      this.journaled({ block, logIndex: RETRY_INDEX, log: undefined, undo: [] }, () => this.retryRound(block))
    })
  }

  /** Undoes every log above `block` (a reorg's fork point). Not below the final block. */
  rollbackTo(block: number): Outcome {
    return this.run(() => {
      if (block < this.finalBlock) {
        this.warnings.push(`reorg below the final block ${this.finalBlock} (to ${block}): rolled back to ${this.finalBlock} only`)
        block = this.finalBlock
      }
      let i = this.entries.length
      while (i > 0 && this.entries[i - 1]!.block > block) i--
      this.undoFrom(i)
      this.entries.length = i
      if (this.processed > block) this.processed = block
    })
  }

  /** Blocks up to `min(head - depth, lastBlock)` become final: their undo records go. */
  finalize(head: number, depth: number): void {
    const final = Math.min(head - depth, this.processed)
    if (final <= this.finalBlock) return
    this.finalBlock = final
    let n = 0
    while (n < this.entries.length && this.entries[n]!.block <= final) n++
    if (n > 0) this.entries.splice(0, n)
  }

  /**
   * A node read straight from the chain (`NodeInfo` fallback): records its namehash and
   * record. Not journaled: it is the chain's state at its head, not a log.
   */
  insertFromChain(hash: string, record: KnsUpdate): Outcome {
    return this.run(() => {
      this.current = undefined
      this.setName(hash.toLowerCase(), record.name)
      this.setNode(record.name, record)
    })
  }

  /** The state as of the last final block (unfinal logs undone on a copy). */
  persisted(): Persisted {
    const names = new Map(this.names)
    const nodes = new Map(this.nodes)
    const pending = new Map(this.pending)
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const undo = this.entries[i]!.undo
      for (let j = undo.length - 1; j >= 0; j--) {
        const u = undo[j]!
        const target: Map<string, unknown> = u.t === "name" ? names : u.t === "node" ? nodes : pending
        if (u.prev === undefined) target.delete(u.key)
        else target.set(u.key, u.prev)
      }
    }
    return {
      version: 1,
      chainId: this.chainId,
      contract: this.contract,
      lastBlock: this.finalBlock,
      names: [...names.entries()],
      nodes: [...nodes.values()],
      pending: [...pending.values()]
    }
  }

  // -------------------------------------------------------------------------
  // Internals
  // -------------------------------------------------------------------------

  private run(body: () => void): Outcome {
    this.touched = new Map()
    this.warnings = []
    this.current = undefined
    body()
    const changes: Array<RecordChange> = []
    for (const [name, was] of this.touched) {
      const now = this.nodes.get(name)
      const pushed = isComplete(was) ? was : undefined
      if (isComplete(now)) {
        if (pushed === undefined || !sameRecord(pushed, now)) changes.push({ name, record: now })
      } else if (pushed !== undefined) {
        changes.push({ name, record: undefined })
      }
    }
    const outcome = { changes, warnings: this.warnings }
    this.touched = new Map()
    this.warnings = []
    return outcome
  }

  private applyLog(log: KimapLog): void {
    if (log.removed === true) return this.removeLog(log)
    if (log.blockNumber <= this.finalBlock) {
      // Already final: a replay of what the checkpoint holds (or a reorg deeper than the
      // confirmation depth, which the follower reports).
      return
    }
    const pos = { block: log.blockNumber, logIndex: log.logIndex }
    // Find the insertion point from the end (logs nearly always arrive in order).
    let i = this.entries.length
    while (i > 0 && before(pos, this.entries[i - 1]!)) i--
    const prev = this.entries[i - 1]
    if (prev !== undefined && prev.log !== undefined && prev.block === pos.block && prev.logIndex === pos.logIndex) {
      if (prev.log.blockHash === log.blockHash) return // seen already
      // Same position, other block: the old one was reorged out unnoticed. Replace it.
      this.removeAt(i - 1)
      i--
    }
    if (i === this.entries.length) {
      this.journaled({ ...pos, log, undo: [] }, () => this.applyEvent(log))
      return
    }
    const later = this.entries.slice(i)
    this.undoFrom(i)
    this.entries.length = i
    this.journaled({ ...pos, log, undo: [] }, () => this.applyEvent(log))
    this.redo(later)
  }

  private removeLog(log: KimapLog): void {
    const i = this.entries.findIndex((e) =>
      e.log !== undefined && e.block === log.blockNumber && e.logIndex === log.logIndex &&
      (log.blockHash === "" || e.log.blockHash === log.blockHash)
    )
    if (i < 0) {
      this.warnings.push(
        log.blockNumber <= this.finalBlock
          ? `removed log at ${at(log)} is below the final block ${this.finalBlock}: reorg deeper than the confirmation depth, not undone`
          : `removed log at ${at(log)} was never applied: ignored`
      )
      return
    }
    this.removeAt(i)
  }

  /** Undoes entry `i` and everything after it, drops `i`, re-applies the rest. */
  private removeAt(i: number): void {
    const later = this.entries.slice(i + 1)
    this.undoFrom(i)
    this.entries.length = i
    this.redo(later)
  }

  private undoFrom(i: number): void {
    const saved = this.current
    this.current = undefined
    for (let k = this.entries.length - 1; k >= i; k--) {
      const undo = this.entries[k]!.undo
      for (let j = undo.length - 1; j >= 0; j--) {
        const u = undo[j]!
        if (u.t === "name") this.setName(u.key, u.prev)
        else if (u.t === "node") this.setNode(u.key, u.prev)
        else this.setPending(u.key, u.prev)
      }
    }
    this.current = saved
  }

  private redo(entries: ReadonlyArray<Entry>): void {
    for (const e of entries) {
      this.journaled({ block: e.block, logIndex: e.logIndex, log: e.log, undo: [] }, () => {
        if (e.log !== undefined) this.applyEvent(e.log)
        else this.retryRound(e.block)
      })
    }
  }

  private journaled(entry: Entry, body: () => void): void {
    this.current = entry
    body()
    this.current = undefined
    // Entries that changed nothing are kept only when they are logs (for dedupe).
    if (entry.log !== undefined || entry.undo.length > 0) this.entries.push(entry)
  }

  private setName(hash: string, name: string | undefined): void {
    this.current?.undo.push({ t: "name", key: hash, prev: this.names.get(hash) })
    if (name === undefined) this.names.delete(hash)
    else this.names.set(hash, name)
  }

  private setNode(name: string, record: KnsUpdate | undefined): void {
    const prev = this.nodes.get(name)
    if (!this.touched.has(name)) this.touched.set(name, prev)
    this.current?.undo.push({ t: "node", key: name, prev })
    if (record === undefined) this.nodes.delete(name)
    else this.nodes.set(name, record)
  }

  private setPending(key: string, note: PendingNote | undefined): void {
    this.current?.undo.push({ t: "pending", key, prev: this.pending.get(key) })
    if (note === undefined) this.pending.delete(key)
    else this.pending.set(key, note)
  }

  private applyEvent(log: KimapLog): void {
    if (log._tag === "Mint") this.applyMint(log)
    else if (this.applyNote(log) === "parked") this.setPending(pendingKey(log), { log, retries: 0 })
  }

  private applyMint(log: MintLog): void {
    const label = decodeLabel(log.label)
    if (label === undefined || !validName(label)) {
      this.warnings.push(`Mint at ${at(log)}: label ${JSON.stringify(label ?? "<not UTF-8>")} is not a valid name, ignored`)
      return
    }
    const parent = this.names.get(log.parenthash)
    const full = parent === undefined ? label : `${label}.${parent}`
    this.setName(log.childhash, full)
    this.setNode(full, emptyRecord(full))
  }

  private applyNote(log: NoteLog): "applied" | "parked" | "ignored" {
    const label = decodeLabel(log.label)
    if (label === undefined || !validNote(label) || !isKnsNoteLabel(label)) {
      this.warnings.push(`Note at ${at(log)}: label ${JSON.stringify(label ?? "<not UTF-8>")} is not a KNS note, ignored`)
      return "ignored"
    }
    const name = this.names.get(log.parenthash)
    if (name === undefined) return "parked"
    const node = this.nodes.get(name)
    if (node === undefined) return "ignored" // Kinode: names known but no node entry → no-op
    const bad = (what: string) => {
      this.warnings.push(`Note ${label} of ${name} at ${at(log)}: ${what}, ignored`)
      return "ignored" as const
    }
    let next: KnsUpdate
    switch (label) {
      case "~ws-port":
      case "~tcp-port": {
        const port = decodePort(log.data, label)
        if (Result.isFailure(port)) return bad(`${log.data.length} bytes, expected 2`)
        const key = label === "~ws-port" ? "ws" : "tcp"
        next = { ...node, ports: sortPorts({ ...node.ports, [key]: port.success }), routers: [] }
        break
      }
      case "~ip": {
        const ip = decodeIp(log.data)
        if (Result.isFailure(ip)) return bad(`${log.data.length} bytes, expected 4 or 16`)
        next = { ...node, ips: [ip.success], routers: [] }
        break
      }
      case "~net-key": {
        const key = decodeNetKey(log.data)
        if (Result.isFailure(key)) return bad(`${log.data.length} bytes, expected 32`)
        next = { ...node, public_key: key.success.slice(2).toLowerCase() }
        break
      }
      case "~routers": {
        const hashes = decodeRouters(log.data)
        if (Result.isFailure(hashes)) return bad(`${log.data.length} bytes, not a multiple of 32`)
        const routers: Array<string> = []
        const unknown: Array<string> = []
        for (const h of hashes.success) {
          const r = this.names.get(h.toLowerCase())
          if (r === undefined) unknown.push(h)
          else routers.push(r)
        }
        if (unknown.length > 0) {
          this.warnings.push(`Note ~routers of ${name} at ${at(log)}: unknown router hash(es) ${unknown.join(", ")} skipped`)
        }
        next = { ...node, routers, ports: {}, ips: [] }
        break
      }
    }
    this.setNode(name, next)
    return "applied"
  }

  private retryRound(block: number): void {
    const due = [...this.pending.entries()]
      .filter(([, p]) => p.log.blockNumber <= block)
      .sort(([, a], [, b]) => a.log.blockNumber - b.log.blockNumber || a.log.logIndex - b.log.logIndex)
    for (const [key, p] of due) {
      const result = this.applyNote(p.log)
      if (result !== "parked") {
        this.setPending(key, undefined)
      } else if (p.retries + 1 >= MAX_PENDING_RETRIES) {
        this.setPending(key, undefined)
        this.warnings.push(
          `Note at ${at(p.log)}: parent ${p.log.parenthash} still unknown after ${MAX_PENDING_RETRIES} retries, dropped`
        )
      } else {
        this.setPending(key, { log: p.log, retries: p.retries + 1 })
      }
    }
  }
}

/** Ports in label order (Kinode's `BTreeMap`), so records compare and print stably. */
const sortPorts = (ports: Record<string, number>): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const k of Object.keys(ports).sort()) out[k] = ports[k]!
  return out
}
