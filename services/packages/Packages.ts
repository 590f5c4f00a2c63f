/**
 * The package installer (kinode-semantics §7), as the kernel: unpacks a package zip
 * into its vfs drive `/<package>:<publisher>/pkg` through `vfs:distro:sys`
 * (CreateDrive, RemoveDirAll, AddZip, Write of the zip copy), then for each manifest
 * entry kills the old process, initializes it with exactly the requested caps (plus
 * `network` if asked, vfs read+write on its pkg drive and messaging to itself), applies
 * every entry's `grant_capabilities`, and runs them all.
 *
 * Installing the same zip twice leaves the same processes and caps (idempotent).
 * The installed zip copy doubles as the record of what is installed: its SHA-256 (vfs
 * `Hash`) tells a boot whether a bundled package changed, and its manifest tells
 * `uninstall` which processes to stop.
 */
import { Context, Effect, Layer, Result } from "effect"
import { unzipSync } from "fflate"
import { createHash } from "node:crypto"
import { address, Address, checkKimapSafe, parseProcessId } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { Kernel, networkCap } from "../../src/Kernel.ts"
import type { Capability, OnExit, Request } from "../../src/Message.ts"
import { request } from "../../src/Message.ts"
import { SendRefused } from "../../src/ProcessApi.ts"
import {
  type CapabilityRequest, type InstallError, InvalidPackageId, type Manifest, type ManifestEntry, ManifestInvalid, ManifestMissing,
  NotInstalled, type PackageId, packageText, parseManifest, PathEscapes, ProcessFailed, safeRelativePath, VfsFailed,
  ZipUnreadable
} from "./Manifest.ts"

export interface Installed {
  readonly package: string
  /** Lower-case hex SHA-256 of the zip (the app store's version hash). */
  readonly hash: string
  readonly processes: ReadonlyArray<string>
}

export class Packages extends Context.Service<Packages, {
  readonly install: (pkg: PackageId, zip: Uint8Array) => Effect.Effect<Installed, InstallError>
  readonly uninstall: (pkg: PackageId) => Effect.Effect<ReadonlyArray<string>, NotInstalled | VfsFailed>
  /** SHA-256 of the installed zip copy, or undefined when the package is not installed. */
  readonly installedHash: (pkg: PackageId) => Effect.Effect<string | undefined>
}>()("services/packages/Packages") {
  static readonly layer = Layer.effect(Packages, Effect.suspend(() => make))
}

export const sha256Hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

const VFS = "vfs:distro:sys"

const make = Effect.gen(function*() {
  const kernel = yield* Kernel
  const node = kernel.node
  const vfsAddress = address(`${node}@${VFS}`)

  /** One vfs request as the kernel (which vfs lets do anything); the decoded JSON reply. */
  const vfs = (pkg: string, path: string, action: string, blob?: Uint8Array) =>
    Effect.gen(function*() {
      const req: Request = request({ body: Json.toBytes({ path, action }), expectsResponse: 30n })
      const r = yield* kernel.call(vfsAddress, req, blob === undefined ? undefined : { mime: undefined, bytes: blob })
      if (r === "timeout" || r instanceof SendRefused) {
        return yield* new VfsFailed({ package: pkg, action, path, reply: r === "timeout" ? "timeout" : r.reason })
      }
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

  /** A manifest capability request as a capability; `issuer` is a process id (or a full address). */
  const capabilityOf = (pkg: string, field: string, req: CapabilityRequest, defaultIssuer?: string) =>
    Effect.gen(function*() {
      const processText = typeof req === "string" ? req : req.process
      const issuerText = defaultIssuer ?? processText
      const full = issuerText.includes("@") ? issuerText : `${node}@${issuerText}`
      const at = full.indexOf("@")
      const pid = parseProcessId(full.slice(at + 1))
      if (Result.isFailure(pid)) {
        return yield* new ManifestInvalid({ package: pkg, field, issue: `not a process id: ${issuerText}` })
      }
      const issuer = new Address({ node: full.slice(0, at), process: pid.success }, { disableChecks: true })
      const params = typeof req === "string" ? "\"messaging\"" : JSON.stringify(req.params)
      return { issuer, params } satisfies Capability
    })

  const onExitOf = (pkg: string, field: string, e: ManifestEntry["on_exit"]) =>
    Effect.gen(function*(): Effect.fn.Return<OnExit, ManifestInvalid> {
      if (e === "None") return { _tag: "None" }
      if (e === "Restart") return { _tag: "Restart" }
      const requests = []
      for (const [i, [target, r, blob]] of e.Requests.entries()) {
        const t = target.includes("@") ? target : `${node}@${target}`
        const at = t.indexOf("@")
        const pid = parseProcessId(t.slice(at + 1))
        if (Result.isFailure(pid)) return yield* new ManifestInvalid({ package: pkg, field: `${field}.Requests[${i}][0]`, issue: `not an address: ${target}` })
        requests.push({
          target: new Address({ node: t.slice(0, at), process: pid.success }, { disableChecks: true }),
          request: request({
            inherit: r.inherit,
            expectsResponse: r.expects_response === null ? undefined : BigInt(r.expects_response),
            body: Uint8Array.from(r.body),
            metadata: r.metadata ?? undefined
          }),
          blob: blob === null ? undefined : undefined
        })
      }
      return { _tag: "Requests", requests }
    })

  /** Everything that can be checked before touching the node. */
  const validate = (pkg: string, zip: Uint8Array) =>
    Effect.gen(function*() {
      const files = yield* Effect.try({
        try: () => unzipSync(zip),
        catch: (e) => new ZipUnreadable({ package: pkg, reason: e instanceof Error ? e.message : String(e) })
      })
      for (const name of Object.keys(files)) {
        if (safeRelativePath(name, false) === undefined) return yield* new PathEscapes({ package: pkg, path: name })
      }
      const manifestBytes = files["manifest.json"]
      if (manifestBytes === undefined) return yield* new ManifestMissing({ package: pkg })
      const manifest = parseManifest(pkg, new TextDecoder().decode(manifestBytes))
      if (Result.isFailure(manifest)) return yield* manifest.failure
      const [packageName, publisher] = pkg.split(":") as [string, string]
      const entries = []
      for (const [i, entry] of manifest.success.entries()) {
        const wasm = safeRelativePath(entry.process_wasm_path)
        if (wasm === undefined) return yield* new PathEscapes({ package: pkg, path: entry.process_wasm_path })
        const bytes = files[wasm]
        if (bytes === undefined) {
          return yield* new ManifestInvalid({ package: pkg, field: `[${i}].process_wasm_path`, issue: `no file ${wasm} in the package` })
        }
        const id = Result.flatMap(parseProcessId(`${entry.process_name}:${packageName}:${publisher}`), checkKimapSafe)
        if (Result.isFailure(id)) {
          return yield* new ManifestInvalid({ package: pkg, field: `[${i}].process_name`, issue: id.failure.reason })
        }
        const requested: Array<Capability> = []
        for (const [j, c] of entry.request_capabilities.entries()) {
          requested.push(yield* capabilityOf(pkg, `[${i}].request_capabilities[${j}]`, c))
        }
        const onExit = yield* onExitOf(pkg, `[${i}].on_exit`, entry.on_exit)
        entries.push({ entry, index: i, id: id.success, wasm, bytes, requested, onExit })
      }
      return { manifest: manifest.success, entries }
    })

  const install = (p: PackageId, zip: Uint8Array) =>
    Effect.gen(function*() {
      const pkg = packageText(p)
      const probe = Result.flatMap(parseProcessId(`p:${pkg}`), checkKimapSafe)
      if (Result.isFailure(probe)) return yield* new InvalidPackageId({ package: pkg, reason: probe.failure.reason })
      const { entries } = yield* validate(pkg, zip)
      const drive = `/${pkg}/pkg`
      // A clean drive each time: files dropped from a new version must not linger.
      yield* vfs(pkg, drive, "CreateDrive")
      yield* vfs(pkg, drive, "RemoveDirAll")
      yield* vfs(pkg, drive, "CreateDrive")
      yield* vfs(pkg, drive, "AddZip", zip)
      yield* vfs(pkg, `${drive}/${pkg}.zip`, "Write", zip)
      for (const e of entries) {
        const id = e.id.toString()
        yield* kernel.kill(id)
        const caps = [...e.requested, ...driveCaps(drive), ...(e.entry.request_networking ? [networkCap(node)] : [])]
        yield* kernel.initialize({
          id: e.id,
          handle: `${drive}/${e.wasm}`,
          witVersion: 1,
          onExit: e.onExit,
          public: e.entry.public,
          capabilities: caps,
          bytes: e.bytes
        }).pipe(Effect.mapError((err) => new ProcessFailed({ package: pkg, process: id, step: "initialize", reason: err.reason })))
      }
      // Only once every entry exists may they grant each other caps (Kinode's order).
      for (const e of entries) {
        for (const [j, g] of e.entry.grant_capabilities.entries()) {
          const grantee = typeof g === "string" ? g : g.process
          const cap = yield* capabilityOf(pkg, `[${e.index}].grant_capabilities[${j}]`, g, e.id.toString())
          const granteeId = parseProcessId(grantee)
          if (Result.isFailure(granteeId)) {
            return yield* new ManifestInvalid({ package: pkg, field: `[${e.index}].grant_capabilities[${j}]`, issue: `not a process id: ${grantee}` })
          }
          yield* kernel.grant(granteeId.success.toString(), [cap])
        }
      }
      for (const e of entries) {
        yield* kernel.run(e.id.toString()).pipe(
          Effect.mapError((err) => new ProcessFailed({ package: pkg, process: err.id, step: "run", reason: err.reason }))
        )
      }
      return { package: pkg, hash: sha256Hex(zip), processes: entries.map((e) => e.id.toString()) } satisfies Installed
    }).pipe(Effect.withSpan("Packages.install", { attributes: { package: packageText(p) } }))

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
      // Every process of the package: the manifest's and any it spawned.
      const suffix = `:${pkg}`
      const ids = kernel.processes().map((i) => i.id).filter((id) => id.endsWith(suffix) && id.split(":").length === 3)
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

  return Packages.of({ install, uninstall, installedHash })
})
