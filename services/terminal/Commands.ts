/**
 * The terminal's built-in commands, as entries of its command table:
 *
 *   m <address> <body> [-a <seconds>]   send a request, print the response
 *   top [process-id]                    processes, their state and mailbox depth
 *   v <0-3>                             verbosity
 *   id                                  this node's name and networking key
 *   kns <name>                          a node's record, through the KNS indexer
 *   hi, peers, peer, net                the network (NetCommands.ts)
 *   help                                the table's help
 */
import { Effect, Result, Schema } from "effect"
import { WitKnsUpdate } from "../kns-indexer/index.ts"
import { Identity } from "../../src/Identity.ts"
import { localAddress, parseAddress, pid } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { Kernel } from "../../src/Kernel.ts"
import { bodyText } from "../../src/Message.ts"
import { Printout } from "../../src/Printout.ts"
import type { TerminalCommand } from "./CommandTable.ts"
import { ask } from "./Asking.ts"
import { netCommands } from "./NetCommands.ts"

const m: TerminalCommand = {
  name: "m",
  usage: "m <address> <body> [-a <seconds>]",
  help: "send <body> to <address> (node `our` = this node), print the reply",
  run: (args, ctx) =>
    Effect.gen(function*() {
      const kernel = yield* Kernel
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
      if (Result.isFailure(parsed)) return ctx.say(`m: ${parsed.failure.message}`)
      const target = parsed.success.node === "our" ? localAddress(kernel.node, parsed.success.process) : parsed.success
      const reply = yield* ask(ctx, target, body, seconds)
      if ("source" in reply && "message" in reply) return ctx.say(bodyText(reply.message))
      if ("kind" in reply) {
        return ctx.say(reply.kind === "offline"
          ? `m: ${target.node} is offline`
          : `m: no response from ${target} within ${seconds}s (it does not exist, refused, or did not answer)`)
      }
      return ctx.say(`m: ${String(reply)}`)
    })
}

const top: TerminalCommand = {
  name: "top",
  usage: "top [process-id]",
  help: "list processes: status (stopped: crash-looped; paused: safe mode), mailbox depth, on-exit, capabilities",
  run: (args, ctx) =>
    Effect.gen(function*() {
      const kernel = yield* Kernel
      const all = kernel.processes().filter((p) => args === "" || p.id === args)
      if (args !== "" && all.length === 0) return ctx.say(`top: no process ${args}`)
      const rows = all.map((p) =>
        `  ${p.id.padEnd(36)} ${p.status.padEnd(10)} mailbox ${String(p.mailboxDepth).padStart(5)}  on-exit ${p.onExit._tag.padEnd(8)} ${p.public ? "public " : "private"} caps ${p.capabilities.length}  ${p.handle === "" ? "(runtime)" : p.handle}` +
          (p.mailboxBytes >= 1024 * 1024 ? `  (mailbox ${Math.round(p.mailboxBytes / 1024 / 1024)} MiB)` : "") +
          (p.stoppedBecause === undefined ? "" : `  (stopped: ${p.stoppedBecause})`)
      )
      return ctx.say(`${rows.join("\n")}\ntop: ${all.length} processes`)
    })
}

const v: TerminalCommand = {
  name: "v",
  usage: "v <0-3>",
  help: "set verbosity (0 quiet ... 3 every kernel event)",
  run: (args, ctx) =>
    Effect.gen(function*() {
      const level = Number(args)
      if (!Number.isInteger(level) || level < 0 || level > 3) return ctx.say("v: expected a level 0-3")
      yield* Effect.map(Printout, (p) => p.setVerbosity(level))
      return ctx.say(`verbosity ${level}`)
    })
}

const id: TerminalCommand = {
  name: "id",
  usage: "id",
  help: "this node's name and networking key",
  run: (_args, ctx) =>
    Effect.map(Identity, (identity) =>
      ctx.say(`${identity.name}\nnetworking key 0x${Buffer.from(identity.publicKey).toString("hex")}\nknown nodes: ${identity.records().length}`))
}

const KNS_INDEXER = pid("kns-indexer:kns-indexer:sys")
const decodeNodeInfo = Schema.decodeUnknownResult(Schema.Struct({ NodeInfo: Schema.NullOr(WitKnsUpdate) }))

const kns: TerminalCommand = {
  name: "kns",
  usage: "kns <name>",
  help: "look a node up through the KNS indexer (key, addresses, routers)",
  run: (args, ctx) =>
    Effect.gen(function*() {
      const name = args.trim()
      if (name === "") return ctx.say("usage: kns <name>")
      const kernel = yield* Kernel
      const body = JSON.stringify({ NodeInfo: { name, block: 0 } })
      const reply = yield* ask(ctx, localAddress(kernel.node, KNS_INDEXER), body, 15n)
      if (!("source" in reply && "message" in reply)) {
        return ctx.say(`kns: the indexer did not answer (${"kind" in reply ? reply.kind : String(reply)})`)
      }
      const answer = decodeNodeInfo(Json.parseBytes(reply.message.body).pipe(Result.getOrUndefined))
      if (Result.isFailure(answer)) return ctx.say(`kns: unreadable answer ${bodyText(reply.message)}`)
      const r = answer.success.NodeInfo
      if (r === null) return ctx.say(`kns: ${name} is not a known node`)
      const reach = r.routers.length > 0
        ? `indirect, routers ${r.routers.join(", ")}`
        : `direct, ${r.ips.join(", ")} ${r.ports.map(([p, n]) => `${p} ${n}`).join(", ")}`
      return ctx.say(`${r.name}\nnetworking key 0x${r.public_key.replace(/^0x/, "")}\n${reach}`)
    })
}

export const builtinCommands: ReadonlyArray<TerminalCommand> = [m, top, v, id, kns, ...netCommands]
