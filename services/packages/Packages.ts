/**
 * The package installer (kinode-semantics §7), as the kernel.
 *
 * Install first checks everything it can without touching the node (`validate`): the
 * zip (PackageZip.ts: limits, entry kinds, paths), `manifest.json`, `scripts.json`,
 * `metadata.json`, `api.zip`, every process id, capability, on-exit request and grant.
 * Only then does it unpack the zip into the vfs drive `/<package>:<publisher>/pkg`
 * through `vfs:distro:sys` (CreateDrive, RemoveDirAll, AddZip, Write of the zip copy,
 * AddZip of `api.zip` into `pkg/api`), kill the processes of the previous version and
 * of the new manifest, initialize each entry with exactly its requested caps that the
 * user approved (plus `network` if asked and approved, vfs read+write on its pkg drive
 * and messaging to itself), apply every entry's `grant_capabilities` once all exist
 * (to processes that exist; others are skipped, as Kinode's caps oracle drops them),
 * and run them all. Scripts are unpacked but not started: the terminal gives them
 * their caps when it runs one (§8).
 *
 * If a step after validation fails (an I/O error, or a component that will not
 * instantiate), the new processes are killed, the drive is removed, and the previous
 * version, if any, is installed again from its zip copy with the caps its processes
 * held; then the error is returned.
 *
 * Installing the same zip again ends in the same processes and caps (Kinode's
 * semantics: processes are re-initialized, so caps other processes granted them at run
 * time are lost, as are the files they wrote into the pkg drive; state, other drives
 * and databases are kept). The zip copy doubles as the record of what is installed:
 * its SHA-256 (vfs `Hash`) tells a boot whether a bundled package changed, and its
 * manifest tells an upgrade which processes to stop.
 */
import { Context, Effect, Layer, Result, Schema } from "effect"
import { createHash } from "node:crypto"
import { capabilityKey } from "../../src/Capabilities.ts"
import { address, Address, checkKimapSafe, parseProcessId, type ProcessId } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { Kernel, networkCap } from "../../src/Kernel.ts"
import { onExitFromJson, OnExitJson } from "../../src/KernelCommandProtocol.ts"
import type { Capability, OnExit, Request } from "../../src/Message.ts"
import { request } from "../../src/Message.ts"
import {
  type CapabilityRequest, firstIssue, type InstallError, InvalidPackageId, type Manifest, type ManifestEntry, ManifestInvalid,
  ManifestMissing, NotInstalled, PackageFileInvalid, type PackageId, packageText, parseManifest, parseMetadata, parseScripts,
  PathEscapes, ProcessFailed, safeRelativePath, VfsFailed
} from "./Manifest.ts"
import { readPackageZip } from "./PackageZip.ts"

/** A capability a manifest entry asks for (`request_capabilities`, `request_networking`). */
export interface RequestedCapability {
  /** The process that would hold it. */
  readonly process: string
  readonly capability: Capability
}

/** A `grant_capabilities` item not applied because the grantee does not exist. */
export interface SkippedGrant {
  readonly process: string
  readonly grantee: string
  readonly params: string
}

export interface Installed {
  readonly package: string
  /** Lower-case hex SHA-256 of the zip (the app store's version hash). */
  readonly hash: string
  readonly processes: ReadonlyArray<string>
  /** Requested capabilities the user did not approve, hence not granted. */
  readonly withheld: ReadonlyArray<RequestedCapability>
  readonly skippedGrants: ReadonlyArray<SkippedGrant>
}

export interface InstallOptions {
  /**
   * The requested capabilities the user approved (as listed by `requested`); any other
   * requested one is withheld. Absent: all of them (bundled and sideloaded packages).
   */
  readonly approved?: ReadonlyArray<RequestedCapability>
}

export class Packages extends Context.Service<Packages, {
  readonly install: (pkg: PackageId, zip: Uint8Array, options?: InstallOptions) => Effect.Effect<Installed, InstallError>
  /** What installing `zip` would ask the user for; changes nothing. */
  readonly requested: (pkg: PackageId, zip: Uint8Array) => Effect.Effect<ReadonlyArray<RequestedCapability>, InstallError>
  /** Kills every process of the package (its caps, and caps it issued, go with it) and removes its pkg drive. */
  readonly uninstall: (pkg: PackageId) => Effect.Effect<ReadonlyArray<string>, NotInstalled | VfsFailed>
  /** SHA-256 of the installed zip copy, or undefined when the package is not installed. */
  readonly installedHash: (pkg: PackageId) => Effect.Effect<string | undefined>
}>()("services/packages/Packages") {
  static readonly layer = Layer.effect(Packages, Effect.suspend(() => make))
}

export const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

/** `wit_version` of processes whose package has no `metadata.json` (or none in it). */
export const DEFAULT_WIT_VERSION = 1

const VFS = "vfs:distro:sys"
const utf8 = new TextDecoder()
const decodeOnExit = Schema.decodeUnknownResult(OnExitJson)

interface PlannedEntry {
  readonly index: number
  readonly id: ProcessId
  readonly wasm: string
  readonly bytes: Uint8Array
  readonly requested: ReadonlyArray<Capability>
  readonly onExit: OnExit
  readonly public: boolean
  readonly grants: ReadonlyArray<{ readonly grantee: string; readonly capability: Capability }>
}

interface Plan {
  readonly pkg: string
  readonly drive: string
  readonly zip: Uint8Array
  readonly entries: ReadonlyArray<PlannedEntry>
  readonly api: Uint8Array | undefined
  readonly witVersion: number
}

const make = Effect.gen(function*() {
  const kernel = yield* Kernel
  const node = kernel.node
  const vfsAddress = address(`${node}@${VFS}`)

  /** One vfs request as the kernel (which vfs lets do anything); the decoded JSON reply. */
  const vfs = (pkg: string, path: string, action: string, blob?: Uint8Array) =>
    Effect.gen(function*() {
      const req: Request = request({ body: Json.toBytes({ path, action }), expectsResponse: 30n })
      const r = yield* kernel.call(vfsAddress, req, blob === undefined ? undefined : { mime: undefined, bytes: blob }).pipe(
        Effect.mapError((e) => new VfsFailed({ package: pkg, action, path, reply: e._tag === "CallTimedOut" ? "timeout" : e.reason }))
      )
      const parsed = Json.parseBytes(r.message.body)
      const body = Result.isSuccess(parsed) ? parsed.success : undefined
      if (typeof body === "object" && body !== null && "Err" in body) {
        return yield* new VfsFailed({ package: pkg, action, path, reply: JSON.stringify(body) })
      }
      return { body, blob: r.blob }
    })

  const driveCaps = (drive: string): ReadonlyArray<Capability> => [
    { issuer: vfsAddress, params: JSON.stringify({ kind: "read", drive }) },
    { issuer: vfsAddress, params: JSON.stringify({ kind: "write", drive }) }
  ]

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
  const requestedCap = (pkg: string, field: string, req: CapabilityRequest): Result.Result<Capability, ManifestInvalid> => {
    const issuerText = typeof req === "string" ? req : req.process
    const issuer = addressOf(issuerText)
    if (issuer === undefined) return Result.fail(new ManifestInvalid({ package: pkg, field, issue: `not a process id: ${issuerText}` }))
    return Result.succeed({ issuer, params: paramsOf(req) })
  }

  /** A granted capability: the named process gets a cap issued by `issuer` (messaging for a string). */
  const grantOf = (
    pkg: string,
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

  const onExitOf = (pkg: string, field: string, e: ManifestEntry["on_exit"]): Result.Result<OnExit, ManifestInvalid> => {
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

  const processIdIn = (name: string, packageName: string, publisher: string) =>
    Result.flatMap(parseProcessId(`${name}:${packageName}:${publisher}`), checkKimapSafe)

  /** Everything that can be checked before touching the node. */
  const validate = (pkg: string, zip: Uint8Array) =>
    Effect.gen(function*(): Effect.fn.Return<Plan, InstallError> {
      const [packageName, publisher] = pkg.split(":") as [string, string]
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
            return yield* bad(key, "not <name>.wasm with a Kimap-safe name")
          }
          if (files[key] === undefined) return yield* bad(key, `no file ${key} in the package`)
          for (const [j, c] of (script.request_capabilities ?? []).entries()) {
            yield* Effect.fromResult(Result.mapError(requestedCap(pkg, "", c), (e) => bad(`${key}.request_capabilities[${j}]`, e.issue)))
          }
          for (const [j, c] of (script.grant_capabilities ?? []).entries()) {
            const g = typeof c === "string" ? c : c.process
            if (Result.isFailure(parseProcessId(g))) return yield* bad(`${key}.grant_capabilities[${j}]`, `not a process id: ${g}`)
          }
        }
      }

      let witVersion = DEFAULT_WIT_VERSION
      const metadataText = text("metadata.json")
      if (metadataText !== undefined) {
        const metadata = yield* Effect.fromResult(parseMetadata(pkg, metadataText))
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
        if (kernel.info(id.success.toString())?.status === "runtime") {
          return yield* new ManifestInvalid({ package: pkg, field: field("process_name"), issue: `${id.success} is a runtime process` })
        }
        const wasm = safeRelativePath(entry.process_wasm_path)
        if (wasm === undefined) return yield* new PathEscapes({ package: pkg, path: entry.process_wasm_path })
        const bytes = wasm.endsWith("/") ? undefined : files[wasm]
        if (bytes === undefined) {
          return yield* new ManifestInvalid({ package: pkg, field: field("process_wasm_path"), issue: `no file ${wasm} in the package` })
        }
        const requested: Array<Capability> = []
        for (const [j, c] of entry.request_capabilities.entries()) {
          requested.push(yield* Effect.fromResult(requestedCap(pkg, field(`request_capabilities[${j}]`), c)))
        }
        if (entry.request_networking) requested.push(networkCap(node))
        const onExit = yield* Effect.fromResult(onExitOf(pkg, field("on_exit"), entry.on_exit))
        const grants = []
        for (const [j, g] of entry.grant_capabilities.entries()) {
          grants.push(yield* Effect.fromResult(grantOf(pkg, field(`grant_capabilities[${j}]`), id.success, g)))
        }
        entries.push({ index: i, id: id.success, wasm, bytes, requested, onExit, public: entry.public, grants })
      }
      return { pkg, drive: `/${pkg}/pkg`, zip, entries, api, witVersion }
    })

  const checkPackageId = (p: PackageId) => {
    const pkg = packageText(p)
    const probe = Result.flatMap(parseProcessId(`p:${pkg}`), checkKimapSafe)
    return Result.isFailure(probe) ? Effect.fail(new InvalidPackageId({ package: pkg, reason: probe.failure.reason })) : Effect.succeed(pkg)
  }

  const approvalKey = (process: string, c: Capability) => `${process}\u0001${capabilityKey(c.issuer, c.params)}`

  /** Puts a validated plan on the node. */
  const apply = (plan: Plan, approved: ReadonlyArray<RequestedCapability> | undefined, replaces: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const { pkg, drive } = plan
      // A clean drive each time: files dropped from a new version must not linger.
      yield* vfs(pkg, drive, "CreateDrive")
      yield* vfs(pkg, drive, "RemoveDirAll")
      yield* vfs(pkg, drive, "CreateDrive")
      yield* vfs(pkg, drive, "AddZip", plan.zip)
      yield* vfs(pkg, `${drive}/${pkg}.zip`, "Write", plan.zip)
      if (plan.api !== undefined) yield* vfs(pkg, `${drive}/api`, "AddZip", plan.api)
      const ids = plan.entries.map((e) => e.id.toString())
      for (const id of new Set([...replaces, ...ids])) yield* kernel.kill(id)
      const allowed = approved === undefined ? undefined : new Set(approved.map((a) => approvalKey(a.process, a.capability)))
      const withheld: Array<RequestedCapability> = []
      for (const e of plan.entries) {
        const id = e.id.toString()
        const granted = e.requested.filter((c) => {
          const ok = allowed === undefined || allowed.has(approvalKey(id, c))
          if (!ok) withheld.push({ process: id, capability: c })
          return ok
        })
        yield* kernel.initialize({
          id: e.id,
          handle: `${drive}/${e.wasm}`,
          witVersion: plan.witVersion,
          onExit: e.onExit,
          public: e.public,
          capabilities: [...granted, ...driveCaps(drive)],
          bytes: e.bytes
        }).pipe(Effect.mapError((err) => new ProcessFailed({ package: pkg, process: id, step: "initialize", reason: err.reason })))
      }
      // Only once every entry exists may they grant each other caps (Kinode's order).
      const skippedGrants: Array<SkippedGrant> = []
      for (const e of plan.entries) {
        for (const g of e.grants) {
          if (kernel.info(g.grantee) === undefined) {
            skippedGrants.push({ process: e.id.toString(), grantee: g.grantee, params: g.capability.params })
            continue
          }
          yield* kernel.grant(g.grantee, [g.capability])
        }
      }
      for (const id of ids) {
        yield* kernel.run(id).pipe(
          Effect.mapError((err) => new ProcessFailed({ package: pkg, process: err.id, step: "run", reason: err.reason }))
        )
      }
      return { package: pkg, hash: sha256Hex(plan.zip), processes: ids, withheld, skippedGrants } satisfies Installed
    })

  /** The installed version: its validated zip copy and the caps its processes hold now. */
  const previousOf = (pkg: string) =>
    Effect.gen(function*() {
      const r = yield* Effect.option(vfs(pkg, `/${pkg}/pkg/${pkg}.zip`, "Read"))
      if (r._tag === "None" || r.value.blob === undefined) return undefined
      const plan = yield* Effect.option(validate(pkg, r.value.blob.bytes))
      if (plan._tag === "None") return undefined
      const held: Array<RequestedCapability> = plan.value.entries.flatMap((e) =>
        (kernel.info(e.id.toString())?.capabilities ?? []).map((c) => ({ process: e.id.toString(), capability: c }))
      )
      return { plan: plan.value, held }
    })

  const install = (p: PackageId, zip: Uint8Array, options: InstallOptions = {}) =>
    Effect.gen(function*() {
      const pkg = yield* checkPackageId(p)
      const plan = yield* validate(pkg, zip)
      const previous = yield* previousOf(pkg)
      const replaces = previous?.plan.entries.map((e) => e.id.toString()) ?? []
      return yield* apply(plan, options.approved, replaces).pipe(
        Effect.tapError((error) =>
          Effect.gen(function*() {
            yield* Effect.logWarning(`installing ${pkg} failed, rolling back`, error)
            for (const e of plan.entries) yield* kernel.kill(e.id.toString())
            yield* Effect.ignore(vfs(pkg, plan.drive, "RemoveDirAll"))
            if (previous !== undefined) {
              const restored = yield* Effect.result(apply(previous.plan, previous.held, []))
              if (Result.isFailure(restored)) {
                for (const e of previous.plan.entries) yield* kernel.kill(e.id.toString())
                yield* Effect.ignore(vfs(pkg, plan.drive, "RemoveDirAll"))
                yield* Effect.logError(`could not restore the previous version of ${pkg}`, restored.failure)
              }
            }
          })
        )
      )
    }).pipe(Effect.withSpan("Packages.install", { attributes: { package: packageText(p) } }))

  const requested = (p: PackageId, zip: Uint8Array) =>
    Effect.gen(function*() {
      const pkg = yield* checkPackageId(p)
      const plan = yield* validate(pkg, zip)
      return plan.entries.flatMap((e) => e.requested.map((capability) => ({ process: e.id.toString(), capability })))
    })

  const installedManifest = (pkg: string): Effect.Effect<Manifest | undefined> =>
    vfs(pkg, `/${pkg}/pkg/manifest.json`, "ReadToString").pipe(
      Effect.map((r) => {
        const text = typeof r.body === "object" && r.body !== null && "ReadToString" in r.body ? String(r.body.ReadToString) : undefined
        if (text === undefined) return undefined
        const m = parseManifest(pkg, text)
        return Result.isSuccess(m) ? m.success : undefined
      }),
      Effect.catch(() => Effect.succeed(undefined))
    )

  const uninstall = (p: PackageId) =>
    Effect.gen(function*() {
      const pkg = packageText(p)
      const manifest = yield* installedManifest(pkg)
      if (manifest === undefined) return yield* new NotInstalled({ package: pkg })
      // Every process of the package: the manifest's and any it spawned. Killing one
      // forgets its caps and revokes every cap it issued.
      const suffix = `:${pkg}`
      const ids = kernel.processes()
        .filter((i) => i.status !== "runtime" && i.id.endsWith(suffix) && i.id.split(":").length === 3)
        .map((i) => i.id)
      for (const id of ids) yield* kernel.kill(id)
      yield* vfs(pkg, `/${pkg}/pkg`, "RemoveDirAll")
      return ids
    }).pipe(Effect.withSpan("Packages.uninstall", { attributes: { package: packageText(p) } }))

  const installedHash = (p: PackageId) => {
    const pkg = packageText(p)
    return vfs(pkg, `/${pkg}/pkg/${pkg}.zip`, "Hash").pipe(
      Effect.map((r) => {
        const h = typeof r.body === "object" && r.body !== null && "Hash" in r.body ? r.body.Hash : undefined
        return Array.isArray(h) ? Buffer.from(h as Array<number>).toString("hex") : undefined
      }),
      Effect.catch(() => Effect.succeed(undefined))
    )
  }

  return Packages.of({ install, requested, uninstall, installedHash })
})
