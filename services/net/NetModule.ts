/**
 * The `net:distro:sys` process: what the network offers processes (identity-and-network
 * §2.7). Local requests are `NetAction`s in MessagePack; answers go to `rsvp ?? source`.
 * From another node only a router's `ConnectionRequest` is an action; any other body is
 * a "hello": printed as `<node>: <text>` and answered `ack`. A local body that is not a
 * `NetAction` is a hello to ourselves (the terminal's `hi our <text>`), handled the same
 * (Kinode's net reads it as an fd-manager message and the sender times out).
 *
 * `KnsUpdate`/`KnsBatchUpdate` from a local process upsert the PKI (the node's own
 * indexer writes the `Identity` port directly; Kinode's indexer app sends these).
 */
import { Effect, Layer, Result, Schema } from "effect"
import { Packr } from "msgpackr"
import { Identity, NodeRecord } from "../../src/Identity.ts"
import { parseAddress } from "../../src/Ids.ts"
import { type KernelMessage, response, text } from "../../src/Message.ts"
import { ModuleHost, type ServiceContext, wantsReply } from "../../src/ModuleHost.ts"
import { Printout } from "../../src/Printout.ts"
import { verifyWithPublicKey } from "../identity/index.ts"
import { NetStatus } from "./NetLibp2p.ts"
import { fromRmp, type Identity as WireIdentity, type KnsUpdate, NetAction, type NetResponse } from "./Protocol.ts"

const packr = new Packr({ useRecords: false, mapsAsObjects: true })
const decodeAction = Schema.decodeUnknownResult(NetAction)

/** The action in a body, or undefined for a body that is not one. */
export const readAction = (body: Uint8Array): NetAction | undefined => {
  let value: unknown
  try {
    value = packr.unpack(body)
  } catch {
    return undefined
  }
  const action = decodeAction(fromRmp(value))
  return Result.isSuccess(action) ? action.success : undefined
}

const encode = (r: NetResponse): Uint8Array => packr.pack(r)

const recordOf = (u: KnsUpdate): NodeRecord =>
  new NodeRecord({ name: u.name, publicKey: u.public_key.replace(/^0x/, "").toLowerCase(), ips: u.ips, ports: u.ports, routers: u.routers })

/** Kinode's `Identity` for a PKI record: `ips` empty → `Routers`, else `Direct` at the first. */
export const identityOf = (r: NodeRecord): WireIdentity => ({
  name: r.name,
  networking_key: `0x${r.publicKey}`,
  routing: r.ips.length === 0 ? { Routers: r.routers } : { Direct: { ip: r.ips[0]!, ports: r.ports } }
})

const HELLO_CHARS = 1000

/**
 * A remote hello as one safe line: control characters (terminal escapes, newlines) shown
 * as `\uXXXX`, cut at 1,000 characters. Kinode prints the raw body [quirk].
 */
export const printable = (body: Uint8Array): string => {
  const text = new TextDecoder().decode(body)
  // eslint-disable-next-line no-control-regex
  const safe = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
  return safe.length > HELLO_CHARS ? `${safe.slice(0, HELLO_CHARS)}... (${body.length} bytes)` : safe
}

const concat = (a: Uint8Array, b: Uint8Array) => {
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

export const NetModule = Layer.effectDiscard(Effect.gen(function*() {
  const host = yield* ModuleHost
  const identity = yield* Identity
  const status = yield* NetStatus
  const printout = yield* Printout
  const print = (level: number, line: string) => printout.print(level, "net", line)
  const self = identity.name

  const ownRecord = (): NodeRecord => {
    const reach = status.reach
    return new NodeRecord({
      name: self,
      publicKey: Buffer.from(identity.publicKey).toString("hex"),
      ips: reach?._tag === "Direct" ? [reach.ip] : [],
      ports: reach?._tag === "Direct" ? { tcp: reach.tcpPort } : {},
      routers: reach?._tag === "Indirect" ? reach.routers : []
    })
  }

  const diagnostics = (): string => {
    const peers = status.peers()
    const routing = [...status.routingFor()]
    const reach = status.reach
    return [
      `our identity: ${self} (0x${Buffer.from(identity.publicKey).toString("hex")})`,
      `reached: ${reach === undefined ? "unknown (chain not read)" : reach._tag === "Direct" ? `direct at ${reach.ip}:${reach.tcpPort}` : `indirect through ${reach.routers.join(", ")}`}`,
      `listening on: ${status.listenAddresses().join(", ") || "(nothing)"}`,
      `peers (${peers.length}/${status.limits.maxPeers}):`,
      ...peers.map((p) =>
        `  ${p.name}${p.routing ? " (routing)" : ""}${p.relayed ? " (relayed)" : ""}, last message ${p.secondsSinceActive} s ago`),
      `passthroughs: ${status.maxPassthroughs === 0 ? "not a router" : `up to ${status.maxPassthroughs}`}; routing for ${routing.length === 0 ? "nobody" : routing.join(", ")}`,
      `PKI: ${identity.records().length} nodes known`
    ].join("\n")
  }

  const answer = (ctx: ServiceContext, km: KernelMessage, r: NetResponse, blob?: Uint8Array) => {
    if (wantsReply(km)) ctx.reply(km, response({ body: encode(r) }), blob === undefined ? undefined : { mime: undefined, bytes: blob })
  }

  const local = (ctx: ServiceContext, km: KernelMessage, action: NetAction) => {
    if (typeof action === "string") {
      switch (action) {
        case "GetPeers": {
          const peers = status.peers().flatMap((p) => {
            const r = identity.lookup(p.name)
            return r === undefined ? [] : [identityOf(r)]
          })
          return answer(ctx, km, { Peers: peers })
        }
        case "GetDiagnostics":
          return answer(ctx, km, { Diagnostics: diagnostics() })
        case "Sign": {
          const message = concat(text(km.source.toString()), km.blob?.bytes ?? new Uint8Array(0))
          return answer(ctx, km, "Signed", identity.sign(message))
        }
      }
    }
    if ("GetPeer" in action) {
      const r = action.GetPeer === self ? ownRecord() : identity.lookup(action.GetPeer)
      return answer(ctx, km, { Peer: r === undefined ? null : identityOf(r) })
    }
    if ("KnsUpdate" in action) return identity.upsert(recordOf(action.KnsUpdate))
    if ("KnsBatchUpdate" in action) {
      for (const u of action.KnsBatchUpdate) identity.upsert(recordOf(u))
      return
    }
    if ("Verify" in action) {
      const from = parseAddress(action.Verify.from)
      const signature = Uint8Array.from(action.Verify.signature)
      const message = concat(text(action.Verify.from), km.blob?.bytes ?? new Uint8Array(0))
      let ok = false
      if (Result.isSuccess(from)) {
        if (from.success.node === self) ok = identity.verify(message, signature)
        else {
          const r = identity.lookup(from.success.node)
          ok = r !== undefined && verifyWithPublicKey(Buffer.from(r.publicKey, "hex"), message, signature)
        }
      }
      return answer(ctx, km, { Verified: ok })
    }
    // A local ConnectionRequest means nothing (Kinode ignores it too).
  }

  const remote = (ctx: ServiceContext, km: KernelMessage, action: NetAction | undefined) => {
    if (action !== undefined && typeof action === "object" && "ConnectionRequest" in action) {
      const ours = status.reach?._tag === "Indirect" && status.reach.routers.includes(km.source.node)
      if (ours) status.connect(action.ConnectionRequest)
      else print(2, `ignored a ConnectionRequest from ${km.source.node}: not one of our routers`)
      return
    }
    if (action !== undefined && typeof action === "object" && ("KnsUpdate" in action || "KnsBatchUpdate" in action)) {
      print(1, `refused a PKI update from ${km.source.node}: only local processes may update the PKI`)
      return
    }
    hello(ctx, km)
  }

  /** A hello: its text printed as `<node>: <text>`, answered `ack`. */
  const hello = (ctx: ServiceContext, km: KernelMessage) => {
    print(0, `${km.source.node}: ${printable(km.message.body)}`)
    if (wantsReply(km)) ctx.reply(km, response({ body: text("ack") }))
  }

  yield* host.serve("net:distro:sys", { public: false }, (ctx) =>
    Effect.forever(Effect.map(ctx.takeBatch, (batch) => {
      for (const km of batch) {
        if (km.message._tag !== "Request") continue
        const action = readAction(km.message.body)
        if (km.source.node !== self) remote(ctx, km, action)
        else if (action !== undefined) local(ctx, km, action)
        else hello(ctx, km) // a hello to ourselves (`hi our ...`): as another node's, printed and answered
      }
    })))
}))
