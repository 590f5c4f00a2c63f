/**
 * Kimap facts shared by the chain client and the KNS indexer: addresses, the
 * namehash scheme, the event/function ABI, the KNS note labels, label rules and
 * the byte codecs of the KNS notes (identity-and-network.md §1.2–§1.6).
 *
 * Everything here is pure. Codecs return a `Result` whose failure is a tagged
 * error carrying the offending input.
 */
import { Result, Schema } from "effect"
import { type Hex, bytesToHex, concat, hexToBytes, keccak256, parseAbi, stringToBytes, toEventSelector } from "viem"

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

/** Kimap on Base, and at the same address on the embedded chain. @category constants */
export const KIMAP_ADDRESS = "0x000000000033e5CCbC52Ec7BDa87dB768f9aA93F" as const
/** Multicall3 (same address on every chain). @category constants */
export const MULTICALL_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11" as const
/** KinoAccount implementation used for new TBAs on Base. @category constants */
export const KINO_ACCOUNT_IMPLEMENTATION = "0x000000000012d439e33aAD99149d52A5c6f980Dc" as const
/** Chain id of Base (production) and of the embedded/fake chain. @category constants */
export const BASE_CHAIN_ID = 8453
/** @category constants */
export const FAKE_CHAIN_ID = 31337
/** First Base block worth indexing ("first block minus one"). @category constants */
export const KIMAP_FIRST_BLOCK = 25_346_377n
/** Namehash of the root entry. @category constants */
export const ROOT_HASH: Hex = `0x${"00".repeat(32)}`

// ---------------------------------------------------------------------------
// Namehash
// ---------------------------------------------------------------------------

/** keccak256 of a label's UTF-8 bytes (no normalisation). @category hashing */
export const labelhash = (label: string): Hex => keccak256(stringToBytes(label))

/** One namehash step: what Kimap's `leaf(parenthash, label)` computes. @category hashing */
export const leaf = (parenthash: Hex, label: string): Hex =>
  keccak256(concat([parenthash, labelhash(label)]))

/**
 * ENS-style namehash with raw keccak256: fold over the labels from the last to
 * the first. `namehash("") = 0x00…00`.
 * @category hashing
 */
export const namehash = (name: string): Hex => {
  if (name === "") return ROOT_HASH
  const labels = name.split(".")
  let node = ROOT_HASH
  for (let i = labels.length - 1; i >= 0; i--) node = leaf(node, labels[i]!)
  return node
}

/** `["~net-key", "alice.os"]` → `~net-key.alice.os`. @category hashing */
export const notePath = (note: string, name: string): string => `${note}.${name}`

// ---------------------------------------------------------------------------
// ABI
// ---------------------------------------------------------------------------

/**
 * The part of Kimap's ABI the node uses: the six events with their exact
 * declarations (§1.3), the reads, and the 4-argument write path (§1.4).
 * @category abi
 */
export const kimapAbi = parseAbi([
  "event Mint(bytes32 indexed parenthash, bytes32 indexed namehash, bytes indexed labelhash, bytes label)",
  "event Note(bytes32 indexed parenthash, bytes32 indexed namehash, bytes indexed labelhash, bytes label, bytes data)",
  "event Fact(bytes32 indexed parenthash, bytes32 indexed namehash, bytes indexed labelhash, bytes label, bytes data)",
  "event Gene(bytes32 indexed entry, address indexed gene)",
  "event Zero(address indexed zeroTba)",
  "event Transfer(address indexed from, address indexed to, uint256 indexed id)",
  "function get(bytes32 namehash) view returns (address tba, address owner, bytes data)",
  "function leaf(bytes32 parenthash, bytes label) pure returns (bytes32)",
  "function tbaOf(bytes32 entry) view returns (address)",
  "function ownerOf(uint256 id) view returns (address)",
  "function mint(address to, bytes label, bytes initialization, address implementation) returns (address tba)",
  "function note(bytes note, bytes data) returns (bytes32 namehash)",
  "function fact(bytes fact, bytes data) returns (bytes32 namehash)",
  "function gene(address gene)",
  "error LabelTooShort()",
  "error LabelTooLong()",
  "error InvalidLabelCharacter()",
  "error NoteMustBeginWithTilde()",
  "error FactMustBeginWithBang()",
  "error NameAlreadyExists()",
  "error FactAlreadyExists()",
  "error EmptyFact()",
  "error GeneAlreadySet()",
  "error NotParent()",
  "error NotTBA()",
  "error FailedToInitializeTBA()"
])

/** ERC-6551-style account of a name entry (and of a zone minter, which adds `mint`). @category abi */
export const tbaAbi = parseAbi([
  "function execute(address to, uint256 value, bytes data, uint8 operation) payable returns (bytes)",
  "function token() view returns (uint256 chainId, address tokenContract, uint256 tokenId)",
  "function owner() view returns (address)",
  "function mint(address to, bytes label, bytes initialization, address implementation) payable returns (address tba)",
  "error NotOwner()"
])

/** Multicall3's `aggregate` (the TBA delegatecalls it to write several notes). @category abi */
export const multicallAbi = parseAbi([
  "struct Call { address target; bytes callData; }",
  "function aggregate(Call[] calls) payable returns (uint256 blockNumber, bytes[] returnData)"
])

/** topic0 of `Mint(bytes32,bytes32,bytes,bytes)`. @category constants */
export const MINT_TOPIC: Hex = "0xb59dae5eda69178326b6517bb1aa33e208bf2ac347e30d3a5daf0ecb6249f7b1"
/** topic0 of `Note(bytes32,bytes32,bytes,bytes,bytes)`. @category constants */
export const NOTE_TOPIC: Hex = "0xe40d9f1ec78dfc3c5a94c3edae28058ba092a8f65ce8a199731840a3d20f82f4"
/** @category constants */
export const FACT_TOPIC: Hex = "0x6df41fff09a97e34e341514998993ce9f4542c3fa8358931a96c9fff178c3adb"
/** @category constants */
export const GENE_TOPIC: Hex = "0xde0ec2494e561683ac09b109d8c4c4a08b4ddbd4fcd23b609fe107e63176ef5a"
/** @category constants */
export const ZERO_TOPIC: Hex = "0xa7dcba07b3032d87953767c0eed546a5eb7e52648856b776ba4ad8a1ff1bf3c0"
/** @category constants */
export const TRANSFER_TOPIC: Hex = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"

/** Self-check used by the tests: the constants equal the ABI's selectors. @category abi */
export const eventTopics = (): Record<string, Hex> => ({
  Mint: toEventSelector(kimapAbi[0]),
  Note: toEventSelector(kimapAbi[1]),
  Fact: toEventSelector(kimapAbi[2]),
  Gene: toEventSelector(kimapAbi[3]),
  Zero: toEventSelector(kimapAbi[4]),
  Transfer: toEventSelector(kimapAbi[5])
})

// ---------------------------------------------------------------------------
// KNS notes
// ---------------------------------------------------------------------------

/** The five notes the KNS indexer follows. @category kns */
export const KNS_NOTE_LABELS = ["~net-key", "~ip", "~tcp-port", "~ws-port", "~routers"] as const
/** @category kns */
export type KnsNoteLabel = typeof KNS_NOTE_LABELS[number]

/** keccak256 of each KNS note label (= topic3 filter values). @category kns */
export const KNS_NOTE_LABEL_HASHES: Readonly<Record<KnsNoteLabel, Hex>> = {
  "~net-key": "0xa5373a61425ed8131f531e016a0201b9a2ede9433815077c8afab1eaa138c07c",
  "~ip": "0x8e929416e61a712f9ef64014703d5dc1d11415e2e76a38718f8f996bb39b7d7c",
  "~tcp-port": "0xc38f133f3e2c8163b154bc99d2da6d3bbf94809973b8fa62e66e422064020173",
  "~ws-port": "0xd653d0e13523ce0a2b235515078bf32ff9df12923afa9d30036d9032c66ae246",
  "~routers": "0x751ddce9620f1d08e231830adaabfa32644d6a586cbd4b9f29c43557dc24530a"
}

/** Whether `label` is one of the five KNS note labels. @category kns */
export const isKnsNoteLabel = (label: string): label is KnsNoteLabel =>
  (KNS_NOTE_LABELS as ReadonlyArray<string>).includes(label)

// ---------------------------------------------------------------------------
// Label rules
// ---------------------------------------------------------------------------

const validChar = (c: number): boolean =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || c === 0x2d

const validChars = (s: string, from: number): boolean => {
  for (let i = from; i < s.length; i++) if (!validChar(s.charCodeAt(i))) return false
  return true
}

/** process_lib `valid_name`: non-empty, only `0-9 a-z -` (no upper length). @category labels */
export const validName = (label: string): boolean => label.length > 0 && validChars(label, 0)
/** process_lib `valid_note`: `~` then at least one of `0-9 a-z -`. @category labels */
export const validNote = (label: string): boolean =>
  label.length > 1 && label.charCodeAt(0) === 0x7e && validChars(label, 1)
/** process_lib `valid_fact`: `!` then at least one of `0-9 a-z -`. @category labels */
export const validFact = (label: string): boolean =>
  label.length > 1 && label.charCodeAt(0) === 0x21 && validChars(label, 1)

/** The custom error the contract raises for a label, or `undefined` when accepted. @category labels */
export type LabelError = "LabelTooShort" | "LabelTooLong" | "InvalidLabelCharacter" | "NoteMustBeginWithTilde" | "FactMustBeginWithBang"

/**
 * The contract's verdict on a label (UTF-8 byte length 1..63 including any
 * prefix; after the prefix only `0-9 a-z -`), for `kind` = name, note or fact.
 * @category labels
 */
export const contractLabelError = (kind: "name" | "note" | "fact", label: string): LabelError | undefined => {
  const bytes = stringToBytes(label)
  const prefix = kind === "name" ? 0 : 1
  if (kind === "note" && bytes[0] !== 0x7e) return "NoteMustBeginWithTilde"
  if (kind === "fact" && bytes[0] !== 0x21) return "FactMustBeginWithBang"
  if (bytes.length < 1 + prefix) return "LabelTooShort"
  if (bytes.length > 63) return "LabelTooLong"
  for (let i = prefix; i < bytes.length; i++) if (!validChar(bytes[i]!)) return "InvalidLabelCharacter"
  return undefined
}

/** Whether every label of a dotted name passes `validName`. @category labels */
export const validNodeName = (name: string): boolean => name.length > 0 && name.split(".").every(validName)

// ---------------------------------------------------------------------------
// Note codecs
// ---------------------------------------------------------------------------

/** An IP address that is neither dotted IPv4 nor IPv6 text. @category errors */
export class InvalidIp extends Schema.TaggedError<InvalidIp>()("InvalidIp", { ip: Schema.String }) {}
/** A port outside 0..65535. @category errors */
export class InvalidPort extends Schema.TaggedError<InvalidPort>()("InvalidPort", { port: Schema.Number }) {}
/** Note bytes of the wrong length for `note` (e.g. a 3-byte `~ip`). @category errors */
export class InvalidNoteBytes extends Schema.TaggedError<InvalidNoteBytes>()("InvalidNoteBytes", {
  note: Schema.String,
  length: Schema.Number
}) {}
/** A router name that is not a valid dotted node name. @category errors */
export class InvalidName extends Schema.TaggedError<InvalidName>()("InvalidName", { name: Schema.String }) {}

type Bytes = Uint8Array

const toBytes = (v: Hex | Bytes): Bytes => typeof v === "string" ? hexToBytes(v) : v

const parseIpv4 = (s: string): Bytes | undefined => {
  const parts = s.split(".")
  if (parts.length !== 4) return undefined
  const out = new Uint8Array(4)
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined
    const n = Number(p)
    if (n > 255) return undefined
    out[i] = n
  }
  return out
}

const parseIpv6 = (s: string): Bytes | undefined => {
  let text = s
  let tail: Bytes | undefined
  const lastColon = text.lastIndexOf(":")
  if (lastColon >= 0 && text.includes(".", lastColon)) {
    tail = parseIpv4(text.slice(lastColon + 1))
    if (tail === undefined) return undefined
    text = text.slice(0, lastColon + 1) + "0:0"
  }
  const halves = text.split("::")
  if (halves.length > 2) return undefined
  const group = (g: string): number | undefined => /^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : undefined
  const side = (h: string): Array<number> | undefined => {
    if (h === "") return []
    const gs = h.split(":").map(group)
    return gs.every((g) => g !== undefined) ? gs as Array<number> : undefined
  }
  const head = side(halves[0]!)
  const rest = halves.length === 2 ? side(halves[1]!) : []
  if (head === undefined || rest === undefined) return undefined
  const groups = halves.length === 2
    ? (head.length + rest.length > 7 ? undefined : [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest])
    : (head.length === 8 ? head : undefined)
  if (groups === undefined) return undefined
  const out = new Uint8Array(16)
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8
    out[2 * i + 1] = g & 0xff
  })
  if (tail !== undefined) out.set(tail, 12)
  return out
}

/** `~ip` bytes: 4 for IPv4, 16 for IPv6, big-endian. @category codecs */
export const encodeIp = (ip: string): Result.Result<Bytes, InvalidIp> => {
  const bytes = ip.includes(":") ? parseIpv6(ip) : parseIpv4(ip)
  return bytes === undefined ? Result.fail(new InvalidIp({ ip })) : Result.succeed(bytes)
}

const formatIpv6 = (b: Bytes): string => {
  const groups: Array<number> = []
  for (let i = 0; i < 8; i++) groups.push((b[2 * i]! << 8) | b[2 * i + 1]!)
  // IPv4-mapped (::ffff:a.b.c.d), printed as Rust's Ipv6Addr does.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`
  }
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first on ties.
  let best = -1
  let bestLen = 0
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  const hex = (gs: Array<number>) => gs.map((g) => g.toString(16)).join(":")
  if (bestLen < 2) return hex(groups)
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`
}

/** `~ip` bytes → text (`127.0.0.1`, `::1`). @category codecs */
export const decodeIp = (data: Hex | Bytes): Result.Result<string, InvalidNoteBytes> => {
  const b = toBytes(data)
  if (b.length === 4) return Result.succeed(`${b[0]}.${b[1]}.${b[2]}.${b[3]}`)
  if (b.length === 16) return Result.succeed(formatIpv6(b))
  return Result.fail(new InvalidNoteBytes({ note: "~ip", length: b.length }))
}

/** A `~tcp-port`/`~ws-port` note: 2 bytes big-endian. @category codecs */
export const encodePort = (port: number): Result.Result<Bytes, InvalidPort> =>
  Number.isInteger(port) && port >= 0 && port <= 0xffff
    ? Result.succeed(Uint8Array.of(port >> 8, port & 0xff))
    : Result.fail(new InvalidPort({ port }))

/** 2 bytes big-endian → port. @category codecs */
export const decodePort = (data: Hex | Bytes, note = "~tcp-port"): Result.Result<number, InvalidNoteBytes> => {
  const b = toBytes(data)
  return b.length === 2
    ? Result.succeed((b[0]! << 8) | b[1]!)
    : Result.fail(new InvalidNoteBytes({ note, length: b.length }))
}

/** `~routers`: the concatenated namehashes of the router names. @category codecs */
export const encodeRouters = (names: ReadonlyArray<string>): Result.Result<Bytes, InvalidName> => {
  const bad = names.find((n) => !validNodeName(n))
  if (bad !== undefined) return Result.fail(new InvalidName({ name: bad }))
  return Result.succeed(names.length === 0 ? new Uint8Array(0) : hexToBytes(concat(names.map(namehash))))
}

/** `~routers` bytes → the router namehashes (map them to names with an index). @category codecs */
export const decodeRouters = (data: Hex | Bytes): Result.Result<ReadonlyArray<Hex>, InvalidNoteBytes> => {
  const b = toBytes(data)
  if (b.length % 32 !== 0) return Result.fail(new InvalidNoteBytes({ note: "~routers", length: b.length }))
  const out: Array<Hex> = []
  for (let i = 0; i < b.length; i += 32) out.push(bytesToHex(b.subarray(i, i + 32)))
  return Result.succeed(out)
}

/** `~net-key`: exactly 32 bytes (raw Ed25519 public key). @category codecs */
export const decodeNetKey = (data: Hex | Bytes): Result.Result<Hex, InvalidNoteBytes> => {
  const b = toBytes(data)
  return b.length === 32
    ? Result.succeed(bytesToHex(b))
    : Result.fail(new InvalidNoteBytes({ note: "~net-key", length: b.length }))
}

/** A 32-byte key for `~net-key` (hex with or without `0x`, or bytes). @category codecs */
export const encodeNetKey = (key: string | Bytes): Result.Result<Bytes, InvalidNoteBytes> => {
  const b = typeof key === "string"
    ? (/^(0x)?[0-9a-fA-F]{64}$/.test(key) ? hexToBytes((key.startsWith("0x") ? key : `0x${key}`) as Hex) : undefined)
    : key
  return b !== undefined && b.length === 32
    ? Result.succeed(b)
    : Result.fail(new InvalidNoteBytes({ note: "~net-key", length: typeof key === "string" ? key.length : key.length }))
}
