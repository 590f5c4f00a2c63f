/**
 * The terminal's network commands. Each is a request to `net:distro:sys` (this node's,
 * or another node's for `hi`), in MessagePack as Kinode's terminal scripts send them:
 *
 *   hi <node> <text>   the text is printed on <node>, which answers `ack`
 *   peers              the nodes this one is connected to
 *   peer <name>        a node's identity as the network knows it
 *   net                diagnostics: identity, listen addresses, peers, relaying, PKI size
 */
import { Effect, Result, Schema } from "effect"
import { Packr } from "msgpackr"
import { Kernel } from "../../src/Kernel.ts"
import { localAddress } from "../../src/Ids.ts"
import { bodyText, type Message } from "../../src/Message.ts"
import { type Identity, NetResponse } from "../net/index.ts"
import type { CommandContext, TerminalCommand } from "./CommandTable.ts"
import { ask } from "./Asking.ts"

const packr = new Packr({ useRecords: false, mapsAsObjects: true })
const decodeResponse = Schema.decodeUnknownResult(NetResponse)
const NET = "net:distro:sys"

type Reply = Effect.Success<ReturnType<typeof ask>>

/** Why there is no answer, in words. */
const failure = (reply: Reply, target: string, seconds: bigint): string | undefined => {
  if ("source" in reply && "message" in reply) return undefined
  if ("kind" in reply) return reply.kind === "offline" ? `${target} is offline` : `no answer from ${target} within ${seconds} s`
  return String(reply)
}

/** Asks this node's net with a MessagePack action; the decoded `NetResponse`, or a line saying why not. */
const askNet = (ctx: CommandContext, action: unknown) =>
  Effect.gen(function*() {
    const kernel = yield* Kernel
    const reply = yield* ask(ctx, localAddress(kernel.node, NET), packr.pack(action), 5n)
    const why = failure(reply, "net", 5n)
    if (why !== undefined) return why
    const message = (reply as { readonly message: Message }).message
    let value: unknown
    try {
      value = packr.unpack(message.body)
    } catch {
      return `unreadable answer from net`
    }
    const decoded = decodeResponse(value)
    return Result.isSuccess(decoded) ? decoded.success : `unexpected answer from net: ${JSON.stringify(value)}`
  })

const describeIdentity = (p: Identity): string => {
  const r = p.routing
  const reach = "Routers" in r
    ? `indirect, routers ${r.Routers.join(", ") || "(none)"}`
    : "Direct" in r
    ? `direct, ${r.Direct.ip} ${Object.entries(r.Direct.ports).map(([k, v]) => `${k} ${v}`).join(", ")}`
    : `direct ${r.Both.ip} and routers ${r.Both.routers.join(", ")}`
  return `${p.name}\n  networking key ${p.networking_key}\n  ${reach}`
}

const hi: TerminalCommand = {
  name: "hi",
  usage: "hi <node> <text>",
  help: "say <text> to <node> (printed there); it answers ack",
  run: (args, ctx) =>
    Effect.gen(function*() {
      const kernel = yield* Kernel
      const m = /^(\S+)\s+([\s\S]+)$/.exec(args.trim())
      if (m === null) return ctx.say("usage: hi <node> <text>")
      const node = m[1] === "our" ? kernel.node : m[1]!
      const seconds = 10n
      const reply = yield* ask(ctx, localAddress(node, NET), m[2]!, seconds)
      const why = failure(reply, node, seconds)
      if (why !== undefined) return ctx.say(`hi: ${why}`)
      return ctx.say(`response from ${node}: ${bodyText((reply as { readonly message: Message }).message)}`)
    })
}

const peers: TerminalCommand = {
  name: "peers",
  usage: "peers",
  help: "the nodes this one is connected to",
  run: (_args, ctx) =>
    Effect.gen(function*() {
      const r = yield* askNet(ctx, "GetPeers")
      if (typeof r === "string") return ctx.say(`peers: ${r}`)
      if (typeof r !== "object" || !("Peers" in r)) return ctx.say(`peers: unexpected answer`)
      if (r.Peers.length === 0) return ctx.say("no peers connected")
      return ctx.say(`${r.Peers.length} peer${r.Peers.length === 1 ? "" : "s"}:\n${r.Peers.map((p) => `  ${p.name}`).join("\n")}`)
    })
}

const peer: TerminalCommand = {
  name: "peer",
  usage: "peer <name>",
  help: "a node's identity as the network knows it",
  run: (args, ctx) =>
    Effect.gen(function*() {
      const name = args.trim()
      if (name === "") return ctx.say("usage: peer <name>")
      const r = yield* askNet(ctx, { GetPeer: name })
      if (typeof r === "string") return ctx.say(`peer: ${r}`)
      if (typeof r !== "object" || !("Peer" in r)) return ctx.say(`peer: unexpected answer`)
      return ctx.say(r.Peer === null ? `peer: ${name} is not in the PKI` : describeIdentity(r.Peer))
    })
}

const net: TerminalCommand = {
  name: "net",
  usage: "net",
  help: "network diagnostics: identity, listen addresses, peers, relaying",
  run: (_args, ctx) =>
    Effect.gen(function*() {
      const r = yield* askNet(ctx, "GetDiagnostics")
      if (typeof r === "string") return ctx.say(`net: ${r}`)
      if (typeof r !== "object" || !("Diagnostics" in r)) return ctx.say(`net: unexpected answer`)
      return ctx.say(r.Diagnostics)
    })
}

export const netCommands: ReadonlyArray<TerminalCommand> = [hi, peers, peer, net]
