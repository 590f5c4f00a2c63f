/**
 * Packages in words, for the terminal, `--install` and the app store's printouts: what a
 * capability lets a process do, why an install failed, what an install did.
 */
import { Match } from "effect"
import type { Capability } from "../../src/Message.ts"
import type { InstallError, NotInstalled } from "./Manifest.ts"
import type { PackageSourceError } from "./PackageSource.ts"
import type { Installed, InstalledPackage } from "./Packages.ts"

const parsed = (params: string): unknown => {
  try {
    return JSON.parse(params) as unknown
  } catch {
    return undefined
  }
}

/** What a capability lets its holder do, in words; `""` when there are none for it. */
export const describeCapability = (node: string, cap: Capability): string => {
  const issuer = cap.issuer.process.toString()
  const where = cap.issuer.node === node ? "" : ` on ${cap.issuer.node}`
  const p = parsed(cap.params)
  if (p === "messaging") {
    return issuer === "kernel:distro:sys" ? "send kernel commands: full control of the node" : `send messages to ${issuer}${where}`
  }
  if (p === "network" && issuer === "kernel:distro:sys") return "talk to other nodes"
  if (typeof p === "object" && p !== null && !Array.isArray(p)) {
    const o = p as Record<string, unknown>
    if (o["root"] === true) {
      if (issuer === "vfs:distro:sys") return "read and write every file of the node"
      if (issuer === "eth:distro:sys") return "configure the node's chain providers"
    }
    const kind = o["kind"] === "read" || o["kind"] === "write" ? o["kind"] : undefined
    if (kind !== undefined && issuer === "vfs:distro:sys" && typeof o["drive"] === "string") return `${kind} the drive ${o["drive"]}`
    const key = o["db_key"]
    if (kind !== undefined && (issuer === "kv:distro:sys" || issuer === "sqlite:distro:sys") && Array.isArray(key)) {
      const owner = key[0] as { package_name?: unknown; publisher_node?: unknown } | undefined
      return `${kind} the ${issuer.split(":")[0]} database ${String(owner?.package_name)}:${String(owner?.publisher_node)}/${String(key[1])}`
    }
  }
  if (issuer === "homepage:homepage:sys" && (p === "RemoveOther" || p === "SetStylesheet")) {
    return p === "RemoveOther" ? "remove other apps' homepage tiles" : "set the node's stylesheet"
  }
  return ""
}

/** One line for a capability: the words, then the capability itself. */
export const capabilityLine = (node: string, cap: Capability): string => {
  const words = describeCapability(node, cap)
  const raw = `${cap.issuer.toString()} ${cap.params}`
  return words === "" ? raw : `${words} (${raw})`
}

const field = (f: string) => (f === "" ? "as a whole" : `at ${f}`)

/** One sentence a person can act on, for any failure of reading, installing or uninstalling a package. */
export const describeInstallError = (e: InstallError | NotInstalled | PackageSourceError): string =>
  Match.valueTags(e, {
    PackageFileUnreadable: (x) => `cannot read ${x.path} (${x.reason})`,
    PackageIdUnknown: (x) =>
      `cannot tell which package ${x.file} is: it has no metadata.json and its name is not <package>:<publisher>.zip ` +
      "(rename it so, or at the terminal give the id: install <zip> --id package:publisher)",
    PackageIdInvalid: (x) => `"${x.given}" is not a package id (${x.reason}): write it as package:publisher, e.g. chess:sys`,
    InvalidPackageId: (x) => `"${x.package}" cannot be a package id: ${x.reason}`,
    ZipUnreadable: (x) => `not a package: the zip cannot be read (${x.reason})`,
    ZipLimitExceeded: (x) => `the package is too large: ${x.limit}${x.entry === "" ? "" : ` (${x.entry})`} is ${x.size}, at most ${x.max}`,
    ZipEntryRefused: (x) => `the zip entry ${x.entry} is refused: ${x.reason}`,
    ManifestMissing: () => "not a package: the zip has no manifest.json at its root",
    ManifestInvalid: (x) => `manifest.json is invalid ${field(x.field)}: ${x.issue}`,
    PackageFileInvalid: (x) => `${x.file} is invalid ${field(x.field)}: ${x.issue}`,
    PathEscapes: (x) => `the path ${x.path} would land outside the package's drive`,
    VfsFailed: (x) => `writing files failed (vfs ${x.action} ${x.path}: ${x.reply})`,
    ProcessFailed: (x) =>
      x.step === "init"
        ? `the process ${x.process} did not start: ${x.reason} (a crash is printed above)`
        : `the process ${x.process} could not ${x.step === "run" ? "start" : "be created"}: ${x.reason}`,
    NotInstalled: (x) => `${x.package} is not installed`
  })

/** What an install did: the package and version, the processes started, what was withheld or skipped. */
export const describeInstalled = (node: string, installed: Installed): string => {
  const lines = [
    `installed ${installed.package}, version ${installed.hash}`,
    `  started ${installed.processes.length === 0 ? "no process" : installed.processes.join(", ")}`
  ]
  if (installed.withheld.length === 0) lines.push("  withheld nothing")
  for (const w of installed.withheld) lines.push(`  withheld from ${w.process}: ${capabilityLine(node, w.capability)}`)
  for (const g of installed.skippedGrants) lines.push(`  not granted (no process ${g.grantee}): ${g.params} from ${g.process}`)
  return lines.join("\n")
}

/** The installed packages as lines: id, version hash, processes. */
export const describePackages = (list: ReadonlyArray<InstalledPackage>): string =>
  list.length === 0
    ? "no package is installed"
    : [
      `${list.length} package${list.length === 1 ? "" : "s"} installed:`,
      ...list.map((p) => `  ${p.package}  ${p.hash}  ${p.processes.length === 0 ? "(no process running)" : p.processes.join(", ")}`)
    ].join("\n")
