/**
 * Kimap client: read a node's identity (Kinode's login read: `get` of the
 * name and its KNS notes in one multicall) and register or update it through
 * Kimap's real write path (token-bound accounts + Multicall3), so the same code
 * serves the embedded anvil chain and real Kimap behind `--rpc`.
 *
 * `url` may be http(s) or ws(s) (Kinode's default RPC is a WebSocket); a
 * WebSocket is closed with the scope that made the client.
 *
 * Every RPC call has a timeout and retries with back-off (`RpcPolicy`); a
 * chain that hangs, refuses or answers garbage ends in `ChainUnavailable`.
 */
import { Context, Duration, Effect, Layer, Result, Semaphore } from "effect"
import {
  type Abi,
  type Address,
  type Hex,
  type LocalAccount,
  type PublicClient,
  bytesToHex,
  encodeFunctionData,
  parseAbi,
  stringToHex,
  zeroAddress
} from "viem"
import { privateKeyToAccount } from "viem/accounts"
import { Anvil } from "./Anvil.ts"
import { ChainUnavailable, InvalidNodeName, NameNotFound, NameTaken, ParentNotFound, Reverted } from "./ChainError.ts"
import { ANVIL_ACCOUNT_0_KEY } from "./Install.ts"
import { chainFor, scopedClientFor } from "./internal/clients.ts"
import { type RpcPolicy, defaultPolicy, rpcRead } from "./internal/rpc.ts"
import { type TxContext, sendTx, sendValue } from "./internal/tx.ts"
import {
  type InvalidIp,
  type InvalidName,
  type InvalidNoteBytes,
  type InvalidPort,
  FAKE_CHAIN_ID,
  KIMAP_ADDRESS,
  KINO_ACCOUNT_IMPLEMENTATION,
  MULTICALL_ADDRESS,
  contractLabelError,
  decodeIp,
  decodeNetKey,
  decodePort,
  decodeRouters,
  encodeIp,
  encodeNetKey,
  encodePort,
  encodeRouters,
  kimapAbi,
  multicallAbi,
  namehash,
  notePath,
  tbaAbi,
  validName
} from "./Kimap.ts"

// ---------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------

/** @category models */
export interface RegistryConfig {
  /** JSON-RPC URL (http(s)). */
  readonly url: string
  /** Known chain id; asked with `eth_chainId` when absent. */
  readonly chainId?: number
  /** Signing (and owning) wallet; default anvil account #0 (fakenet convention). */
  readonly walletKey?: Hex
  /** Timeout/retries of each RPC call (default 5 s, 3 retries from 200 ms). */
  readonly policy?: RpcPolicy
  /** Deadline for a transaction's receipt (default 30 s). */
  readonly receiptTimeout?: Duration.Input
  /** Send 10 wei to the zero address after a write to force one more block (default: only on chain 31337). */
  readonly mineExtraBlock?: boolean
  /** TBA implementation for new names (default KinoAccount's address; a parent's gene overrides it). */
  readonly implementation?: Address
}

/** A name's identity as Kimap holds it. Empty or malformed notes are absent. @category models */
export interface NodeRecord {
  readonly name: string
  readonly namehash: Hex
  readonly owner: Address
  readonly tba: Address
  /** 32-byte Ed25519 public key, `0x` hex. */
  readonly netKey?: Hex
  readonly ip?: string
  readonly tcpPort?: number
  readonly wsPort?: number
  /** Namehashes of the routers (map them to names with an index). */
  readonly routers?: ReadonlyArray<Hex>
}

/** One note write (label with its `~`). @category models */
export interface NoteWrite {
  readonly label: string
  readonly data: Uint8Array
}

interface Common {
  readonly name: string
  /** 32-byte key: hex (with or without 0x) or bytes. */
  readonly netKey: string | Uint8Array
  /** Sign with (and own the name by) this key instead of the registry's wallet. */
  readonly walletKey?: Hex
}

/** @category models */
export interface DirectRegistration extends Common {
  readonly ip: string
  readonly tcpPort: number
  readonly wsPort?: number
}

/** @category models */
export interface IndirectRegistration extends Common {
  /** Router node names. */
  readonly routers: ReadonlyArray<string>
}

/** @category models */
export interface NotesUpdate {
  readonly name: string
  readonly notes: ReadonlyArray<NoteWrite>
  readonly walletKey?: Hex
}

/** @category models */
export interface Registered {
  readonly name: string
  readonly namehash: Hex
  readonly tba: Address
  readonly owner: Address
  /** true: the name was minted now; false: it existed and its notes were overwritten. */
  readonly minted: boolean
  readonly transactionHash: Hex
  readonly blockNumber: bigint
}

/** @category errors */
export type RegisterError =
  | NameTaken
  | ParentNotFound
  | InvalidNodeName
  | InvalidIp
  | InvalidPort
  | InvalidNoteBytes
  | InvalidName
  | Reverted
  | ChainUnavailable

/** @category models */
export interface RegistryShape {
  readonly url: string
  readonly chainId: number
  /** Address of the registry's wallet. */
  readonly address: Address
  readonly readNode: (name: string) => Effect.Effect<NodeRecord, NameNotFound | InvalidNodeName | ChainUnavailable>
  readonly registerDirect: (r: DirectRegistration) => Effect.Effect<Registered, RegisterError>
  readonly registerIndirect: (r: IndirectRegistration) => Effect.Effect<Registered, RegisterError>
  /** Overwrites notes of an existing name owned by the wallet. */
  readonly updateNotes: (u: NotesUpdate) => Effect.Effect<Registered, RegisterError | NameNotFound>
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const READ_NOTES = ["~net-key", "~ip", "~tcp-port", "~ws-port", "~routers"] as const

const proxyErrors = parseAbi(["error NotKimap()", "error AlreadyInitialized()"])
/** ABI for writes through a TBA: execute/mint plus every error on the path. */
const writeAbi: Abi = [
  ...tbaAbi,
  ...kimapAbi.filter((x) => x.type === "error"),
  ...proxyErrors
]

const sameAddress = (a: string, b: string) => a.toLowerCase() === b.toLowerCase()

/** `alice.os` → `["alice", "os"]`; refuses bare zones and bad labels. */
const splitName = (name: string): Result.Result<{ label: string; parent: string }, InvalidNodeName> => {
  const labels = name.split(".")
  const ok = labels.length >= 2 && labels.every((l) => validName(l) && contractLabelError("name", l) === undefined)
  return ok
    ? Result.succeed({ label: labels[0]!, parent: labels.slice(1).join(".") })
    : Result.fail(new InvalidNodeName({ name }))
}

const fromResult = <A, E>(r: Result.Result<A, E>): Effect.Effect<A, E> =>
  Result.isSuccess(r) ? Effect.succeed(r.success) : Effect.fail(r.failure)

const noteCall = (n: NoteWrite) => ({
  target: KIMAP_ADDRESS as Address,
  callData: encodeFunctionData({ abi: kimapAbi, functionName: "note", args: [stringToHex(n.label), bytesToHex(n.data)] })
})

/** `execute(MULTICALL, 0, aggregate(notes), 1)`: what a TBA runs to write notes. */
export const notesInitialization = (notes: ReadonlyArray<NoteWrite>): Hex =>
  encodeFunctionData({
    abi: tbaAbi,
    functionName: "execute",
    args: [
      MULTICALL_ADDRESS,
      0n,
      encodeFunctionData({ abi: multicallAbi, functionName: "aggregate", args: [notes.map(noteCall)] }),
      1
    ]
  })

const directNotes = (r: DirectRegistration) =>
  Effect.gen(function*() {
    const key = yield* fromResult(encodeNetKey(r.netKey))
    const ip = yield* fromResult(encodeIp(r.ip))
    const tcp = yield* fromResult(encodePort(r.tcpPort))
    const notes: Array<NoteWrite> = [
      { label: "~net-key", data: key },
      { label: "~ip", data: ip },
      { label: "~tcp-port", data: tcp }
    ]
    if (r.wsPort !== undefined) notes.push({ label: "~ws-port", data: yield* fromResult(encodePort(r.wsPort)) })
    return notes
  })

const indirectNotes = (r: IndirectRegistration) =>
  Effect.gen(function*() {
    const key = yield* fromResult(encodeNetKey(r.netKey))
    const routers = yield* fromResult(encodeRouters(r.routers))
    return [{ label: "~net-key", data: key }, { label: "~routers", data: routers }] as Array<NoteWrite>
  })

// ---------------------------------------------------------------------------
// Constructor
// ---------------------------------------------------------------------------

/**
 * A registry client for `config.url`. Asks the chain id when not given (so a
 * dead URL fails here with `ChainUnavailable`).
 * @category constructors
 */
export const make = Effect.fn("Registry.make")(function*(config: RegistryConfig) {
  const url = config.url
  const policy = config.policy ?? defaultPolicy
  const receiptTimeout = config.receiptTimeout ?? "30 seconds"
  const implementation = config.implementation ?? KINO_ACCOUNT_IMPLEMENTATION
  const chainId = config.chainId ?? (yield* Effect.scoped(Effect.gen(function*() {
    const probe = yield* scopedClientFor(url, policy)
    return yield* rpcRead(url, "eth_chainId", policy, () => probe.getChainId())
  })))
  const client: PublicClient = yield* scopedClientFor(url, policy, chainFor(chainId, url))
  const mineExtraBlock = config.mineExtraBlock ?? chainId === FAKE_CHAIN_ID
  // Made at first use: a node's later boot only reads, and the first key derivation
  // in a process costs ~50 ms (secp256k1's precomputed tables).
  let walletAccount: LocalAccount | undefined
  const wallet = (): LocalAccount => walletAccount ??= privateKeyToAccount(config.walletKey ?? ANVIL_ACCOUNT_0_KEY)
  const accountFor = (key: Hex | undefined): LocalAccount => key === undefined ? wallet() : privateKeyToAccount(key)
  const txContext = (account: LocalAccount): TxContext => ({ url, client, account, policy, receiptTimeout })
  // One write at a time per client: no nonce clashes with ourselves, and a
  // read-then-mint of a name is not interleaved with another of ours.
  const writeLock = yield* Semaphore.make(1)

  const getEntry = (hash: Hex, what: string) =>
    rpcRead(url, `Kimap.get(${what})`, policy, () =>
      client.readContract({ address: KIMAP_ADDRESS, abi: kimapAbi, functionName: "get", args: [hash] }))

  const readNode = Effect.fn("Registry.readNode")(function*(name: string) {
    if (!name.split(".").every(validName)) return yield* new InvalidNodeName({ name })
    const hash = namehash(name)
    const calls = [name, ...READ_NOTES.map((n) => notePath(n, name))].map((path) => ({
      address: KIMAP_ADDRESS as Address,
      abi: kimapAbi,
      functionName: "get" as const,
      args: [namehash(path)] as const
    }))
    const results = yield* rpcRead(url, `multicall get(${name})`, policy, () =>
      client.multicall({ contracts: calls, allowFailure: false, multicallAddress: MULTICALL_ADDRESS }))
    const [entry, netKey, ip, tcp, ws, routers] = results as unknown as ReadonlyArray<readonly [Address, Address, Hex]>
    if (entry === undefined || entry[0] === zeroAddress) return yield* new NameNotFound({ name })
    const data = (e: readonly [Address, Address, Hex] | undefined): Hex | undefined =>
      e === undefined || e[2] === "0x" ? undefined : e[2]
    const opt = <A, E>(d: Hex | undefined, f: (d: Hex) => Result.Result<A, E>): A | undefined => {
      if (d === undefined) return undefined
      const r = f(d)
      return Result.isSuccess(r) ? r.success : undefined
    }
    const record: {
      -readonly [K in keyof NodeRecord]: NodeRecord[K]
    } = { name, namehash: hash, owner: entry[1], tba: entry[0] }
    const k = opt(data(netKey), decodeNetKey)
    if (k !== undefined) record.netKey = k
    const i = opt(data(ip), decodeIp)
    if (i !== undefined) record.ip = i
    const t = opt(data(tcp), (d) => decodePort(d, "~tcp-port"))
    if (t !== undefined) record.tcpPort = t
    const w = opt(data(ws), (d) => decodePort(d, "~ws-port"))
    if (w !== undefined) record.wsPort = w
    const r = opt(data(routers), decodeRouters)
    if (r !== undefined && r.length > 0) record.routers = r
    return record as NodeRecord
  })

  const afterWrite = (account: LocalAccount) =>
    mineExtraBlock
      ? sendValue(txContext(account), zeroAddress, 10n, "mine extra block").pipe(Effect.asVoid)
      : Effect.void

  /** Overwrite notes through the name's TBA (`execute` delegatecalling Multicall3). */
  const writeNotes = Effect.fnUntraced(function*(
    name: string,
    tba: Address,
    owner: Address,
    notes: ReadonlyArray<NoteWrite>,
    account: LocalAccount
  ) {
    const receipt = yield* sendTx(txContext(account), {
      op: `update ${name}`,
      abi: writeAbi,
      address: tba,
      functionName: "execute",
      args: [
        MULTICALL_ADDRESS,
        0n,
        encodeFunctionData({ abi: multicallAbi, functionName: "aggregate", args: [notes.map(noteCall)] }),
        1
      ]
    })
    yield* afterWrite(account)
    return {
      name,
      namehash: namehash(name),
      tba,
      owner,
      minted: false,
      transactionHash: receipt.transactionHash,
      blockNumber: receipt.blockNumber
    } satisfies Registered
  })

  /** Mint `name` with `notes`, or overwrite them when the wallet already owns it. */
  const register = Effect.fnUntraced(function*(
    name: string,
    walletKey: Hex | undefined,
    notesFor: (existing: NodeRecord | undefined) => ReadonlyArray<NoteWrite>
  ) {
    const { label, parent } = yield* fromResult(splitName(name))
    const account = accountFor(walletKey)
    const existing = yield* readNode(name).pipe(
      Effect.map((r): NodeRecord | undefined => r),
      Effect.catchTag("NameNotFound", () => Effect.succeed(undefined))
    )
    if (existing !== undefined) {
      if (!sameAddress(existing.owner, account.address)) {
        return yield* new NameTaken({ name, owner: existing.owner })
      }
      return yield* writeNotes(name, existing.tba, existing.owner, notesFor(existing), account)
    }
    const [parentTba, parentOwner] = yield* getEntry(namehash(parent), parent)
    if (parentTba === zeroAddress) return yield* new ParentNotFound({ name, parent })
    const initialization = notesInitialization(notesFor(undefined))
    const mintArgs = [account.address, stringToHex(label), initialization, implementation] as const
    // Zones (and parents we do not own) mint through the parent's minter
    // account, as Kinode's registration does; a deeper parent we own mints
    // by having its account call Kimap.mint.
    const zone = !parent.includes(".")
    const receipt = yield* sendTx(
      txContext(account),
      !zone && sameAddress(parentOwner, account.address)
        ? {
          op: `mint ${name}`,
          abi: writeAbi,
          address: parentTba,
          functionName: "execute",
          args: [KIMAP_ADDRESS, 0n, encodeFunctionData({ abi: kimapAbi, functionName: "mint", args: mintArgs }), 0]
        }
        : { op: `mint ${name}`, abi: writeAbi, address: parentTba, functionName: "mint", args: mintArgs }
    ).pipe(
      Effect.catchIf(
        (e): e is Reverted => e._tag === "Reverted" && e.error === "NameAlreadyExists",
        () =>
          getEntry(namehash(name), name).pipe(
            Effect.flatMap(([, owner]) => Effect.fail(new NameTaken({ name, owner })))
          )
      )
    )
    yield* afterWrite(account)
    const [tba, owner] = yield* getEntry(namehash(name), name)
    return {
      name,
      namehash: namehash(name),
      tba,
      owner,
      minted: true,
      transactionHash: receipt.transactionHash,
      blockNumber: receipt.blockNumber
    } satisfies Registered
  })

  /** Empty notes that clear the other routing mode's notes, written first. */
  const clears = (existing: NodeRecord | undefined, labels: ReadonlyArray<"~ip" | "~tcp-port" | "~ws-port" | "~routers">) =>
    existing === undefined ? [] : labels.filter((l) =>
      (l === "~ip" && existing.ip !== undefined) ||
      (l === "~tcp-port" && existing.tcpPort !== undefined) ||
      (l === "~ws-port" && existing.wsPort !== undefined) ||
      (l === "~routers" && existing.routers !== undefined)
    ).map((label): NoteWrite => ({ label, data: new Uint8Array(0) }))

  const registerDirect = Effect.fn("Registry.registerDirect")(function*(r: DirectRegistration) {
    const notes = yield* directNotes(r)
    return yield* writeLock.withPermit(
      register(r.name, r.walletKey, (existing) => [...clears(existing, ["~routers"]), ...notes])
    )
  })

  const registerIndirect = Effect.fn("Registry.registerIndirect")(function*(r: IndirectRegistration) {
    const notes = yield* indirectNotes(r)
    return yield* writeLock.withPermit(register(r.name, r.walletKey, (existing) => [
      ...clears(existing, ["~ip", "~tcp-port", "~ws-port"]),
      ...notes
    ]))
  })

  const updateNotes = (u: NotesUpdate) => writeLock.withPermit(updateNotesUnlocked(u))
  const updateNotesUnlocked = Effect.fn("Registry.updateNotes")(function*(u: NotesUpdate) {
    yield* fromResult(splitName(u.name))
    const account = accountFor(u.walletKey)
    const [tba, owner] = yield* getEntry(namehash(u.name), u.name)
    if (tba === zeroAddress) return yield* new NameNotFound({ name: u.name })
    if (!sameAddress(owner, account.address)) return yield* new NameTaken({ name: u.name, owner })
    return yield* writeNotes(u.name, tba, owner, u.notes, account)
  })

  return {
    url,
    chainId,
    get address() {
      return wallet().address
    },
    readNode,
    registerDirect,
    registerIndirect,
    updateNotes
  } satisfies RegistryShape
})

/** The Kimap client of a node. @category models */
export class Registry extends Context.Service<Registry, RegistryShape>()("services/chain/Registry") {
  /** A client for an explicit RPC (`--rpc`, `--wallet-key`). */
  static readonly layer = (config: RegistryConfig) => Layer.effect(Registry, make(config))
  /** A client for the embedded chain of `Anvil` (anvil account #0 unless `walletKey`). */
  static readonly layerAnvil = (config: Omit<RegistryConfig, "url" | "chainId"> = {}) =>
    Layer.effect(
      Registry,
      Effect.gen(function*() {
        const chain = yield* Anvil
        return yield* make({ ...config, url: chain.url, chainId: chain.chainId })
      })
    )
}

/** Re-exported so callers need one import for the failure types. @category errors */
export { ChainUnavailable, InvalidNodeName, NameNotFound, NameTaken, ParentNotFound, Reverted }
