/**
 * `node dist/main.js --home <dir>`: boots a node and runs the terminal on stdin.
 * Ctrl-C, SIGTERM and end of input (Ctrl-D) shut it down cleanly: processes stop,
 * the process map is flushed, LMDB is closed.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Effect, Layer } from "effect"
import { Kernel } from "../src/Kernel.ts"
import { Printout } from "../src/Printout.ts"
import { installBundled } from "../services/packages/index.ts"
import { readLoop } from "../services/terminal/index.ts"
import { NodeLive } from "./NodeLive.ts"

const USAGE = `usage: node dist/main.js --home <dir> [options]

  --home <dir>         node home: process map, keys, files (created on first boot)
  --name <node>        node name (default: derived from the node key)
  -v, --verbosity <n>  0-3, terminal verbosity (default 0)
  --detached           run without the terminal (stop with SIGTERM/SIGINT)
  -h, --help           this text`

interface Flags {
  readonly home: string
  readonly name: string | undefined
  readonly verbosity: number
  readonly detached: boolean
}

const parseFlags = (argv: ReadonlyArray<string>): Flags | string => {
  let home: string | undefined
  let name: string | undefined
  let verbosity = 0
  let detached = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const value = () => argv[++i]
    if (a === "-h" || a === "--help") return USAGE
    else if (a === "--home") home = value()
    else if (a === "--name") name = value()
    else if (a === "-v" || a === "--verbosity") verbosity = Number(value())
    else if (a === "--detached") detached = true
    else return `unknown argument ${a}\n\n${USAGE}`
  }
  if (home === undefined) return `--home is required\n\n${USAGE}`
  if (!Number.isInteger(verbosity) || verbosity < 0 || verbosity > 3) return `--verbosity takes 0-3`
  if (name !== undefined && !/^[a-z0-9.-]+$/.test(name)) return `--name: ${name} is not a valid node name ([a-z0-9.-])`
  return { home, name, verbosity, detached }
}

export const main = (argv: ReadonlyArray<string>) => {
  const flags = parseFlags(argv)
  if (typeof flags === "string") {
    const isHelp = flags === USAGE
    ;(isHelp ? process.stdout : process.stderr).write(`${flags}\n`)
    process.exitCode = isHelp ? 0 : 2
    return
  }
  const program = Effect.gen(function*() {
    const kernel = yield* Kernel
    const printout = yield* Printout
    yield* kernel.boot
    const bundled = yield* installBundled()
    if (bundled.installed.length > 0) printout.print(1, "kernel", `installed bundled apps: ${bundled.installed.join(", ")}`)
    printout.print(0, "kernel", `kinode-ts node ${kernel.node} booted (home ${flags.home}); ${kernel.processes().length} processes`)
    if (flags.detached) return yield* Effect.never
    printout.print(0, "kernel", `type help for commands`)
    yield* readLoop
    printout.print(0, "kernel", "shutting down")
  })
  NodeRuntime.runMain(Effect.scoped(program).pipe(Effect.provide(Layer.fresh(NodeLive(flags)))), { disableErrorReporting: false })
}
