/**
 * Test support for the KNS indexer: an in-memory identity port that records pushes, and
 * a tiny registry contract (`KimapLite`) emitting Kimap's exact `Mint`/`Note` events
 * (§1.3), compiled with solc-js and deployed on a test anvil. It lets tests write
 * malformed notes the real contract would also accept (notes are free bytes) and
 * register thousands of names per transaction for the catch-up measurement.
 */
import { Effect, Layer } from "effect"
import type { Hex } from "viem"
import { createPublicClient, createTestClient, createWalletClient, http, stringToHex } from "viem"
import { privateKeyToAccount } from "viem/accounts"
import { foundry } from "viem/chains"
import { Identity, NodeRecord } from "../../../src/Identity.ts"
import { Anvil, encodeIp, encodePort, encodeRouters, freePort, namehash } from "../../../services/chain/index.ts"

export const ANVIL_KEY: Hex = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

const SOURCE = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;
contract KimapLite {
  event Mint(bytes32 indexed parenthash, bytes32 indexed namehash, bytes indexed labelhash, bytes label);
  event Note(bytes32 indexed parenthash, bytes32 indexed namehash, bytes indexed labelhash, bytes label, bytes data);
  mapping(bytes32 => bool) public exists;
  mapping(bytes32 => bytes) public notes;
  function leaf(bytes32 parent, bytes memory label) public pure returns (bytes32) {
    return keccak256(abi.encodePacked(parent, keccak256(label)));
  }
  function mint(bytes32 parent, bytes memory label) public returns (bytes32 child) {
    child = leaf(parent, label);
    exists[child] = true;
    emit Mint(parent, child, label, label);
  }
  function note(bytes32 parent, bytes memory label, bytes memory data) public returns (bytes32 h) {
    h = leaf(parent, label);
    notes[h] = data;
    emit Note(parent, h, label, label, data);
  }
  /** Mints label under parent and writes its notes, in one transaction (Mint first). */
  function register(bytes32 parent, bytes calldata label, bytes[] calldata keys, bytes[] calldata values) external {
    bytes32 child = mint(parent, label);
    for (uint i = 0; i < keys.length; i++) note(child, keys[i], values[i]);
  }
  /** Many direct nodes in one transaction: each a Mint + 4 Notes. */
  function registerMany(bytes32 parent, bytes[] calldata labels, bytes calldata key, bytes calldata ip, bytes calldata port) external {
    for (uint i = 0; i < labels.length; i++) {
      bytes32 child = mint(parent, labels[i]);
      note(child, "~net-key", key);
      note(child, "~ip", ip);
      note(child, "~tcp-port", port);
      note(child, "~ws-port", port);
    }
  }
  function get(bytes32 h) external view returns (address tba, address owner, bytes memory data) {
    if (exists[h]) return (address(uint160(uint256(h))), address(1), "");
    return (address(0), address(0), notes[h]);
  }
}
`

export const liteAbi = [
  {
    type: "function",
    name: "mint",
    stateMutability: "nonpayable",
    inputs: [{ name: "parent", type: "bytes32" }, { name: "label", type: "bytes" }],
    outputs: [{ name: "child", type: "bytes32" }]
  },
  {
    type: "function",
    name: "note",
    stateMutability: "nonpayable",
    inputs: [{ name: "parent", type: "bytes32" }, { name: "label", type: "bytes" }, { name: "data", type: "bytes" }],
    outputs: [{ name: "h", type: "bytes32" }]
  },
  {
    type: "function",
    name: "register",
    stateMutability: "nonpayable",
    inputs: [
      { name: "parent", type: "bytes32" },
      { name: "label", type: "bytes" },
      { name: "keys", type: "bytes[]" },
      { name: "values", type: "bytes[]" }
    ],
    outputs: []
  },
  {
    type: "function",
    name: "registerMany",
    stateMutability: "nonpayable",
    inputs: [
      { name: "parent", type: "bytes32" },
      { name: "labels", type: "bytes[]" },
      { name: "key", type: "bytes" },
      { name: "ip", type: "bytes" },
      { name: "port", type: "bytes" }
    ],
    outputs: []
  }
] as const

let compiled: Promise<Hex> | undefined
const compile = (): Promise<Hex> =>
  compiled ??= import("solc").then((solc) => {
    const input = {
      language: "Solidity",
      sources: { "KimapLite.sol": { content: SOURCE } },
      settings: { optimizer: { enabled: true, runs: 200 }, outputSelection: { "*": { "*": ["evm.bytecode.object"] } } }
    }
    const out = JSON.parse(solc.default.compile(JSON.stringify(input))) as {
      errors?: Array<{ severity: string; formattedMessage: string }>
      contracts: Record<string, Record<string, { evm: { bytecode: { object: string } } }>>
    }
    const errors = (out.errors ?? []).filter((e) => e.severity === "error")
    if (errors.length > 0) throw new Error(errors.map((e) => e.formattedMessage).join("\n"))
    return `0x${out.contracts["KimapLite.sol"]!["KimapLite"]!.evm.bytecode.object}` as Hex
  })

const hex = (b: Uint8Array): Hex => `0x${Buffer.from(b).toString("hex")}`
const ok = <A>(r: { _tag: "Success"; success: A } | { _tag: "Failure"; failure: unknown }): A => {
  if (r._tag === "Failure") throw new Error(String(r.failure))
  return r.success
}

export interface DirectNode {
  readonly key: string
  readonly ip: string
  readonly tcp?: number
  readonly ws?: number
}

/** A client for a deployed `KimapLite`: every write waits for its receipt. */
export const registry = (url: string) => {
  const account = privateKeyToAccount(ANVIL_KEY)
  const transport = http(url, { retryCount: 0 })
  const wallet = createWalletClient({ account, chain: foundry, transport })
  const pub = createPublicClient({ chain: foundry, transport })
  const test = createTestClient({ mode: "anvil", chain: foundry, transport })
  let address: Hex = "0x"

  const wait = (hash: Hex) => pub.waitForTransactionReceipt({ hash, pollingInterval: 50 })
  const parentOf = (name: string) => {
    const dot = name.indexOf(".")
    return dot < 0 ? { parent: namehash(""), label: name } : { parent: namehash(name.slice(dot + 1)), label: name.slice(0, dot) }
  }
  const noteEntries = (n: DirectNode | { key: string; routers: ReadonlyArray<string> }): Array<[string, Uint8Array]> => {
    const out: Array<[string, Uint8Array]> = [["~net-key", Buffer.from(n.key, "hex")]]
    if ("routers" in n) {
      out.push(["~routers", ok(encodeRouters(n.routers))])
      return out
    }
    out.push(["~ip", ok(encodeIp(n.ip))])
    if (n.tcp !== undefined) out.push(["~tcp-port", ok(encodePort(n.tcp))])
    if (n.ws !== undefined) out.push(["~ws-port", ok(encodePort(n.ws))])
    return out
  }

  return {
    pub,
    test,
    get address() {
      return address
    },
    deploy: async () => {
      const hash = await wallet.deployContract({ abi: liteAbi, bytecode: await compile() })
      const receipt = await wait(hash)
      address = receipt.contractAddress!
      return address
    },
    mint: async (name: string) => {
      const { parent, label } = parentOf(name)
      return wait(await wallet.writeContract({ address, abi: liteAbi, functionName: "mint", args: [parent, stringToHex(label)] }))
    },
    note: async (name: string, label: string, data: Uint8Array) =>
      wait(await wallet.writeContract({ address, abi: liteAbi, functionName: "note", args: [namehash(name), stringToHex(label), hex(data)] })),
    /** Mint + notes in one transaction. */
    register: async (name: string, node: DirectNode | { key: string; routers: ReadonlyArray<string> }) => {
      const { parent, label } = parentOf(name)
      const entries = noteEntries(node)
      return wait(
        await wallet.writeContract({
          address,
          abi: liteAbi,
          functionName: "register",
          args: [parent, stringToHex(label), entries.map(([k]) => stringToHex(k)), entries.map(([, v]) => hex(v))]
        })
      )
    },
    registerMany: async (zone: string, labels: ReadonlyArray<string>, node: DirectNode & { tcp: number }) =>
      wait(
        await wallet.writeContract({
          address,
          abi: liteAbi,
          functionName: "registerMany",
          args: [
            namehash(zone),
            labels.map((l) => stringToHex(l)),
            hex(Buffer.from(node.key, "hex")),
            hex(ok(encodeIp(node.ip))),
            hex(ok(encodePort(node.tcp)))
          ],
          gas: 30_000_000n
        })
      ),
    mine: (blocks = 1) => test.mine({ blocks }),
    /** Uncached (viem caches block numbers for 4 s per client by default). */
    blockNumber: () => pub.getBlockNumber({ cacheTime: 0 })
  }
}

/** A real anvil on a free port (stopped with the scope), a fresh `KimapLite` deployed on it and `os` minted. */
export const registryChain = Effect.gen(function*() {
  const port = yield* freePort
  const anvil = yield* Layer.build(Anvil.layer({ port, install: false })).pipe(Effect.orDie)
  const chain = anvil.mapUnsafe.get(Anvil.key) as Anvil["Service"]
  const reg = registry(chain.url)
  const contract = yield* Effect.promise(() => reg.deploy())
  yield* Effect.promise(() => reg.mint("os"))
  return { chain, reg, contract }
})

/** The identity port in memory; `pushes` lists every upsert/remove in order. */
export const testIdentity = () => {
  const records = new Map<string, NodeRecord>()
  const pushes: Array<{ readonly name: string; readonly record: NodeRecord | undefined }> = []
  const service = Identity.of({
    name: "test.os",
    publicKey: new Uint8Array(32),
    sign: () => new Uint8Array(64),
    verify: () => false,
    lookup: (name) => records.get(name),
    upsert: (record) => {
      records.set(record.name, record)
      pushes.push({ name: record.name, record })
    },
    remove: (name) => {
      records.delete(name)
      pushes.push({ name, record: undefined })
    },
    records: () => [...records.values()],
    subscribe: () => () => {}
  })
  return { records, pushes, layer: Layer.succeed(Identity, service) }
}

/** Polls `f` every 50 ms until it returns true, failing after `ms`. */
export const eventually = (what: string, f: () => boolean, ms = 10_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (!f()) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
      yield* Effect.sleep("50 millis")
    }
  })

export { NodeRecord }
