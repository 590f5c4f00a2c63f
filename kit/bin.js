#!/usr/bin/env node
/**
 * `kit-ts`, the app developer's tool (kit/main.ts), as npm installs it (package.json
 * "bin"). Plain JavaScript that Node 20 loads: componentize-js, jco and the tool's
 * TypeScript sources need Node 24 (WebAssembly JSPI, type stripping), so on an older
 * Node this re-runs the same command with the Node 24 that `npm install` put in
 * node_modules/.bin (as dist/main.js does), forwarding signals and the exit code.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const main = path.join(here, "main.ts")
const ready = typeof WebAssembly.Suspending === "function" && Boolean(process.features.typescript)

if (ready) {
  // The build strips TypeScript with node:module's stripTypeScriptTypes, which warns that it is experimental.
  const emitWarning = process.emitWarning
  process.emitWarning = function (warning, ...rest) {
    if (String(typeof warning === "string" ? warning : warning?.message).includes("stripTypeScriptTypes")) return
    return emitWarning.call(process, warning, ...rest)
  }
  await import(main)
} else {
  const bundled = path.resolve(here, "../node_modules/.bin/node")
  if (!fs.existsSync(bundled) || process.env.KIT_TS_REEXEC === "1") {
    process.stderr.write(`kit-ts needs Node >= 24 (WebAssembly JSPI, TypeScript type stripping); this is ${process.version} and no bundled Node was found in ${path.dirname(bundled)}: run npm install in ${path.dirname(here)}\n`)
    process.exit(1)
  }
  const child = spawn(bundled, ["--disable-warning=ExperimentalWarning", main, ...process.argv.slice(2)], {
    stdio: "inherit",
    env: { ...process.env, KIT_TS_REEXEC: "1" }
  })
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig))
  child.on("exit", (code, signal) => process.exit(code ?? (signal === null ? 1 : 128 + 2)))
}
