/**
 * First boot and login: who this node is, proven by its keyfile and written on chain.
 *
 * First boot (no `<home>/.keys`): a fresh networking key, the name registered on the
 * chain with its `~net-key` and either `~ip` + `~tcp-port` (direct) or `~routers`
 * (indirect), then Kinode's encrypted keyfile written. The keyfile is written only
 * after the registration succeeded, so a refused registration (a name someone else
 * owns, a chain that does not answer) leaves the home as it was.
 *
 * Later boots: the keyfile decrypted with the password (a wrong one changes nothing on
 * disk) while the node's own notes are read from the chain (the name is plaintext): a
 * `~net-key` that differs from the keyfile's refuses the boot (as Kinode does), unless
 * `reset` asks to write this key. A name missing on chain (a fresh development chain)
 * is registered again. A chain that does not answer does not stop the boot: the node
 * runs on its keyfile and says so.
 *
 * Each node owns its name with a wallet derived from its networking key's seed, so
 * the wallet is as safe as the keyfile and two homes never share an owner: a name
 * another node registered is `NameTaken`, never overwritten. On the embedded chain the
 * wallet is funded by anvil; with `--rpc` a `walletKey` pays and owns instead.
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import { type Hex, keccak256 } from "viem"
import { privateKeyToAddress } from "viem/accounts"
import type { RegistryShape } from "../chain/index.ts"
import { ChainUnavailable, NameNotFound } from "../chain/index.ts"
import {
  decodeKeyfile,
  encodeKeyfile,
  generateSecrets,
  keyfileNameAndRouters,
  KeyfileIoError,
  keyfilePath,
  passwordHash,
  writeKeyfile
} from "./Keyfile.ts"
import { generate, type NetworkingKey, publicKeyHex } from "./NetworkingKey.ts"

export class NetKeyMismatch extends Schema.TaggedError<NetKeyMismatch>()("NetKeyMismatch", {
  name: Schema.String,
  onChain: Schema.String,
  inKeyfile: Schema.String
}) {}

export class NameRequired extends Schema.TaggedError<NameRequired>()("NameRequired", {
  reason: Schema.String
}) {}

export interface LoginOptions {
  readonly home: string
  /** `--name`; on a later boot it must match the keyfile's. */
  readonly name: string | undefined
  /** The password (from a file, the environment, or asked); only called when needed. */
  readonly password: (name: string) => Effect.Effect<string, unknown>
  /** Asks for a name on first boot when `name` is undefined. */
  readonly askName: Effect.Effect<string, unknown>
  /** `--routers`: register indirect through these; otherwise direct. */
  readonly routers: ReadonlyArray<string> | undefined
  /** Direct: the IP to register (default 127.0.0.1) and TCP port (default first free from 10000). */
  readonly ip: string
  readonly tcpPort: number | undefined
  /** Write this node's key and routing to the chain even if the chain holds another key. */
  readonly reset: boolean
  /** The chain's registry, or why it cannot be reached (a later boot then runs on the keyfile). */
  readonly registry: RegistryShape | ChainUnavailable
  /** Pays for and owns registrations (`--wallet-key`); default: derived from the networking key. */
  readonly walletKey: Hex | undefined
  /** Funds a derived wallet (the embedded chain's anvil); undefined when it cannot be funded. */
  readonly fund: ((address: Hex) => Effect.Effect<void, unknown>) | undefined
  readonly say: (line: string) => void
}

export interface LoggedIn {
  readonly name: string
  readonly key: NetworkingKey
  readonly jwtSecret: Uint8Array
  readonly fileKey: Uint8Array
  readonly routers: ReadonlyArray<string>
  /** How other nodes reach this one, as registered (undefined: the chain could not be read). */
  readonly reach: Reach | undefined
  readonly firstBoot: boolean
  /** Whether the chain confirmed the key (false: it could not be reached). */
  readonly onChain: boolean
}

/** Where this node listens (direct) or which routers carry it (indirect). */
export type Reach =
  | { readonly _tag: "Direct"; readonly ip: string; readonly tcpPort: number }
  | { readonly _tag: "Indirect"; readonly routers: ReadonlyArray<string> }

/** The wallet that owns this node's name: keccak256 of a label and the key's seed. */
export const walletKeyOf = (key: NetworkingKey): Hex =>
  keccak256(new Uint8Array([...new TextEncoder().encode("kinode-ts name owner v1"), ...key.seed]))

/** The first free TCP port on 127.0.0.1 from `from` (Kinode's default for `~tcp-port` is from 10000). */
export const firstFreePort = (from: number) =>
  Effect.promise(async () => {
    for (let port = from; port < from + 1000; port++) {
      const free = await new Promise<boolean>((resolve) => {
        const server = net.createServer()
        server.once("error", () => resolve(false))
        server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)))
      })
      if (free) return port
    }
    return 0
  })

export const login = Effect.fn("Identity.login")(function*(options: LoginOptions) {
  const file = keyfilePath(options.home)
  const exists = yield* Effect.sync(() => fs.existsSync(file))
  if (!exists) return yield* firstBoot(options, file)
  return yield* laterBoot(options, file)
})

const registryOf = (options: LoginOptions) =>
  options.registry instanceof ChainUnavailable ? Effect.fail(options.registry) : Effect.succeed(options.registry)

const registerOwn = Effect.fn("Identity.register")(function*(options: LoginOptions, name: string, key: NetworkingKey) {
  const registry = yield* registryOf(options)
  const walletKey = options.walletKey ?? walletKeyOf(key)
  if (options.walletKey === undefined && options.fund !== undefined) {
    yield* options.fund(privateKeyToAddress(walletKey))
  }
  if (options.routers !== undefined && options.routers.length > 0) {
    const r = yield* registry.registerIndirect({ name, netKey: key.publicKey, routers: options.routers, walletKey })
    const reach: Reach = { _tag: "Indirect", routers: options.routers }
    return { how: `indirect through ${options.routers.join(", ")}`, registered: r, reach }
  }
  const tcpPort = options.tcpPort ?? (yield* firstFreePort(10000))
  const r = yield* registry.registerDirect({ name, netKey: key.publicKey, ip: options.ip, tcpPort, walletKey })
  const reach: Reach = { _tag: "Direct", ip: options.ip, tcpPort }
  return { how: `direct at ${options.ip}:${tcpPort}`, registered: r, reach }
})

const firstBoot = Effect.fn("Identity.firstBoot")(function*(options: LoginOptions, file: string) {
  const name = options.name ?? (yield* options.askName)
  const password = yield* options.password(name)
  const registry = yield* registryOf(options)
  // A second or more (the password's key derivation, a chain transaction): said first.
  options.say(`first boot: making ${name}'s networking key and registering it on ${registry.url} ...`)
  const key = yield* generate
  const hash = yield* passwordHash(password, name)
  const secrets = yield* generateSecrets
  const { how, registered, reach } = yield* registerOwn(options, name, key)
  options.say(`registered ${name} on ${registry.url} (chain ${registry.chainId}), ${how}, in block ${registered.blockNumber}`)
  const routers = options.routers ?? []
  const bytes = yield* encodeKeyfile({ name, routers, key, ...secrets }, hash)
  yield* writeKeyfile(file, bytes)
  return { name, key, ...secrets, routers, reach, firstBoot: true, onChain: true } satisfies LoggedIn
})

const laterBoot = Effect.fn("Identity.laterBoot")(function*(options: LoginOptions, file: string) {
  const bytes = yield* Effect.tryPromise({
    try: () => fs.promises.readFile(file),
    catch: (cause) => new KeyfileIoError({ file, cause })
  })
  const { name } = yield* keyfileNameAndRouters(bytes, file)
  if (options.name !== undefined && options.name !== name) {
    return yield* new NameRequired({ reason: `this home belongs to ${name}, not ${options.name} (drop --name, or use another --home)` })
  }
  // The chain read needs only the plaintext name: it runs while the password is asked
  // for and the keyfile decrypted (a wrong password interrupts it; it writes nothing).
  const [contents, record] = yield* Effect.all([
    Effect.flatMap(options.password(name), (password) =>
      Effect.flatMap(passwordHash(password, name), (hash) => decodeKeyfile(bytes, hash, { file }))),
    Effect.result(Effect.flatMap(registryOf(options), (registry) => registry.readNode(name)))
  ], { concurrency: 2 })
  const ours = publicKeyHex(contents.key).toLowerCase()
  const withRouters = { ...options, routers: options.routers ?? (contents.routers.length > 0 ? contents.routers : undefined) }
  let onChain = true
  const keyfileReach: Reach | undefined = contents.routers.length > 0 ? { _tag: "Indirect", routers: contents.routers } : undefined
  let reach: Reach | undefined = keyfileReach
  if (record._tag === "Failure") {
    const e = record.failure
    if (e instanceof NameNotFound) {
      const again = yield* registerOwn(withRouters, name, contents.key)
      reach = again.reach
      options.say(`${name} was not on the chain (a new chain?): registered again, ${again.how}`)
    } else if (e instanceof ChainUnavailable) {
      options.say(`the chain at ${e.url} does not answer (${e.reason}): booting on the keyfile; names will be checked when it is back`)
      onChain = false
    } else return yield* e
  } else {
    const onChainKey = (record.success.netKey ?? "").toLowerCase()
    if (onChainKey !== ours) {
      if (!options.reset) {
        return yield* new NetKeyMismatch({ name, onChain: onChainKey === "" ? "(none)" : onChainKey, inKeyfile: ours })
      }
      const again = yield* registerOwn(withRouters, name, contents.key)
      reach = again.reach
      options.say(`--reset: wrote this node's key to ${name} on chain, ${again.how}`)
    } else if (options.reset && (options.tcpPort !== undefined || options.routers !== undefined)) {
      // --reset with a new --tcp-port or --routers moves the node (its key stays)
      const again = yield* registerOwn(withRouters, name, contents.key)
      reach = again.reach
      options.say(`--reset: ${name} is now ${again.how} on chain`)
    } else if (record.success.ip !== undefined && record.success.tcpPort !== undefined) {
      reach = { _tag: "Direct", ip: record.success.ip, tcpPort: record.success.tcpPort }
    }
  }
  return {
    name,
    key: contents.key,
    jwtSecret: contents.jwtSecret,
    fileKey: contents.fileKey,
    routers: contents.routers,
    reach,
    firstBoot: false,
    onChain
  } satisfies LoggedIn
})

/** The one line a user sees for a login failure, with what to do about it. */
export const describeLoginFailure = (e: unknown): string => {
  const tag = (e as { _tag?: string })._tag
  const f = e as Record<string, unknown>
  switch (tag) {
    case "WrongPassword":
      return `wrong password for the keyfile ${String(f["file"])}; nothing was changed`
    case "KeyfileCorrupt":
      return `the keyfile ${String(f["file"])} is damaged (${String(f["reason"])}): restore it from a backup; nothing was changed`
    case "KeyfileIoError":
      return `cannot read the keyfile ${String(f["file"])}: ${f["cause"] instanceof Error ? f["cause"].message : String(f["cause"])}`
    case "NetKeyMismatch":
      return `${String(f["name"])}'s ~net-key on chain is ${String(f["onChain"])}, but this node's keyfile holds 0x${String(f["inKeyfile"]).replace(/^0x/, "")}: ` +
        `boot with the keyfile that registered ${String(f["name"])}, or add --reset to write this node's key to the chain (only the name's owner can)`
    case "NameTaken":
      return `${String(f["name"])} is already registered by ${String(f["owner"])}: choose another --name; nothing was written`
    case "ParentNotFound":
      return `cannot register ${String(f["name"])}: its parent ${String(f["parent"])} does not exist on this chain (use a name under .os or .dev)`
    case "InvalidNodeName":
    case "InvalidName":
      return `${String(f["name"] ?? "")} is not a valid node name (labels of a-z, 0-9 and -, separated by dots, e.g. alice.os)`
    case "ChainUnavailable":
      return `the chain at ${String(f["url"])} does not answer (${String(f["reason"])}); nothing was written`
    case "NameRequired":
      return String(f["reason"])
    case "NoTerminal":
      return `no ${String(f["missing"])} given and no terminal to ask: pass ${f["missing"] === "password" ? "--password-file <file> or KINODE_PASSWORD" : "--name <name>"}`
    case "Reverted":
      return `the registry refused: ${String(f["operation"])}: ${String(f["error"])}`
    default:
      return `login failed: ${e instanceof Error ? e.message : String(e)}`
  }
}

