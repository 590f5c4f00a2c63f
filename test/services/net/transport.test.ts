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
