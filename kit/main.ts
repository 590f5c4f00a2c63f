/**
 * `kit-ts`: the app developer's tool of kinode-ts, after Kinode's `kit` (same command
 * names where they mean the same; `-ts` so that both can be on one PATH). Started by
 * kit/bin.js (the package's "bin"), which runs it on Node 24.
 *
 * Every command takes paths relative to the folder it was run in; exit codes: 0 done,
 * 1 failed (the reason printed), 2 bad usage.
 */
import * as path from "node:path"
import { parseArgs } from "node:util"
import { BuildRefused, buildPackage, packageIdOf, type Progress } from "../apps/build.ts"
import { bootDevNode, DevNodeFailed } from "./DevNode.ts"
import { DEFAULT_PUBLISHER, newPackage, NewRefused, type Template, TEMPLATES } from "./New.ts"
import { RpcFailed } from "./Rpc.ts"
import { runTests, testFiles } from "./RunTests.ts"
import { StartRefused, startPackage } from "./StartPackage.ts"
import { typeCheck } from "./TypeCheck.ts"

const DEFAULT_URL = "http://127.0.0.1:8080"

const USAGE = `kit-ts: write, build, install and test Kinode apps for kinode-ts

usage: kit-ts <command> [options]          kit-ts <command> --help: one command in full

  new <dir> [--template ts|wat]            a package folder named after <dir> that builds and passes its test as it is
  build [dir]                              type-check, then build the package in <dir> (default .) into its zip
  start-package [dir] [--url <url>]        install the built zip into a running node (default ${DEFAULT_URL})
  boot-dev-node [--home <dir>] [--port n]  a throwaway node on the local chain, this terminal its prompt
  run-tests [dir]                          build, then run the package's tests against a throwaway node

On Node 20 it re-runs itself with the Node 24 of the checkout's node_modules (npm install).
Docs: docs/apps.md of the kinode-ts checkout.`

const HELP: Record<string, string> = {
  new: `usage: kit-ts new <dir> [--template ts|wat] [--publisher <node>]

Creates the folder <dir> (relative to here; it must not exist, or be empty) holding a
package named after it (a-z, 0-9, -): <name>:<publisher>, one process
<name>:<name>:<publisher>.

  --template ts    (default) src/main.ts against the SDK (kinode-ts/sdk): answers "<text>"
                   with "hello, <text>"; tsconfig.json type-checks it against the SDK
  --template wat   src/main.wat: a core module for wit/'s process-v1 world that answers
                   each request with its body; the build makes it a component
  --publisher      the package's publisher (default ${DEFAULT_PUBLISHER})

Also metadata.json, pkg/manifest.json, test/<name>.test.ts (passes as it is: kit-ts
run-tests), .gitignore, README.md.`,
  build: `usage: kit-ts build [dir] [--force]

Builds the package in <dir> (default .): first type-checks its TypeScript (src/ against
the SDK, test/ against the SDK and kinode-ts/testing; an error stops the build and is
printed), then builds each Wasm file the manifest and scripts.json name (x.wasm from
src/x.ts, src/x.wat, src/main.ts or src/main.wat) and zips pkg/ into
target/<package>:<publisher>.zip (an app of the checkout's apps/: apps/dist/<app>.zip).
Prints the zip's path and size.

Nothing stale is packed: outputs are reused only when built here from the same sources,
SDK, WIT and toolchain and unchanged since; a .wasm in pkg/ that the build does not make
(e.g. left by a copied folder) stops the build, named.

  --force   rebuild everything`,
  "start-package": `usage: kit-ts start-package [dir] [--url <url>]

Installs the built zip of the package in <dir> (default .) into the node at <url>
(default ${DEFAULT_URL}) without restarting it, through the node's install path as
Kinode's kit does: the app store (main:app-store:sys) over the node's RPC path,
NewPackage with the zip, then Install. Every capability the manifest asks for is
granted; an installed version is replaced. Prints what started, or why the node
refused. The zip must be the build of the sources as they are (else: kit-ts build).

  --url   the node's HTTP address, on this machine (the RPC path answers local tools only)`,
  "boot-dev-node": `usage: kit-ts boot-dev-node [--home <dir>] [--port <n>] [-- <node flags>]

Boots node dist/main.js of this checkout under a fresh name (dev-<6 hex>.dev) and
password, both printed, on the embedded local chain (port 8545, started if no node
started it yet; it keeps running afterwards). This terminal becomes the node's prompt
(help lists the commands); Ctrl-C or Ctrl-D stops it.

  --home <dir>   keep the node in <dir> (name and password kept in
                 <dir>/.kit-ts-dev-node.json, so the same command boots it again);
                 without it the node lives in a temporary folder, removed on exit
  --port <n>     its HTTP port (default 8080, or the next free one)
  -- <flags>     more flags for node dist/main.js (e.g. -- --chain-port 8546 -v 1)`,
  "run-tests": `usage: kit-ts run-tests [dir] [--port <n>] [-- <node flags>]

Builds the package in <dir> (default .) as kit-ts build does, boots a throwaway node
(as boot-dev-node, detached), installs the package, and calls every function exported
by test/**/*.test.ts with the node (a TestNode of kinode-ts/testing: request(process,
body) through the node's RPC path); a test fails by throwing. Prints each result; the
node is stopped and removed at the end. Exit 1 if a test failed.

  --port <n>     the node's HTTP port (default 8080, or the next free one)
  -- <flags>     more flags for node dist/main.js`
}

class Usage extends Error {
  readonly _tag = "Usage"
}

const out = (line: string) => process.stdout.write(`${line}\n`)
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`
const size = (bytes: number) => (bytes < 1e6 ? `${(bytes / 1e3).toFixed(1)} kB` : `${(bytes / 1e6).toFixed(1)} MB`)
const shown = (file: string) => {
  const rel = path.relative(process.cwd(), file)
  return rel.startsWith("..") && rel.split(path.sep).length > 3 ? file : rel
}

/** A step that may take a while: said when it starts and when it is done, with its time. */
const step = async <A>(label: string, f: () => Promise<A>): Promise<A> => {
  const t0 = performance.now()
  out(`${label} ...`)
  const a = await f()
  out(`${label}: done in ${seconds(performance.now() - t0)}`)
  return a
}

const progress: Progress = (e) => out(e.done ? `${e.step}: done in ${seconds(e.ms ?? 0)}` : `${e.step} ...`)

const port = (text: string | undefined): number | undefined => {
  if (text === undefined) return undefined
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Usage(`--port takes a port number 1-65535, not ${text}`)
  return n
}

/** Type check, then build; false (the reason printed) when it did not build. */
const build = async (dir: string, force: boolean): Promise<boolean> => {
  const id = packageIdOf(dir)
  const t0 = performance.now()
  const checked = await step(`type-checking ${id.package}:${id.publisher} against the SDK`, () =>
    typeCheck(dir, { color: process.stdout.isTTY === true }))
  if (checked.errors !== undefined) {
    process.stderr.write(`${checked.errors}\n`)
    process.stderr.write(`build stopped: type errors in ${checked.failed.join(" and ")} of ${shown(dir) || "."} (nothing was built)\n`)
    return false
  }
  const r = await buildPackage(dir, { force, progress })
  out(
    `${id.package}:${id.publisher} ${r.built ? "built" : "up to date"} in ${seconds(performance.now() - t0)}: ` +
      `${shown(r.zip)} (${size(r.zipBytes)})`
  )
  return true
}

const split = (argv: ReadonlyArray<string>) => {
  const i = argv.indexOf("--")
  return i === -1 ? { own: argv, rest: [] } : { own: argv.slice(0, i), rest: argv.slice(i + 1) }
}

const parse = <O extends Record<string, { type: "string" | "boolean"; short?: string }>>(args: ReadonlyArray<string>, options: O) => {
  try {
    return parseArgs({ args: [...args], options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true })
  } catch (e) {
    throw new Usage(e instanceof Error ? e.message : String(e))
  }
}

const onePositional = (positionals: ReadonlyArray<string>, what: string): string | undefined => {
  if (positionals.length > 1) throw new Usage(`one ${what} at most, not ${positionals.join(" ")}`)
  return positionals[0]
}

const commands: Record<string, (argv: ReadonlyArray<string>) => Promise<number>> = {
  new: async (argv) => {
    const { values, positionals } = parse(argv, { template: { type: "string" }, publisher: { type: "string" } })
    if (values.help === true) return help("new")
    const dir = onePositional(positionals, "folder")
    if (dir === undefined) throw new Usage("new needs the folder to create: kit-ts new <dir>")
    const template = (values.template ?? "ts") as Template
    if (!TEMPLATES.includes(template)) throw new Usage(`--template takes ${TEMPLATES.join(" or ")}, not ${values.template}`)
    const files = newPackage(dir, template, values.publisher ?? DEFAULT_PUBLISHER)
    const id = packageIdOf(dir)
    out(`created ${shown(path.resolve(dir))}/ (${template === "ts" ? "TypeScript" : "WAT"}): ${id.package}:${id.publisher}`)
    for (const f of files) out(`  ${f}`)
    const cd = shown(path.resolve(dir))
    out(`next: cd ${cd} && kit-ts build, then kit-ts run-tests (or kit-ts boot-dev-node in another terminal and kit-ts start-package)`)
    return 0
  },

  build: async (argv) => {
    const { values, positionals } = parse(argv, { force: { type: "boolean" } })
    if (values.help === true) return help("build")
    return (await build(onePositional(positionals, "folder") ?? ".", values.force === true)) ? 0 : 1
  },

  "start-package": async (argv) => {
    const { values, positionals } = parse(argv, { url: { type: "string" } })
    if (values.help === true) return help("start-package")
    const url = values.url ?? DEFAULT_URL
    if (!/^https?:\/\/[^/]+\/?$/.test(url)) throw new Usage(`--url takes the node's address, e.g. ${DEFAULT_URL}, not ${url}`)
    const started = await startPackage(onePositional(positionals, "folder") ?? ".", url, step)
    out(started.summary)
    return 0
  },

  "boot-dev-node": async (argv) => {
    const { own, rest } = split(argv)
    const { values, positionals } = parse(own, { home: { type: "string" }, port: { type: "string" } })
    if (values.help === true) return help("boot-dev-node")
    if (positionals.length > 0) throw new Usage(`boot-dev-node takes no ${positionals.join(" ")} (node flags go after --)`)
    const p = port(values.port)
    const node = bootDevNode({
      detached: false,
      ...(values.home === undefined ? {} : { home: values.home }),
      ...(p === undefined ? {} : { port: p }),
      nodeArgs: rest
    })
    out(node.name === undefined
      ? `booting the node in ${node.home} (not made by kit-ts: it asks its password)`
      : `booting dev node ${node.name}, password ${node.password}, home ${node.home} (${node.temporary ? "removed when it exits" : "kept"})`)
    out(`the first boot registers the name on the local chain and installs the bundled apps (~10-20 s); then: kit-ts start-package --url <the URL it prints>`)
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      process.on(sig, () => {
        if (node.child.exitCode === null) node.child.kill(sig)
      })
    }
    return node.exited
  },

  "run-tests": async (argv) => {
    const { own, rest } = split(argv)
    const { values, positionals } = parse(own, { port: { type: "string" } })
    if (values.help === true) return help("run-tests")
    const dir = onePositional(positionals, "folder") ?? "."
    const p = port(values.port)
    packageIdOf(dir)
    // The node boots while the package builds (a first boot takes ~10 s).
    const node = testFiles(path.resolve(dir)).length === 0
      ? undefined
      : bootDevNode({ detached: true, ...(p === undefined ? {} : { port: p }), nodeArgs: rest })
    if (node !== undefined) out(`booting a throwaway node ${node.name ?? ""} meanwhile (home ${node.home}, removed at the end)`)
    try {
      if (!(await build(dir, false))) return 1
      const report = await runTests(dir, { node, log: out, step })
      return report.failed > 0 ? 1 : 0
    } finally {
      await node?.stop()
    }
  }
}

const help = (command: string): number => {
  out(HELP[command] ?? USAGE)
  return 0
}

export const main = async (argv: ReadonlyArray<string>): Promise<number> => {
  const [command, ...args] = argv
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    if (command === "help" && args[0] !== undefined && HELP[args[0]] !== undefined) return help(args[0])
    out(USAGE)
    return command === undefined ? 2 : 0
  }
  const run = commands[command]
  if (run === undefined) {
    process.stderr.write(`kit-ts: no command ${command}\n\n${USAGE}\n`)
    return 2
  }
  try {
    return await run(args)
  } catch (e) {
    if (e instanceof Usage) {
      process.stderr.write(`kit-ts ${command}: ${e.message}\n\n${HELP[command]}\n`)
      return 2
    }
    if (e instanceof BuildRefused || e instanceof NewRefused || e instanceof StartRefused || e instanceof RpcFailed || e instanceof DevNodeFailed) {
      process.stderr.write(`kit-ts ${command}: ${e.message}\n`)
      return 1
    }
    throw e
  }
}

// Output piped into a reader that went away (kit-ts --help | head): stop quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0)
    throw e
  })
}

process.exitCode = await main(process.argv.slice(2))
