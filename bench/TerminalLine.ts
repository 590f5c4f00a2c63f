/**
 * Rows for the terminal (issue #13), run by the wasm suite: a line typed at the prompt
 * (`Terminal.run`, the node's line reader) to its script's answer printed, on a real
 * kernel with the bundled terminal package installed (apps/terminal, built first). Each
 * line makes the terminal app read the script's entry and link through vfs, spawn the
 * script (a fresh instance of the 12.5 MB componentize-js component) and hand it the
 * arguments; the script prints and exits. `echo`: the cheapest script; `m -a 5` to the
 * TypeScript echo app: one more round trip. p50 and p99 over 60 lines each, after 5 to
 * warm up; the first line after install (the component's first instance) on its own.
 */
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { buildApp } from "../apps/build.ts"
import { StorageLive } from "../layers/Storage.ts"
import { testKernel } from "../layers/TestLive.ts"
import { Lmdb } from "../services/lmdb/Lmdb.ts"
import { Packages } from "../services/packages/index.ts"
import { Terminal } from "../services/terminal/index.ts"
import type { Printed } from "../src/Printout.ts"
import { percentile, type Row } from "./Row.ts"

const SUITE = "wasm"
const repo = path.resolve(import.meta.dirname, "..")
const zip = (app: string) => new Uint8Array(fs.readFileSync(path.join(repo, "apps", "dist", `${app}.zip`)))

/** Milliseconds from typing `line` to a printout ending with `answer`. */
const lineToAnswer = (lines: ReadonlyArray<Printed>, line: string, answer: string) =>
  Effect.gen(function*() {
    const terminal = yield* Terminal
    const from = lines.length
    const t0 = performance.now()
    yield* terminal.run(line)
    while (!lines.slice(from).some((l) => l.text.endsWith(answer))) {
      if (performance.now() - t0 > 20_000) return yield* Effect.die(new Error(`no answer to ${line}`))
      yield* Effect.sleep("1 millis")
    }
    return performance.now() - t0
  })

export const terminalFigures = async (): Promise<Array<Row>> => {
  await Promise.all([buildApp("terminal"), buildApp("echo")])
  const k = testKernel({})
  const layer = Terminal.layer.pipe(
    Layer.provideMerge(Packages.layer),
    Layer.provideMerge(StorageLive),
    Layer.provide(Lmdb.layer),
    Layer.provideMerge(k.layer)
  )
  return Effect.runPromise(Effect.gen(function*() {
    const packages = yield* Packages
    yield* packages.install({ package: "terminal", publisher: "sys" }, zip("terminal"))
    yield* packages.install({ package: "echo", publisher: "sys" }, zip("echo"))
    const first = yield* lineToAnswer(k.lines, "echo first", "first")
    const series = (make: (i: number) => readonly [string, string]) =>
      Effect.gen(function*() {
        for (let i = 0; i < 5; i++) yield* lineToAnswer(k.lines, ...make(i))
        const ms: Array<number> = []
        for (let i = 0; i < 60; i++) ms.push(yield* lineToAnswer(k.lines, ...make(i)))
        return ms.sort((a, b) => a - b)
      })
    const echo = yield* series((i) => [`echo line ${i}`, `line ${i}`])
    const m = yield* series((i) => [`m our@echo:echo:sys 'm line ${i}' -a 5`, `m line ${i}`])
    return [
      { suite: SUITE, metric: "terminal line to printed answer, first after install (echo)", value: first, unit: "ms" },
      { suite: SUITE, metric: "terminal line to printed answer p50 (echo)", value: percentile(echo, 50), unit: "ms" },
      { suite: SUITE, metric: "terminal line to printed answer p99 (echo)", value: percentile(echo, 99), unit: "ms" },
      { suite: SUITE, metric: "terminal line to printed answer p50 (m -a 5 to the TS echo app)", value: percentile(m, 50), unit: "ms" },
      { suite: SUITE, metric: "terminal line to printed answer p99 (m -a 5 to the TS echo app)", value: percentile(m, 99), unit: "ms" }
    ] satisfies Array<Row>
  }).pipe(Effect.provide(layer), Effect.scoped))
}

if (import.meta.main) {
  for (const r of await terminalFigures()) process.stdout.write(`${r.suite}  ${r.metric}  ${r.value.toFixed(1)} ${r.unit}\n`)
}
