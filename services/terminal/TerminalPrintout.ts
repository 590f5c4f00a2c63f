/**
 * Printouts on the node's standard output, filtered by verbosity: the global level,
 * overridden per process. Level 0 lines always show. Provides `Printout` and the
 * `TerminalConsole` the read loop keeps its prompt on.
 */
import { Context, Effect, Layer } from "effect"
import { Printout } from "../../src/Printout.ts"
import { TerminalConsole } from "./TerminalConsole.ts"

const colours = ["", "\x1b[32m", "\x1b[35m", "\x1b[31m"]

export const TerminalPrintout = (initialLevel: number, write: (text: string) => void = (t) => void process.stdout.write(t)) =>
  Layer.effectContext(Effect.sync(() => {
    let level = initialLevel
    const colour = process.stdout.isTTY === true
    const console = TerminalConsole.make(write)
    const printout = Printout.of({
      print: (l, _source, text) => {
        if (l > level) return
        const c = colour ? colours[Math.min(l, 3)] ?? "" : ""
        console.write(`${c}${text}${c === "" ? "" : "\x1b[0m"}\n`)
      },
      verbosity: () => level,
      setVerbosity: (l) => {
        level = Math.max(0, Math.min(3, Math.trunc(l)))
      }
    })
    return Context.make(Printout, printout).pipe(Context.add(TerminalConsole, console))
  }))
