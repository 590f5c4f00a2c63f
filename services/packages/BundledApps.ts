/**
 * Bundled apps: the packages this node ships, `BUNDLED_APPS` (terminal, echo, counter, spawner),
 * each built by `npm run build:apps` into `apps/dist/<name>.zip` and installed as
 * `<name>:sys` on first boot, and re-installed when its SHA-256 differs from the
 * installed copy's, so an unchanged node boots without re-initializing anything. Other
 * zips in `apps/dist/` are not installed (install them with `install <zip>` or
 * `--install <zip>`). Call after `kernel.boot`:
 *
 *   yield* kernel.boot
 *   yield* installBundled()            // Effect<BundledReport, never, Packages>
 *
 * with `Packages.layer` (needs `Kernel` and the vfs service) in the
 * node's layer. A package that fails to install (or whose zip is missing) is reported
 * and skipped; it never stops the boot.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Home } from "../../src/Home.ts"
import { Printout } from "../../src/Printout.ts"
import { makeFileDigests } from "../program-loader/index.ts"
import { describeInstallError } from "./Describe.ts"
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

/** The apps the node ships, installed as `<name>:sys` from `apps/dist/<name>.zip`. */
export const BUNDLED_APPS: ReadonlyArray<string> = ["terminal", "echo", "counter", "spawner"]

export const installBundled = (
  options: { readonly dir?: string; readonly publisher?: string; readonly apps?: ReadonlyArray<string> } = {}
) =>
  Effect.gen(function*() {
    const packages = yield* Packages
    const printout = yield* Effect.serviceOption(Printout)
    const home = yield* Effect.serviceOption(Home)
    // Bundles are hashed once, not at every boot (three apps are ~12 MB of zips).
    const digests = home._tag === "Some" ? makeFileDigests(path.join(home.value.path, ".cache", "bundle-digests.json")) : undefined
    const dir = options.dir ?? defaultBundleDir()
    const publisher = options.publisher ?? "sys"
    const installed: Array<string> = []
    const unchanged: Array<string> = []
    const failed: Array<{ package: string; error: string }> = []
    for (const app of options.apps ?? BUNDLED_APPS) {
      const pkg = { package: app, publisher }
      const name = `${pkg.package}:${pkg.publisher}`
      const zipPath = path.join(dir, `${app}.zip`)
      if (!fs.existsSync(zipPath)) {
        failed.push({ package: name, error: `missing ${zipPath}` })
        if (printout._tag === "Some") printout.value.print(0, "packages", `cannot install bundled ${name}: ${zipPath} is missing (npm run build:apps builds it)`)
        continue
      }
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
        if (printout._tag === "Some") printout.value.print(0, "packages", `cannot install bundled ${name}: ${describeInstallError(r.failure)}`)
      }
    }
    return { installed, unchanged, failed } satisfies BundledReport
  }).pipe(Effect.withSpan("Packages.installBundled"))
