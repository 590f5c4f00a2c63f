/**
 * The node's terminal, as Kinode's runtime has it (kinode-semantics §6.11, §8): a line
 * reader that sends every typed line to the terminal app, `terminal:terminal:sys`, and
 * prints printouts. The app (ours, apps/terminal, or Kinode's own terminal package
 * installed in its place) resolves aliases and runs scripts; what they print comes back
 * as printouts.
 *
 * The wire is Kinode's: each line is a `KernelMessage` from `<node>@terminal:terminal:sys`
 * to `<node>@terminal:terminal:sys`, a Request with the line's UTF-8 as its body, no
 * response expected, no capabilities, no blob, a fresh random id, routed with every
 * check of a local send (`Kernel.route`).
 *
 * The node keeps a few commands of its own, run here and never sent:
 * - `v <0-3>` (the verbosity, Kinode's Ctrl+V) and any command a service registers
 *   (`register`: package install, which reads files of this machine);
 * - when the app cannot take a line (not installed, crashed and stopped, paused in safe
 *   mode, refused), a line says why and the fallback commands answer instead (`m`,
 *   `top`, `quit`, `help`), so a broken app never leaves the user without a prompt.
 * They send as the node's own session `native-terminal:distro:sys`, which holds the
 * kernel messaging and network capabilities (root).
 */
import { Context, Effect, Layer } from "effect"
import * as crypto from "node:crypto"
import * as readline from "node:readline"
import type { Identity } from "../../src/Identity.ts"
import { localAddress } from "../../src/Ids.ts"
import { Kernel, messagingCap, networkCap } from "../../src/Kernel.ts"
import { request, text } from "../../src/Message.ts"
import { Printout } from "../../src/Printout.ts"
import { fallbackCommands, verbosityCommand } from "./Commands.ts"
import { makeCommandTable, type TerminalCommand } from "./CommandTable.ts"
import { TerminalConsole } from "./TerminalConsole.ts"

/** The terminal app: every line goes to it. */
export const TERMINAL_PROCESS = "terminal:terminal:sys"
/** The node's own session, as which its commands send. */
export const NATIVE_TERMINAL_PROCESS = "native-terminal:distro:sys"

/** Statuses in which the app takes lines (queued until it runs when it is not running yet). */
const TAKES_LINES = new Set(["running", "waiting", "restarting", "runtime"])

export class Terminal extends Context.Service<Terminal, {
  /** Handles one typed line (see the module comment); never fails: a failing command prints why. */
  readonly run: (line: string) => Effect.Effect<void>
  /** Adds (or replaces) a command the node answers itself, before the app sees the line. */
  readonly register: (command: TerminalCommand) => void
  /** The node's own commands (registered ones and `v`). */
  readonly commands: () => ReadonlyArray<string>
  /** Whether `quit` was typed (the read loop then ends). */
  readonly quitRequested: () => boolean
}>()("services/terminal/Terminal") {
  /** The line router and the node's session; needs the kernel. */
  static readonly layer = Layer.effect(
    Terminal,
    Effect.gen(function*() {
      const kernel = yield* Kernel
      const printout = yield* Printout
      const context = yield* Effect.context<Kernel | Printout | Identity>()
      const session = yield* kernel.session(NATIVE_TERMINAL_PROCESS, {
        capabilities: [messagingCap(kernel.node, "kernel:distro:sys"), networkCap(kernel.node)],
        public: true
      })
      const own = makeCommandTable([verbosityCommand])
      const fallback = makeCommandTable(fallbackCommands)
      const app = localAddress(kernel.node, TERMINAL_PROCESS)
      let quit = false
      /** Why the last line did not reach the app (said once until it changes). */
      let saidWhy: string | undefined
      const say = (s: string) => printout.print(0, TERMINAL_PROCESS, s)
      const ctx = { terminal: session, say, quit: () => void (quit = true) }

      const helpText = () => {
        const row = (c: TerminalCommand) => `  ${c.usage.padEnd(36)} ${c.help}`
        return [
          "the node's own commands, while the terminal app cannot take lines:",
          ...fallback.names().map((n) => row(fallback.lookup(n)!)),
          "and always:",
          ...own.names().map((n) => row(own.lookup(n)!)),
          `  ${"Ctrl-C, Ctrl-D".padEnd(36)} shut the node down`
        ].join("\n")
      }

      const runCommand = (command: TerminalCommand, head: string, args: string) =>
        command.run(args, ctx).pipe(
          Effect.provide(context),
          Effect.catchCause((cause) => Effect.sync(() => say(`${head} failed: ${String(cause)}`)))
        )

      /** Sends the line to the app as Kinode's runtime does; why not, when it cannot. */
      const toApp = (line: string): string | undefined => {
        const info = kernel.info(TERMINAL_PROCESS)
        if (info === undefined) return `the terminal app ${TERMINAL_PROCESS} is not installed`
        if (!TAKES_LINES.has(info.status)) {
          return `the terminal app ${TERMINAL_PROCESS} is ${info.status}${info.stoppedBecause === undefined ? "" : ` (${info.stoppedBecause})`}`
        }
        const refused = kernel.route({
          id: crypto.randomBytes(8).readBigUInt64BE(),
          source: app,
          target: app,
          rsvp: null,
          message: request({ body: text(line) }),
          blob: undefined
        })
        return refused === undefined ? undefined : `the terminal app ${TERMINAL_PROCESS} did not take the line (${refused})`
      }

      const run = (line: string): Effect.Effect<void> =>
        Effect.suspend(() => {
          const trimmed = line.trim()
          const space = trimmed.indexOf(" ")
          const head = space < 0 ? trimmed : trimmed.slice(0, space)
          const args = space < 0 ? "" : trimmed.slice(space + 1).trim()
          const native = own.lookup(head)
          if (native !== undefined) return runCommand(native, head, args)
          const why = toApp(line)
          if (why === undefined) {
            saidWhy = undefined
            return Effect.void
          }
          if (why !== saidWhy) {
            saidWhy = why
            say(`${why}; the node's own commands answer instead: ${[...fallback.names(), "help"].join(", ")}`)
          }
          if (trimmed === "") return Effect.void
          if (head === "help") return Effect.sync(() => say(helpText()))
          const command = fallback.lookup(head)
          if (command === undefined) return Effect.sync(() => say(`'${head}' is not one of the node's own commands (${fallback.names().join(", ")}, help)`))
          return runCommand(command, head, args)
        })

      return Terminal.of({ run, register: own.register, commands: own.names, quitRequested: () => quit })
    })
  )
}

/**
 * Reads lines from standard input until it ends (Ctrl-D), Ctrl-C or `quit`, handing each
 * to the terminal, with the prompt `<node> > ` kept below printouts. On a TTY, Ctrl+V
 * cycles the verbosity 0 → 1 → 2 → 3 → 0, as in Kinode.
 */
export const readLoop = Effect.scoped(Effect.gen(function*() {
  const kernel = yield* Kernel
  const terminal = yield* Terminal
  const console = yield* TerminalConsole
  const printout = yield* Printout
  const tty = process.stdin.isTTY === true
  const rl = yield* Effect.acquireRelease(
    Effect.sync(() =>
      readline.createInterface({
        input: process.stdin,
        output: process.stdout,
        prompt: `${kernel.node} > `,
        terminal: tty
      })
    ),
    (rl) =>
      Effect.sync(() => {
        // Ctrl-D leaves the cursor after the prompt: what is printed next starts a line of its own.
        if (tty) process.stdout.write("\n")
        rl.close()
        // Ended by `quit` with input still open: stdin must not keep the process alive.
        process.stdin.pause()
        ;(process.stdin as { unref?: () => void }).unref?.()
      })
  )
  // Input ended (Ctrl-D, Ctrl-C) or readline closed: no more prompts.
  let ended = false
  // On a pipe the prompt is text without a newline: a printout after it starts a line of its own.
  let promptOpen = false
  const prompt = () => {
    rl.prompt()
    promptOpen = !tty
  }
  yield* console.attach(tty
    ? {
      before: () => {
        readline.clearLine(process.stdout, 0)
        readline.cursorTo(process.stdout, 0)
      },
      after: () => {
        if (!ended) rl.prompt(true)
      }
    }
    : {
      before: () => {
        if (promptOpen) process.stdout.write("\n")
        promptOpen = false
      },
      after: () => {}
    })
  if (tty) {
    const onKey = (_s: string, key: { readonly ctrl?: boolean; readonly name?: string } | undefined) => {
      if (key?.ctrl !== true || key.name !== "v") return
      const next = (printout.verbosity() + 1) % 4
      printout.setVerbosity(next)
      printout.print(0, "terminal", `verbosity ${next}`)
    }
    process.stdin.on("keypress", onKey)
    yield* Effect.addFinalizer(() => Effect.sync(() => void process.stdin.off("keypress", onKey)))
  }
  const lines: Array<string> = []
  let wake: (() => void) | undefined
  rl.on("line", (l) => {
    // On a TTY the typed line ends with a newline; on a pipe nothing is echoed, the prompt stays open.
    if (tty) promptOpen = false
    lines.push(l)
    wake?.()
  })
  const end = () => {
    ended = true
    wake?.()
  }
  rl.on("close", end)
  rl.on("SIGINT", end)
  prompt()
  while (true) {
    const line = lines.shift()
    if (line !== undefined) {
      yield* terminal.run(line)
      if (terminal.quitRequested()) return
      if (!ended) prompt()
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
}))
