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
 * If a step after validation fails (an I/O error, a component that will not
 * instantiate, or, when the caller asks to watch the start (`watchMs`), a process that
 * crashes or ends in that time), the new processes are killed, the drive is removed,
 * and the previous version, if any, is installed again from its zip copy with the caps
 * its processes held; then the error is returned. Installs and uninstalls run one at a
 * time, whoever asks (terminal, app store, homepage, boot).
 *
 * Installing the same zip again ends in the same processes and caps (Kinode's
 * semantics: processes are re-initialized, so caps other processes granted them at run
 * time are lost, as are the files they wrote into the pkg drive; state, other drives
 * and databases are kept). The zip copy doubles as the record of what is installed:
 * its SHA-256 (vfs `Hash`) tells a boot whether a bundled package changed, its
 * manifest tells an upgrade which processes to stop, and `installed()` lists the
 * packages that have one (hashes kept in memory once known).
 */
import { Context, Effect, Layer, Result, Semaphore } from "effect"
import { createHash } from "node:crypto"
import { capabilityKey } from "../../src/Capabilities.ts"
import { address } from "../../src/Ids.ts"
import { Kernel } from "../../src/Kernel.ts"
import type { Capability } from "../../src/Message.ts"
import {
  type InstallError, type Manifest, NotInstalled, type PackageId, packageText, parseManifest, ProcessFailed, VfsFailed
} from "./Manifest.ts"
import { checkPackageId, type Plan, planPackage, type RequestedCapability, requestedOf } from "./Plan.ts"
import { makeVfsCalls } from "./VfsCalls.ts"

export { DEFAULT_WIT_VERSION, type RequestedCapability } from "./Plan.ts"

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

/** A package installed on the node: its zip copy's hash and its processes now (spawned ones too). */
export interface InstalledPackage {
  readonly package: string
  readonly hash: string
  readonly processes: ReadonlyArray<string>
}

export interface InstallOptions {
  /**
   * The requested capabilities the user approved (as listed by `requested`); any other
   * requested one is withheld. Absent: all of them (bundled and sideloaded packages).
   */
  readonly approved?: ReadonlyArray<RequestedCapability>
  /** The processes' `wit_version` (the app store's `Install` carries the metadata); else `metadata.json`'s. */
  readonly witVersion?: number | undefined
  /**
   * Watch the started processes this long (ms): one that crashes or ends in that time
   * (it trapped at init, say) fails the install (`ProcessFailed`, step `init`) and it is
   * rolled back. Absent or 0: no watch (bundled apps).
   */
  readonly watchMs?: number | undefined
}

/** What the user-facing install paths (terminal, `--install`, the app store) watch a start for. */
export const INIT_WATCH_MS = 1000

export class Packages extends Context.Service<Packages, {
  readonly install: (pkg: PackageId, zip: Uint8Array, options?: InstallOptions) => Effect.Effect<Installed, InstallError>
  /** What installing `zip` would ask the user for; changes nothing. */
  readonly requested: (pkg: PackageId, zip: Uint8Array) => Effect.Effect<ReadonlyArray<RequestedCapability>, InstallError>
  /** The whole check of a zip (everything but the node's state); changes nothing. */
  readonly plan: (pkg: PackageId, zip: Uint8Array) => Effect.Effect<Plan, InstallError>
  /** Kills every process of the package (its caps, and caps it issued, go with it) and removes its pkg drive. */
  readonly uninstall: (pkg: PackageId) => Effect.Effect<ReadonlyArray<string>, NotInstalled | VfsFailed>
  /** SHA-256 of the installed zip copy, or undefined when the package is not installed. */
  readonly installedHash: (pkg: PackageId) => Effect.Effect<string | undefined>
  /** Every installed package (a pkg drive with its zip copy), by id. */
  readonly installed: () => Effect.Effect<ReadonlyArray<InstalledPackage>>
}>()("services/packages/Packages") {
  static readonly layer = Layer.effect(Packages, Effect.suspend(() => make))
}

export const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

const VFS = "vfs:distro:sys"
/** How often a watched start is looked at. */
const WATCH_STEP_MS = 20

const make = Effect.gen(function*() {
  const kernel = yield* Kernel
  const node = kernel.node
  const vfsAddress = address(`${node}@${VFS}`)
  /** One install or uninstall at a time. */
  const lock = yield* Semaphore.make(1)
  /** Hashes of installed zip copies, by package, once known (installs set them, uninstalls drop them). */
  const hashes = new Map<string, string>()

  const vfs = makeVfsCalls(kernel)

  const driveCaps = (drive: string): ReadonlyArray<Capability> => [
    { issuer: vfsAddress, params: JSON.stringify({ kind: "read", drive }) },
    { issuer: vfsAddress, params: JSON.stringify({ kind: "write", drive }) }
  ]

  const planContext = { node, isRuntime: (id: string) => kernel.info(id)?.status === "runtime" }
  const validate = (p: PackageId, zip: Uint8Array) => planPackage(planContext, p, zip)

  const approvalKey = (process: string, c: Capability) => `${process}\u0001${capabilityKey(c.issuer, c.params)}`

  /** Fails when a watched process crashes or ends within `ms` of starting. */
  const watchStart = (pkg: string, ids: ReadonlyArray<string>, ms: number) =>
    Effect.gen(function*() {
      for (let waited = 0; waited < ms; waited += WATCH_STEP_MS) {
        yield* Effect.sleep(WATCH_STEP_MS)
        for (const id of ids) {
          const info = kernel.info(id)
          if (info !== undefined && (info.status === "running" || info.status === "waiting")) continue
          const what = info === undefined || info.status === "exited"
            ? "it ended"
            : info.status === "stopped"
            ? `it crashed and was stopped (${info.stoppedBecause ?? "crash loop"})`
            : info.status === "restarting"
            ? "it crashed or returned from init, and is restarting (on-exit Restart)"
            : `it is ${info.status}`
          return yield* new ProcessFailed({ package: pkg, process: id, step: "init", reason: `${what} within ${ms} ms of starting` })
        }
      }
    })

  /** Puts a validated plan on the node. */
  const apply = (plan: Plan, options: InstallOptions, replaces: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      const { pkg, drive } = plan
      const approved = options.approved
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
          witVersion: options.witVersion ?? plan.witVersion,
          onExit: e.onExit,
          public: e.public,
          capabilities: [...granted, ...driveCaps(drive)],
          bytes: e.bytes,
          // Names with `_` (Kinode before Kimap) were checked by the plan (`checkLegacySafe`).
          legacyNames: true
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
      if (options.watchMs !== undefined && options.watchMs > 0) yield* watchStart(pkg, ids, options.watchMs)
      const hash = sha256Hex(plan.zip)
      hashes.set(pkg, hash)
      return { package: pkg, hash, processes: ids, withheld, skippedGrants } satisfies Installed
    })

  /** The installed version: its validated zip copy and the caps its processes hold now. */
  const previousOf = (p: PackageId) =>
    Effect.gen(function*() {
      const pkg = packageText(p)
      const r = yield* Effect.option(vfs(pkg, `/${pkg}/pkg/${pkg}.zip`, "Read"))
      if (r._tag === "None" || r.value.blob === undefined) return undefined
      const plan = yield* Effect.option(validate(p, r.value.blob.bytes))
      if (plan._tag === "None") return undefined
      const held: Array<RequestedCapability> = plan.value.entries.flatMap((e) =>
        (kernel.info(e.id.toString())?.capabilities ?? []).map((c) => ({ process: e.id.toString(), capability: c }))
      )
      return { plan: plan.value, held }
    })

  const install = (p: PackageId, zip: Uint8Array, options: InstallOptions = {}) =>
    Effect.gen(function*() {
      const plan = yield* validate(p, zip)
      const pkg = plan.pkg
      const previous = yield* previousOf(p)
      const replaces = previous?.plan.entries.map((e) => e.id.toString()) ?? []
      return yield* apply(plan, options, replaces).pipe(
        Effect.tapError((error) =>
          Effect.gen(function*() {
            // The caller says why to the user (Describe.ts); this is for the log.
            yield* Effect.logDebug(`installing ${pkg} failed, rolling back`, error)
            hashes.delete(pkg)
            for (const e of plan.entries) yield* kernel.kill(e.id.toString())
            yield* Effect.ignore(vfs(pkg, plan.drive, "RemoveDirAll"))
            if (previous !== undefined) {
              const restored = yield* Effect.result(apply(previous.plan, { approved: previous.held }, []))
              if (Result.isFailure(restored)) {
                hashes.delete(pkg)
                for (const e of previous.plan.entries) yield* kernel.kill(e.id.toString())
                yield* Effect.ignore(vfs(pkg, plan.drive, "RemoveDirAll"))
                yield* Effect.logError(`could not restore the previous version of ${pkg}`, restored.failure)
              }
            }
          })
        )
      )
    }).pipe(lock.withPermits(1), Effect.withSpan("Packages.install", { attributes: { package: packageText(p) } }))

  const requested = (p: PackageId, zip: Uint8Array) => Effect.map(validate(p, zip), requestedOf)

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

  /** The processes of a package now: its manifest's and any they spawned (not runtime modules). */
  const processesOf = (pkg: string) => {
    const suffix = `:${pkg}`
    return kernel.processes()
      .filter((i) => i.status !== "runtime" && i.id.endsWith(suffix) && i.id.split(":").length === 3)
      .map((i) => i.id)
  }

  const uninstall = (p: PackageId) =>
    Effect.gen(function*() {
      const pkg = packageText(p)
      const manifest = yield* installedManifest(pkg)
      if (manifest === undefined) return yield* new NotInstalled({ package: pkg })
      // Killing one forgets its caps and revokes every cap it issued.
      const ids = processesOf(pkg)
      for (const id of ids) yield* kernel.kill(id)
      hashes.delete(pkg)
      yield* vfs(pkg, `/${pkg}/pkg`, "RemoveDirAll")
      return ids
    }).pipe(lock.withPermits(1), Effect.withSpan("Packages.uninstall", { attributes: { package: packageText(p) } }))

  const hashOf = (pkg: string) =>
    vfs(pkg, `/${pkg}/pkg/${pkg}.zip`, "Hash").pipe(
      Effect.map((r) => {
        const h = typeof r.body === "object" && r.body !== null && "Hash" in r.body ? r.body.Hash : undefined
        return Array.isArray(h) ? Buffer.from(h as Array<number>).toString("hex") : undefined
      }),
      Effect.catch(() => Effect.succeed(undefined))
    )

  const installedHash = (p: PackageId) => hashOf(packageText(p))

  /** `package:publisher` folders of the vfs root. */
  const packageDirs = vfs("", "/", "ReadDir").pipe(
    Effect.map((r) => {
      const list = typeof r.body === "object" && r.body !== null && "ReadDir" in r.body ? r.body.ReadDir : undefined
      if (!Array.isArray(list)) return []
      return list.flatMap((e: unknown) => {
        const { path, file_type } = (e ?? {}) as { path?: unknown; file_type?: unknown }
        return typeof path === "string" && file_type === "Directory" && isPackageIdText(path) ? [path] : []
      })
    }),
    Effect.catch(() => Effect.succeed([] as Array<string>))
  )

  const installed = () =>
    Effect.gen(function*() {
      const dirs = yield* packageDirs
      const found = yield* Effect.forEach(dirs, (pkg) =>
        Effect.gen(function*() {
          const known = hashes.get(pkg)
          const hash = known ?? (yield* hashOf(pkg))
          if (hash === undefined) return undefined
          if (known === undefined) hashes.set(pkg, hash)
          return { package: pkg, hash, processes: processesOf(pkg).sort() } satisfies InstalledPackage
        }), { concurrency: 8 })
      return found.filter((x) => x !== undefined).sort((a, b) => a.package.localeCompare(b.package))
    })

  return Packages.of({ install, requested, plan: validate, uninstall, installedHash, installed })
})

/** Whether `package:publisher` text is an id the installer accepts. */
const isPackageIdText = (text: string): boolean => {
  const [name, publisher, ...rest] = text.split(":")
  return rest.length === 0 && name !== undefined && publisher !== undefined && Result.isSuccess(checkPackageId({ package: name, publisher }))
}
