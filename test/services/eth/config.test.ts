/**
 * `eth:distro:sys` config actions: only with eth's `{"root":true}` (else
 * `"PermissionDenied"`), each action's effect and answer in Kinode's shapes, the
 * settings written to `<home>/.eth_providers` and `.eth_access_settings` in Kinode's
 * format and read back by the next start of the module on the same home; files that do
 * not read are ignored with a printout.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Kernel } from "../../../src/Kernel.ts"
import { ACCESS_FILE, Eth, PROVIDERS_FILE } from "../../../services/eth/index.ts"
import { CHAIN_ID, ethNode, proc, rpc, testAnvil, valueOf } from "./support.ts"

const freshHome = () => fs.mkdtempSync(path.join(os.tmpdir(), "kinode-eth-"))

const withNode = <A, E>(
  home: string,
  options: Eth.EthOptions,
  body: (lines: () => ReadonlyArray<{ readonly text: string; readonly level: number }>) => Effect.Effect<A, E, Kernel | Scope.Scope>
) => {
  const n = ethNode(options, home)
  return Effect.scoped(body(() => n.lines).pipe(Effect.provide(n.layer)))
}

const kinodeNode = {
  name: "provider.os",
  public_key: `0x${"11".repeat(32)}`,
  ips: ["1.2.3.4"],
  ports: { ws: 9000 },
  routers: []
}

describe("eth: config actions", () => {
  it.live("without eth's root capability every config action is PermissionDenied", () => {
    const home = freshHome()
    return withNode(home, {}, () =>
      Effect.gen(function*() {
        const p = yield* proc("nobody:app:pub.os")
        for (const action of ["GetProviders", "GetAccessSettings", "GetState", "SetPublic", { AllowNode: "x.os" }, {
          AddProvider: { chain_id: 1, trusted: true, provider: { RpcUrl: "wss://example.com" } }
        }]) {
          assert.strictEqual(yield* p.call(action), "PermissionDenied", JSON.stringify(action))
        }
        assert.isFalse(fs.existsSync(path.join(home, PROVIDERS_FILE)))
        assert.isFalse(fs.existsSync(path.join(home, ACCESS_FILE)))
      })).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(home, { recursive: true, force: true }))))
  }, 30_000)

  it.live("with it: every action, answered as Kinode's; providers take effect at once; persisted and read back after a restart", () => {
    const home = freshHome()
    return Effect.gen(function*() {
      const anvil = yield* testAnvil
      yield* withNode(home, { providers: [{ chain_id: 1, url: "wss://boot.example" }] }, () =>
        Effect.gen(function*() {
          const kernel = yield* Kernel
          const root = yield* proc("settings:settings:sys", [Eth.rootCapability(kernel.node)])
          const user = yield* proc("user:app:pub.os")
          // the layer's providers are there, not yet saved
          assert.deepStrictEqual(yield* root.call("GetProviders"), { Providers: [{ chain_id: 1, trusted: true, provider: { RpcUrl: "wss://boot.example" } }] })
          assert.isFalse(fs.existsSync(path.join(home, PROVIDERS_FILE)))
          assert.deepStrictEqual(yield* user.call(rpc("eth_chainId")), { Err: "NoRpcForChain" })

          assert.strictEqual(yield* root.call({ AddProvider: { chain_id: CHAIN_ID, trusted: false, provider: { RpcUrl: anvil.url } } }), "Ok")
          assert.strictEqual(valueOf(yield* user.call(rpc("eth_chainId"))), "0x7a69")
          assert.strictEqual(yield* root.call({ AddProvider: { chain_id: CHAIN_ID, trusted: true, provider: { Node: { kns_update: kinodeNode, use_as_provider: true } } } }), "Ok")
          assert.strictEqual(yield* root.call({ AddProvider: { chain_id: CHAIN_ID, trusted: false, provider: { RpcUrl: "ftp://nowhere" } } }), "Ok")
          assert.strictEqual(yield* root.call({ RemoveProvider: [CHAIN_ID, "ftp://nowhere"] }), "Ok")
          // on disk, Kinode's format
          const saved = JSON.parse(fs.readFileSync(path.join(home, PROVIDERS_FILE), "utf8"))
          assert.deepStrictEqual(saved, [
            { chain_id: 1, trusted: true, provider: { RpcUrl: "wss://boot.example" } },
            { chain_id: CHAIN_ID, trusted: false, provider: { RpcUrl: anvil.url } },
            { chain_id: CHAIN_ID, trusted: true, provider: { Node: { kns_update: kinodeNode, use_as_provider: true } } }
          ])

          for (const action of ["SetPublic", { AllowNode: "a.os" }, { AllowNode: "b.os" }, { UnallowNode: "a.os" }, { DenyNode: "c.os" }, { DenyNode: "d.os" }, { UndenyNode: "d.os" }, "SetPrivate", "SetPublic"]) {
            assert.strictEqual(yield* root.call(action), "Ok", JSON.stringify(action))
          }
          const access = { public: true, allow: ["b.os"], deny: ["c.os"] }
          assert.deepStrictEqual(yield* root.call("GetAccessSettings"), { AccessSettings: access })
          assert.deepStrictEqual(JSON.parse(fs.readFileSync(path.join(home, ACCESS_FILE), "utf8")), access)
          assert.deepStrictEqual(yield* root.call("GetState"), { State: { active_subscriptions: {}, outstanding_requests: [] } })

          // SetProviders replaces everything
          assert.strictEqual(yield* root.call({ SetProviders: [{ chain_id: CHAIN_ID, trusted: true, provider: { RpcUrl: anvil.wsUrl } }] }), "Ok")
          assert.deepStrictEqual(yield* root.call("GetProviders"), { Providers: [{ chain_id: CHAIN_ID, trusted: true, provider: { RpcUrl: anvil.wsUrl } }] })
          assert.strictEqual(valueOf(yield* user.call(rpc("eth_chainId"))), "0x7a69")
        }))

      // a restart of the module on the same home: the saved settings come back, the
      // layer's providers go in front again
      yield* withNode(home, { providers: [{ chain_id: 1, url: "wss://boot.example" }] }, () =>
        Effect.gen(function*() {
          const kernel = yield* Kernel
          const root = yield* proc("settings:settings:sys", [Eth.rootCapability(kernel.node)])
          const user = yield* proc("user:app:pub.os")
          assert.deepStrictEqual(yield* root.call("GetProviders"), {
            Providers: [
              { chain_id: CHAIN_ID, trusted: true, provider: { RpcUrl: anvil.wsUrl } },
              { chain_id: 1, trusted: true, provider: { RpcUrl: "wss://boot.example" } }
            ]
          })
          assert.deepStrictEqual(yield* root.call("GetAccessSettings"), { AccessSettings: { public: true, allow: ["b.os"], deny: ["c.os"] } })
          assert.strictEqual(valueOf(yield* user.call(rpc("eth_chainId"))), "0x7a69")
        }))
    }).pipe(Effect.scoped, Effect.ensuring(Effect.sync(() => fs.rmSync(home, { recursive: true, force: true }))))
  }, 60_000)

  it.live("settings files that do not read are ignored with a printout; the node keeps serving", () => {
    const home = freshHome()
    fs.writeFileSync(path.join(home, PROVIDERS_FILE), "{broken")
    fs.writeFileSync(path.join(home, ACCESS_FILE), `{"public":"yes"}`)
    return withNode(home, {}, (lines) =>
      Effect.gen(function*() {
        const kernel = yield* Kernel
        const root = yield* proc("settings:settings:sys", [Eth.rootCapability(kernel.node)])
        assert.deepStrictEqual(yield* root.call("GetProviders"), { Providers: [] })
        assert.deepStrictEqual(yield* root.call("GetAccessSettings"), { AccessSettings: { public: false, allow: [], deny: [] } })
        const said = lines().filter((l) => l.text.startsWith("eth: ignored"))
        assert.strictEqual(said.length, 2)
        assert.strictEqual(said[0]!.level, 0)
      })).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(home, { recursive: true, force: true }))))
  }, 30_000)
})

