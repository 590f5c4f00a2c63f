/**
 * The terminal: the process `terminal:terminal:sys` (a session of the kernel that holds
 * the kernel messaging capability, so it is root), its command table, and the read loop
 * that turns each input line into a command run as that process.
 */
import { Context, Effect, Layer } from "effect"
import * as readline from "node:readline"
import type { Identity } from "../../src/Identity.ts"
import { Kernel, messagingCap, networkCap } from "../../src/Kernel.ts"
import { Printout } from "../../src/Printout.ts"
import { builtinCommands } from "./Commands.ts"
import { makeCommandTable, type TerminalCommand } from "./CommandTable.ts"

export const TERMINAL_PROCESS = "terminal:terminal:sys"

export class Terminal extends Context.Service<Terminal, {
  /** Runs one line; its output is printed. Never fails: a failing command prints why. */
  readonly run: (line: string) => Effect.Effect<void>
  /** Adds (or replaces) a command. */
  readonly register: (command: TerminalCommand) => void
  readonly commands: () => ReadonlyArray<string>
}>()("services/terminal/Terminal") {
  /** The terminal process and its built-in commands; needs the kernel. */
  static readonly layer = Layer.effect(
    Terminal,
    Effect.gen(function*() {
      const kernel = yield* Kernel
      const printout = yield* Printout
      const context = yield* Effect.context<Kernel | Printout | Identity>()
      const terminal = yield* kernel.session(TERMINAL_PROCESS, {
        capabilities: [messagingCap(kernel.node, "kernel:distro:sys"), networkCap(kernel.node)],
        public: true
      })
      const table = makeCommandTable(builtinCommands)
      const say = (text: string) => printout.print(0, TERMINAL_PROCESS, text)
      const run = (line: string): Effect.Effect<void> => {
        const trimmed = line.trim()
        if (trimmed === "") return Effect.void
        const space = trimmed.indexOf(" ")
        const head = space < 0 ? trimmed : trimmed.slice(0, space)
        const args = space < 0 ? "" : trimmed.slice(space + 1).trim()
        if (head === "help") return Effect.sync(() => say(table.helpText()))
        const command = table.lookup(head)
        if (command === undefined) return Effect.sync(() => say(`'${head}' is not a command; try help`))
        return command.run(args, { terminal, say }).pipe(
          Effect.provide(context),
          Effect.catchCause((cause) => Effect.sync(() => say(`${head} failed: ${String(cause)}`)))
        )
      }
      return Terminal.of({ run, register: table.register, commands: table.names })
    })
  )
}

/**
 * Reads lines from standard input until it ends (Ctrl-D) or Ctrl-C, running each as a
 * command, with the prompt `<node> > `.
 */
export const readLoop = Effect.gen(function*() {
  const kernel = yield* Kernel
  const terminal = yield* Terminal
  const rl = yield* Effect.acquireRelease(
    Effect.sync(() =>
      readline.createInterface({
        input: process.stdin,
        output: process.stdout,
        prompt: `${kernel.node} > `,
        terminal: process.stdin.isTTY === true
      })
    ),
    (rl) => Effect.sync(() => rl.close())
  )
  const lines: Array<string> = []
  let ended = false
  let wake: (() => void) | undefined
  rl.on("line", (l) => {
    lines.push(l)
    wake?.()
  })
  const end = () => {
    ended = true
    wake?.()
  }
  rl.on("close", end)
  rl.on("SIGINT", end)
  rl.prompt()
  while (true) {
    const line = lines.shift()
    if (line !== undefined) {
      yield* terminal.run(line)
      if (!ended) rl.prompt()
      continue
    }
    if (ended) return
    yield* Effect.callback<void>((resume) => {
      wake = () => {
        wake = undefined
        resume(Effect.void)
      }
    })
  }
})
