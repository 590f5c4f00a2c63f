/**
 * The node's standard output, shared by printouts and the prompt: a printout that
 * arrives while the prompt is shown goes above it. On a TTY the prompt line (with what
 * is typed so far) is cleared, the printout written, and the prompt drawn again; on a
 * pipe the printout starts on a line of its own.
 */
import { Context, Effect, type Scope } from "effect"

/** What the read loop lets the console do with its prompt. */
export interface PromptHooks {
  /** Before a printout: make room (clear the prompt line, or end it). */
  readonly before: () => void
  /** After a printout: show the prompt again if it was shown. */
  readonly after: () => void
}

export class TerminalConsole extends Context.Service<TerminalConsole, {
  /** Writes a printout (text ending in a newline), keeping the prompt below it. */
  readonly write: (text: string) => void
  /** Lets the read loop's prompt be kept below printouts until the scope closes. */
  readonly attach: (prompt: PromptHooks) => Effect.Effect<void, never, Scope.Scope>
}>()("services/terminal/TerminalConsole") {
  static readonly make = (out: (text: string) => void) => {
    let prompt: PromptHooks | undefined
    return TerminalConsole.of({
      write: (text) => {
        const p = prompt
        if (p === undefined) return out(text)
        p.before()
        out(text)
        p.after()
      },
      attach: (p) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            prompt = p
          }),
          () =>
            Effect.sync(() => {
              if (prompt === p) prompt = undefined
            })
        )
    })
  }
}
