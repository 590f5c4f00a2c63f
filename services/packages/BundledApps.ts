/**
 * Bundled apps: every `apps/dist/<name>.zip` is installed as `<name>:sys` on first
 * boot, and re-installed when its SHA-256 differs from the installed copy's, so an
 * unchanged node boots without re-initializing anything. Call after `kernel.boot`:
 *
 *   yield* kernel.boot
 *   yield* installBundled()            // Effect<BundledReport, never, Packages>
 *
 * with `Packages.layer` (needs `Kernel` and the vfs service) in the
 * node's layer. A package that fails to install is reported and skipped; it never
 * stops the boot.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Home } from "../../src/Home.ts"
import { Printout } from "../../src/Printout.ts"
import { makeFileDigests } from "../program-loader/index.ts"
import { Packages, sha256Hex } from "./Packages.ts"

/** `apps/dist` of this checkout (also right from `dist/` after `npm run build`). */
export const defaultBundleDir = (): string => {
  const here = path.dirname(fileURLToPath(import.meta.url))
  // services/packages/ in the checkout, dist/services/packages/ when built.
  for (const up of ["../..", "../../.."]) {
    const dir = path.resolve(here, up, "apps", "dist")
    if (fs.existsSync(dir)) return dir
  }
  return path.resolve(here, "../..", "apps", "dist")
}

export interface BundledReport {
  readonly installed: ReadonlyArray<string>
  readonly unchanged: ReadonlyArray<string>
  readonly failed: ReadonlyArray<{ readonly package: string; readonly error: string }>
}

export const installBundled = (options: { readonly dir?: string; readonly publisher?: string } = {}) =>
  Effect.gen(function*() {
    const packages = yield* Packages
    const printout = yield* Effect.serviceOption(Printout)
    const home = yield* Effect.serviceOption(Home)
    // Bundles are hashed once, not at every boot (three apps are ~12 MB of zips).
    const digests = home._tag === "Some" ? makeFileDigests(path.join(home.value.path, ".cache", "bundle-digests.json")) : undefined
    const dir = options.dir ?? defaultBundleDir()
    const publisher = options.publisher ?? "sys"
    const zips = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith(".zip")).sort() : []
    const installed: Array<string> = []
    const unchanged: Array<string> = []
    const failed: Array<{ package: string; error: string }> = []
    for (const file of zips) {
      const pkg = { package: file.slice(0, -".zip".length), publisher }
      const name = `${pkg.package}:${pkg.publisher}`
      const zipPath = path.join(dir, file)
      const digest = digests === undefined
        ? { hash: sha256Hex(new Uint8Array(fs.readFileSync(zipPath))), bytes: undefined }
        : digests.of(zipPath)
      if ((yield* packages.installedHash(pkg)) === digest.hash) {
        unchanged.push(name)
        continue
      }
      const zip = digest.bytes ?? new Uint8Array(fs.readFileSync(zipPath))
      const r = yield* Effect.result(packages.install(pkg, zip))
      if (r._tag === "Success") installed.push(name)
      else {
        failed.push({ package: name, error: `${r.failure._tag}: ${JSON.stringify(r.failure)}` })
        if (printout._tag === "Some") printout.value.print(0, "packages", `cannot install bundled ${name}: ${r.failure._tag} ${JSON.stringify(r.failure)}`)
      }
    }
    return { installed, unchanged, failed } satisfies BundledReport
  }).pipe(Effect.withSpan("Packages.installBundled"))
