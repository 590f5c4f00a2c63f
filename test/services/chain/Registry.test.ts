/**
 * The registry contract and the Registry client against a real anvil
 * (random free port, started and stopped by this file).
 */
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import {
  type Abi,
  type Address,
  type Hex,
  bytesToHex,
  createPublicClient,
  createWalletClient,
  decodeEventLog,
  encodeFunctionData,
  http,
  keccak256,
  stringToHex,
  zeroAddress
} from "viem"
import { privateKeyToAccount } from "viem/accounts"
import {
  Anvil,
  ANVIL_ACCOUNT_0_KEY,
  ANVIL_ACCOUNT_1_KEY,
  freePort,
  KIMAP_ADDRESS,
  kimapAbi,
  KNS_NOTE_LABEL_HASHES,
  makeRegistry,
  MINT_TOPIC,
  namehash,
  NOTE_TOPIC,
  Registry,
  tbaAbi,
  TRANSFER_TOPIC,
  ZERO_TOPIC
} from "../../../services/chain/index.ts"
import { scopedClientFor } from "../../../services/chain/internal/clients.ts"
import { defaultPolicy, revertOf } from "../../../services/chain/internal/rpc.ts"

const ChainLive = Layer.unwrap(Effect.map(freePort, (port) => Anvil.layer({ port })))
const TestLayer = Registry.layerAnvil().pipe(Layer.provideMerge(ChainLive))

const KEY_A = `0x${"a1".repeat(32)}` as const
const KEY_B = `0x${"b2".repeat(32)}` as const
const account0 = privateKeyToAccount(ANVIL_ACCOUNT_0_KEY)

// Kimap's functions and errors plus the account's execute and NotOwner.
const writeAbi: Abi = [...kimapAbi, ...tbaAbi.filter((x) => x.type === "error" || x.name === "execute")]

const clientOf = (url: string) => createPublicClient({ transport: http(url, { retryCount: 0 }) })

/** The custom error a simulated write reverts with ("ok" when it would succeed). */
const simulate = (url: string, address: Address, functionName: string, args: ReadonlyArray<unknown>, from = account0.address) =>
  Effect.tryPromise(() =>
    clientOf(url).simulateContract({ abi: writeAbi, address, functionName, args, account: from } as never)
  ).pipe(
    Effect.map(() => "ok"),
    Effect.catch((e) => Effect.succeed(revertOf(e.cause) ?? `not a revert: ${String(e.cause)}`))
  )

const execNote = (label: string, data: Hex = "0x01") =>
  encodeFunctionData({ abi: kimapAbi, functionName: "note", args: [stringToHex(label), data] })
const execFact = (label: string, data: Hex) =>
  encodeFunctionData({ abi: kimapAbi, functionName: "fact", args: [stringToHex(label), data] })

describe("Registry on anvil", () => {
  layer(TestLayer, { timeout: 60_000, excludeTestServices: true })((it) => {
    it.effect("installs the registry: Zero, then the zones os and dev minted under the root", () =>
      Effect.gen(function*() {
        const chain = yield* Anvil
        assert.strictEqual(chain.mode, "started")
        assert.isTrue(chain.installed)
        const client = clientOf(chain.url)
        const logs = yield* Effect.promise(() => client.getLogs({ address: KIMAP_ADDRESS, fromBlock: 0n, toBlock: 1n }))
        const zero = logs.find((l) => l.topics[0] === ZERO_TOPIC)
        assert.isDefined(zero)
        const mints = logs.filter((l) => l.topics[0] === MINT_TOPIC).map((l) => decodeEventLog({ abi: kimapAbi, ...l }))
        assert.deepStrictEqual(
          mints.map((m) => [m.eventName, (m.args as { parenthash: Hex }).parenthash, (m.args as { namehash: Hex }).namehash]),
          [["Mint", `0x${"0".repeat(64)}`, namehash("os")], ["Mint", `0x${"0".repeat(64)}`, namehash("dev")]]
        )
        const [tba, owner, data] = yield* Effect.promise(() =>
          client.readContract({ address: KIMAP_ADDRESS, abi: kimapAbi, functionName: "get", args: [namehash("os")] }))
        assert.notStrictEqual(tba, zeroAddress)
        assert.strictEqual(owner, account0.address)
        assert.strictEqual(data, "0x")
      }))

    it.effect("registers a direct node and reads it back", () =>
      Effect.gen(function*() {
        const registry = yield* Registry
        const r = yield* registry.registerDirect({ name: "direct.os", netKey: KEY_A, ip: "127.0.0.1", tcpPort: 9100 })
        assert.isTrue(r.minted)
        assert.strictEqual(r.owner, account0.address)
        const node = yield* registry.readNode("direct.os")
        assert.deepStrictEqual(node, {
          name: "direct.os",
          namehash: namehash("direct.os"),
          owner: account0.address,
          tba: r.tba,
          netKey: KEY_A,
          ip: "127.0.0.1",
          tcpPort: 9100
        })
        // One extra block was mined after the registration (fakenet's 10 wei).
        const chain = yield* Anvil
        const head = yield* Effect.promise(() => clientOf(chain.url).getBlockNumber())
        assert.isTrue(head > r.blockNumber)
      }))

    it.effect("registers an indirect node (routers = router namehashes) and an IPv6 direct one", () =>
      Effect.gen(function*() {
        const registry = yield* Registry
        yield* registry.registerDirect({ name: "router.dev", netKey: KEY_A, ip: "::1", tcpPort: 10000, wsPort: 9000 })
        const router = yield* registry.readNode("router.dev")
        assert.strictEqual(router.ip, "::1")
        assert.strictEqual(router.wsPort, 9000)
        yield* registry.registerIndirect({ name: "leaf.os", netKey: KEY_B, routers: ["router.dev", "direct.os"] })
        const node = yield* registry.readNode("leaf.os")
        assert.strictEqual(node.netKey, KEY_B)
        assert.deepStrictEqual(node.routers, [namehash("router.dev"), namehash("direct.os")])
        assert.isUndefined(node.ip)
        assert.isUndefined(node.tcpPort)
      }))

    it.effect("two nodes registering at once with the same wallet (shared embedded chain) both land", () =>
      Effect.gen(function*() {
        const chain = yield* Anvil
        const [a, b] = yield* Effect.all([makeRegistry({ url: chain.url }), makeRegistry({ url: chain.url })])
        const names = ["twin-1", "twin-2", "twin-3", "twin-4"]
        const results = yield* Effect.all(
          names.map((n, i) => (i % 2 === 0 ? a : b).registerDirect({ name: `${n}.os`, netKey: KEY_A, ip: "127.0.0.1", tcpPort: 9600 + i })),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(results.map((r) => r.minted), [true, true, true, true])
        for (const [i, n] of names.entries()) assert.strictEqual((yield* a.readNode(`${n}.os`)).tcpPort, 9600 + i)
      }))

    it.effect("works over the chain's WebSocket URL too (Kinode's default RPC is wss)", () =>
      Effect.gen(function*() {
        const chain = yield* Anvil
        const ws = yield* makeRegistry({ url: chain.wsUrl })
        assert.strictEqual(ws.chainId, 31337)
        const r = yield* ws.registerDirect({ name: "over-ws.os", netKey: KEY_B, ip: "127.0.0.2", tcpPort: 9800 })
        assert.isTrue(r.minted)
        const node = yield* ws.readNode("over-ws.os")
        assert.deepStrictEqual([node.netKey, node.ip, node.tcpPort], [KEY_B, "127.0.0.2", 9800])
        // Reverts come back decoded over the WebSocket transport as well.
        const client = yield* scopedClientFor(chain.wsUrl, defaultPolicy)
        const [osTba] = yield* Effect.promise(() =>
          client.readContract({ address: KIMAP_ADDRESS, abi: kimapAbi, functionName: "get", args: [namehash("os")] }))
        const e = yield* Effect.tryPromise(() =>
          client.simulateContract({
            abi: writeAbi,
            address: osTba,
            functionName: "mint",
            args: [account0.address, "0x", "0x", zeroAddress],
            account: account0.address
          } as never)).pipe(Effect.flip)
        assert.strictEqual(revertOf(e.cause), "LabelTooShort")
      }))

    it.effect("a name owned by another account → NameTaken{name, owner}", () =>
      Effect.gen(function*() {
        const registry = yield* Registry
        const other = privateKeyToAccount(ANVIL_ACCOUNT_1_KEY)
        const r = yield* registry.registerDirect({
          name: "taken.os",
          netKey: KEY_B,
          ip: "10.0.0.2",
          tcpPort: 9200,
          walletKey: ANVIL_ACCOUNT_1_KEY
        })
        assert.strictEqual(r.owner, other.address)
        const exit = yield* Effect.exit(registry.registerDirect({ name: "taken.os", netKey: KEY_A, ip: "127.0.0.1", tcpPort: 1 }))
        assert.isTrue(Exit.isFailure(exit))
        const err = yield* Effect.flip(registry.registerDirect({ name: "taken.os", netKey: KEY_A, ip: "127.0.0.1", tcpPort: 1 }))
        assert.strictEqual(err._tag, "NameTaken")
        assert.deepStrictEqual(err._tag === "NameTaken" ? [err.name, err.owner] : [], ["taken.os", other.address])
        const upd = yield* Effect.flip(registry.updateNotes({ name: "taken.os", notes: [] }))
        assert.strictEqual(upd._tag, "NameTaken")
        // The owner's data is untouched.
        assert.strictEqual((yield* registry.readNode("taken.os")).ip, "10.0.0.2")
      }))

    it.effect("typed failures: unknown name, unknown parent, bad name, bad ip", () =>
      Effect.gen(function*() {
        const registry = yield* Registry
        assert.strictEqual((yield* Effect.flip(registry.readNode("nobody.os")))._tag, "NameNotFound")
        const parent = yield* Effect.flip(registry.registerDirect({ name: "x.nozone", netKey: KEY_A, ip: "1.2.3.4", tcpPort: 1 }))
        assert.deepStrictEqual(parent._tag === "ParentNotFound" ? parent.parent : parent._tag, "nozone")
        for (const name of ["os", "Bad.os", "a..os", `${"a".repeat(64)}.os`]) {
          const e = yield* Effect.flip(registry.registerDirect({ name, netKey: KEY_A, ip: "1.2.3.4", tcpPort: 1 }))
          assert.strictEqual(e._tag, "InvalidNodeName", name)
        }
        const ip = yield* Effect.flip(registry.registerDirect({ name: "badip.os", netKey: KEY_A, ip: "1.2.3", tcpPort: 1 }))
        assert.strictEqual(ip._tag, "InvalidIp")
        const key = yield* Effect.flip(registry.registerDirect({ name: "badkey.os", netKey: "0x12", ip: "1.2.3.4", tcpPort: 1 }))
        assert.strictEqual(key._tag, "InvalidNoteBytes")
      }))

    it.effect("note overwrite: a changed ~ip is read back and re-emits Note; switching to indirect clears ~ip", () =>
      Effect.gen(function*() {
        const registry = yield* Registry
        const chain = yield* Anvil
        yield* registry.registerDirect({ name: "mover.os", netKey: KEY_A, ip: "127.0.0.1", tcpPort: 9300 })
        const second = yield* registry.registerDirect({ name: "mover.os", netKey: KEY_A, ip: "192.168.1.7", tcpPort: 9301 })
        assert.isFalse(second.minted)
        const node = yield* registry.readNode("mover.os")
        assert.strictEqual(node.ip, "192.168.1.7")
        assert.strictEqual(node.tcpPort, 9301)
        const receipt = yield* Effect.promise(() => clientOf(chain.url).getTransactionReceipt({ hash: second.transactionHash }))
        const notes = receipt.logs.filter((l) => l.topics[0] === NOTE_TOPIC).map((l) => decodeEventLog({ abi: kimapAbi, ...l }))
        const ipNote = notes.find((n) => (n.args as { label: Hex }).label === stringToHex("~ip"))
        assert.strictEqual((ipNote?.args as { data: Hex }).data, "0xc0a80107")
        // updateNotes writes arbitrary notes of a name we own.
        yield* registry.updateNotes({ name: "mover.os", notes: [{ label: "~ws-port", data: Uint8Array.of(0x23, 0x28) }] })
        assert.strictEqual((yield* registry.readNode("mover.os")).wsPort, 9000)
        // Direct -> indirect: old ~ip/~tcp-port/~ws-port notes are emptied first.
        yield* registry.registerIndirect({ name: "mover.os", netKey: KEY_B, routers: ["direct.os"] })
        const moved = yield* registry.readNode("mover.os")
        assert.deepStrictEqual(
          [moved.netKey, moved.ip, moved.tcpPort, moved.wsPort, moved.routers],
          [KEY_B, undefined, undefined, undefined, [namehash("direct.os")]]
        )
      }))

    it.effect("events: exact topics, Mint → Transfer(0→Kimap) → notes → Transfer(Kimap→owner)", () =>
      Effect.gen(function*() {
        const registry = yield* Registry
        const chain = yield* Anvil
        const client = clientOf(chain.url)
        const r = yield* registry.registerDirect({ name: "events.os", netKey: KEY_A, ip: "127.0.0.1", tcpPort: 9400 })
        const receipt = yield* Effect.promise(() => client.getTransactionReceipt({ hash: r.transactionHash }))
        const kimapLogs = receipt.logs.filter((l) => l.address.toLowerCase() === KIMAP_ADDRESS.toLowerCase())
        assert.deepStrictEqual(
          kimapLogs.map((l) => l.topics[0]),
          [MINT_TOPIC, TRANSFER_TOPIC, NOTE_TOPIC, NOTE_TOPIC, NOTE_TOPIC, TRANSFER_TOPIC]
        )
        const [mint, t1, n1, n2, n3, t2] = kimapLogs.map((l) => decodeEventLog({ abi: kimapAbi, ...l }))
        assert.strictEqual(mint!.eventName, "Mint")
        assert.deepStrictEqual(mint!.args, {
          parenthash: namehash("os"),
          namehash: namehash("events.os"),
          labelhash: keccak256(stringToHex("events")),
          label: stringToHex("events")
        })
        const id = BigInt(namehash("events.os"))
        assert.deepStrictEqual(t1!.args, { from: zeroAddress, to: KIMAP_ADDRESS, id })
        assert.deepStrictEqual(t2!.args, { from: KIMAP_ADDRESS, to: account0.address, id })
        const expected = [["~net-key", KEY_A], ["~ip", "0x7f000001"], ["~tcp-port", "0x24b8"]] as const
        ;[n1, n2, n3].forEach((n, i) => {
          const [label, data] = expected[i]!
          assert.strictEqual(n!.eventName, "Note")
          assert.deepStrictEqual(n!.args, {
            parenthash: namehash("events.os"),
            namehash: namehash(`${label}.events.os`),
            labelhash: KNS_NOTE_LABEL_HASHES[label],
            label: stringToHex(label),
            data
          })
          assert.strictEqual(kimapLogs[2 + i]!.topics[3], KNS_NOTE_LABEL_HASHES[label])
        })
        // The indexer's filters (§1.8) find them.
        const mints = yield* Effect.promise(() =>
          client.getLogs({ address: KIMAP_ADDRESS, fromBlock: r.blockNumber, toBlock: r.blockNumber, event: kimapAbi[0] }))
        assert.strictEqual(mints.length, 1)
        const noteLogs = yield* Effect.promise(() =>
          client.request({
            method: "eth_getLogs",
            params: [{
              address: KIMAP_ADDRESS,
              fromBlock: `0x${r.blockNumber.toString(16)}`,
              toBlock: `0x${r.blockNumber.toString(16)}`,
              topics: [NOTE_TOPIC, null, null, Object.values(KNS_NOTE_LABEL_HASHES)]
            }]
          }))
        assert.strictEqual((noteLogs as ReadonlyArray<unknown>).length, 3)
      }))

    it.effect("the contract enforces the label rules with Kimap's custom errors", () =>
      Effect.gen(function*() {
        const registry = yield* Registry
        const chain = yield* Anvil
        const url = chain.url
        const r = yield* registry.registerDirect({ name: "labels.os", netKey: KEY_A, ip: "127.0.0.1", tcpPort: 9500 })
        const client = clientOf(url)
        const [osTba] = yield* Effect.promise(() =>
          client.readContract({ address: KIMAP_ADDRESS, abi: kimapAbi, functionName: "get", args: [namehash("os")] }))
        const mint = (label: string) =>
          simulate(url, osTba, "mint", [account0.address, stringToHex(label), "0x", zeroAddress])
        assert.strictEqual(yield* mint(""), "LabelTooShort")
        assert.strictEqual(yield* mint("a".repeat(64)), "LabelTooLong")
        assert.strictEqual(yield* mint("Upper"), "InvalidLabelCharacter")
        assert.strictEqual(yield* mint("a.b"), "InvalidLabelCharacter")
        assert.strictEqual(yield* mint("~note"), "InvalidLabelCharacter")
        assert.strictEqual(yield* mint("labels"), "NameAlreadyExists")
        assert.strictEqual(yield* mint("a".repeat(63)), "ok")
        const exec = (data: Hex) => simulate(url, r.tba, "execute", [KIMAP_ADDRESS, 0n, data, 0])
        assert.strictEqual(yield* exec(execNote("net-key")), "NoteMustBeginWithTilde")
        assert.strictEqual(yield* exec(execNote("~")), "LabelTooShort")
        assert.strictEqual(yield* exec(execNote("~Bad")), "InvalidLabelCharacter")
        assert.strictEqual(yield* exec(execNote("~" + "a".repeat(63))), "LabelTooLong")
        assert.strictEqual(yield* exec(execNote("~" + "a".repeat(62))), "ok")
        assert.strictEqual(yield* exec(execFact("x", "0x01")), "FactMustBeginWithBang")
        assert.strictEqual(yield* exec(execFact("!x", "0x")), "EmptyFact")
        // Only the parent's account may mint, only an entry's account may note.
        assert.strictEqual(
          yield* simulate(url, KIMAP_ADDRESS, "mint", [account0.address, stringToHex("direct"), "0x", zeroAddress]),
          "NotParent"
        )
        assert.strictEqual(yield* simulate(url, KIMAP_ADDRESS, "note", [stringToHex("~ip"), "0x01"]), "NotParent")
        // Only the name's owner may drive its account.
        const other = privateKeyToAccount(ANVIL_ACCOUNT_1_KEY)
        assert.strictEqual(
          yield* simulate(url, r.tba, "execute", [KIMAP_ADDRESS, 0n, execNote("~ip"), 0], other.address),
          "NotOwner"
        )
        // Facts are write-once: write one for real through the account, then retry.
        const client0 = createWalletClient({ account: account0, transport: http(url, { retryCount: 0 }) })
        const hash = yield* Effect.promise(() =>
          client0.writeContract({
            abi: writeAbi,
            address: r.tba,
            functionName: "execute",
            args: [KIMAP_ADDRESS, 0n, execFact("!born", bytesToHex(Uint8Array.of(7))), 0],
            chain: null
          }))
        assert.strictEqual((yield* Effect.promise(() => client.waitForTransactionReceipt({ hash }))).status, "success")
        const [, , fact] = yield* Effect.promise(() =>
          client.readContract({ address: KIMAP_ADDRESS, abi: kimapAbi, functionName: "get", args: [namehash("!born.labels.os")] }))
        assert.strictEqual(fact, "0x07")
        assert.strictEqual(yield* exec(execFact("!born", "0x08")), "FactAlreadyExists")
      }))
  })
})
