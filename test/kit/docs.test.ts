/**
 * docs/apps.md's examples compile: every ```ts block is type-checked as kit-ts build
 * checks a package (kit/TypeCheck.ts: src/ against the SDK with kit/tsconfig.app.json;
 * blocks importing kinode-ts/testing as tests, with kit/tsconfig.test.json). A block is
 * a module of its own. Errors are reported at their line in docs/apps.md.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { typeCheck } from "../../kit/TypeCheck.ts"
import { tempDirs } from "../support/TempDirs.ts"

const root = path.resolve(import.meta.dirname, "../..")
const dirs = tempDirs()
afterAll(() => dirs.removeAll())

interface Block {
  /** Line in the document of the block's first code line (1-based). */
  readonly line: number
  readonly code: string
}

const blocks = (markdown: string, lang: string): Array<Block> => {
  const out: Array<Block> = []
  const lines = markdown.split("\n")
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== "```" + lang) continue
    const start = i + 1
    let end = start
    while (end < lines.length && lines[end]!.trim() !== "```") end++
    out.push({ line: start + 1, code: lines.slice(start, end).join("\n") })
    i = end
  }
  return out
}

/** Writes the blocks as a package's src/ and test/ files; returns file -> block. */
const writePackage = (dir: string, list: ReadonlyArray<Block>): Map<string, Block> => {
  const files = new Map<string, Block>()
  list.forEach((b, i) => {
    const rel = b.code.includes("kinode-ts/testing") ? `test/example${i}.test.ts` : `src/example${i}.ts`
    fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true })
    fs.writeFileSync(path.join(dir, rel), `${b.code}\nexport {}\n`)
    files.set(rel, b)
  })
  return files
}

/** tsc's `file(line,col): error` lines, pointed at the document. */
const located = (errors: string, files: Map<string, Block>, doc: string): string =>
  errors.replace(/^(\S+?)\((\d+),(\d+)\)/gm, (all, file: string, line: string, col: string) => {
    const b = files.get(file.split(path.sep).join("/"))
    return b === undefined ? all : `${doc}:${b.line + Number(line) - 1}:${col}`
  })

describe("docs/apps.md", () => {
  it("every ts example type-checks against the SDK (apps) or kinode-ts/testing (tests)", async () => {
    const doc = "docs/apps.md"
    const list = blocks(fs.readFileSync(path.join(root, doc), "utf8"), "ts")
    assert.isAtLeast(list.length, 9)
    const dir = dirs.mkdir("kit-ts-docs-")
    const files = writePackage(dir, list)
    assert.isTrue([...files.keys()].some((f) => f.startsWith("test/")), "a test example is checked as a test")
    const r = await typeCheck(dir)
    assert.deepStrictEqual(r.checked, ["src/", "test/"])
    assert.isUndefined(r.errors, located(r.errors ?? "", files, doc))
  }, 60_000)

  it("the check fails on an example that would not build (a body of the wrong type, the SDK misused)", async () => {
    const dir = dirs.mkdir("kit-ts-docs-bad-")
    const files = writePackage(dir, [
      { line: 1, code: `import { respond } from "kinode-ts/sdk"\nexport function init(_our: string): void {\n  respond(42)\n}` },
      { line: 10, code: `import { local } from "kinode-ts/sdk"\nexport const f = () => local(1, "a:b:c")` }
    ])
    const r = await typeCheck(dir)
    assert.isDefined(r.errors)
    const errors = located(r.errors!, files, "doc")
    assert.match(errors, /^doc:3:\d+ - error TS2345|^doc:3:\d+: error TS2345/m)
    assert.match(errors, /^doc:11:\d+/m)
  }, 60_000)
})
