/**
 * The type check `kit-ts build` runs before building: `tsc` (this checkout's TypeScript)
 * on the package's sources and on its tests, against this checkout's SDK whatever the
 * package's tsconfig says (`kinode-ts/sdk` and `kinode-ts/testing` are mapped here, so
 * what is checked is what gets built).
 *
 * - `src/`: the package's `tsconfig.json` if it has one (its options and `include`),
 *   else `kit/tsconfig.app.json` on `src/`.
 * - `test/` (when it holds `.ts` files): `test/tsconfig.json` if there is one, else
 *   `kit/tsconfig.test.json` on `test/`.
 *
 * Each is checked through a throwaway tsconfig that extends the package's and sets only
 * `paths`, so the package's own options, `include` and `files` apply.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const kitDir = path.dirname(fileURLToPath(import.meta.url))
const repo = path.dirname(kitDir)
const tscBin = path.join(repo, "node_modules", "typescript", "bin", "tsc")

const PATHS = {
  "kinode-ts/sdk": [path.join(repo, "apps", "sdk", "index.ts")],
  "kinode-ts/testing": [path.join(kitDir, "testing.ts")]
}

const hasTs = (dir: string): boolean =>
  fs.existsSync(dir) &&
  fs.readdirSync(dir, { withFileTypes: true, recursive: true }).some((e) => e.isFile() && e.name.endsWith(".ts"))

export interface CheckResult {
  /** What was checked, e.g. `src/`, `test/`. */
  readonly checked: ReadonlyArray<string>
  /** tsc's report when it found errors (paths relative to the package folder). */
  readonly errors: string | undefined
  /** What had errors. */
  readonly failed: ReadonlyArray<string>
}

const runTsc = (config: string, cwd: string, color: boolean): Promise<{ code: number | null; output: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [tscBin, "-p", config, "--noEmit", "--pretty", color ? "true" : "false"], { cwd })
    let output = ""
    child.stdout.on("data", (d: Buffer) => (output += d.toString()))
    child.stderr.on("data", (d: Buffer) => (output += d.toString()))
    child.on("error", reject)
    child.on("exit", (code) => resolve({ code, output }))
  })

/** Type-checks the package folder `dir`'s TypeScript (see the top of this file). */
export const typeCheck = async (dirIn: string, options: { readonly color?: boolean } = {}): Promise<CheckResult> => {
  const dir = path.resolve(dirIn)
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "kit-ts-tsc-"))
  try {
    const programs: Array<{ label: string; config: object }> = []
    if (hasTs(path.join(dir, "src"))) {
      const own = path.join(dir, "tsconfig.json")
      programs.push({
        label: "src/",
        config: fs.existsSync(own)
          ? { extends: own, compilerOptions: { paths: PATHS } }
          : { extends: path.join(kitDir, "tsconfig.app.json"), compilerOptions: { paths: PATHS }, include: [path.join(dir, "src")] }
      })
    }
    if (hasTs(path.join(dir, "test"))) {
      const own = path.join(dir, "test", "tsconfig.json")
      programs.push({
        label: "test/",
        config: fs.existsSync(own)
          ? { extends: own, compilerOptions: { paths: PATHS } }
          : { extends: path.join(kitDir, "tsconfig.test.json"), compilerOptions: { paths: PATHS }, include: [path.join(dir, "test")] }
      })
    }
    const results = await Promise.all(programs.map(async (p, i) => {
      const config = path.join(tmp, `tsconfig.${i}.json`)
      fs.writeFileSync(config, JSON.stringify(p.config))
      return { label: p.label, ...(await runTsc(config, dir, options.color ?? false)) }
    }))
    const failed = results.filter((r) => r.code !== 0)
    return {
      checked: programs.map((p) => p.label),
      errors: failed.length === 0 ? undefined : failed.map((r) => r.output.trimEnd()).join("\n"),
      failed: failed.map((r) => r.label)
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}
