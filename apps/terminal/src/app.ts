/**
 * The terminal app, `terminal:terminal:sys` (kinode-semantics §8): the node's native
 * terminal sends it each typed line as a request from and to this process. The first
 * word resolves through the aliases, else as a process id; that process is a script
 * (`<name>:<package>:<publisher>`), which the app starts as a new process
 * `<random u64>:<package>:<publisher>` from `/<package>:<publisher>/pkg/<name>.wasm`
 * (or the file a script link there names, apps/build.ts) with the capabilities its
 * `scripts.json` entry asks for, and hands the rest of the line as a request whose
 * metadata, `{"script": "<name>"}`, tells our one-component scripts which they are.
 * Errors are printed as Kinode's terminal prints them: `error calling script: ...`.
 *
 * Aliases live in the process state (`{"version": "kinode-ts/1", "aliases": {...}}`);
 * the defaults are put back at every start. Scripts of this package may edit them with
 * `{"EditAlias": {"alias", "process": id | null}}`. Every response the app receives is
 * printed as text.
 */
import * as wit from "kinode:process/standard@1.0.0"
import type { Address, Capability, ProcessId } from "kinode:process/standard@1.0.0"
import { address, addressText, awaitMessage, call, json, print, processId, respond, send, spawn, SpawnFailed, text } from "../../sdk/index.ts"
import { here, KERNEL, scriptLinkTarget, VfsError, vfsLength, vfsRead } from "./lib/node.ts"
import { scriptMetadata } from "./script.ts"

/** The scripts every terminal start aliases to their short names (Kinode's, and kinode-ts's `kns`). */
export const DEFAULT_ALIASES = [
  "alias", "cat", "echo", "help", "hi", "kill", "kfetch", "kns", "m", "net-diagnostics", "peer", "peers", "top"
]

const STATE_VERSION = "kinode-ts/1"

class ScriptError extends Error {
  readonly _tag = "ScriptError"
}

const isProcessId = (s: string): boolean => {
  const parts = s.split(":")
  return parts.length === 3 && parts.every((p) => p.length > 0)
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

const loadAliases = (self: Address): Map<string, string> => {
  const aliases = new Map<string, string>()
  const bytes = wit.getState()
  if (bytes != null) {
    let stored: unknown
    try {
      stored = JSON.parse(text(bytes))
    } catch {
      stored = undefined
    }
    if (isRecord(stored) && stored["version"] === STATE_VERSION && isRecord(stored["aliases"])) {
      for (const [a, p] of Object.entries(stored["aliases"])) if (typeof p === "string" && isProcessId(p)) aliases.set(a, p)
    } else {
      print("terminal: the stored terminal state is not this terminal's (another terminal app's?); starting from the default aliases", 1)
    }
  }
  const pkg = `${self.process.packageName}:${self.process.publisherNode}`
  for (const name of DEFAULT_ALIASES) aliases.set(name, `${name}:${pkg}`)
  return aliases
}

const saveAliases = (aliases: ReadonlyMap<string, string>) =>
  wit.setState(new TextEncoder().encode(JSON.stringify({ version: STATE_VERSION, aliases: Object.fromEntries(aliases) })))

/** A `scripts.json` entry, in Kinode's snake_case or Kinode 0.5's camelCase. */
interface ScriptEntry {
  readonly root: boolean
  readonly public: boolean
  readonly requestNetworking: boolean
  readonly requestCapabilities: ReadonlyArray<unknown>
  readonly grantCapabilities: ReadonlyArray<unknown>
  readonly witVersion: number | null
}

const entryOf = (v: unknown): ScriptEntry | undefined => {
  if (!isRecord(v)) return undefined
  const pick = (snake: string, camel: string) => (snake in v ? v[snake] : v[camel])
  const list = (x: unknown) => (Array.isArray(x) ? x : [])
  const witVersion = pick("wit_version", "witVersion")
  return {
    root: v["root"] === true,
    public: v["public"] === true,
    requestNetworking: pick("request_networking", "requestNetworking") === true,
    requestCapabilities: list(pick("request_capabilities", "requestCapabilities")),
    grantCapabilities: list(pick("grant_capabilities", "grantCapabilities")),
    witVersion: typeof witVersion === "number" ? witVersion : null
  }
}

const scriptEntry = (pkg: string, name: string): ScriptEntry => {
  let bytes: Uint8Array
  try {
    bytes = vfsRead(`/${pkg}/pkg/scripts.json`, 5)
  } catch (e) {
    if (e instanceof VfsError) throw new ScriptError(`no scripts manifest in package ${pkg} (${e.message})`)
    throw e
  }
  let all: unknown
  try {
    all = JSON.parse(text(bytes))
  } catch {
    throw new ScriptError(`could not parse scripts.json file of ${pkg}`)
  }
  if (!isRecord(all)) throw new ScriptError(`could not parse scripts.json file of ${pkg}`)
  const raw = all[`${name}.wasm`]
  if (raw === undefined) throw new ScriptError(`script not in scripts.json file: ${pkg} has no script ${name}`)
  const entry = entryOf(raw)
  if (entry === undefined) throw new ScriptError(`could not parse the entry ${name}.wasm of ${pkg}'s scripts.json`)
  return entry
}

/** A capability asked for by name (messaging) or as `{process, params}`, issued on this node. */
const capabilityOf = (issuerOf: (process: string) => string, item: unknown): { process: string; cap: { issuer: string; params: string } } | undefined => {
  if (typeof item === "string") return isProcessId(item) ? { process: item, cap: { issuer: issuerOf(item), params: "\"messaging\"" } } : undefined
  if (isRecord(item) && typeof item["process"] === "string" && isProcessId(item["process"]) && "params" in item) {
    return { process: item["process"], cap: { issuer: issuerOf(item["process"]), params: JSON.stringify(item["params"]) } }
  }
  return undefined
}

let scriptsStarted = 0

/**
 * A fresh u64 for a script's process name, as Kinode's terminal draws one. QuickJS has
 * no `crypto`; `Math.random` is seeded at each start (sdk/random.ts), and the clock and
 * a count of this instance's scripts are mixed in: the name must be unique among
 * running processes, not secret.
 */
const randomU64 = (): string => {
  const high = (Math.floor(Math.random() * 0x100000000) ^ Math.floor(Date.now() / 0x100000000)) >>> 0
  const low = (Math.floor(Math.random() * 0x100000000) ^ (Date.now() % 0x100000000) ^ (++scriptsStarted * 0x9e3779b1)) >>> 0
  return ((BigInt(high) << 32n) | BigInt(low)).toString()
}

const capKey = (c: { issuer: string; params: string }) => `${c.issuer}\u0001${c.params}`
const capJson = (c: Capability) => ({ issuer: addressText(c.issuer), params: c.params })

/**
 * The most a message may carry (body, blob, metadata): kinode-ts's limit, 10 MiB. A
 * componentize-js component (~12.5 MB) is more, so it cannot travel as the blob of an
 * InitializeProcess; scripts of our own package then start by `spawn`, which has the
 * kernel read the file itself (below).
 */
const MESSAGE_LIMIT = 10 * 1024 * 1024 - 64 * 1024

/**
 * Starts the script `process` on `args` (Kinode's `handle_run`): the new process
 * `<random u64>:<package>:<publisher>` gets what its `scripts.json` entry asks for
 * (only capabilities we hold survive), messaging to the terminal, `network` if it asks,
 * all our capabilities if it is `root`; on-exit `None`; its `grant_capabilities` are
 * granted, issued by it; it runs, and gets the arguments as a request.
 *
 * Kinode's way, kernel commands (`InitializeProcess` inheriting the Wasm read from vfs,
 * `GrantCapabilities`, `RunProcess`), serves every script whose Wasm fits in a message.
 * A larger one of our own package starts by `spawn`, which makes the same process
 * (same id form, capabilities, grants, on-exit, public) from the file; a larger one of
 * another package cannot be started, and that is said.
 */
const runScriptProcess = (self: Address, process: string, args: string): void => {
  const [name, packageName, publisher] = process.split(":") as [string, string, string]
  const pkg = `${packageName}:${publisher}`
  const entry = scriptEntry(pkg, name)
  const node = self.node
  const ownPackage = packageName === self.process.packageName && publisher === self.process.publisherNode
  let wasmPath = `/${pkg}/pkg/${name}.wasm`
  let length: number
  try {
    length = vfsLength(wasmPath, 5)
    // A small file may be a script link (apps/build.ts) to the package's component.
    if (length < 1024) {
      const target = scriptLinkTarget(vfsRead(wasmPath, 5))
      if (target !== undefined) {
        wasmPath = `/${pkg}/pkg/${target}`
        length = vfsLength(wasmPath, 5)
      }
    }
  } catch (e) {
    if (e instanceof VfsError) throw new ScriptError(`failed to read script Wasm ${wasmPath} from VFS (${e.message})`)
    throw e
  }

  const caps = new Map<string, { issuer: string; params: string }>()
  const add = (c: { issuer: string; params: string }) => caps.set(capKey(c), c)
  for (const item of entry.requestCapabilities) {
    const c = capabilityOf((p) => `${node}@${p}`, item)
    if (c !== undefined) add(c.cap)
  }
  add({ issuer: addressText(self), params: "\"messaging\"" })
  if (entry.requestNetworking) add({ issuer: `${node}@${KERNEL}`, params: "\"network\"" })
  if (entry.root) for (const c of wit.ourCapabilities()) add(capJson(c))
  const grants = entry.grantCapabilities.flatMap((item) => {
    const g = capabilityOf(() => "", item)
    return g === undefined ? [] : [{ process: g.process, params: g.cap.params }]
  })

  let id: ProcessId
  if (length <= MESSAGE_LIMIT) id = initializeScript(self, name, pkg, wasmPath, entry, [...caps.values()], grants)
  else if (ownPackage) {
    try {
      id = spawn(wasmPath, {
        onExit: { tag: "none" },
        capabilities: [...caps.values()].map((c) => ({ issuer: address(c.issuer), params: c.params })),
        grants: grants.map((g) => [processId(g.process), g.params] as [ProcessId, string]),
        public: entry.public
      })
    } catch (e) {
      if (e instanceof SpawnFailed) throw new ScriptError(`could not start ${name} from ${wasmPath}: ${e.reason}`)
      throw e
    }
  } else {
    throw new ScriptError(
      `${wasmPath} is ${(length / 1e6).toFixed(1)} MB, more than a message may carry (10 MiB): the terminal cannot hand it to the kernel`
    )
  }
  send({ node, process: id }, args, { metadata: scriptMetadata(name) })
}

/** Kinode's way: InitializeProcess with the Wasm (inherited from the vfs read), grants, RunProcess. */
const initializeScript = (
  self: Address,
  name: string,
  pkg: string,
  wasmPath: string,
  entry: ScriptEntry,
  caps: ReadonlyArray<{ issuer: string; params: string }>,
  grants: ReadonlyArray<{ process: string; params: string }>
): ProcessId => {
  const node = self.node
  const id = `${randomU64()}:${pkg}`
  try {
    // The Wasm stays in the node: it becomes our last blob, which InitializeProcess inherits.
    vfsRead(wasmPath, 5, false)
  } catch (e) {
    if (e instanceof VfsError) throw new ScriptError(`failed to read script Wasm ${wasmPath} from VFS (${e.message})`)
    throw e
  }
  const kernel = here(KERNEL)
  const initialized = json<unknown>(call(kernel, {
    json: {
      InitializeProcess: {
        id,
        wasm_bytes_handle: wasmPath,
        wit_version: entry.witVersion,
        on_exit: "None",
        initial_capabilities: caps,
        public: entry.public
      }
    }
  }, { timeout: 5, inherit: true }).response.body)
  if (initialized !== "InitializedProcess") {
    throw new ScriptError(`the kernel did not start ${name} (${JSON.stringify(initialized)}; its reason is printed above)`)
  }
  // Caps the script's entry gives other processes, issued by the new process.
  for (const g of grants) {
    send(kernel, { json: { GrantCapabilities: { target: g.process, capabilities: [{ issuer: `${node}@${id}`, params: g.params }] } } })
  }
  const ran = json<unknown>(call(kernel, { json: { RunProcess: id } }, { timeout: 5 }).response.body)
  if (ran !== "StartedProcess") throw new ScriptError(`the kernel did not run ${name} (${JSON.stringify(ran)})`)
  return processId(id)
}

/** One line from the native terminal. */
const command = (self: Address, aliases: ReadonlyMap<string, string>, line: string): void => {
  if (line === "") return
  const space = line.indexOf(" ")
  const head = space < 0 ? line : line.slice(0, space)
  const args = space < 0 ? "" : line.slice(space + 1)
  const process = aliases.get(head) ?? (isProcessId(head) ? head : undefined)
  if (process === undefined) throw new ScriptError(`'${head}' not found, either as an alias or process ID`)
  runScriptProcess(self, process, args)
}

type EditAliasResponse = "AliasSet" | "AliasRemoved" | "AliasNotFound" | "InvalidProcessId"

const editAlias = (aliases: Map<string, string>, alias: string, process: string | null, quiet: boolean): EditAliasResponse => {
  const say = (s: string) => {
    if (!quiet) print(s)
  }
  let answer: EditAliasResponse
  if (process !== null) {
    if (!isProcessId(process)) {
      say(`alias ${alias}: ${process} is not a process id`)
      return "InvalidProcessId"
    }
    aliases.set(alias, process)
    say(`alias ${alias} set for ${process}`)
    answer = "AliasSet"
  } else if (aliases.delete(alias)) {
    say(`alias ${alias} removed`)
    answer = "AliasRemoved"
  } else {
    say(`alias ${alias} not found`)
    answer = "AliasNotFound"
  }
  saveAliases(aliases)
  return answer
}

export const runTerminal = (self: Address): void => {
  const aliases = loadAliases(self)
  const ours = addressText(self)
  while (true) {
    const m = awaitMessage()
    if (m.kind === "error") {
      print(`terminal: ${m.error.message}`)
      continue
    }
    if (m.kind === "response") {
      print(text(m.response.body))
      continue
    }
    const source = m.source
    if (addressText(source) === ours) {
      try {
        command(self, aliases, text(m.request.body))
      } catch (e) {
        print(`error calling script: ${e instanceof Error ? e.message : String(e)}`)
      }
      continue
    }
    const samePackage = source.node === self.node && source.process.packageName === self.process.packageName &&
      source.process.publisherNode === self.process.publisherNode
    if (!samePackage) {
      print(`terminal: ignoring a message from ${addressText(source)}`, 2)
      continue
    }
    let request: unknown
    try {
      request = JSON.parse(text(m.request.body))
    } catch {
      request = undefined
    }
    const edit = isRecord(request) ? request["EditAlias"] : undefined
    if (!isRecord(edit) || typeof edit["alias"] !== "string" || !(typeof edit["process"] === "string" || edit["process"] === null)) {
      print(`terminal: failed to parse a terminal request from ${addressText(source)}`)
      continue
    }
    const expects = m.request.expectsResponse != null
    // A script that waits for the answer prints it; else the terminal says what it did.
    const answer = editAlias(aliases, edit["alias"], edit["process"] as string | null, expects)
    if (expects) respond({ json: { EditAlias: answer } })
  }
}
