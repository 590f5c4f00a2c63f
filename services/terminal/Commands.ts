/**
 * The terminal's line commands. The native terminal is a process of its own,
 * `terminal:terminal:sys`; lines become messages from it.
 *
 *   m <address> <body> [-a <seconds>]   send a request, print the response
 *   top [process-id]                    processes, their state and mailbox depth
 *   v <0-3>                             verbosity
 *   help
 */
import { Effect, Result } from "effect"
import { parseAddress } from "../../src/Ids.ts"
import { Kernel, messagingCap } from "../../src/Kernel.ts"
import { bodyText, request, text } from "../../src/Message.ts"
import type { NativeApi } from "../../src/ProcessApi.ts"
import { Printout } from "../../src/Printout.ts"

export const HELP = [
  "commands:",
  "  m <address> <body> [-a <seconds>]  send <body> to <address> (node `our` = this node), print the reply",
  "  top [process-id]                   list processes: status, mailbox depth, on-exit, capabilities",
  "  v <0-3>                            set verbosity (0 quiet ... 3 every kernel event)",
  "  help                               this text",
  "  Ctrl-C / Ctrl-D                    shut the node down"
].join("\n")

const say = (text: string) => Effect.map(Printout, (p) => p.print(0, "terminal:terminal:sys", text))

export const runCommand = (terminal: NativeApi, line: string) =>
  Effect.gen(function*() {
    const trimmed = line.trim()
    if (trimmed === "") return
    const space = trimmed.indexOf(" ")
    const head = space < 0 ? trimmed : trimmed.slice(0, space)
    const args = space < 0 ? "" : trimmed.slice(space + 1).trim()
    const kernel = yield* Kernel
    switch (head) {
      case "help":
        return yield* say(HELP)
      case "v": {
        const level = Number(args)
        if (!Number.isInteger(level) || level < 0 || level > 3) return yield* say("v: expected a level 0-3")
        yield* Effect.map(Printout, (p) => p.setVerbosity(level))
        return yield* say(`verbosity ${level}`)
      }
      case "top": {
        const all = kernel.processes().filter((p) => args === "" || p.id === args)
        if (args !== "" && all.length === 0) return yield* say(`top: no process ${args}`)
        const rows = all.map((p) =>
          `  ${p.id.padEnd(36)} ${p.status.padEnd(10)} mailbox ${String(p.mailboxDepth).padStart(5)}  on-exit ${p.onExit._tag.padEnd(8)} ${p.public ? "public " : "private"} caps ${p.capabilities.length}  ${p.handle === "" ? "(runtime)" : p.handle}`
        )
        return yield* say(`${rows.join("\n")}\ntop: ${all.length} processes`)
      }
      case "m": {
        let rest = args
        let seconds = 5n
        const flag = / (?:-a|--await) (\d+)\s*$/.exec(rest)
        if (flag !== null) {
          seconds = BigInt(flag[1]!)
          rest = rest.slice(0, flag.index)
        }
        const sp = rest.indexOf(" ")
        const addrText = sp < 0 ? rest : rest.slice(0, sp)
        const body = sp < 0 ? "" : rest.slice(sp + 1)
        const parsed = parseAddress(addrText)
        if (Result.isFailure(parsed)) return yield* say(`m: ${parsed.failure.message}`)
        const target = kernel.router.resolveOur(parsed.success)
        // The terminal is root (it holds kernel messaging), so it may grant itself this.
        if (target.node === kernel.node) yield* kernel.grant("terminal:terminal:sys", [messagingCap(kernel.node, target.process.toString())])
        const reply = yield* terminal.sendAndAwaitEffect(target, request({ body: text(body), expectsResponse: seconds })).pipe(
          Effect.catch((e) => Effect.succeed(e))
        )
        if ("source" in reply && "message" in reply) return yield* say(bodyText(reply.message))
        if ("kind" in reply) {
          return yield* say(reply.kind === "offline"
            ? `m: ${target.node} is offline`
            : `m: no response from ${target} within ${seconds}s (it does not exist, refused, or did not answer)`)
        }
        return yield* say(`m: ${String(reply)}`)
      }
      default:
        return yield* say(`'${head}' is not a command; try help`)
    }
  })
