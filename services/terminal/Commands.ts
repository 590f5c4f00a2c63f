/**
 * The node's own commands at the prompt. Lines normally go to the terminal app
 * (`terminal:terminal:sys`, Terminal.ts); these answer when it cannot (not installed,
 * crashed, stopped, paused in safe mode), so the node never leaves the user without a
 * working prompt:
 *
 *   m <address> <body> [-a <seconds>]   send a request (Kinode's `m` syntax)
 *   top [process-id]                    processes: status, mailbox, on-exit, capabilities
 *   quit                                shut the node down (as Ctrl-D)
 *   help                                this list
 *
 * and one that is always the node's, as Kinode's Ctrl+V is: `v <0-3>`, the verbosity.
 */
import { Effect, Result } from "effect"
import { localAddress, parseAddress } from "../../src/Ids.ts"
import { Kernel } from "../../src/Kernel.ts"
import { bodyText } from "../../src/Message.ts"
import { Printout } from "../../src/Printout.ts"
import { parseArgs, tokens } from "./Args.ts"
import { ask } from "./Asking.ts"
import type { TerminalCommand } from "./CommandTable.ts"

const M_USAGE = "usage: m <address> <body> [-a <seconds>]   (a body with spaces goes in single quotes)"

const m: TerminalCommand = {
  name: "m",
  usage: "m <address> <body> [-a <seconds>]",
  help: "send <body> to <address> (node `our` = this node); with -a, wait and print the reply",
  run: (args, ctx) =>
    Effect.gen(function*() {
      const kernel = yield* Kernel
      if (args.trim() === "") return ctx.say(M_USAGE)
      const parsed = parseArgs(tokens(args), [{ short: "a", long: "await", value: true }])
      if (typeof parsed === "string") return ctx.say(`m: ${parsed}\n${M_USAGE}`)
      const [addrText, body, extra] = parsed.positionals
      if (addrText === undefined || body === undefined) return ctx.say(`m: ${addrText === undefined ? "no target" : "no body"} given\n${M_USAGE}`)
      if (extra !== undefined) return ctx.say(`m: unexpected argument '${extra}'\n${M_USAGE}`)
      const awaitText = parsed.options.get("await")
      if (awaitText !== undefined && !/^\d+$/.test(awaitText)) return ctx.say(`m: -a takes a number of seconds, not ${awaitText}\n${M_USAGE}`)
      const p = parseAddress(addrText)
      if (Result.isFailure(p)) return ctx.say(`m: cannot parse "${addrText}": ${p.failure.reason}\n${M_USAGE}`)
      const target = p.success.node === "our" ? localAddress(kernel.node, p.success.process) : p.success
      if (target.node === kernel.node && kernel.info(target.process.toString()) === undefined) {
        return ctx.say(`m: no process ${target.process} on this node`)
      }
      const seconds = awaitText === undefined ? 5n : BigInt(awaitText)
      const reply = yield* ask(ctx, target, body, seconds)
      if ("source" in reply && "message" in reply) return awaitText === undefined ? undefined : ctx.say(bodyText(reply.message))
      if (awaitText === undefined) return
      if (!("kind" in reply)) return ctx.say(`m: ${String(reply)}`)
      return ctx.say(reply.kind === "offline" ? `m: ${target.node} is offline` : `m: no response from ${target} within ${seconds}s`)
    })
}

const top: TerminalCommand = {
  name: "top",
  usage: "top [process-id]",
  help: "list processes: status (stopped: crash-looped; paused: safe mode), mailbox depth, on-exit, capabilities",
  run: (args, ctx) =>
    Effect.gen(function*() {
      const kernel = yield* Kernel
      const id = args.trim()
      const all = kernel.processes().filter((p) => id === "" || p.id === id)
      if (id !== "" && all.length === 0) return ctx.say(`top: no process ${id}`)
      const rows = all.map((p) =>
        `  ${p.id.padEnd(36)} ${p.status.padEnd(10)} mailbox ${String(p.mailboxDepth).padStart(5)}  on-exit ${p.onExit._tag.padEnd(8)} ${p.public ? "public " : "private"} caps ${p.capabilities.length}  ${p.handle === "" ? "(runtime)" : p.handle}` +
          (p.mailboxBytes >= 1024 * 1024 ? `  (mailbox ${Math.round(p.mailboxBytes / 1024 / 1024)} MiB)` : "") +
          (p.stoppedBecause === undefined ? "" : `  (stopped: ${p.stoppedBecause})`)
      )
      const caps = id === "" ? [] : all[0]!.capabilities.map((c) => `    ${c.issuer}(${c.params})`).sort()
      return ctx.say([...rows, ...(caps.length > 0 ? ["  capabilities:", ...caps] : []), `top: ${all.length} processes`].join("\n"))
    })
}

const quit: TerminalCommand = {
  name: "quit",
  usage: "quit",
  help: "shut the node down (as Ctrl-D)",
  run: (_args, ctx) => Effect.sync(() => ctx.quit())
}

/** Used when the terminal app cannot take lines. */
export const fallbackCommands: ReadonlyArray<TerminalCommand> = [m, top, quit]

/** `v <0-3>`: always the node's own (Kinode's Ctrl+V), whatever terminal app runs. */
export const verbosityCommand: TerminalCommand = {
  name: "v",
  usage: "v <0-3>",
  help: "set verbosity (0 quiet ... 3 every kernel event); Ctrl+V cycles it",
  run: (args, ctx) =>
    Effect.gen(function*() {
      const level = Number(args)
      if (args.trim() === "" || !Number.isInteger(level) || level < 0 || level > 3) return ctx.say("v: expected a level 0-3")
      yield* Effect.map(Printout, (p) => p.setVerbosity(level))
      return ctx.say(`verbosity ${level}`)
    })
}
