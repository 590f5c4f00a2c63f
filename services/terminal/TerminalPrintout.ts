/**
 * Printouts on the node's standard output, filtered by verbosity: the global level,
 * overridden per process. Level 0 lines always show.
 */
import { Layer } from "effect"
import { Printout } from "../../src/Printout.ts"

const colours = ["", "\x1b[32m", "\x1b[35m", "\x1b[31m"]

export const TerminalPrintout = (initialLevel: number, write: (line: string) => void = (l) => void process.stdout.write(l)) =>
  Layer.sync(Printout, () => {
    let level = initialLevel
    const colour = process.stdout.isTTY === true
    return Printout.of({
      print: (l, _source, text) => {
        if (l > level) return
        const c = colour ? colours[Math.min(l, 3)] ?? "" : ""
        write(`${c}${text}${c === "" ? "" : "\x1b[0m"}\n`)
      },
      verbosity: () => level,
      setVerbosity: (l) => {
        level = Math.max(0, Math.min(3, Math.trunc(l)))
      }
    })
  })
