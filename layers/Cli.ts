/**
 * `node dist/main.js --home <dir>`: logs in (first boot: registers the name on the
 * chain), boots the node and runs the terminal on stdin. Ctrl-C, SIGTERM, end of input
 * (Ctrl-D) and a process's `Shutdown` kernel command shut it down cleanly, within
 * `STOP_DEADLINE_MS` whatever apps are doing: processes stop first (the process map is
 * flushed), then the services close, LMDB last, and the process exits.
 *
 * Flags are parsed with Node's own `util.parseArgs` (no dependency; `--flag value`,
 * `--flag=value`, short options, unknown flags refused).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit, Fiber, Layer, Runtime, Schema } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { parseArgs } from "node:util"
import type { Hex } from "viem"
import { Kernel } from "../src/Kernel.ts"
import { Printout } from "../src/Printout.ts"
import { BASE_CHAIN_ID, type ChainExit, ChainUnavailable, embeddedOptions, fundOnAnvil, KIMAP_ADDRESS, makeRegistry, startAnvil } from "../services/chain/index.ts"
import { describeHomeFailure, homeExitCode, openHome } from "../services/home/index.ts"
import { extendToLastPage } from "../services/lmdb/index.ts"
import { AllowList } from "../services/http-client/index.ts"
import { HttpServer } from "../services/http-server/index.ts"
import { ChainIdentity, decodeKeyfile, describeLoginFailure, keyfilePath, login, publicKeyHex } from "../services/identity/index.ts"
import { KnsIndexer } from "../services/kns-indexer/index.ts"
import type { ListenFailed } from "../services/net/index.ts"
import {
  describeInstalled, describeInstallError, INIT_WATCH_MS, installBundled, type PackageId, Packages, packageText, planPackage, readPackageFile
} from "../services/packages/index.ts"
import { ask, readLoop } from "../services/terminal/index.ts"
import { NodeLive } from "./NodeLive.ts"

const USAGE = `usage: node dist/main.js --home <dir> [options]

  --home <dir>            node home: keyfile, process map, files (created on first boot)
  --name <node>           first boot: the name to register (e.g. alice.os); asked on a terminal
  --password-file <file>  the keyfile password (or KINODE_PASSWORD); asked on a terminal
  --routers <a.os,b.os>   first boot: register indirect, reached through these routers
  --ip <addr>             first boot, direct: the IP to register (default 127.0.0.1)
  --tcp-port <n>          first boot, direct: the TCP port to register (default first free from 10000)
  --rpc <url>             use this EVM JSON-RPC (http(s) or ws(s)) instead of the embedded local chain
  --wallet-key <0x..>     with --rpc: the wallet that pays for and owns the registration
  --chain-port <n>        the embedded chain's port (default 8545; started or joined)
  --reset                 write this node's key to its name on chain even if the chain holds another;
                          with --tcp-port or --routers: move the node there on chain
  --new-process-map       a home with data (keyfile, files) but no process map: start an empty one
  --max-peers <n>         peers kept connected; more evict the least recently active (default 32)
  --idle-timeout <s>      close a peer's connection after this many silent seconds (default 1800; 0 never)
  --dial-timeout <s>      connect and handshake budget per dial (default 5)
  --max-passthroughs <n>  direct nodes: relay slots for nodes listing this one in ~routers (default 64; 0 none)
  --offline               do not start the network (every other node is offline)
  --port <n>              HTTP port for the browser and apps' UIs (default 8080; the next free one if taken)
  --bind <addr>           HTTP listen address (default 127.0.0.1; 0.0.0.0 serves every interface)
  --http-allow <h[:p],..> restrict http-client: apps may reach only these hosts (default: any host)
  --safe-mode             boot with stored processes not started (top lists them as paused; kill or RunProcess them)
  --install <zip>         after the bundled apps, install (or upgrade) this package, granting every capability it
                          asks for; repeatable; a zip that is not a package stops the boot first (exit 2)
  -v, --verbosity <n>     0-3, terminal verbosity (default 0)
  --detached              run without the terminal (stop with SIGTERM/SIGINT)
  -h, --help              this text

exit codes: 0 ok, 2 bad or missing input, 3 wrong password, 4 identity conflict, 5 chain unreachable,
            6 network port unavailable, 7 home in use by another node (its pid is named),
            8 home cannot be created, written or read, 9 home damaged (process map cut short or
            overwritten, or data without a process map), 1 other`

export interface Flags {
  readonly home: string
  readonly name: string | undefined
  readonly passwordFile: string | undefined
  readonly routers: ReadonlyArray<string> | undefined
  readonly ip: string
  readonly tcpPort: number | undefined
  readonly rpc: string | undefined
  readonly walletKey: Hex | undefined
  readonly chainPort: number
  readonly reset: boolean
  readonly newProcessMap: boolean
  readonly verbosity: number
  readonly detached: boolean
  readonly offline: boolean
  readonly maxPeers: number
  readonly idleTimeoutSeconds: number
  readonly dialTimeoutSeconds: number
  readonly maxPassthroughs: number
  readonly safeMode: boolean
  readonly httpPort: number
  readonly httpBind: string
  readonly httpAllow: ReadonlyArray<string> | undefined
  /** `--install`: package zips to install after the bundled apps, in order. */
  readonly install: ReadonlyArray<string>
}

const port = (text: string | undefined, flag: string): number | string | undefined => {
  if (text === undefined) return undefined
  const n = Number(text)
  return Number.isInteger(n) && n > 0 && n < 65536 ? n : `${flag} takes a port number 1-65535, not ${text}`
}

export const parseFlags = (argv: ReadonlyArray<string>): Flags | string => {
  let v: ReturnType<typeof parse>["values"]
  const parse = (args: ReadonlyArray<string>) =>
    parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: {
        home: { type: "string" },
        name: { type: "string" },
        "password-file": { type: "string" },
        routers: { type: "string" },
        ip: { type: "string" },
        "tcp-port": { type: "string" },
        rpc: { type: "string" },
        "wallet-key": { type: "string" },
        "chain-port": { type: "string" },
        reset: { type: "boolean" },
        "new-process-map": { type: "boolean" },
        verbosity: { type: "string", short: "v" },
        detached: { type: "boolean" },
        offline: { type: "boolean" },
        "max-peers": { type: "string" },
        "idle-timeout": { type: "string" },
        "dial-timeout": { type: "string" },
        "max-passthroughs": { type: "string" },
        "safe-mode": { type: "boolean" },
        port: { type: "string" },
        bind: { type: "string" },
        "http-allow": { type: "string" },
        install: { type: "string", multiple: true },
        help: { type: "boolean", short: "h" }
      }
    })
  try {
    v = parse(argv).values
  } catch (e) {
    const unknown = /Unknown option '([^']+)'/.exec(e instanceof Error ? e.message : "")
    if (unknown !== null) return `unknown argument ${unknown[1]}\n\n${USAGE}`
    return `${e instanceof Error ? e.message.split(". ")[0] : String(e)}\n\n${USAGE}`
  }
  if (v.help === true) return USAGE
  if (v.home === undefined) return `--home is required\n\n${USAGE}`
  const verbosity = Number(v.verbosity ?? "0")
  if (!Number.isInteger(verbosity) || verbosity < 0 || verbosity > 3) return `--verbosity takes 0-3`
  if (v.name !== undefined && !/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(v.name)) {
    return `--name: ${v.name} is not a valid node name (labels of a-z, 0-9 and -, separated by dots, e.g. alice.os)`
  }
  const tcpPort = port(v["tcp-port"], "--tcp-port")
  const chainPort = port(v["chain-port"], "--chain-port")
  const httpPort = port(v.port, "--port")
  if (typeof httpPort === "string") return httpPort
  if (typeof tcpPort === "string") return tcpPort
  if (typeof chainPort === "string") return chainPort
  const count = (flag: string, text: string | undefined, fallback: number, min: number): number | string => {
    if (text === undefined) return fallback
    const n = Number(text)
    return Number.isInteger(n) && n >= min ? n : `--${flag} takes a whole number >= ${min}, not ${text}`
  }
  const maxPeers = count("max-peers", v["max-peers"], 32, 1)
  const idleTimeoutSeconds = count("idle-timeout", v["idle-timeout"], 1800, 0)
  const dialTimeoutSeconds = count("dial-timeout", v["dial-timeout"], 5, 1)
  const maxPassthroughs = count("max-passthroughs", v["max-passthroughs"], 64, 0)
  for (const c of [maxPeers, idleTimeoutSeconds, dialTimeoutSeconds, maxPassthroughs]) if (typeof c === "string") return c
  const walletKey = v["wallet-key"]
  if (walletKey !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(walletKey)) return `--wallet-key takes a 0x-prefixed 32-byte hex private key`
  if (walletKey !== undefined && v.rpc === undefined) return `--wallet-key goes with --rpc`
  const httpBind = v.bind ?? "127.0.0.1"
  if (net.isIP(httpBind) === 0) return `--bind takes an IP address (127.0.0.1, 0.0.0.0, ::1 ...), not ${httpBind}`
  let httpAllow: ReadonlyArray<string> | undefined
  if (v["http-allow"] !== undefined) {
    httpAllow = v["http-allow"].split(",").map((h) => h.trim()).filter((h) => h !== "")
    const checked = AllowList.parse(httpAllow)
    if (checked._tag === "Failure") return `--http-allow: ${checked.failure}`
  }
  const install = v.install ?? []
  if (install.length > 0 && v["safe-mode"] === true) return `--install goes without --safe-mode (safe mode starts no package)`
  const routers = v.routers === undefined ? undefined : v.routers.split(",").map((r) => r.trim()).filter((r) => r !== "")
  return {
    home: v.home,
    name: v.name,
    passwordFile: v["password-file"],
    routers,
    ip: v.ip ?? "127.0.0.1",
    tcpPort,
    rpc: v.rpc,
    walletKey: walletKey as Hex | undefined,
    chainPort: chainPort ?? 8545,
    reset: v.reset === true,
    newProcessMap: v["new-process-map"] === true,
    verbosity,
    detached: v.detached === true,
    offline: v.offline === true,
    maxPeers: maxPeers as number,
    idleTimeoutSeconds: idleTimeoutSeconds as number,
    dialTimeoutSeconds: dialTimeoutSeconds as number,
    maxPassthroughs: maxPassthroughs as number,
    safeMode: v["safe-mode"] === true,
    httpPort: httpPort ?? 8080,
    httpBind,
    httpAllow,
    install
  }
}

/** The password: `--password-file`, else `KINODE_PASSWORD`, else asked (hidden) on a terminal. */
const password = (flags: Flags) => (name: string) =>
  Effect.suspend(() => {
    if (flags.passwordFile !== undefined) {
      const file = flags.passwordFile
      return Effect.try({
        try: () => fs.readFileSync(file, "utf8").replace(/\r?\n$/, ""),
        catch: (e) => new Error(`cannot read --password-file ${file}: ${e instanceof Error ? e.message : String(e)}`)
      })
    }
    const env = process.env["KINODE_PASSWORD"]
    if (env !== undefined && env !== "") return Effect.succeed(env)
    return ask(`password for ${name}`, { hidden: true, missing: "password" })
  })

const askName = ask("node name to register", {
  suggestion: `node-${crypto.randomBytes(3).toString("hex")}.os`,
  missing: "node name"
})

/** An `--install` zip that cannot be installed, found before the home is touched. */
class InstallFlagRefused extends Schema.TaggedError<InstallFlagRefused>()("InstallFlagRefused", {
  file: Schema.String,
  reason: Schema.String
}) {}

interface ToInstall {
  readonly file: string
  readonly pkg: PackageId
  readonly zip: Uint8Array
}

/**
 * Reads and checks every `--install` zip before anything else happens: a file that is
 * missing or not a package fails the boot (exit 2) with one line, so a script learns
 * it before a node starts. What only the running node can tell (a process that crashes
 * at start, a name a runtime module holds) is a printed refusal after boot.
 */
const checkInstalls = (files: ReadonlyArray<string>) =>
  Effect.forEach(files, (file) =>
    Effect.gen(function*() {
      const { pkg, zip } = yield* readPackageFile(file)
      yield* planPackage({ node: "our", isRuntime: () => false }, pkg, zip)
      return { file, pkg, zip } satisfies ToInstall
    }).pipe(Effect.mapError((e) => new InstallFlagRefused({ file, reason: describeInstallError(e) }))))

/** Installs the `--install` zips after boot, each granted everything it asks for; prints what each did. */
const installFlagged = (list: ReadonlyArray<ToInstall>) =>
  Effect.gen(function*() {
    if (list.length === 0) return
    const packages = yield* Packages
    const kernel = yield* Kernel
    const printout = yield* Printout
    for (const { file, pkg, zip } of list) {
      printout.print(0, "packages", `installing ${packageText(pkg)} from ${file} ...`)
      const r = yield* Effect.result(packages.install(pkg, zip, { watchMs: INIT_WATCH_MS }))
      printout.print(0, "packages", r._tag === "Success"
        ? describeInstalled(kernel.node, r.success)
        : `--install ${file}: ${packageText(pkg)} not installed: ${describeInstallError(r.failure)}`)
    }
  })

const exitCodeOf = (e: unknown): number => {
  switch ((e as { _tag?: string })._tag) {
    case "InstallFlagRefused":
    case "NoTerminal":
    case "NameRequired":
    case "InvalidNodeName":
    case "InvalidName":
    case "ParentNotFound":
      return 2
    case "WrongPassword":
      return 3
    case "NetKeyMismatch":
    case "NameTaken":
    case "KeyfileCorrupt":
      return 4
    case "ChainUnavailable":
      return 5
    case "ListenFailed":
    case "HttpListenFailed":
      return 6
    default:
      return homeExitCode(e) ?? 1
  }
}

/** The chain: `--rpc`, or the embedded anvil (started or joined), with a registry client. */
const connectChain = (flags: Flags) =>
  Effect.gen(function*() {
    if (flags.rpc !== undefined) {
      const registry = yield* makeRegistry({ url: flags.rpc, ...(flags.walletKey === undefined ? {} : { walletKey: flags.walletKey }) })
      return { registry, anvil: undefined }
    }
    const anvil = yield* startAnvil(embeddedOptions(flags.chainPort)).pipe(
      Effect.mapError((e) => e._tag === "ChainUnavailable" ? e : new ChainUnavailable({ url: `http://127.0.0.1:${flags.chainPort}`, reason: e._tag }))
    )
    const registry = yield* makeRegistry({ url: anvil.url, chainId: anvil.chainId })
    return { registry, anvil }
  })

/**
 * Runs `effect`; if it is still running after a second, says `doing ...` (once), so a
 * slow step of the boot (a chain starting, many stored processes loading) is not
 * silence, and a quick one prints nothing.
 */
export const sayIfSlow = (say: (line: string) => void, doing: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const note = yield* Effect.forkChild(Effect.delay(Effect.sync(() => say(`${doing} ...`)), "1 second"))
    return yield* Effect.ensuring(effect, Fiber.interrupt(note))
  })

/**
 * Where a boot's time goes, printed at verbosity 2 as `boot: chain 40 ms, login 700 ms ...`
 * (milliseconds since the process started, per phase).
 */
const makePhases = () => {
  const marks: Array<[string, number]> = []
  let last = 0
  return {
    mark: (phase: string) => {
      const now = performance.now()
      marks.push([phase, now - last])
      last = now
    },
    line: () => `boot: ${marks.map(([p, ms]) => `${p} ${Math.round(ms)} ms`).join(", ")}; prompt at ${Math.round(last)} ms`
  }
}
type Phases = ReturnType<typeof makePhases>

/** The one line for a failed boot: login's reasons, and the network's. */
const describeFailure = (e: unknown): string => {
  if (e instanceof InstallFlagRefused) return `--install ${e.file}: ${e.reason}`
  const home = describeHomeFailure(e)
  if (home !== undefined) return home
  if ((e as { _tag?: string })._tag === "HttpListenFailed") {
    const f = e as { bind: string; port: number; reason: string }
    return `http: cannot listen on ${f.bind}:${f.port} (${f.reason}); pick another with --port, or another address with --bind`
  }
  if ((e as { _tag?: string })._tag === "ListenFailed") {
    const f = e as ListenFailed
    return `net: cannot listen on ${f.addresses.join(", ")}, the address registered for this node (${f.reason}): ` +
      "is another program using the port? Stop it, or move this node: boot with --reset --tcp-port <free port>"
  }
  return describeLoginFailure(e)
}

/**
 * A browser login: the keyfile, read again each time (a `--reset` elsewhere may have
 * rewritten it), when the password hash opens it. Like Kinode, the check is the
 * keyfile's own decryption (a 1M-iteration PBKDF2 on libuv's pool), so a wrong guess
 * costs the guesser as much as the first login did.
 */
const webLogin = (home: string) => (passwordHash: string) =>
  Effect.runPromise(
    Effect.tryPromise(() => fs.promises.readFile(keyfilePath(home))).pipe(
      Effect.flatMap((bytes) => Effect.as(decodeKeyfile(new Uint8Array(bytes), passwordHash), new Uint8Array(bytes))),
      Effect.catch(() => Effect.succeed(undefined))
    )
  )

const runNode = (flags: Flags, phases: Phases, chainExit: Effect.Effect<ChainExit> | undefined, toInstall: ReadonlyArray<ToInstall>) =>
  Effect.gen(function*() {
    const kernel = yield* Kernel
    const printout = yield* Printout
    // However the node stops, its processes stop first, before any service closes under them.
    yield* Effect.addFinalizer(() => Effect.andThen(Effect.sync(() => armStopDeadline(flags.home)), kernel.shutdown))
    phases.mark("services")
    if (chainExit !== undefined) {
      // The node keeps running without its chain; the user is told at once, not at the next lookup.
      yield* Effect.forkScoped(Effect.flatMap(chainExit, (exit) =>
        Effect.sync(() =>
          printout.print(0, "kernel", `the chain went away (${exit._tag === "Exited" ? `anvil exited, code ${exit.code ?? exit.signal}` : exit.reason}): ` +
            "names are not checked or updated until it is back; booting any node restarts the embedded chain from its saved state")
        )))
    }
    yield* kernel.boot.pipe(sayIfSlow((line) => printout.print(0, "kernel", line), "loading and starting the stored processes"))
    phases.mark("processes")
    // Safe mode starts nothing: bundled apps are not (re)installed either. What is
    // installed is said as it goes (installBundled), the longest step of a first boot.
    if (!flags.safeMode) yield* installBundled()
    phases.mark("apps")
    yield* installFlagged(toInstall)
    const http = yield* HttpServer
    printout.print(0, "kernel", `kinode-ts node ${kernel.node} booted (home ${flags.home}); ${kernel.processes().length} processes`)
    printout.print(0, "kernel", `open ${http.url} in a browser and log in with your password` +
      (http.port !== flags.httpPort ? ` (port ${flags.httpPort} was taken)` : ""))
    if (flags.detached) return yield* kernel.shutdownRequested
    printout.print(2, "kernel", phases.line())
    printout.print(0, "kernel", `type help for commands`)
    yield* Effect.raceFirst(readLoop, kernel.shutdownRequested)
    printout.print(0, "kernel", "shutting down")
  })

export const main = (argv: ReadonlyArray<string>) => {
  const flags = parseFlags(argv)
  if (typeof flags === "string") {
    const isHelp = flags === USAGE
    ;(isHelp ? process.stdout : process.stderr).write(`${flags}\n`)
    process.exitCode = isHelp ? 0 : 2
    return
  }
  const say = (line: string) => void process.stdout.write(`${line}\n`)
  const phases = makePhases()
  phases.mark("start")
  const program = Effect.gen(function*() {
    // `--install` zips are read and checked first: a bad one touches nothing.
    const toInstall = yield* checkInstalls(flags.install)
    // Before anything touches the home: created and writable, locked to this node, its
    // process map checked before LMDB maps it (services/home).
    const opened = yield* openHome(flags.home, { newProcessMap: flags.newProcessMap })
    const home = opened.path
    if (opened.tookOverFrom !== undefined) {
      say(`home ${home}: took over the lock of node pid ${opened.tookOverFrom}, which is gone (it did not shut down cleanly)`)
    }
    if (opened.state === "NewProcessMap") say(`home ${home}: started an empty process map beside ${opened.found.join(", ")} (kept)`)
    const chain = yield* Effect.result(connectChain(flags).pipe(sayIfSlow(say, flags.rpc === undefined
      ? `chain: starting the embedded chain (anvil) on port ${flags.chainPort}`
      : `chain: connecting to ${flags.rpc}`)))
    phases.mark("chain")
    const registry = chain._tag === "Success" ? chain.success.registry : chain.failure
    const anvil = chain._tag === "Success" ? chain.success.anvil : undefined
    if (anvil !== undefined) {
      say(`chain: anvil at ${anvil.url} (${anvil.mode === "started" ? "started by this node" : "joined"}), registry at ${KIMAP_ADDRESS}`)
    } else if (chain._tag === "Success") say(`chain: ${chain.success.registry.url} (chain id ${chain.success.registry.chainId}), registry at ${KIMAP_ADDRESS}`)
    const loggedIn = yield* login({
      home,
      name: flags.name,
      password: password(flags),
      askName,
      routers: flags.routers,
      ip: flags.ip,
      tcpPort: flags.tcpPort,
      reset: flags.reset,
      registry,
      walletKey: flags.walletKey,
      fund: anvil !== undefined ? fundOnAnvil(anvil.url) : undefined,
      say
    })
    phases.mark("login")
    say(`${loggedIn.name}: networking key ${publicKeyHex(loggedIn.key)}${loggedIn.firstBoot ? " (new)" : ""}`)
    // The indexer follows the chain even if it is down now: it retries and says so.
    const rpcUrl = flags.rpc ?? anvil?.url ?? `http://127.0.0.1:${flags.chainPort}`
    const chainId = chain._tag === "Success" ? chain.success.registry.chainId : flags.rpc === undefined ? 31337 : undefined
    const indexer = KnsIndexer.layerNode({
      rpcUrl,
      contract: KIMAP_ADDRESS,
      ...(chainId === undefined ? {} : { chainId }),
      // Kimap's first Base block, or the start of any other chain (the embedded one).
      ...(chainId === BASE_CHAIN_ID ? {} : { firstBlock: 0 })
    })
    const net = flags.offline ? undefined : {
      seed: loggedIn.key.seed,
      reach: loggedIn.reach,
      maxPassthroughs: flags.maxPassthroughs,
      limits: { maxPeers: flags.maxPeers, idleMs: flags.idleTimeoutSeconds * 1000, dialTimeoutMs: flags.dialTimeoutSeconds * 1000 }
    }
    if (net !== undefined) {
      const reach = loggedIn.reach
      say(reach === undefined
        ? "net: reached by nobody until the chain says where (dialling out works)"
        : reach._tag === "Direct"
        ? `net: listening on ${reach.ip}:${reach.tcpPort} (tcp)`
        : `net: reached through ${reach.routers.join(", ")}`)
    }
    yield* runNode(flags, phases, anvil?.exited, toInstall).pipe(
      Effect.scoped,
      Effect.provide(Layer.fresh(NodeLive({
        home,
        verbosity: flags.verbosity,
        identity: ChainIdentity(loggedIn),
        indexer,
        net,
        safeMode: flags.safeMode,
        knsContract: chainId === undefined ? undefined : { chainId, address: KIMAP_ADDRESS },
        // The node's chain is eth's first provider (Kinode's `--rpc`): the embedded anvil over
        // its WebSocket (a request costs ~70 µs there, ~500 µs over HTTP).
        eth: chainId === undefined ? {} : {
          providers: [{ chain_id: chainId, url: flags.rpc ?? anvil?.wsUrl ?? `ws://127.0.0.1:${flags.chainPort}` }]
        },
        http: {
          server: { port: flags.httpPort, bind: flags.httpBind, jwtSecret: loggedIn.jwtSecret, login: webLogin(home) },
          client: { ...(flags.httpAllow === undefined ? {} : { allow: flags.httpAllow }) }
        }
      })))
    )
  }).pipe(
    Effect.catch((e: unknown) =>
      Effect.sync(() => {
        process.stderr.write(`${describeFailure(e)}\n`)
        process.exitCode = exitCodeOf(e)
      })
    )
  )
  NodeRuntime.runMain(Effect.scoped(program), { disableErrorReporting: false, teardown: stoppedBySignalIsOk })
}

/**
 * How long stopping may take. Processes stop in well under it (all interrupted at once,
 * `kernel.shutdown`); if a service's close hangs past it (a socket that never closes, a
 * worker that never answers: libp2p's stop and sqlite's close each wait up to 5 s), the
 * node says so and exits anyway: everything durable was committed as it happened (LMDB
 * commits are synced), the process map was flushed, and the LMDB file is made whole
 * for the next open as a clean close would (`extendToLastPage`).
 */
const STOP_DEADLINE_MS = 1_500

const armStopDeadline = (home: string) => {
  setTimeout(() => {
    process.stderr.write(`shutdown: services were still closing after ${STOP_DEADLINE_MS} ms; exited without waiting for them\n`)
    extendToLastPage(path.join(home, "lmdb", "data.mdb"))
    process.exit()
  }, STOP_DEADLINE_MS).unref()
}

/**
 * Ctrl-C and SIGTERM interrupt the program, and the node shuts down as on Ctrl-D: exit 0,
 * not Effect's 130 for an interrupted main, which supervisors and scripts read as a
 * failure. A finalizer that fails while stopping still makes the exit nonzero. Once the
 * program has ended the process exits at once: a library's timer or socket left behind
 * does not hold it (libp2p's address-manager debounce kept a stopped node ~1 s).
 */
const stoppedBySignalIsOk: Runtime.Teardown = (exit, onExit) => {
  const exitNow = (code: number) => {
    onExit(code) // exits by itself after a signal or with a nonzero code
    // No argument keeps an exit code set on the way (exitCodeOf); `exit(undefined)` resets it to 0.
    if (code === 0) process.exit()
    else process.exit(code)
  }
  return Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? exitNow(0) : Runtime.defaultTeardown(exit, exitNow)
}
