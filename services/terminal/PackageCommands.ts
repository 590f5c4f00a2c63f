/**
 * Package commands of the terminal, registered into its command table by
 * `PackageCommands.layer` (they need the installer, which the built-in table's commands
 * do not see):
 *
 *   install <zip> [--yes] [--id package:publisher]
 *       reads a package zip from this machine, checks it, lists the capabilities its
 *       processes ask for and asks; `y` grants them all and installs, `y 1 3` only
 *       those (the rest are withheld), `n` cancels. `--yes` grants all without asking.
 *       A newer zip of an installed package upgrades it. Prints what was installed,
 *       the processes started and what was withheld; a process that crashes at start
 *       fails the install, which is rolled back (nothing changed).
 *   uninstall <package:publisher>
 *       stops the package's processes and removes its files (data drives stay).
 *   packages
 *       the installed packages: id, version hash (SHA-256 of the zip), processes.
 *
 * The question is answered by the next line (`y`, `y 1 3`, `n`), which the terminal
 * runs as a command like any other line; a new `install` replaces an unanswered one.
 */
import { Effect, Layer, Result } from "effect"
import * as path from "node:path"
import { Kernel } from "../../src/Kernel.ts"
import {
  capabilityLine, describeInstalled, describeInstallError, describePackages, INIT_WATCH_MS, type PackageId, Packages, packageText,
  parsePackageId, readPackageFile, type RequestedCapability, requestedOf
} from "../packages/index.ts"
import type { CommandContext, TerminalCommand } from "./CommandTable.ts"
import { Terminal } from "./Terminal.ts"

interface Pending {
  readonly pkg: PackageId
  readonly zip: Uint8Array
  readonly requested: ReadonlyArray<RequestedCapability>
}

/** `install` arguments: the path (may hold spaces), `--yes`, `--id <package:publisher>`. */
const parseInstallArgs = (args: string): { readonly file: string; readonly yes: boolean; readonly id: string | undefined } | string => {
  const words = args.split(/\s+/).filter((w) => w !== "")
  let yes = false
  let id: string | undefined
  const rest: Array<string> = []
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!
    if (w === "--yes" || w === "-y") yes = true
    else if (w === "--id") {
      id = words[++i]
      if (id === undefined) return "--id takes package:publisher"
    } else rest.push(w)
  }
  if (rest.length === 0) return "usage: install <zip> [--yes] [--id package:publisher]"
  return { file: rest.join(" "), yes, id }
}

export const packageCommands = (packages: Packages["Service"], node: string): ReadonlyArray<TerminalCommand> => {
  let pending: Pending | undefined

  const runInstall = (ctx: CommandContext, p: Pending, approved: ReadonlyArray<RequestedCapability> | undefined) =>
    Effect.gen(function*() {
      const options = { watchMs: INIT_WATCH_MS, ...(approved === undefined ? {} : { approved }) }
      const r = yield* Effect.result(packages.install(p.pkg, p.zip, options))
      if (Result.isFailure(r)) return ctx.say(`install: ${packageText(p.pkg)} not installed, nothing changed: ${describeInstallError(r.failure)}`)
      return ctx.say(describeInstalled(node, r.success))
    })

  const install: TerminalCommand = {
    name: "install",
    usage: "install <zip> [--yes] [--id pkg:pub]",
    help: "install (or upgrade) a package from a zip on this machine; asks before granting capabilities",
    run: (args, ctx) =>
      Effect.gen(function*() {
        pending = undefined
        const parsed = parseInstallArgs(args)
        if (typeof parsed === "string") return ctx.say(`install: ${parsed}`)
        const file = path.resolve(parsed.file)
        const read = yield* Effect.result(readPackageFile(file, parsed.id))
        if (Result.isFailure(read)) return ctx.say(`install: ${describeInstallError(read.failure)}`)
        const { pkg, zip } = read.success
        const plan = yield* Effect.result(packages.plan(pkg, zip))
        if (Result.isFailure(plan)) return ctx.say(`install: ${packageText(pkg)} not installed: ${describeInstallError(plan.failure)}`)
        const requested = requestedOf(plan.success)
        const previous = yield* packages.installedHash(pkg)
        const p: Pending = { pkg, zip, requested }
        const upgrade = previous === undefined ? "" : ` (replaces the installed version ${previous})`
        if (parsed.yes || requested.length === 0) {
          if (upgrade !== "") ctx.say(`install: ${packageText(pkg)}${upgrade}`)
          return yield* runInstall(ctx, p, undefined)
        }
        pending = p
        const processes = plan.success.entries.map((e) => e.id.toString()).join(", ")
        return ctx.say([
          `${packageText(pkg)}${upgrade}: processes ${processes} ask for:`,
          ...requested.map((r, i) => `  ${i + 1}. ${r.process}: ${capabilityLine(node, r.capability)}`),
          "grant them and install? y: all, y 1 3: only those (the rest withheld), n: cancel"
        ].join("\n"))
      })
  }

  const yes: TerminalCommand = {
    name: "y",
    usage: "y [numbers]",
    help: "answer install's question: grant all (or only the numbered capabilities) and install",
    run: (args, ctx) =>
      Effect.gen(function*() {
        const p = pending
        if (p === undefined) return ctx.say("y: no install is waiting for an answer")
        const numbers = args.split(/[\s,]+/).filter((w) => w !== "")
        if (numbers.length === 0) {
          pending = undefined
          return yield* runInstall(ctx, p, undefined)
        }
        const chosen = new Set<number>()
        for (const n of numbers) {
          const i = Number(n)
          if (!Number.isInteger(i) || i < 1 || i > p.requested.length) {
            return ctx.say(`y: ${n} is not one of the capabilities 1-${p.requested.length}; answer again`)
          }
          chosen.add(i - 1)
        }
        pending = undefined
        return yield* runInstall(ctx, p, p.requested.filter((_, i) => chosen.has(i)))
      })
  }

  const no: TerminalCommand = {
    name: "n",
    usage: "n",
    help: "answer install's question: cancel, install nothing",
    run: (_args, ctx) =>
      Effect.sync(() => {
        const p = pending
        pending = undefined
        ctx.say(p === undefined ? "n: no install is waiting for an answer" : `install of ${packageText(p.pkg)} cancelled: nothing changed`)
      })
  }

  const uninstall: TerminalCommand = {
    name: "uninstall",
    usage: "uninstall <package:publisher>",
    help: "stop a package's processes and remove its files (its data drives stay)",
    run: (args, ctx) =>
      Effect.gen(function*() {
        const id = parsePackageId(args)
        if (Result.isFailure(id)) return ctx.say(args.trim() === "" ? "usage: uninstall <package:publisher>" : `uninstall: ${describeInstallError(id.failure)}`)
        const r = yield* Effect.result(packages.uninstall(id.success))
        if (Result.isFailure(r)) return ctx.say(`uninstall: ${describeInstallError(r.failure)}`)
        return ctx.say(`uninstalled ${packageText(id.success)}: stopped ${r.success.length === 0 ? "no process" : r.success.join(", ")}`)
      })
  }

  const list: TerminalCommand = {
    name: "packages",
    usage: "packages",
    help: "installed packages: id, version hash (SHA-256 of the zip), processes",
    run: (_args, ctx) => Effect.map(packages.installed(), (l) => ctx.say(describePackages(l)))
  }

  return [install, yes, no, uninstall, list]
}

export const PackageCommands = {
  /** Registers the package commands in the terminal's table; needs Terminal, Packages, Kernel. */
  layer: Layer.effectDiscard(Effect.gen(function*() {
    const terminal = yield* Terminal
    const packages = yield* Packages
    const kernel = yield* Kernel
    for (const c of packageCommands(packages, kernel.node)) terminal.register(c)
  }))
}
