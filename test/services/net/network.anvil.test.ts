/**
 * Four nodes on one real anvil chain, each finding the others through its own KNS
 * indexer: a router, two direct nodes and one indirect node behind the router, all on
 * real libp2p over 127.0.0.1 with real kernels. Requests and responses between every
 * pair, a full 10 MiB message, context and inherit across three nodes, the network
 * capability on both sides, offline at once, and a key changed on chain.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { freePort } from "../../../services/chain/index.ts"
import { generate } from "../../../services/identity/index.ts"
import { address } from "../../../src/Ids.ts"
import { MAX_MESSAGE_BYTES, request, text } from "../../../src/Message.ts"
import { eventually, registryChain } from "../kns-indexer/support.ts"
import { app, ask, netNode, type NetNode, serveEcho } from "./support.ts"

const hexKey = (k: { publicKey: Uint8Array }) => Buffer.from(k.publicKey).toString("hex")

describe("four nodes on a chain", () => {
  it.live("router, two direct nodes and an indirect one talk pairwise, with blobs, context and capability rules", () =>
    Effect.gen(function*() {
      const { chain, reg, contract } = yield* registryChain

      const keys = { router: yield* generate, alice: yield* generate, bob: yield* generate, carol: yield* generate }
      const ports = { router: yield* freePort, alice: yield* freePort, bob: yield* freePort }
      for (const n of ["router", "alice", "bob"] as const) {
        yield* Effect.promise(() => reg.register(`${n}.os`, { key: hexKey(keys[n]), ip: "127.0.0.1", tcp: ports[n] }))
      }
      yield* Effect.promise(() => reg.register("carol.os", { key: hexKey(keys.carol), routers: ["router.os"] }))

      const on = { chain: { url: chain.url, contract } }
      const direct = (p: number) => ({ _tag: "Direct" as const, ip: "127.0.0.1", tcpPort: p })
      const router = yield* netNode("router.os", direct(ports.router), { key: keys.router, ...on })
      const alice = yield* netNode("alice.os", direct(ports.alice), { key: keys.alice, ...on })
      const bob = yield* netNode("bob.os", direct(ports.bob), { key: keys.bob, ...on })
      const carol = yield* netNode("carol.os", { _tag: "Indirect", routers: ["router.os"] }, { key: keys.carol, ...on })
      const nodes: ReadonlyArray<NetNode> = [router, alice, bob, carol]
      yield* eventually("every PKI holds all four", () => nodes.every((n) => n.identity.records().length === 4), 20_000)

      // ---- every ordered pair, both directions, including through the router ------------
      const clients = new Map<string, Effect.Success<ReturnType<typeof app>>>()
      for (const n of nodes) {
        yield* serveEcho(yield* app(n, "echo:test:pub.os"), `${n.name}> `)
        clients.set(n.name, yield* app(n, "client:test:pub.os"))
      }
      // carol is reachable once her reservation on the router is made (re-listen loop)
      yield* eventually("carol reserved a slot on the router", () => carol.status.listenAddresses().some((a) => a.includes("/p2p-circuit")), 15_000)
      for (const from of nodes) {
        for (const to of nodes) {
          if (from === to) continue
          const r = yield* ask(clients.get(from.name)!, `${to.name}@echo:test:pub.os`, `from ${from.name}`)
          assert.deepStrictEqual(r, { text: `${to.name}> from ${from.name}`, blob: undefined }, `${from.name} -> ${to.name}`)
        }
      }
      assert.isTrue(router.status.routingFor().has("carol.os"), "the router knows it routes for carol")

      // ---- a 10 MiB message through the router, and one byte more refused at home --
      const body = "big"
      // the echo's answer carries the blob back with a longer body, so leave it room
      const blob = new Uint8Array(MAX_MESSAGE_BYTES - 64)
      for (let i = 0; i < blob.length; i += 4093) blob[i] = i & 0xff
      const big = yield* ask(clients.get("alice.os")!, "carol.os@echo:test:pub.os", body, 30n, blob)
      assert.isTrue("text" in big, JSON.stringify("failed" in big ? big : ""))
      const back = (big as { blob: { bytes: Uint8Array } | undefined }).blob!.bytes
      assert.strictEqual(back.length, blob.length)
      assert.isTrue(Buffer.from(back).equals(Buffer.from(blob)), "the blob came back intact")
      const tooBig = clients.get("alice.os")!.sendRequest(
        address("carol.os@echo:test:pub.os"),
        request({ body: text(body), expectsResponse: 5n }),
        undefined,
        { mime: undefined, bytes: new Uint8Array(MAX_MESSAGE_BYTES) }
      )
      assert.strictEqual(tooBig?.reason, "MessageTooLarge")
      const failed = yield* clients.get("alice.os")!.receiveEffect // Kinode also hands the sender an immediate SendError
      assert.strictEqual(failed._tag, "SendError")

      // ---- context and inherit: alice -> bob's proxy -> carol, carol answers alice -------
      const proxy = yield* app(bob, "proxy:test:pub.os")
      yield* Effect.forkScoped(Effect.forever(Effect.flatMap(proxy.receiveEffect, (r) =>
        Effect.sync(() => {
          if (r._tag === "Message" && r.message._tag === "Request") {
            proxy.sendRequest(address("carol.os@echo:test:pub.os"), request({ inherit: true, body: r.message.body }), undefined, undefined)
          }
        }))))
      const client = clients.get("alice.os")!
      client.sendRequest(address("bob.os@proxy:test:pub.os"), request({ body: text("via bob"), expectsResponse: 10n }), text("my context"), undefined)
      const answer = yield* client.receiveEffect
      assert.strictEqual(answer._tag, "Message", answer._tag === "SendError" ? answer.error.kind : "")
      if (answer._tag === "Message") {
        assert.strictEqual(answer.source.toString(), "carol.os@echo:test:pub.os", "the answer comes from carol")
        assert.strictEqual(new TextDecoder().decode(answer.message.body), "carol.os> via bob")
        assert.strictEqual(answer.message._tag === "Response" ? new TextDecoder().decode(answer.message.context) : "", "my context")
      }

      // ---- the network capability -----------------------------------------------------
      const noNet = yield* Effect.scoped(Effect.gen(function*() {
        const api = yield* alice.kernel.session("nonet:test:pub.os", { capabilities: [], public: true })
        return api.sendRequest(address("bob.os@echo:test:pub.os"), request({ body: text("x"), expectsResponse: 5n }), undefined, undefined)?.reason
      }))
      assert.strictEqual(noNet, "NoNetworkCapability", "a process without network cannot send to another node")
      const deaf = yield* Effect.scoped(Effect.gen(function*() {
        yield* bob.kernel.session("deaf:test:pub.os", { capabilities: [], public: true })
        return yield* ask(client, "bob.os@deaf:test:pub.os", "anyone?", 2n)
      }))
      assert.deepStrictEqual(deaf, { failed: "timeout" }, "a target without network never hears another node")

      // ---- a name with no record: offline at once ---------------------------------------
      const t0 = performance.now()
      assert.deepStrictEqual(yield* ask(client, "nobody.os@echo:test:pub.os", "hello?", 30n), { failed: "offline" })
      assert.isBelow(performance.now() - t0, 1000)

      // ---- bob's key changes on chain: alice drops him and refuses the old key ----------
      const newKey = yield* generate
      yield* Effect.promise(() => reg.note("bob.os", "~net-key", newKey.publicKey))
      yield* eventually("alice sees bob's new key", () => alice.identity.lookup("bob.os")?.publicKey === hexKey(newKey), 15_000)
      yield* eventually("alice dropped her connection to bob", () => !alice.status.peers().some((p) => p.name === "bob.os"), 5_000)
      assert.deepStrictEqual(yield* ask(client, "bob.os@echo:test:pub.os", "still you?", 10n), { failed: "offline" })
      assert.isTrue(alice.lines.some((l) => /bob\.os.*key changed on chain/.test(l.text)), "alice says why")
    }), { timeout: 120_000 })
})
