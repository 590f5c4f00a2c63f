/**
 * Entry point (`dist/main.js` imports this). Kept free of anything newer than Node 20
 * can load: if this Node lacks JSPI (WebAssembly.Suspending), re-run the same command
 * with the Node 24 that `npm install` put in node_modules, forwarding signals. On Node
 * 24 it starts a later boot's keyfile derivations before loading the node (`unlockEarly`).
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as nodeModule from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { keyfilePath, startEarly } from "../services/identity/KeyDerivation.ts"

/**
 * A later boot with the password in `--password-file` or `KINODE_PASSWORD`: starts the
 * keyfile's key derivations now, in a worker thread, so they run while the node's
 * modules load instead of after (the login takes the result if the inputs match).
 * Anything unexpected here only means no head start: `Cli.ts` parses and reports.
 */
const unlockEarly = (argv: ReadonlyArray<string>): void => {
  const parse = () =>
    parseArgs({
      args: [...argv],
      strict: false,
      options: { home: { type: "string" }, "password-file": { type: "string" }, help: { type: "boolean", short: "h" } }
    }).values
  let values: ReturnType<typeof parse>
  try {
    values = parse()
  } catch {
    return
  }
  if (typeof values.home !== "string" || values.help !== undefined) return
  const file = values["password-file"]
  let password: string | undefined
  if (typeof file === "string") {
    try {
      password = fs.readFileSync(file, "utf8").replace(/\r?\n$/, "")
    } catch {
      return
    }
  } else {
    const env = process.env["KINODE_PASSWORD"]
    if (env !== undefined && env !== "") password = env
  }
  if (password !== undefined) startEarly(keyfilePath(path.resolve(values.home)), password)
}

const hasJspi = typeof (WebAssembly as unknown as { Suspending?: unknown }).Suspending === "function"

/** glibc malloc arenas for the node (`withFewerArenas`). */
const ARENAS = { MALLOC_ARENA_MAX: "2" }

/**
 * glibc gives each thread that allocates an arena of its own (up to 8 per core) and
 * keeps what is freed there; V8 compiles Wasm on helper threads, so a node with its
 * apps held ~25 MB more RSS than with two arenas. The variable is read only when the
 * process starts: on Linux, when it is unset, the node replaces itself (same pid, fds
 * and arguments; `process.execve`, ~40 ms) with the same command and
 * MALLOC_ARENA_MAX=2. Set it yourself to skip this or to choose another value.
 */
const withFewerArenas = (): void => {
  const execve = (process as { execve?: (file: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv) => never }).execve
  if (process.platform !== "linux" || process.env["MALLOC_ARENA_MAX"] !== undefined || execve === undefined) return
  try {
    execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], { ...process.env, ...ARENAS })
  } catch {
    // Not replaced (a libc without execve, a sandbox refusing it): run as we are.
  }
}

if (hasJspi) {
  withFewerArenas()
  // Node keeps the compiled code of the node's few hundred modules on disk (under the
  // OS temp dir), so later boots skip parsing and compiling them: ~0.3 s of a boot.
  ;(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.()
  unlockEarly(process.argv.slice(2))
  const { main } = await import("./Cli.ts")
  main(process.argv.slice(2))
} else {
  const here = path.dirname(fileURLToPath(import.meta.url))
  const candidates = [path.resolve(here, "../../node_modules/.bin/node"), path.resolve(here, "../node_modules/.bin/node")]
  const bundled = candidates.find((p) => fs.existsSync(p))
  if (bundled === undefined || process.env["KINODE_TS_REEXEC"] === "1") {
    process.stderr.write(`kinode-ts needs Node >= 24 (WebAssembly JSPI); this is ${process.version} and no bundled Node was found: run npm install\n`)
    process.exit(1)
  }
  const child = spawn(bundled, [process.argv[1]!, ...process.argv.slice(2)], {
    stdio: "inherit",
    // Set here too (unless the user set it), so that Node 24 does not replace itself again.
    env: { ...ARENAS, ...process.env, KINODE_TS_REEXEC: "1" }
  })
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => child.kill(sig))
  child.on("exit", (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)))
}
