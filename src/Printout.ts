/**
 * Printouts to the node's terminal, with Kinode's verbosity levels:
 * 0 always shown, 1 debug, 2 runtime detail, 3 every kernel event.
 * A port: `services/terminal` prints them; tests collect them.
 */
import { Context, Effect, Layer } from "effect"

export interface Printed {
  readonly level: number
  /** The process the text is from (a ProcessId string) or "kernel". */
  readonly source: string
  readonly text: string
}

export class Printout extends Context.Service<Printout, {
  /** Shows `text` if the terminal's level (global or for `source`) is at least `level`. */
  readonly print: (level: number, source: string, text: string) => void
  readonly verbosity: () => number
  readonly setVerbosity: (level: number) => void
}>()("kernel/Printout") {
  /** Keeps every printout in memory (tests read `lines`). */
  static readonly memory = () => {
    const lines: Array<Printed> = []
    let level = 0
    const service = Printout.of({
      print: (l, source, text) => {
        lines.push({ level: l, source, text })
      },
      verbosity: () => level,
      setVerbosity: (l) => {
        level = l
      }
    })
    return { lines, layer: Layer.succeed(Printout, service) }
  }
}

export const printEffect = (level: number, source: string, text: string) =>
  Effect.map(Printout, (p) => p.print(level, source, text))
