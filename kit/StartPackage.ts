/**
 * `kit-ts start-package`: installs a package's built zip into a running node without a
 * restart, through the node's install path as Kinode's `kit start-package` does: the
 * app store's local API (`main:app-store:sys`, services/packages/AppStore.ts) over the
 * RPC path, `NewPackage` with the zip, then `Install` of its SHA-256 with the package's
 * metadata. The node checks the whole zip, grants what the manifest asks for (as Kinode
 * grants a sideloaded package), starts the processes and watches their start; an
 * installed version is replaced. The app store's answers carry, besides Kinode's
 * `Success` / `Failure`, the node's summary or reason as text (a kinode-ts addition).
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { isUpToDate, packageIdOf, zipPathOf } from "../apps/build.ts"
import { rpc } from "./Rpc.ts"

const APP_STORE = "main:app-store:sys"

export class StartRefused extends Error {
  readonly _tag = "StartRefused"
}

export interface Started {
  readonly package: string
  readonly zip: string
  readonly versionHash: string
  /** The node's account of the install: version, processes started, capabilities withheld. */
  readonly summary: string
}

const utf8 = new TextDecoder()

const reasonOf = (blob: { readonly bytes: Uint8Array } | undefined): string | undefined =>
  blob === undefined || blob.bytes.length === 0 ? undefined : utf8.decode(blob.bytes)

/** Installs the built zip of the package folder `dir` into the node at `url`. Throws `StartRefused` or `RpcFailed`. */
export const startPackage = async (
  dirIn: string,
  url: string,
  step: <A>(label: string, f: () => Promise<A>) => Promise<A> = (_l, f) => f()
): Promise<Started> => {
  const dir = path.resolve(dirIn)
  const id = packageIdOf(dir)
  const pkg = `${id.package}:${id.publisher}`
  const zipPath = zipPathOf(dir)
  if (!fs.existsSync(zipPath)) throw new StartRefused(`${pkg} is not built (no ${zipPath}): run kit-ts build first`)
  if (!isUpToDate(dir)) throw new StartRefused(`${zipPath} is not the build of ${dir} as it is now (sources or package files changed since): run kit-ts build first`)
  const zip = new Uint8Array(fs.readFileSync(zipPath))
  const versionHash = createHash("sha256").update(zip).digest("hex")
  const packageId = { package_name: id.package, publisher_node: id.publisher }
  const store = async (request: unknown, timeout: number, blob?: Uint8Array) => {
    const a = await rpc(url, {
      process: APP_STORE,
      body: JSON.stringify(request),
      timeout,
      ...(blob === undefined ? {} : { blob, mime: "application/zip" })
    })
    let body: unknown
    try {
      body = JSON.parse(utf8.decode(a.body))
    } catch {
      body = utf8.decode(a.body)
    }
    return { body, reason: reasonOf(a.blob) }
  }
  const sent = await step(`sending ${path.basename(zipPath)} (${(zip.length / 1e6).toFixed(1)} MB) to ${url}`, () =>
    store({ NewPackage: { package_id: packageId, mirror: false } }, 60, zip))
  if (JSON.stringify(sent.body) !== JSON.stringify({ NewPackageResponse: "Success" })) {
    throw new StartRefused(`the node refused ${pkg}: ${sent.reason ?? JSON.stringify(sent.body)}`)
  }
  // Kinode's OnchainMetadata, as kit sends it (Kinode 0.5's form has none).
  const read = JSON.parse(fs.readFileSync(path.join(dir, "metadata.json"), "utf8")) as { properties?: unknown }
  const metadata = typeof read.properties === "object" && read.properties !== null ? read : null
  const installed = await step(`installing ${pkg}`, () =>
    store({ Install: { package_id: packageId, version_hash: versionHash, metadata } }, 120))
  if (JSON.stringify(installed.body) !== JSON.stringify({ InstallResponse: "Success" })) {
    throw new StartRefused(`the node did not install ${pkg}: ${installed.reason ?? JSON.stringify(installed.body)}`)
  }
  return { package: pkg, zip: zipPath, versionHash, summary: installed.reason ?? `installed ${pkg}, version ${versionHash}` }
}
