/**
 * Everything about a package zip that can be checked without touching the node
 * (kinode-semantics §7): the zip (PackageZip.ts: limits, entry kinds, paths),
 * `manifest.json`, `scripts.json`, `metadata.json` (both forms, Manifest.ts), `api.zip`,
 * every process id, capability, on-exit request and grant. The result is the plan the
 * installer (Packages.ts) puts on the node, and what it would ask the user for.
 *
 * Names: process, package and script names are checked with `checkLegacySafe`
 * (src/Ids.ts): Kimap-safe (`a-z 0-9 -`) or, as Kinode accepted before Kimap, with `_`
 * too (`app_store`, `kns_indexer`, `get_block.wasm`); the publisher as a node name
 * (`a-z 0-9 . -`).
 */
import { Effect, Result, Schema } from "effect"
import { Address, checkLegacySafe, parseProcessId, type ProcessId } from "../../src/Ids.ts"
import { networkCap } from "../../src/Kernel.ts"
import { onExitFromJson, OnExitJson } from "../../src/KernelCommandProtocol.ts"
import type { Capability, OnExit } from "../../src/Message.ts"
import {
  type CapabilityRequest, firstIssue, type InstallError, InvalidPackageId, type Manifest, type ManifestEntry, ManifestInvalid,
  ManifestMissing, type Metadata, PackageFileInvalid, type PackageId, packageText, parseManifest, parseMetadata, parseScripts, PathEscapes,
  safeRelativePath
} from "./Manifest.ts"
import { readPackageZip } from "./PackageZip.ts"

/** `wit_version` of processes whose package has no `metadata.json` (or none in it). */
export const DEFAULT_WIT_VERSION = 1

/** A capability a manifest entry asks for (`request_capabilities`, `request_networking`). */
export interface RequestedCapability {
  /** The process that would hold it. */
  readonly process: string
  readonly capability: Capability
}

export interface PlannedEntry {
  readonly index: number
  readonly id: ProcessId
  readonly wasm: string
  readonly bytes: Uint8Array
  readonly requested: ReadonlyArray<Capability>
  readonly onExit: OnExit
  readonly public: boolean
  readonly grants: ReadonlyArray<{ readonly grantee: string; readonly capability: Capability }>
}

export interface Plan {
  readonly pkg: string
  readonly drive: string
  readonly zip: Uint8Array
  readonly entries: ReadonlyArray<PlannedEntry>
  readonly api: Uint8Array | undefined
  readonly witVersion: number
  /** `metadata.json` of the zip, either form, read into the current one. */
  readonly metadata: Metadata | undefined
}

export interface PlanContext {
  /** This node's name: capabilities' issuers, `our@` targets. */
  readonly node: string
  /** Whether a process id is a runtime module's (a package may not take it). */
  readonly isRuntime: (id: string) => boolean
}

const utf8 = new TextDecoder()
const decodeOnExit = Schema.decodeUnknownResult(OnExitJson)

/** `process:package:publisher` with legacy-safe names. */
export const processIdIn = (name: string, packageName: string, publisher: string) =>
  Result.flatMap(parseProcessId(`${name}:${packageName}:${publisher}`), checkLegacySafe)

/** `package:publisher` when it can name an installed package (legacy names too). */
export const checkPackageId = (p: PackageId): Result.Result<string, InvalidPackageId> => {
  const pkg = packageText(p)
  const probe = Result.flatMap(parseProcessId(`p:${pkg}`), checkLegacySafe)
  return Result.isFailure(probe) ? Result.fail(new InvalidPackageId({ package: pkg, reason: probe.failure.reason })) : Result.succeed(pkg)
}

/** The capabilities a plan asks for, by process. */
export const requestedOf = (plan: Plan): ReadonlyArray<RequestedCapability> =>
  plan.entries.flatMap((e) => e.requested.map((capability) => ({ process: e.id.toString(), capability })))

export const planPackage = (ctx: PlanContext, p: PackageId, zip: Uint8Array): Effect.Effect<Plan, InstallError> =>
  Effect.gen(function*() {
    const { node } = ctx
    const pkg = yield* Effect.fromResult(checkPackageId(p))
    const [packageName, publisher] = [p.package, p.publisher]

    /** `node@process`, `our@process` or a bare process id (this node) as an address. */
    const addressOf = (text: string): Address | undefined => {
      const at = text.indexOf("@")
      const nodeText = at < 0 || text.slice(0, at) === "our" ? node : text.slice(0, at)
      const pid = parseProcessId(text.slice(at + 1))
      if (Result.isFailure(pid) || nodeText.length === 0) return undefined
      return new Address({ node: nodeText, process: pid.success }, { disableChecks: true })
    }

    const paramsOf = (req: CapabilityRequest) => (typeof req === "string" ? "\"messaging\"" : JSON.stringify(req.params))

    /** A requested capability: issued by the named process (messaging for a string). */
    const requestedCap = (field: string, req: CapabilityRequest): Result.Result<Capability, ManifestInvalid> => {
      const issuerText = typeof req === "string" ? req : req.process
      const issuer = addressOf(issuerText)
      if (issuer === undefined) return Result.fail(new ManifestInvalid({ package: pkg, field, issue: `not a process id: ${issuerText}` }))
      return Result.succeed({ issuer, params: paramsOf(req) })
    }

    /** A granted capability: the named process gets a cap issued by `issuer` (messaging for a string). */
    const grantOf = (
      field: string,
      issuer: ProcessId,
      req: CapabilityRequest
    ): Result.Result<{ readonly grantee: string; readonly capability: Capability }, ManifestInvalid> => {
      const granteeText = typeof req === "string" ? req : req.process
      const grantee = parseProcessId(granteeText)
      if (Result.isFailure(grantee)) {
        return Result.fail(new ManifestInvalid({ package: pkg, field, issue: `not a process id: ${granteeText}` }))
      }
      const capability: Capability = {
        issuer: new Address({ node, process: issuer }, { disableChecks: true }),
        params: paramsOf(req)
      }
      return Result.succeed({ grantee: grantee.success.toString(), capability })
    }

    const onExitOf = (field: string, e: ManifestEntry["on_exit"]): Result.Result<OnExit, ManifestInvalid> => {
      if (e === "None" || e === "Restart") return Result.succeed(onExitFromJson(e))
      const requests = []
      for (const [k, [target, r, blob]] of e.Requests.entries()) {
        const to = addressOf(target)
        if (to === undefined) {
          return Result.fail(new ManifestInvalid({ package: pkg, field: `${field}.Requests[${k}][0]`, issue: `not an address: ${target}` }))
        }
        requests.push([to.toString(), r, blob])
      }
      const decoded = decodeOnExit({ Requests: requests })
      if (Result.isFailure(decoded)) {
        const first = firstIssue(decoded.failure.issue)
        return Result.fail(new ManifestInvalid({ package: pkg, field: `${field}.${first.field}`, issue: first.issue }))
      }
      return Result.succeed(onExitFromJson(decoded.success))
    }

    const files = yield* readPackageZip(pkg, zip)
    const text = (name: string) => (files[name] === undefined ? undefined : utf8.decode(files[name]))

    const manifestText = text("manifest.json")
    if (manifestText === undefined) return yield* new ManifestMissing({ package: pkg })
    const manifest: Manifest = yield* Effect.fromResult(parseManifest(pkg, manifestText))

    const scriptsText = text("scripts.json")
    if (scriptsText !== undefined) {
      const scripts = yield* Effect.fromResult(parseScripts(pkg, scriptsText))
      for (const [key, script] of Object.entries(scripts)) {
        const bad = (field: string, issue: string) => new PackageFileInvalid({ package: pkg, file: "scripts.json", field, issue })
        const name = key.endsWith(".wasm") ? key.slice(0, -".wasm".length) : undefined
        if (name === undefined || name.includes("/") || Result.isFailure(processIdIn(name, packageName, publisher))) {
          return yield* bad(key, "not <name>.wasm with a Kimap-safe (or legacy, with _) name")
        }
        if (files[key] === undefined) return yield* bad(key, `no file ${key} in the package`)
        for (const [j, c] of (script.request_capabilities ?? []).entries()) {
          yield* Effect.fromResult(Result.mapError(requestedCap("", c), (e) => bad(`${key}.request_capabilities[${j}]`, e.issue)))
        }
        for (const [j, c] of (script.grant_capabilities ?? []).entries()) {
          const g = typeof c === "string" ? c : c.process
          if (Result.isFailure(parseProcessId(g))) return yield* bad(`${key}.grant_capabilities[${j}]`, `not a process id: ${g}`)
        }
      }
    }

    let witVersion = DEFAULT_WIT_VERSION
    let metadata: Metadata | undefined
    const metadataText = text("metadata.json")
    if (metadataText !== undefined) {
      metadata = yield* Effect.fromResult(parseMetadata(pkg, metadataText))
      const { package_name, publisher: metaPublisher, wit_version } = metadata.properties
      if (package_name !== packageName || metaPublisher !== publisher) {
        return yield* new PackageFileInvalid({
          package: pkg,
          file: "metadata.json",
          field: package_name !== packageName ? "properties.package_name" : "properties.publisher",
          issue: `metadata names ${package_name}:${metaPublisher}, installing as ${pkg}`
        })
      }
      if (wit_version !== undefined && wit_version !== null) witVersion = wit_version
    }

    const api = files["api.zip"]
    if (api !== undefined) yield* readPackageZip(pkg, api, "api.zip/")

    const entries: Array<PlannedEntry> = []
    const names = new Set<string>()
    for (const [i, entry] of manifest.entries()) {
      const field = (f: string) => `[${i}].${f}`
      if (names.has(entry.process_name)) {
        return yield* new ManifestInvalid({ package: pkg, field: field("process_name"), issue: `duplicate process name ${entry.process_name}` })
      }
      names.add(entry.process_name)
      const id = processIdIn(entry.process_name, packageName, publisher)
      if (Result.isFailure(id)) return yield* new ManifestInvalid({ package: pkg, field: field("process_name"), issue: id.failure.reason })
      if (ctx.isRuntime(id.success.toString())) {
        return yield* new ManifestInvalid({ package: pkg, field: field("process_name"), issue: `${id.success} is a runtime process` })
      }
      const wasm = safeRelativePath(entry.process_wasm_path)
      if (wasm === undefined) return yield* new PathEscapes({ package: pkg, path: entry.process_wasm_path })
      const bytes = wasm.endsWith("/") ? undefined : files[wasm]
      if (bytes === undefined) {
        return yield* new ManifestInvalid({ package: pkg, field: field("process_wasm_path"), issue: `no file ${wasm} in the package` })
      }
      const requested: Array<Capability> = []
      for (const [j, c] of (entry.request_capabilities ?? []).entries()) {
        requested.push(yield* Effect.fromResult(requestedCap(field(`request_capabilities[${j}]`), c)))
      }
      if (entry.request_networking) requested.push(networkCap(node))
      const onExit = yield* Effect.fromResult(onExitOf(field("on_exit"), entry.on_exit))
      const grants = []
      for (const [j, g] of (entry.grant_capabilities ?? []).entries()) {
        grants.push(yield* Effect.fromResult(grantOf(field(`grant_capabilities[${j}]`), id.success, g)))
      }
      entries.push({ index: i, id: id.success, wasm, bytes, requested, onExit, public: entry.public, grants })
    }
    return { pkg, drive: `/${pkg}/pkg`, zip, entries, api, witVersion, metadata }
  })
