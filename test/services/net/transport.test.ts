/**
 * Two and three nodes on 127.0.0.1 over real libp2p, PKI records written as the chain
 * would hold them: requests and responses, order, blobs, offline, the network capability.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { freePort } from "../../../services/chain/index.ts"
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
