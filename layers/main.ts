/**
 * Entry point (`dist/main.js` imports this). Kept free of anything newer than Node 20
 * can load: if this Node lacks JSPI (WebAssembly.Suspending), re-run the same command
 * with the Node 24 that `npm install` put in node_modules, forwarding signals.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as nodeModule from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const hasJspi = typeof (WebAssembly as unknown as { Suspending?: unknown }).Suspending === "function"

if (hasJspi) {
  // Node keeps the compiled code of the node's few hundred modules on disk (under the
  // OS temp dir), so later boots skip parsing and compiling them: ~0.3 s of a boot.
  ;(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.()
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
    env: { ...process.env, KINODE_TS_REEXEC: "1" }
  })
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, () => child.kill(sig))
  child.on("exit", (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)))
}
