/**
 * `main:app-store:sys`: the local API of Kinode's app store (Protocol.ts) as a runtime
 * module, so sideloading works as on Kinode: `kit start-package` POSTs
 * `/rpc:distro:sys/message` with `NewPackage` (the zip, base64 in `data`) and then
 * `Install`, and the installer (Packages.ts) does the rest through vfs and the kernel.
 *
 * - `NewPackage` checks the whole zip (`Packages.plan`: a zip that is not a package is
 *   `InstallFailed`, with the reason printed) and keeps it where Kinode's downloads
 *   process would, `/app-store:sys/downloads/<package>/<version hash>.zip` (the previous
 *   upload of that package is removed: one kept per package). `mirror` is accepted and
 *   ignored: this node serves no downloads to others.
 * - `Install` installs the kept zip of that version hash (or the installed zip copy,
 *   when that is the version), granting every requested capability, as Kinode does for
 *   a sideloaded package; the processes' start is watched (`INIT_WATCH_MS`): one that
 *   crashes at init fails the install, which is rolled back. The outcome is printed
 *   (what started, or why not); the answer is Kinode's `Success` / `Failure`.
 * - Every answer that has something to say carries it as a `text/plain` blob as well (a
 *   kinode-ts addition; Kinode's tools ignore the blob): why a `NewPackage`, `Install` or
 *   `Uninstall` failed, or the install summary (version, processes started, capabilities
 *   withheld), so a tool such as `kit-ts start-package` can tell its user.
 * - `Uninstall`, `Apis`, `GetApi` as Kinode's; `Installed` lists the installed packages
 *   (a kinode-ts addition, for tools).
 *
 * Local sources only (other nodes' requests are ignored, as Kinode's `is_local` check).
 * As a runtime module it may message, and be messaged by, every other runtime module, so
 * http-server's RPC path reaches it; the terminal grants itself messaging to it.
 */
import { Effect, Layer, Match, Option } from "effect"
import type { Address } from "../../src/Ids.ts"
import { Kernel } from "../../src/Kernel.ts"
import type { LazyLoadBlob } from "../../src/Message.ts"
import { Printout } from "../../src/Printout.ts"
import * as ServiceShell from "../../src/ServiceShell.ts"
import { describeInstalled, describeInstallError } from "./Describe.ts"
import { type PackageId, packageText } from "./Manifest.ts"
import { INIT_WATCH_MS, Packages, sha256Hex } from "./Packages.ts"
import { APP_STORE, downloadPath, LocalRequest, type LocalResponse, type PackageIdJson } from "./Protocol.ts"
import { makeVfsCalls } from "./VfsCalls.ts"

const DOWNLOADS_DRIVE = "/app-store:sys/downloads"

const packageOf = (p: PackageIdJson): PackageId => ({ package: p.package_name, publisher: p.publisher_node })
const idJson = (pkg: string): PackageIdJson => {
  const [package_name = "", publisher_node = ""] = pkg.split(":")
  return { package_name, publisher_node }
}

const answer = (r: LocalResponse, blob?: LazyLoadBlob) => ServiceShell.jsonReply(r, blob)

/** An answer with what the node printed about it as a text blob. */
const told = (r: LocalResponse, text: string) =>
  ServiceShell.jsonReply(r, { mime: "text/plain; charset=utf-8", bytes: new TextEncoder().encode(text) })

export const AppStore = {
  /** The module; needs ModuleHost, Kernel and Packages (Printout when present). */
  layer: Layer.unwrap(Effect.gen(function*() {
    const packages = yield* Packages
    const kernel = yield* Kernel
    const printout = yield* Effect.serviceOption(Printout)
    const vfs = makeVfsCalls(kernel)
    const print = (level: number, text: string) => Option.isSome(printout) ? printout.value.print(level, APP_STORE, text) : undefined

    /** Keeps an uploaded zip as the one download of its package. */
    const keep = (pkg: string, hash: string, zip: Uint8Array) =>
      Effect.gen(function*() {
        const dir = `${DOWNLOADS_DRIVE}/${pkg}`
        yield* vfs(pkg, DOWNLOADS_DRIVE, "CreateDrive")
        yield* Effect.ignore(vfs(pkg, dir, "RemoveDirAll"))
        yield* vfs(pkg, dir, "CreateDirAll")
        yield* vfs(pkg, downloadPath(pkg, hash), "Write", zip)
      })

    const newPackage = (p: PackageIdJson, mirror: boolean, blob: LazyLoadBlob | undefined) =>
      Effect.gen(function*() {
        if (blob === undefined) return answer({ NewPackageResponse: "NoBlob" })
        const pkg = packageText(packageOf(p))
        const checked = yield* Effect.result(packages.plan(packageOf(p), blob.bytes))
        if (checked._tag === "Failure") {
          const why = `NewPackage ${pkg}: not a package I can install: ${describeInstallError(checked.failure)}`
          print(0, why)
          return told({ NewPackageResponse: "InstallFailed" }, why)
        }
        const hash = sha256Hex(blob.bytes)
        const kept = yield* Effect.result(keep(pkg, hash, blob.bytes))
        if (kept._tag === "Failure") {
          const why = `NewPackage ${pkg}: cannot keep the zip: ${describeInstallError(kept.failure)}`
          print(0, why)
          return told({ NewPackageResponse: "InstallFailed" }, why)
        }
        print(1, `NewPackage ${pkg}: version ${hash} ready to install${mirror ? " (mirroring is not offered by this node)" : ""}`)
        return answer({ NewPackageResponse: "Success" })
      })

    /** The zip of `hash`: the kept download, else the installed copy if it is that version. */
    const zipOf = (pkg: string, hash: string) =>
      Effect.gen(function*() {
        for (const path of [downloadPath(pkg, hash), `/${pkg}/pkg/${pkg}.zip`]) {
          const r = yield* Effect.option(vfs(pkg, path, "Read"))
          if (Option.isSome(r) && r.value.blob !== undefined && sha256Hex(r.value.blob.bytes) === hash) return r.value.blob.bytes
        }
        return undefined
      })

    const install = (p: PackageIdJson, witVersion: unknown, hash: string) =>
      Effect.gen(function*() {
        const id = packageOf(p)
        const pkg = packageText(id)
        const zip = yield* zipOf(pkg, hash.toLowerCase())
        if (zip === undefined) {
          const why = `cannot install ${pkg}: no zip of version ${hash} here (send NewPackage with it first)`
          print(0, why)
          return told({ InstallResponse: "Failure" }, why)
        }
        const options = { watchMs: INIT_WATCH_MS, ...(typeof witVersion === "number" ? { witVersion } : {}) }
        const r = yield* Effect.result(packages.install(id, zip, options))
        if (r._tag === "Failure") {
          const why = `cannot install ${pkg}: ${describeInstallError(r.failure)}`
          print(0, why)
          return told({ InstallResponse: "Failure" }, why)
        }
        const summary = describeInstalled(kernel.node, r.success)
        print(0, summary)
        return told({ InstallResponse: "Success" }, summary)
      })

    const uninstall = (p: PackageIdJson) =>
      Effect.gen(function*() {
        const pkg = packageText(packageOf(p))
        const r = yield* Effect.result(packages.uninstall(packageOf(p)))
        if (r._tag === "Failure") {
          const why = `cannot uninstall ${pkg}: ${describeInstallError(r.failure)}`
          print(0, why)
          return told({ UninstallResponse: "Failure" }, why)
        }
        const summary = `uninstalled ${pkg}: stopped ${r.success.length === 0 ? "no process" : r.success.join(", ")}`
        print(0, summary)
        return told({ UninstallResponse: "Success" }, summary)
      })

    const hasApi = (pkg: string) => Effect.map(Effect.option(vfs(pkg, `/${pkg}/pkg/api.zip`, "Metadata")), Option.isSome)

    const apis = Effect.gen(function*() {
      const list = yield* packages.installed()
      const withApi = yield* Effect.filter(list.map((p) => p.package), hasApi, { concurrency: 8 })
      return answer({ ApisResponse: { apis: withApi.map(idJson) } })
    })

    const getApi = (p: PackageIdJson) =>
      Effect.gen(function*() {
        const pkg = packageText(packageOf(p))
        const r = yield* Effect.option(vfs(pkg, `/${pkg}/pkg/api.zip`, "Read"))
        if (Option.isNone(r) || r.value.blob === undefined) return answer({ GetApiResponse: "Failure" })
        return answer({ GetApiResponse: "Success" }, { mime: "application/zip", bytes: r.value.blob.bytes })
      })

    const installed = Effect.map(packages.installed(), (list) =>
      answer({
        InstalledResponse: {
          packages: list.map((p) => ({ package_id: idJson(p.package), version_hash: p.hash, processes: [...p.processes] }))
        }
      }))

    const serve = (_source: Address, req: LocalRequest, blob: LazyLoadBlob | undefined) =>
      typeof req === "string"
        ? (req === "Apis" ? apis : installed)
        : Match.value(req).pipe(
          Match.when({ NewPackage: Match.defined }, (r) => newPackage(r.NewPackage.package_id, r.NewPackage.mirror, blob)),
          Match.when({ Install: Match.defined }, (r) =>
            install(r.Install.package_id, r.Install.metadata?.properties.wit_version, r.Install.version_hash)),
          Match.when({ Uninstall: Match.defined }, (r) => uninstall(r.Uninstall)),
          Match.when({ GetApi: Match.defined }, (r) => getApi(r.GetApi)),
          Match.exhaustive
        )

    const shell = ServiceShell.make<LocalRequest, string>({
      request: LocalRequest,
      malformed: (reason) => `not an app store request: ${reason}`,
      serve
    })
    return ServiceShell.serveLayer(APP_STORE, { _tag: "lanes", maxInFlight: 4 }, shell.handle)
  }))
}
