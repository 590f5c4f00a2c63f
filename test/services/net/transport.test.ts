/**
 * Two and three nodes on 127.0.0.1 over real libp2p, PKI records written as the chain
 * would hold them: requests and responses, order, blobs, offline, the network capability.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { freePort } from "../../../services/chain/index.ts"
import { generate } from "../../../services/identity/index.ts"
import { address } from "../../../src/Ids.ts"
import { request, text } from "../../../src/Message.ts"
import { eventually } from "../kns-indexer/support.ts"
import { app, ask, introduce, netNode, serveEcho } from "./support.ts"

const direct = (tcpPort: number) => ({ _tag: "Direct" as const, ip: "127.0.0.1", tcpPort })

describe("net over libp2p", () => {
  it.live("a request and its response between two direct nodes", () =>
    Effect.gen(function*() {
      const a = yield* netNode("alice.os", direct(yield* freePort))
      const b = yield* netNode("bob.os", direct(yield* freePort))
      introduce([a, b])
      const client = yield* app(a, "client:test:pub.os")
      const server = yield* app(b, "server:test:pub.os")
      yield* serveEcho(server, "bob says ")
      const r = yield* ask(client, "bob.os@server:test:pub.os", "hi")
      assert.deepStrictEqual(r, { text: "bob says hi", blob: undefined })
    }), { timeout: 30_000 })
})

describe("net through a router", () => {
  it.live("an indirect node is reached through its router, and reaches others", () =>
    Effect.gen(function*() {
      const router = yield* netNode("router.os", direct(yield* freePort))
      const a = yield* netNode("alice.os", direct(yield* freePort))
      const c = yield* netNode("carol.os", { _tag: "Indirect", routers: ["router.os"] })
      introduce([router, a, c])
      const server = yield* app(c, "server:test:pub.os")
      yield* serveEcho(server, "carol says ")
      const client = yield* app(a, "client:test:pub.os")
      // the reservation is made by carol's re-listen loop within a few seconds
      let r: { text: string; blob?: unknown } | { failed: string } = { failed: "not tried" }
      for (let i = 0; i < 20 && !("text" in r); i++) {
        r = yield* ask(client, "carol.os@server:test:pub.os", "hi", 2n)
        if (!("text" in r)) yield* Effect.sleep("250 millis")
      }
      assert.deepStrictEqual(r, { text: "carol says hi", blob: undefined })
      const back = yield* app(c, "client:test:pub.os")
      const aliceServer = yield* app(a, "server:test:pub.os")
      yield* serveEcho(aliceServer, "alice says ")
      assert.deepStrictEqual(yield* ask(back, "alice.os@server:test:pub.os", "yo"), { text: "alice says yo", blob: undefined })
    }), { timeout: 60_000 })
})

describe("net order, limits and re-listen", () => {
  it.live("a sender's messages arrive in the order sent", () =>
    Effect.gen(function*() {
      const a = yield* netNode("alice.os", direct(yield* freePort))
      const b = yield* netNode("bob.os", direct(yield* freePort))
      introduce([a, b])
      const client = yield* app(a, "client:test:pub.os")
      const sink = yield* app(b, "sink:test:pub.os")
      const got: Array<string> = []
      yield* Effect.forkScoped(Effect.forever(Effect.flatMap(sink.receiveEffect, (r) =>
        Effect.sync(() => {
          if (r._tag === "Message") got.push(new TextDecoder().decode(r.message.body))
        }))))
      for (let i = 0; i < 500; i++) {
        assert.isUndefined(client.sendRequest(address("bob.os@sink:test:pub.os"), request({ body: text(String(i)) }), undefined, undefined))
      }
      yield* eventually("all 500 arrived", () => got.length === 500, 15_000)
      assert.deepStrictEqual(got, Array.from({ length: 500 }, (_, i) => String(i)))
    }), { timeout: 30_000 })

  it.live("more peers than the limit evict the least recently active; idle peers are closed; both come back on use", () =>
    Effect.gen(function*() {
      const hub = yield* netNode("hub.os", direct(yield* freePort), { limits: { maxPeers: 2, idleMs: 1500 } })
      const spokes = [
        yield* netNode("one.os", direct(yield* freePort)),
        yield* netNode("two.os", direct(yield* freePort)),
        yield* netNode("three.os", direct(yield* freePort))
      ]
      introduce([hub, ...spokes])
      const client = yield* app(hub, "client:test:pub.os")
      for (const s of spokes) yield* serveEcho(yield* app(s, "echo:test:pub.os"), `${s.name} `)
      for (const s of spokes) {
        assert.deepStrictEqual(yield* ask(client, `${s.name}@echo:test:pub.os`, "x"), { text: `${s.name} x`, blob: undefined })
      }
      const names = hub.status.peers().map((p) => p.name).sort()
      assert.deepStrictEqual(names, ["three.os", "two.os"], "one.os, the least recently active, was evicted")
      assert.deepStrictEqual(yield* ask(client, "one.os@echo:test:pub.os", "again"), { text: "one.os again", blob: undefined })
      yield* eventually("idle peers closed", () => hub.status.peers().length === 0, 10_000)
      assert.deepStrictEqual(yield* ask(client, "two.os@echo:test:pub.os", "awake"), { text: "two.os awake", blob: undefined })
    }), { timeout: 30_000 })

  it.live("an indirect node reserves again on its router after the router comes back", () =>
    Effect.gen(function*() {
      const routerPort = yield* freePort
      const routerKey = yield* generate
      const startRouter = Effect.gen(function*() {
        const scope = yield* Scope.make()
        const node = yield* netNode("router.os", direct(routerPort), { key: routerKey }).pipe(Scope.provide(scope))
        return { node, scope }
      })
      let router = yield* startRouter
      const a = yield* netNode("alice.os", direct(yield* freePort))
      const c = yield* netNode("carol.os", { _tag: "Indirect", routers: ["router.os"] })
      introduce([router.node, a, c])
      yield* serveEcho(yield* app(c, "echo:test:pub.os"), "carol ")
      const client = yield* app(a, "client:test:pub.os")
      const reserved = () => c.status.listenAddresses().some((x) => x.includes("/p2p-circuit"))
      yield* eventually("carol reserved", reserved, 15_000)
      assert.deepStrictEqual(yield* ask(client, "carol.os@echo:test:pub.os", "1"), { text: "carol 1", blob: undefined })

      yield* Scope.close(router.scope, Exit.void)
      yield* eventually("carol lost her reservation", () => !reserved(), 15_000)
      assert.deepStrictEqual(yield* ask(client, "carol.os@echo:test:pub.os", "2", 10n), { failed: "offline" })

      router = yield* startRouter
      introduce([router.node, a, c])
      yield* eventually("carol reserved again (re-listen loop)", reserved, 20_000)
      assert.deepStrictEqual(yield* ask(client, "carol.os@echo:test:pub.os", "3"), { text: "carol 3", blob: undefined })
      yield* Scope.close(router.scope, Exit.void)
    }), { timeout: 60_000 })
})

describe("net back-pressure", () => {
  it.live("100 requests of 1 MiB at once: each is accepted and answered or refused at once (MailboxFull), the node keeps going", () =>
    Effect.gen(function*() {
      const a = yield* netNode("alice.os", direct(yield* freePort))
      const b = yield* netNode("bob.os", direct(yield* freePort))
      introduce([a, b])
      const client = yield* app(a, "client:test:pub.os")
      yield* serveEcho(yield* app(b, "echo:test:pub.os"))
      const blob = { mime: undefined, bytes: new Uint8Array(1024 * 1024) }
      let refused = 0
      let sent = 0
      for (let i = 0; i < 100; i++) {
        const r = client.sendRequest(address("bob.os@echo:test:pub.os"), request({ body: text(String(i)), expectsResponse: 20n }), undefined, blob)
        if (r === undefined) sent++
        else {
          assert.strictEqual(r.reason, "MailboxFull")
          refused++
        }
      }
      assert.isAbove(refused, 0, "a peer's outbox is bounded")
      // a refused send is the sender's error value (no SendError follows); each accepted one is answered
      let answered = 0
      for (let i = 0; i < sent; i++) {
        const r = yield* client.receiveEffect
        if (r._tag === "Message") answered++
      }
      assert.strictEqual(answered, sent, "every accepted request was answered")
      assert.deepStrictEqual(yield* ask(client, "bob.os@echo:test:pub.os", "after"), { text: "after", blob: undefined })
    }), { timeout: 90_000 })
})
