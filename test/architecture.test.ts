/**
 * The dependency rule of style.md, checked on every import line: imports point down.
 * - src/ (the kernel) sees only effect, jco and binaryen (Wasm host), and src/ itself:
 *   the outside world arrives through ports it declares, never node:*, services/ or layers/.
 * - services/<x>/ sees src/ (not src/internal), its own folder, node and storage
 *   libraries, and other services only through their index.ts (lmdb is shared infra).
 * - nothing but test/, bench/ and layers/ imports layers/.
 * - the kernel's insides stay inside: nothing outside src/ reaches the router, the grant
 *   table or the process table; src/ starts no fiber outside a scope the kernel owns.
 * - the transport stays in its service: only services/net/ (and tests and benches of it)
 *   import libp2p; the kernel sees other nodes only through the `Net` port.
 * - HTTP stays in its services: only services/http-server/ serves it and only
 *   services/http-client/ makes requests (node:http, ws, find-my-way, undici, fetch);
 *   the chain's JSON-RPC (viem) is the exception.
 * - every services/<name>/ has an index.ts (its public surface), and every one that
 *   hosts a process has a Protocol.ts (the Schemas of what crosses its boundary).
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")

const files = (dir: string): Array<string> =>
  fs.readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name)
    if (e.isDirectory()) return files(rel)
    return e.name.endsWith(".ts") ? [rel] : []
  })

const importsOf = (file: string): Array<string> => {
  const text = fs.readFileSync(path.join(root, file), "utf8")
  return Array.from(text.matchAll(/(?:^|\n)\s*(?:import|export)[^"';]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g), (m) => m[1] ?? m[2]!)
}

const resolved = (file: string, spec: string) => path.normalize(path.join(path.dirname(file), spec))

describe("dependency rule", () => {
  it("src/ imports only effect, jco, binaryen (src/wasm-host) and src/", () => {
    const bad: Array<string> = []
    for (const f of files("src")) {
      for (const spec of importsOf(f)) {
        if (spec.startsWith(".")) {
          if (!resolved(f, spec).startsWith("src/")) bad.push(`${f} -> ${spec}`)
        } else if (
          !(spec === "effect" || spec.startsWith("effect/") || spec.startsWith("@bytecodealliance/") ||
            (spec === "binaryen" && f.startsWith(path.join("src", "wasm-host") + path.sep)))
        ) {
          bad.push(`${f} -> ${spec}`)
        }
      }
    }
    assert.deepStrictEqual(bad, [])
  })

  it("services/ import src/ publicly and other services only through index.ts", () => {
    const bad: Array<string> = []
    for (const f of files("services")) {
      const own = f.split(path.sep).slice(0, 2).join("/")
      for (const spec of importsOf(f)) {
        if (!spec.startsWith(".")) continue
        const target = resolved(f, spec)
        if (target.startsWith("layers/") || target.startsWith("test/")) bad.push(`${f} -> ${spec}`)
        else if (target.startsWith("src/internal/")) bad.push(`${f} -> ${spec}`)
        else if (target.startsWith("services/") && !target.startsWith(`${own}/`)) {
          const other = target.split("/")[1]
          if (other !== "lmdb" && !target.endsWith("/index.ts")) bad.push(`${f} -> ${spec}`)
        }
      }
    }
    assert.deepStrictEqual(bad, [])
  })

  it("only layers/, test/ and bench/ import layers/", () => {
    const bad: Array<string> = []
    for (const dir of ["src", "services"]) {
      for (const f of files(dir)) {
        for (const spec of importsOf(f)) if (spec.startsWith(".") && resolved(f, spec).startsWith("layers/")) bad.push(`${f} -> ${spec}`)
      }
    }
    assert.deepStrictEqual(bad, [])
  })

  it("nothing outside src/ reaches the router, the grant table or the process table", () => {
    const inner = new Set(["src/Router.ts", "src/GrantStore.ts", "src/ProcessTable.ts", "src/ModuleHosting.ts", "src/KernelCalls.ts"])
    const bad: Array<string> = []
    for (const dir of ["services", "layers", "test", "bench"]) {
      for (const f of files(dir)) {
        for (const spec of importsOf(f)) if (spec.startsWith(".") && inner.has(resolved(f, spec))) bad.push(`${f} -> ${spec}`)
        if (/\bGrantTable\b|\bRouterCore\b/.test(fs.readFileSync(path.join(root, f), "utf8"))) bad.push(`${f} names a kernel internal`)
      }
    }
    assert.deepStrictEqual(bad, [])
  })

  it("src/ starts no fiber outside a scope the kernel owns", () => {
    const bad: Array<string> = []
    for (const f of files("src")) {
      const text = fs.readFileSync(path.join(root, f), "utf8")
      for (const m of text.matchAll(/\b(?:Effect\.(?:runFork|runPromise|runSync|runCallback|runForkWith|runPromiseWith|runSyncWith|forkDetach)|forkDaemon)\b/g)) {
        bad.push(`${f}: ${m[0]}`)
      }
    }
    assert.deepStrictEqual(bad, [])
  })

  it("only services/net/ imports libp2p", () => {
    const libp2p = /^(?:libp2p|@libp2p\/|@chainsafe\/libp2p-|@multiformats\/multiaddr)/
    const bad: Array<string> = []
    for (const dir of ["src", "services", "layers"]) {
      for (const f of files(dir)) {
        if (f.startsWith(path.join("services", "net") + path.sep)) continue
        for (const spec of importsOf(f)) if (libp2p.test(spec)) bad.push(`${f} -> ${spec}`)
      }
    }
    assert.deepStrictEqual(bad, [])
  })

  it("HTTP stays in its services: only http-server serves it (Node http, ws server, routes) and only http-client fetches", () => {
    const serving = /^(?:node:http|node:https|node:http2|ws|find-my-way|undici)$/
    const allowed = ["http-server", "http-client"].map((s) => path.join("services", s) + path.sep)
    const bad: Array<string> = []
    for (const dir of ["src", "services", "layers"]) {
      for (const f of files(dir)) {
        if (allowed.some((a) => f.startsWith(a))) continue
        for (const spec of importsOf(f)) if (serving.test(spec)) bad.push(`${f} -> ${spec}`)
        if (/\bfetch\(/.test(fs.readFileSync(path.join(root, f), "utf8")) && !f.startsWith(path.join("services", "chain"))) bad.push(`${f} calls fetch`)
      }
    }
    assert.deepStrictEqual(bad, [])
  })

  it("every service has index.ts, and Protocol.ts when it hosts a process", () => {
    const bad: Array<string> = []
    for (const e of fs.readdirSync(path.join(root, "services"), { withFileTypes: true })) {
      if (!e.isDirectory()) continue
      const dir = path.join("services", e.name)
      const own = files(dir)
      if (!own.includes(path.join(dir, "index.ts"))) bad.push(`${dir}: no index.ts`)
      const hosts = own.some((f) => /serveLayer\(|\.serve\("/.test(fs.readFileSync(path.join(root, f), "utf8")))
      if (hosts && !own.includes(path.join(dir, "Protocol.ts"))) bad.push(`${dir}: hosts a process but has no Protocol.ts`)
    }
    assert.deepStrictEqual(bad, [])
  })
})
