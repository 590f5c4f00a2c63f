/**
 * Compiled registry contracts: solc-js standard JSON over
 * `services/chain/contracts/*.sol`, cached by a hash of the sources, the solc
 * version and the settings.
 *
 * Lookup order of `loadArtifacts`:
 * 1. `<repo>/dist/chain/artifacts.json` (written by `compile.ts` at build
 *    time) when its `sourceHash` matches the sources;
 * 2. `<repo>/node_modules/.cache/kinode-ts/chain-<hash>.json`;
 * 3. `<os.tmpdir()>/kinode-ts-chain-<hash>.json`;
 * 4. otherwise compile (a few seconds; solc is loaded only then) and store
 *    the result in the first writable of 2 and 3.
 * When the sources are not on disk (a dist without `services/`), the build's
 * `dist/chain/artifacts.json` is used as is.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Schema } from "effect"
import type { Abi, Hex } from "viem"

/** @category models */
export interface ContractArtifact {
  readonly abi: Abi
  /** Creation code. */
  readonly bytecode: Hex
  /** Runtime code (what `anvil_setCode` installs). */
  readonly deployedBytecode: Hex
}

/** @category models */
export const CONTRACT_NAMES = ["Kimap", "KinoAccountProxy", "KinoAccount", "KinoMinterAccount", "Multicall3"] as const
/** @category models */
export type ContractName = typeof CONTRACT_NAMES[number]

/** @category models */
export interface Artifacts {
  readonly sourceHash: string
  readonly solcVersion: string
  readonly contracts: Readonly<Record<ContractName, ContractArtifact>>
}

/** solc reported errors (messages as solc formats them). @category errors */
export class CompileFailed extends Schema.TaggedError<CompileFailed>()("CompileFailed", {
  errors: Schema.Array(Schema.String)
}) {}

/** No sources and no usable artifacts file, or a file that cannot be read/written. @category errors */
export class ArtifactsUnavailable extends Schema.TaggedError<ArtifactsUnavailable>()("ArtifactsUnavailable", {
  path: Schema.String,
  cause: Schema.Defect()
}) {}

const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } }
} as const

const here = path.dirname(fileURLToPath(import.meta.url))

/** Repository root and contracts folder, from `services/chain/` or `dist/services/chain/`. @category paths */
export const locate = (): { readonly root: string; readonly contracts: string | undefined } => {
  const candidates = [path.resolve(here, "../.."), path.resolve(here, "../../..")]
  for (const root of candidates) {
    const dir = path.join(root, "services", "chain", "contracts")
    if (fs.existsSync(path.join(dir, "Kimap.sol"))) return { root, contracts: dir }
  }
  // dist/services/chain -> dist/..
  return { root: path.resolve(here, "../../.."), contracts: undefined }
}

/** Default output of the build step. @category paths */
export const buildArtifactsPath = (root = locate().root): string => path.join(root, "dist", "chain", "artifacts.json")

const solcVersion = (): string => {
  const require = createRequire(import.meta.url)
  return (require("solc/package.json") as { version: string }).version
}

/** Reads every `*.sol` of the contracts folder, by file name. @category sources */
export const readSources = (dir: string): Effect.Effect<Record<string, string>, ArtifactsUnavailable> =>
  Effect.try({
    try: () => {
      const out: Record<string, string> = {}
      for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".sol")).sort()) {
        out[f] = fs.readFileSync(path.join(dir, f), "utf8")
      }
      return out
    },
    catch: (cause) => new ArtifactsUnavailable({ path: dir, cause })
  })

/** sha256 over the sources, the solc version and the compiler settings. @category sources */
export const sourceHash = (sources: Record<string, string>, version = solcVersion()): string => {
  const h = createHash("sha256")
  h.update(`solc ${version}\n${JSON.stringify(SETTINGS)}\n`)
  for (const name of Object.keys(sources).sort()) h.update(`${name}\n${sources[name]}\n`)
  return h.digest("hex").slice(0, 32)
}

interface SolcOutput {
  readonly errors?: ReadonlyArray<{ readonly severity: string; readonly formattedMessage: string }>
  readonly contracts?: Record<string, Record<string, {
    readonly abi: Abi
    readonly evm: { readonly bytecode: { readonly object: string }; readonly deployedBytecode: { readonly object: string } }
  }>>
}

/** Compiles with solc-js standard JSON (loads solc, takes seconds). @category compile */
export const compileSources = Effect.fn("Artifacts.compile")(function*(sources: Record<string, string>) {
  const solc = yield* Effect.tryPromise({
    try: () => import("solc"),
    catch: (cause) => new CompileFailed({ errors: [`cannot load solc: ${String(cause)}`] })
  })
  const input = {
    language: "Solidity",
    sources: Object.fromEntries(Object.entries(sources).map(([k, content]) => [k, { content }])),
    settings: SETTINGS
  }
  const output = yield* Effect.try({
    try: () => JSON.parse(solc.default.compile(JSON.stringify(input)) as string) as SolcOutput,
    catch: (cause) => new CompileFailed({ errors: [String(cause)] })
  })
  const errors = (output.errors ?? []).filter((e) => e.severity === "error").map((e) => e.formattedMessage)
  if (errors.length > 0) return yield* new CompileFailed({ errors })
  const all: Record<string, ContractArtifact> = {}
  for (const file of Object.values(output.contracts ?? {})) {
    for (const [name, c] of Object.entries(file)) {
      all[name] = {
        abi: c.abi,
        bytecode: `0x${c.evm.bytecode.object}`,
        deployedBytecode: `0x${c.evm.deployedBytecode.object}`
      }
    }
  }
  const missing = CONTRACT_NAMES.filter((n) => all[n] === undefined)
  if (missing.length > 0) return yield* new CompileFailed({ errors: missing.map((n) => `missing contract ${n}`) })
  const contracts = Object.fromEntries(CONTRACT_NAMES.map((n) => [n, all[n]!])) as Record<ContractName, ContractArtifact>
  const version = solcVersion()
  return { sourceHash: sourceHash(sources, version), solcVersion: version, contracts } satisfies Artifacts
})

const readJson = (file: string): Artifacts | undefined => {
  try {
    const a = JSON.parse(fs.readFileSync(file, "utf8")) as Artifacts
    return typeof a.sourceHash === "string" && CONTRACT_NAMES.every((n) => typeof a.contracts?.[n]?.deployedBytecode === "string")
      ? a
      : undefined
  } catch {
    return undefined
  }
}

/** Writes artifacts atomically (temp file + rename), creating the folder. @category compile */
export const writeArtifacts = (file: string, artifacts: Artifacts): Effect.Effect<void, ArtifactsUnavailable> =>
  Effect.try({
    try: () => {
      fs.mkdirSync(path.dirname(file), { recursive: true })
      const tmp = `${file}.${process.pid}.${Math.floor(performance.now() * 1000)}.tmp`
      fs.writeFileSync(tmp, JSON.stringify(artifacts))
      fs.renameSync(tmp, file)
    },
    catch: (cause) => new ArtifactsUnavailable({ path: file, cause })
  })

/** The cache files tried for a source hash, in order. @category paths */
export const cachePaths = (root: string, hash: string): ReadonlyArray<string> => [
  path.join(root, "node_modules", ".cache", "kinode-ts", `chain-${hash}.json`),
  path.join(os.tmpdir(), `kinode-ts-chain-${hash}.json`)
]

/**
 * The registry's artifacts: from the build output or the cache when the
 * source hash matches, else compiled now and cached.
 * @category compile
 */
export const loadArtifacts = Effect.fn("Artifacts.load")(function*() {
  const { root, contracts } = locate()
  const built = buildArtifactsPath(root)
  if (contracts === undefined) {
    const a = readJson(built)
    if (a === undefined) return yield* new ArtifactsUnavailable({ path: built, cause: "no sources and no build output" })
    return a
  }
  const sources = yield* readSources(contracts)
  const hash = sourceHash(sources)
  for (const file of [built, ...cachePaths(root, hash)]) {
    const a = readJson(file)
    if (a !== undefined && a.sourceHash === hash) return a
  }
  const compiled = yield* compileSources(sources)
  for (const file of cachePaths(root, hash)) {
    const written = yield* writeArtifacts(file, compiled).pipe(Effect.as(true), Effect.catch(() => Effect.succeed(false)))
    if (written) break
  }
  return compiled
})
