/**
 * Commands the node answers itself at the prompt, by name: a line's first word names
 * one, the rest is its arguments. `help` is generated from a table.
 */
import type { Effect } from "effect"
import type { NativeApi } from "../../src/ProcessApi.ts"
import type { Identity } from "../../src/Identity.ts"
import type { Kernel } from "../../src/Kernel.ts"
import type { Printout } from "../../src/Printout.ts"

export interface CommandContext {
  /** The node's own terminal session (`native-terminal:distro:sys`, root): commands send as it. */
  readonly terminal: NativeApi
  /** Prints a line of the command's output (always shown). */
  readonly say: (text: string) => void
  /** Ends the read loop: the node shuts down, as on Ctrl-D. */
  readonly quit: () => void
}

export interface TerminalCommand {
  readonly name: string
  readonly usage: string
  readonly help: string
  readonly run: (args: string, ctx: CommandContext) => Effect.Effect<void, never, Kernel | Printout | Identity>
}

export const makeCommandTable = (initial: ReadonlyArray<TerminalCommand>) => {
  const commands = new Map<string, TerminalCommand>()
  for (const c of initial) commands.set(c.name, c)
  const helpText = () => {
    const rows = Array.from(commands.values()).map((c) => `  ${c.usage.padEnd(34)} ${c.help}`)
    return ["commands:", ...rows, `  ${"help".padEnd(34)} this text`, `  ${"Ctrl-C / Ctrl-D".padEnd(34)} shut the node down`].join("\n")
  }
  return {
    register: (command: TerminalCommand) => void commands.set(command.name, command),
    lookup: (name: string) => commands.get(name),
    names: () => Array.from(commands.keys()),
    helpText
  }
}
