/**
 * `kit-ts run-tests`: a package's tests (`test/**\/*.test.ts`, kit/testing.ts) against a
 * throwaway node: the package is built (type check included) while a dev node boots
 * (detached, on a temporary home), the package is installed with `start-package`'s
 * path, then every exported function of every test file is called in turn with a
 * `TestNode`; the caller stops the node (its home is removed) whatever happened.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { packageIdOf } from "../apps/build.ts"
import type { DevNode } from "./DevNode.ts"
import { rpc } from "./Rpc.ts"
import { startPackage } from "./StartPackage.ts"
import type { Answer, Test, TestNode } from "./testing.ts"

/** Seconds one test may take before it fails. */
export const TEST_TIMEOUT_SECONDS = 60

export const testFiles = (dir: string): Array<string> => {
  const root = path.join(dir, "test")
  if (!fs.existsSync(root)) return []
  return fs.readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".test.ts"))
    .map((e) => path.join(e.parentPath, e.name))
    .sort()
}

/** The exported functions of a test module, in the order the source declares them. */
const testsOf = (source: string, module: Record<string, unknown>): Array<[string, Test]> => {
  const position = (name: string) => {
    const m = new RegExp(`export\\s+(?:async\\s+)?(?:function\\s*\\*?\\s*|const\\s+|let\\s+)${name}\\b`).exec(source)
    return m === null ? Number.MAX_SAFE_INTEGER : m.index
  }
  return Object.entries(module)
    .filter((e): e is [string, Test] => typeof e[1] === "function")
    .sort(([a], [b]) => position(a) - position(b) || a.localeCompare(b))
}

const utf8 = new TextDecoder()

const testNode = (name: string, url: string, pkg: string, output: () => string): TestNode => ({
  name,
  url,
  package: pkg,
  output,
  request: async (process, body, options = {}) => {
    const a = await rpc(url, {
      process,
      body: typeof body === "string" ? body : JSON.stringify(body.json),
      timeout: options.timeout ?? 5,
      ...(options.blob === undefined ? {} : { blob: options.blob })
    })
    const text = utf8.decode(a.body)
    const answer: Answer = {
      bytes: a.body,
      text,
      json: <T>() => JSON.parse(text) as T,
      blob: a.blob?.bytes
    }
    return answer
  }
})

const withTimeout = <A>(p: Promise<A>, seconds: number, what: string): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} did not finish in ${seconds} s`)), seconds * 1000)
    p.then((a) => {
      clearTimeout(t)
      resolve(a)
    }, (e: unknown) => {
      clearTimeout(t)
      reject(e)
    })
  })

export interface TestReport {
  readonly passed: number
  readonly failed: number
}

export interface RunOptions {
  /** A detached dev node, booting or booted (bootDevNode); undefined when the package has no tests. */
  readonly node: DevNode | undefined
  readonly log: (line: string) => void
  readonly step: <A>(label: string, f: () => Promise<A>) => Promise<A>
}

/** Runs the tests of the (built) package folder `dir` on `options.node`. */
export const runTests = async (dirIn: string, options: RunOptions): Promise<TestReport> => {
  const dir = path.resolve(dirIn)
  const { log, step, node } = options
  const files = testFiles(dir)
  const id = packageIdOf(dir)
  const pkg = `${id.package}:${id.publisher}`
  if (files.length === 0 || node === undefined) {
    log(`${pkg}: no tests (test/*.test.ts)`)
    return { passed: 0, failed: 0 }
  }
  {
    const url = await step(`waiting for node ${node.name ?? "?"} to boot`, () => node.ready)
    const started = await startPackage(dir, url, step)
    log(started.summary)
    const t = testNode(node.name ?? "?", url, pkg, node.output)
    let passed = 0
    let failed = 0
    for (const file of files) {
      const rel = path.relative(dir, file)
      const module = (await import(pathToFileURL(file).href)) as Record<string, unknown>
      const tests = testsOf(fs.readFileSync(file, "utf8"), module)
      if (tests.length === 0) log(`${rel}: exports no test function`)
      for (const [name, test] of tests) {
        const t0 = performance.now()
        const mark = node.output().length
        try {
          await withTimeout(Promise.resolve().then(() => test(t)), TEST_TIMEOUT_SECONDS, name)
          passed++
          log(`  ok    ${rel} > ${name} (${Math.round(performance.now() - t0)} ms)`)
        } catch (e) {
          failed++
          log(`  FAIL  ${rel} > ${name} (${Math.round(performance.now() - t0)} ms)`)
          log(`        ${(e instanceof Error ? (e.stack ?? e.message) : String(e)).split("\n").join("\n        ")}`)
          const printed = node.output().slice(mark).trimEnd()
          if (printed !== "") log(`        the node printed meanwhile:\n          ${printed.split("\n").join("\n          ")}`)
        }
      }
    }
    log(`${passed} passed, ${failed} failed`)
    return { passed, failed }
  }
}
