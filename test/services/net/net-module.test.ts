/**
 * `net:distro:sys` as processes use it: Kinode's `NetAction`s in MessagePack, in both
 * the map form and rmp-serde's struct-as-array form, from local processes and from
 * another node.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Packr } from "msgpackr"
import { freePort } from "../../../services/chain/index.ts"
import { address } from "../../../src/Ids.ts"
import { messagingCap } from "../../../src/Kernel.ts"
import { request, text } from "../../../src/Message.ts"
import type { NativeApi } from "../../../src/ProcessApi.ts"
import { eventually } from "../kns-indexer/support.ts"
import { app, introduce, netNode } from "./support.ts"

const packr = new Packr({ useRecords: false, mapsAsObjects: true })
const direct = (tcpPort: number) => ({ _tag: "Direct" as const, ip: "127.0.0.1", tcpPort })

/** Sends `action` to `<node>@net:distro:sys`; the decoded answer and its blob. */
const call = (api: NativeApi, node: string, action: unknown, blob?: Uint8Array) =>
  Effect.map(
    api.sendAndAwaitEffect(
      address(`${node}@net:distro:sys`),
      request({ body: packr.pack(action), expectsResponse: 5n }),
      blob === undefined ? undefined : { mime: undefined, bytes: blob }
    ),
    (r) => "message" in r && "source" in r ? { body: packr.unpack(r.message.body) as unknown, blob: api.getBlob()?.bytes } : { failed: r.kind }
  )

describe("net:distro:sys", () => {
  it.live("GetPeer, GetPeers, GetDiagnostics, Sign and Verify, KnsUpdate in both encodings", () =>
    Effect.gen(function*() {
      const a = yield* netNode("alice.os", direct(yield* freePort))
      const b = yield* netNode("bob.os", direct(yield* freePort))
      introduce([a, b])
      const api = yield* app(a, "tool:test:pub.os")
      yield* a.kernel.grant("tool:test:pub.os", [messagingCap("alice.os", "net:distro:sys")])
      const bobKey = `0x${b.record.publicKey}`

      assert.deepStrictEqual(yield* call(api, "alice.os", { GetPeer: "bob.os" }), {
        body: { Peer: { name: "bob.os", networking_key: bobKey, routing: { Direct: { ip: "127.0.0.1", ports: { tcp: (b.reach as { tcpPort: number }).tcpPort } } } } },
        blob: undefined
      })
      const own = (yield* call(api, "alice.os", { GetPeer: "alice.os" })) as { body: { Peer: { name: string } } }
      assert.strictEqual(own.body.Peer.name, "alice.os", "GetPeer of our own name is our identity")
      assert.deepStrictEqual(yield* call(api, "alice.os", { GetPeer: "nobody.os" }), { body: { Peer: null }, blob: undefined })
      assert.deepStrictEqual(yield* call(api, "alice.os", "GetPeers"), { body: { Peers: [] }, blob: undefined }, "no connections yet")

      // a hello to bob connects the two; bob prints it and answers ack
      const hello = yield* Effect.map(
        api.sendAndAwaitEffect(address("bob.os@net:distro:sys"), request({ body: text("hello bob"), expectsResponse: 5n })),
        (r) => "message" in r && "source" in r ? new TextDecoder().decode(r.message.body) : r.kind
      )
      assert.strictEqual(hello, "ack")
      assert.isTrue(b.lines.some((l) => l.text === "alice.os: hello bob"), "bob printed the hello")
      // a hello cannot drive bob's terminal (escapes shown, not obeyed) nor flood it
      api.sendRequest(address("bob.os@net:distro:sys"), request({ body: text("\u001b[2Jcleared?\nsecond line" + "x".repeat(5000)) }), undefined, undefined)
      yield* eventually("the hostile hello printed", () => b.lines.some((l) => l.text.startsWith("alice.os: \\u001b[2Jcleared?\\u000asecond line")))
      const hostile = b.lines.find((l) => l.text.startsWith("alice.os: \\u001b"))!.text
      assert.isBelow(hostile.length, 1100)
      assert.notInclude(hostile, "\u001b")
      const peers = (yield* call(api, "alice.os", "GetPeers")) as { body: { Peers: Array<{ name: string }> } }
      assert.deepStrictEqual(peers.body.Peers.map((p) => p.name), ["bob.os"])
      const diag = (yield* call(api, "alice.os", "GetDiagnostics")) as { body: { Diagnostics: string } }
      assert.match(diag.body.Diagnostics, /our identity: alice\.os/)
      assert.match(diag.body.Diagnostics, /bob\.os, last message \d+ s ago/)
      assert.match(diag.body.Diagnostics, /PKI: 2 nodes known/)

      // Sign: the blob prefixed with the caller's address; Verify checks the same, in both forms
      const message = text("a message to sign")
      const signed = (yield* call(api, "alice.os", "Sign", message)) as { body: unknown; blob: Uint8Array }
      assert.strictEqual(signed.body, "Signed")
      assert.strictEqual(signed.blob.length, 64)
      const from = "alice.os@tool:test:pub.os"
      assert.deepStrictEqual((yield* call(api, "alice.os", { Verify: { from, signature: signed.blob } }, message)).body, { Verified: true })
      assert.deepStrictEqual((yield* call(api, "alice.os", { Verify: [from, Array.from(signed.blob)] }, message)).body, { Verified: true }, "rmp-serde's struct-as-array form")
      assert.deepStrictEqual((yield* call(api, "alice.os", { Verify: { from, signature: signed.blob } }, text("another message"))).body, { Verified: false })
      assert.deepStrictEqual((yield* call(api, "alice.os", { Verify: { from: "bob.os@tool:test:pub.os", signature: signed.blob } }, message)).body, { Verified: false }, "bob's key did not sign it")

      // bob verifies alice's signature with alice's key from his PKI
      const bobApi = yield* app(b, "tool:test:pub.os")
      yield* b.kernel.grant("tool:test:pub.os", [messagingCap("bob.os", "net:distro:sys")])
      assert.deepStrictEqual((yield* call(bobApi, "bob.os", { Verify: { from, signature: signed.blob } }, message)).body, { Verified: true })

      // KnsUpdate from a local process upserts the PKI (map and array forms); from another node it is refused
      api.sendRequest(address("alice.os@net:distro:sys"), request({ body: packr.pack({ KnsUpdate: { name: "carol.os", public_key: `0x${"ab".repeat(32)}`, ips: [], ports: {}, routers: ["bob.os"] } }) }), undefined, undefined)
      api.sendRequest(address("alice.os@net:distro:sys"), request({ body: packr.pack({ KnsBatchUpdate: [["dave.os", "cd".repeat(32), ["127.0.0.1"], { tcp: 9 }, []]] }) }), undefined, undefined)
      const carol = (yield* call(api, "alice.os", { GetPeer: "carol.os" })) as { body: { Peer: unknown } }
      assert.deepStrictEqual(carol.body.Peer, { name: "carol.os", networking_key: `0x${"ab".repeat(32)}`, routing: { Routers: ["bob.os"] } })
      assert.strictEqual(a.identity.lookup("dave.os")?.ports["tcp"], 9)
      api.sendRequest(address("bob.os@net:distro:sys"), request({ body: packr.pack({ KnsUpdate: { name: "mallory.os", public_key: "ef".repeat(32), ips: [], ports: {}, routers: [] } }) }), undefined, undefined)
      yield* Effect.sleep("300 millis")
      assert.isUndefined(b.identity.lookup("mallory.os"), "another node cannot write our PKI")
    }), { timeout: 30_000 })
})
