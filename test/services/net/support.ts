/**
 * Networked test nodes in one process: each is a real kernel over real LMDB in a temp
 * dir, with a real Ed25519 key and real libp2p on 127.0.0.1 (`NetLibp2p`). Who is where
 * comes from the PKI: the tests fill it from a real anvil chain through the KNS indexer,
 * or (for transport-only tests) write the records the chain would hold.
 */
import { Effect, Layer, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { KnsIndexer } from "../../../services/kns-indexer/index.ts"
import { Lmdb } from "../../../services/lmdb/Lmdb.ts"
import { testKernel } from "../../../layers/TestLive.ts"
import { generate, identityFromKey, type NetworkingKey } from "../../../services/identity/index.ts"
import { type NetLimits, NetLibp2p, type NetReach, NetStatus } from "../../../services/net/index.ts"
import { Identity, NodeRecord } from "../../../src/Identity.ts"
import { address } from "../../../src/Ids.ts"
import { Kernel, networkCap } from "../../../src/Kernel.ts"
import { request, text } from "../../../src/Message.ts"
import type { NativeApi } from "../../../src/ProcessApi.ts"
import { type Printed, Printout } from "../../../src/Printout.ts"

export interface NetNode {
  readonly name: string
  readonly key: NetworkingKey
  readonly reach: NetReach
  readonly kernel: Kernel["Service"]
  readonly identity: Identity["Service"]
  readonly status: NetStatus["Service"]
  readonly lines: ReadonlyArray<Printed>
  /** The record the chain would hold for this node. */
  readonly record: NodeRecord
}

export const recordOf = (name: string, key: NetworkingKey, reach: NetReach): NodeRecord =>
  new NodeRecord({
    name,
    publicKey: Buffer.from(key.publicKey).toString("hex"),
    ips: reach._tag === "Direct" ? [reach.ip] : [],
    ports: reach._tag === "Direct" ? { tcp: reach.tcpPort } : {},
    routers: reach._tag === "Indirect" ? reach.routers : []
  })

export interface NetNodeOptions {
  readonly key?: NetworkingKey
  readonly limits?: Partial<NetLimits>
  readonly home?: string
  /** Fill the PKI from this chain's registry with a real KNS indexer (its own LMDB dir). */
  readonly chain?: { readonly url: string; readonly contract: `0x${string}` }
}

/** Boots a node in the current scope. */
export const netNode = (name: string, reach: NetReach, options: NetNodeOptions = {}) =>
  Effect.gen(function*() {
    const key = options.key ?? (yield* generate)
    const net = NetLibp2p({ seed: key.seed, reach, ...(options.limits === undefined ? {} : { limits: options.limits }) })
    const t = testKernel({
      node: name,
      identity: Layer.succeed(Identity, identityFromKey(name, key)),
      net,
      ...(options.home === undefined ? {} : { home: options.home })
    })
    let layer: Layer.Layer<any, unknown> = t.layer
    if (options.chain !== undefined) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "net-kns-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const indexer = KnsIndexer.layerNode({
        rpcUrl: options.chain.url,
        contract: options.chain.contract,
        chainId: 31337,
        firstBlock: 0,
        confirmations: 1,
        pollInterval: "100 millis"
      })
      layer = indexer.pipe(Layer.provideMerge(Lmdb.at(dir)), Layer.provideMerge(t.layer))
    }
    const ctx = yield* Layer.build(layer)
    const get = <S>(tag: { key: string }) => ctx.mapUnsafe.get(tag.key) as S
    return {
      name,
      key,
      reach,
      kernel: get<Kernel["Service"]>(Kernel),
      identity: get<Identity["Service"]>(Identity),
      status: get<NetStatus["Service"]>(NetStatus),
      lines: t.lines,
      record: recordOf(name, key, reach),
      printout: get<Printout["Service"]>(Printout)
    } satisfies NetNode & { printout: unknown }
  })

/** Every node learns every other's record (what the indexer does from the chain). */
export const introduce = (nodes: ReadonlyArray<NetNode>) => {
  for (const n of nodes) for (const m of nodes) n.identity.upsert(m.record)
}

/** A native process holding `network`, public so remote answers and local replies reach it. */
export const app = (node: NetNode, id: string) =>
  Effect.flatMap(Effect.scope, (scope) =>
    node.kernel.session(id, { capabilities: [networkCap(node.name)], public: true }).pipe(Scope.provide(scope)))

/** Answers every request with `<prefix><body>`, echoing the blob. */
export const serveEcho = (api: NativeApi, prefix = "") =>
  Effect.forkScoped(Effect.forever(Effect.flatMap(api.receiveEffect, (r) =>
    Effect.sync(() => {
      if (r._tag !== "Message" || r.message._tag !== "Request") return
      api.sendResponse(
        { _tag: "Response", inherit: false, body: text(prefix + new TextDecoder().decode(r.message.body)), metadata: undefined, capabilities: [], context: undefined },
        api.getBlob()
      )
    }))))

/** Sends `body` to `target` and waits (the reply text, or the failure kind). */
export const ask = (api: NativeApi, target: string, body: string, seconds = 5n, blob?: Uint8Array) =>
  Effect.map(
    api.sendAndAwaitEffect(address(target), request({ body: text(body), expectsResponse: seconds }), blob === undefined ? undefined : { mime: undefined, bytes: blob }),
    (r) => "message" in r && "source" in r ? { text: new TextDecoder().decode(r.message.body), blob: api.getBlob() } : { failed: r.kind }
  )
