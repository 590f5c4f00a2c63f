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
 *
 * Installing is the longest part of a first boot (each app's Wasm is transpiled and
 * compiled, seconds each), so it is said as it goes, at verbosity 0: the apps to
 * install, each as it starts, and the total time.
 *
 * A package the user installed in a bundled one's place (Kinode's own terminal package
 * over ours, say) is kept: `<home>/bundled.json` records the hash of each bundled zip
 * this node installed, and an installed copy whose hash is neither that nor the
 * current bundle's is the user's. Uninstalling it brings the bundled one back at the
 * next boot. (Kinode's bootstrap rewrites its built-ins at every boot; there the
 * built-in is the real thing, here it is ours.)
 */
import { Clock, Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Home } from "../../src/Home.ts"
import { Printout } from "../../src/Printout.ts"
import { makeFileDigests } from "../program-loader/index.ts"
import { describeInstallError } from "./Describe.ts"
import type { PackageId } from "./Manifest.ts"
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
  /** Installed by the user in the bundled one's place, so left alone. */
  readonly kept: ReadonlyArray<string>
  readonly failed: ReadonlyArray<{ readonly package: string; readonly error: string }>
}

/** `<home>/bundled.json`: package id → hash of the bundled zip this node last installed. */
const readRecord = (file: string | undefined): Record<string, string> => {
  if (file === undefined) return {}
  try {
    const v: unknown = JSON.parse(fs.readFileSync(file, "utf8"))
    return typeof v === "object" && v !== null && !Array.isArray(v) ? v as Record<string, string> : {}
  } catch {
    return {}
  }
}

const writeRecord = (file: string | undefined, record: Record<string, string>) => {
  if (file === undefined) return
  try {
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(record, null, 1))
    fs.renameSync(`${file}.tmp`, file)
  } catch {
    // Without the record the next boot treats every installed copy as bundled (as before).
  }
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
    const kept: Array<string> = []
    const recordFile = home._tag === "Some" ? path.join(home.value.path, "bundled.json") : undefined
    const record = readRecord(recordFile)
    const say = (text: string) => {
      if (printout._tag === "Some") printout.value.print(0, "packages", text)
    }
    // First what needs installing (hashes only, quick), so the progress lines can name it.
    const toInstall: Array<{ readonly pkg: PackageId; readonly name: string; readonly zipPath: string; readonly hash: string }> = []
    for (const app of options.apps ?? BUNDLED_APPS) {
      const pkg = { package: app, publisher }
      const name = `${pkg.package}:${pkg.publisher}`
      const zipPath = path.join(dir, `${app}.zip`)
      if (!fs.existsSync(zipPath)) {
        failed.push({ package: name, error: `missing ${zipPath}` })
        say(`cannot install bundled ${name}: ${zipPath} is missing (npm run build:apps builds it)`)
        continue
      }
      const digest = digests === undefined
        ? { hash: sha256Hex(new Uint8Array(fs.readFileSync(zipPath))), bytes: undefined }
        : digests.of(zipPath)
      const installedHash = yield* packages.installedHash(pkg)
      if (installedHash === digest.hash) {
        unchanged.push(name)
        continue
      }
      if (installedHash !== undefined && record[name] !== undefined && record[name] !== installedHash) {
        kept.push(name)
        if (printout._tag === "Some") {
          printout.value.print(1, "packages", `keeping ${name} as you installed it (not the bundled one); uninstall it to get the bundled one back`)
        }
        continue
      }
      toInstall.push({ pkg, name, zipPath, hash: digest.hash })
    }
    if (toInstall.length === 0) return { installed, unchanged, kept, failed } satisfies BundledReport
    const started = yield* Clock.currentTimeMillis
    say(`installing bundled apps: ${toInstall.map((a) => a.name).join(", ")} (compiling each app's Wasm takes seconds)`)
    for (const [i, { pkg, name, zipPath, hash }] of toInstall.entries()) {
      say(`  installing ${name} (${i + 1}/${toInstall.length}) ...`)
      const zip = new Uint8Array(fs.readFileSync(zipPath))
      const r = yield* Effect.result(packages.install(pkg, zip))
      if (r._tag === "Success") {
        installed.push(name)
        record[name] = hash
        writeRecord(recordFile, record)
      } else {
        failed.push({ package: name, error: `${r.failure._tag}: ${JSON.stringify(r.failure)}` })
        say(`cannot install bundled ${name}: ${describeInstallError(r.failure)}`)
      }
    }
    if (installed.length > 0) {
      const seconds = ((yield* Clock.currentTimeMillis) - started) / 1000
      say(`installed bundled apps: ${installed.join(", ")} (${seconds.toFixed(1)} s)`)
    }
    return { installed, unchanged, kept, failed } satisfies BundledReport
  }).pipe(Effect.withSpan("Packages.installBundled"))
