import { assert, describe, it } from "@effect/vitest"
import { hexToBytes, stringToBytes } from "viem"
import { leaf, namehash, ROOT_HASH } from "../../../services/chain/index.ts"
import { decode, encode } from "../../../services/kns-indexer/Checkpoint.ts"
import type { KimapLog, KnsUpdate, Outcome } from "../../../services/kns-indexer/IndexerState.ts"
import { IndexerState, MAX_PENDING_RETRIES } from "../../../services/kns-indexer/IndexerState.ts"

const KEY = "ab".repeat(32)
const KEY2 = "cd".repeat(32)
const bh = (block: number, fork = "a") => `0x${fork.repeat(2)}${block.toString(16).padStart(62, "0")}`

let logIndex = 0
const mint = (block: number, parent: string, label: string, fork = "a"): KimapLog => ({
  _tag: "Mint",
  blockNumber: block,
  logIndex: logIndex++,
  blockHash: bh(block, fork),
  parenthash: parent === "" ? ROOT_HASH : namehash(parent),
  childhash: parent === "" ? namehash(label) : leaf(namehash(parent), label),
  label: stringToBytes(label)
})
const note = (block: number, name: string, label: string, data: Uint8Array, fork = "a"): KimapLog => ({
  _tag: "Note",
  blockNumber: block,
  logIndex: logIndex++,
  blockHash: bh(block, fork),
  parenthash: namehash(name),
  notehash: leaf(namehash(name), label),
  label: stringToBytes(label),
  data
})
const removed = (log: KimapLog): KimapLog => ({ ...log, removed: true })
const port = (p: number) => Uint8Array.of(p >> 8, p & 0xff)
const ip4 = (...b: Array<number>) => Uint8Array.from(b)
const key = (hex: string) => hexToBytes(`0x${hex}`)
const routers = (...names: Array<string>) => {
  const out = new Uint8Array(32 * names.length)
  names.forEach((n, i) => out.set(hexToBytes(namehash(n)), 32 * i))
  return out
}

const fresh = () => IndexerState.make({ chainId: 31337, contract: "0xAbC", firstBlock: 1 })

/** The zone `os` and a direct node `alice.os` (key, ip, tcp, ws), blocks 1-2. */
const directAlice = (): Array<KimapLog> => [
  mint(1, "", "os"),
  mint(2, "os", "alice"),
  note(2, "alice.os", "~net-key", key(KEY)),
  note(2, "alice.os", "~ip", ip4(127, 0, 0, 1)),
  note(2, "alice.os", "~tcp-port", port(9100)),
  note(2, "alice.os", "~ws-port", port(9000))
]

const changed = (o: Outcome) => o.changes.map((c) => [c.name, c.record === undefined ? null : c.record] as const)

describe("IndexerState: Kinode's event rules", () => {
  it("Mint names entries under known parents; zones under the root", () => {
    const s = fresh()
    const o = s.applyAll([mint(1, "", "os"), mint(1, "os", "alice"), mint(1, "alice.os", "sub")])
    assert.deepStrictEqual(o.changes, [])
    assert.strictEqual(s.nameOf(namehash("os")), "os")
    assert.strictEqual(s.nameOf(namehash("alice.os")), "alice.os")
    assert.strictEqual(s.nameOf(namehash("sub.alice.os")), "sub.alice.os")
    assert.deepStrictEqual(s.node("alice.os"), { name: "alice.os", public_key: "", ips: [], ports: {}, routers: [] })
  })

  it("a direct node becomes complete with key + ip + port and is reported once per change", () => {
    const s = fresh()
    const logs = directAlice()
    const outs = logs.map((l) => s.apply(l))
    // key, ip: incomplete; tcp port completes it; ws port changes it again
    assert.deepStrictEqual(outs.slice(0, 4).map((o) => o.changes.length), [0, 0, 0, 0])
    const alice: KnsUpdate = { name: "alice.os", public_key: KEY, ips: ["127.0.0.1"], ports: { tcp: 9100 }, routers: [] }
    assert.deepStrictEqual(changed(outs[4]!), [["alice.os", alice]])
    assert.deepStrictEqual(changed(outs[5]!), [["alice.os", { ...alice, ports: { tcp: 9100, ws: 9000 } }]])
    // the same note again changes nothing
    assert.deepStrictEqual(s.apply(note(3, "alice.os", "~ws-port", port(9000))).changes, [])
    assert.deepStrictEqual(s.completeRecords().map((r) => r.name), ["alice.os"])
  })

  it("~routers maps hashes to names, clears ips and ports; ~ip clears routers", () => {
    const s = fresh()
    s.applyAll(directAlice())
    s.applyAll([mint(3, "os", "bob"), note(3, "bob.os", "~net-key", key(KEY2))])
    const o = s.apply(note(4, "bob.os", "~routers", routers("alice.os")))
    assert.deepStrictEqual(changed(o), [["bob.os", { name: "bob.os", public_key: KEY2, ips: [], ports: {}, routers: ["alice.os"] }]])
    // switching alice to routers clears her ips/ports
    const o2 = s.apply(note(5, "alice.os", "~routers", routers("bob.os")))
    assert.deepStrictEqual(s.node("alice.os")!.ips, [])
    assert.deepStrictEqual(s.node("alice.os")!.ports, {})
    assert.deepStrictEqual(changed(o2)[0]![1]!.routers, ["bob.os"])
    // and an ~ip clears the routers: key + ip, no ports → incomplete → retracted
    const o3 = s.apply(note(6, "alice.os", "~ip", ip4(10, 0, 0, 1)))
    assert.deepStrictEqual(changed(o3), [["alice.os", null]])
    assert.deepStrictEqual(s.node("alice.os")!.routers, [])
  })

  it("unknown router hashes are dropped with a warning; IPv6 ~ip is printed compressed", () => {
    const s = fresh()
    s.applyAll([mint(1, "", "os"), mint(1, "os", "bob"), note(1, "bob.os", "~net-key", key(KEY2))])
    const o = s.apply(note(2, "bob.os", "~routers", routers("alice.os", "nobody.os")))
    assert.strictEqual(o.warnings.length, 1)
    assert.match(o.warnings[0]!, /unknown router/)
    assert.deepStrictEqual(s.node("bob.os")!.routers, [])
    const v6 = new Uint8Array(16)
    v6[15] = 1
    s.apply(note(3, "bob.os", "~ip", v6))
    assert.deepStrictEqual(s.node("bob.os")!.ips, ["::1"])
  })

  it("malformed notes and invalid labels are ignored with one warning each", () => {
    const s = fresh()
    s.applyAll(directAlice())
    const before = s.node("alice.os")
    const bad: Array<KimapLog> = [
      note(3, "alice.os", "~ip", ip4(1, 2, 3)),
      note(3, "alice.os", "~tcp-port", Uint8Array.of(1)),
      note(3, "alice.os", "~ws-port", Uint8Array.of(1, 2, 3)),
      note(3, "alice.os", "~net-key", new Uint8Array(31)),
      note(3, "alice.os", "~routers", new Uint8Array(33)),
      note(3, "alice.os", "~other", Uint8Array.of(1)),
      { ...note(3, "alice.os", "~ip", ip4(1, 2, 3, 4)), label: Uint8Array.of(0xff, 0xfe) },
      mint(3, "os", "Bad_Name"),
      mint(3, "os", "")
    ]
    const o = s.applyAll(bad)
    assert.strictEqual(o.warnings.length, bad.length)
    assert.deepStrictEqual(o.changes, [])
    assert.deepStrictEqual(s.node("alice.os"), before)
    assert.strictEqual(s.nameOf(namehash("bad_name.os")), undefined)
  })

  it("a note whose parent is unknown is parked and retried on later blocks, at most 3 rounds", () => {
    const s = fresh()
    s.apply(mint(1, "", "os"))
    // a name minted outside our view (no Mint), its notes arrive first
    const orphan = note(2, "carol.os", "~net-key", key(KEY))
    assert.deepStrictEqual(s.apply(orphan).changes, [])
    assert.strictEqual(s.pendingCount, 1)
    s.advance(2)
    assert.strictEqual(s.pendingCount, 1)
    // the name becomes known (e.g. a NodeInfo chain read), the next round applies it
    s.insertFromChain(namehash("carol.os"), { name: "carol.os", public_key: "", ips: [], ports: {}, routers: [] })
    s.advance(3)
    assert.strictEqual(s.pendingCount, 0)
    assert.strictEqual(s.node("carol.os")!.public_key, KEY)

    // never known: dropped after MAX_PENDING_RETRIES rounds with a warning
    s.apply(note(4, "dave.os", "~ip", ip4(1, 1, 1, 1)))
    const warnings: Array<string> = []
    for (let b = 4; b < 4 + MAX_PENDING_RETRIES; b++) warnings.push(...s.advance(b).warnings)
    assert.strictEqual(s.pendingCount, 0)
    assert.strictEqual(warnings.length, 1)
    assert.match(warnings[0]!, /dropped/)
  })

  it("a duplicate log (subscription + backfill overlap) is applied once", () => {
    const s = fresh()
    const logs = directAlice()
    s.applyAll(logs)
    const o = s.applyAll(logs)
    assert.deepStrictEqual(o.changes, [])
    assert.strictEqual(s.undoEntries, logs.length)
  })
})

describe("IndexerState: reorgs and confirmation depth", () => {
  it("a removed log undoes exactly that log; later logs stay applied", () => {
    const s = fresh()
    const logs = directAlice()
    s.applyAll(logs)
    const ipNote = note(3, "alice.os", "~ip", ip4(10, 0, 0, 2))
    const wsNote = note(4, "alice.os", "~ws-port", port(9999))
    s.applyAll([ipNote, wsNote])
    assert.deepStrictEqual(s.node("alice.os")!.ips, ["10.0.0.2"])
    const o = s.apply(removed(ipNote))
    assert.deepStrictEqual(s.node("alice.os")!.ips, ["127.0.0.1"])
    assert.strictEqual(s.node("alice.os")!.ports["ws"], 9999)
    assert.deepStrictEqual(changed(o), [["alice.os", { name: "alice.os", public_key: KEY, ips: ["127.0.0.1"], ports: { tcp: 9100, ws: 9999 }, routers: [] }]])
    // removing the Mint of alice takes back the name and retracts the record
    const o2 = s.apply(removed(logs[1]!))
    assert.strictEqual(s.nameOf(namehash("alice.os")), undefined)
    assert.strictEqual(s.node("alice.os"), undefined)
    assert.deepStrictEqual(changed(o2), [["alice.os", null]])
    // a removed log we never saw is reported, not applied
    assert.match(s.apply(removed(note(9, "x.os", "~ip", ip4(1, 1, 1, 1)))).warnings[0]!, /never applied/)
  })

  it("rollbackTo undoes every log above the fork point, then the new fork applies", () => {
    const s = fresh()
    s.applyAll(directAlice())
    s.advance(2)
    s.applyAll([mint(3, "os", "bob"), note(3, "bob.os", "~net-key", key(KEY2)), note(4, "bob.os", "~routers", routers("alice.os")), note(4, "alice.os", "~ip", ip4(8, 8, 8, 8))])
    s.advance(4)
    assert.isTrue(s.node("bob.os") !== undefined)
    const o = s.rollbackTo(2)
    assert.strictEqual(s.lastBlock, 2)
    assert.strictEqual(s.node("bob.os"), undefined)
    assert.deepStrictEqual(s.node("alice.os")!.ips, ["127.0.0.1"])
    assert.deepStrictEqual(
      changed(o).map(([n, r]) => [n, r === null ? null : r.ips]).sort(),
      [["alice.os", ["127.0.0.1"]], ["bob.os", null]]
    )
    // the other fork: a different log at block 3
    s.apply(note(3, "alice.os", "~tcp-port", port(7777), "b"))
    assert.strictEqual(s.node("alice.os")!.ports["tcp"], 7777)
  })

  it("an out-of-order log is inserted at its position (later logs re-applied)", () => {
    const s = fresh()
    const logs = directAlice()
    // the Mint of alice arrives after her notes of the same block: parked, then re-applied in order
    const [os, alice, ...notes] = logs
    s.applyAll([os!, ...notes])
    assert.strictEqual(s.pendingCount, 4)
    const o = s.apply(alice!)
    assert.strictEqual(s.pendingCount, 0)
    assert.deepStrictEqual(changed(o)[0]![1]!.ports, { tcp: 9100, ws: 9000 })
  })

  it("the same position with another block hash replaces the old log", () => {
    const s = fresh()
    s.applyAll(directAlice())
    const a = note(3, "alice.os", "~tcp-port", port(1111), "a")
    s.apply(a)
    s.apply({ ...note(3, "alice.os", "~tcp-port", port(2222), "b"), logIndex: a.logIndex })
    assert.strictEqual(s.node("alice.os")!.ports["tcp"], 2222)
    assert.strictEqual(s.undoEntries, directAlice().length + 1)
  })

  it("finalize keeps undo records only above head - depth; the checkpoint stops at the final block", () => {
    const s = fresh()
    s.applyAll(directAlice())
    s.advance(2)
    s.apply(note(5, "alice.os", "~ip", ip4(10, 1, 1, 1)))
    s.advance(5)
    s.finalize(5, 3) // final = 2
    assert.strictEqual(s.lastFinalBlock, 2)
    assert.strictEqual(s.undoEntries, 1)
    const p = s.persisted()
    assert.strictEqual(p.lastBlock, 2)
    // the checkpoint holds alice as of block 2, not the unfinal ~ip of block 5
    assert.deepStrictEqual(p.nodes.find((n) => n.name === "alice.os")!.ips, ["127.0.0.1"])
    assert.deepStrictEqual(s.node("alice.os")!.ips, ["10.1.1.1"])
    // a reorg below the final block cannot be undone: rolled back to the final block only
    const o = s.rollbackTo(1)
    assert.match(o.warnings[0]!, /below the final block/)
    assert.strictEqual(s.lastBlock, 2)
    assert.strictEqual(s.nameOf(namehash("alice.os")), "alice.os")
    // logs at or below the final block are replays: ignored
    assert.deepStrictEqual(s.apply(note(2, "alice.os", "~ip", ip4(9, 9, 9, 9))).changes, [])
    // finalize never passes the processed block
    s.finalize(100, 0)
    assert.strictEqual(s.lastFinalBlock, 2)
  })

  it("checkpoint bytes round-trip; a restored state resumes after its final block", () => {
    const s = fresh()
    s.applyAll(directAlice())
    s.apply(note(3, "nobody.os", "~ip", ip4(1, 1, 1, 1))) // parked
    s.advance(3)
    s.finalize(3, 0)
    const loaded = decode(encode(s.persisted()), { chainId: 31337, contract: "0xabc" })
    assert.strictEqual(loaded._tag, "Found")
    if (loaded._tag !== "Found") return
    const r = IndexerState.restore(loaded.persisted)
    assert.strictEqual(r.lastBlock, 3)
    assert.deepStrictEqual(r.node("alice.os"), s.node("alice.os"))
    assert.strictEqual(r.pendingCount, 1)
    assert.deepStrictEqual(r.completeRecords().map((n) => n.name), ["alice.os"])
    // unusable bytes and foreign checkpoints are reported, never thrown
    assert.strictEqual(decode(Uint8Array.of(0xc1, 0xff, 0x00), { chainId: 31337, contract: "0xabc" })._tag, "Unusable")
    assert.strictEqual(decode(encode({ ...s.persisted(), version: 2 } as never), { chainId: 31337, contract: "0xabc" })._tag, "Unusable")
    assert.strictEqual(decode(encode(s.persisted()), { chainId: 8453, contract: "0xabc" })._tag, "Unusable")
  })
})

describe("IndexerState: undo is exact (seeded random logs)", () => {
  // mulberry32: a small deterministic PRNG
  const rng = (seed: number) => () => {
    seed |= 0
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const NAMES = ["a.os", "b.os", "c.os", "r.os"]
  const randomLogs = (next: () => number): Array<KimapLog> => {
    const logs: Array<KimapLog> = [mint(1, "", "os")]
    let block = 1
    for (let i = 0; i < 40; i++) {
      if (next() < 0.3) block++
      const name = NAMES[Math.floor(next() * NAMES.length)]!
      const kind = Math.floor(next() * 7)
      const log = kind === 0
        ? mint(block, "os", name.split(".")[0]!)
        : kind === 1
        ? note(block, name, "~net-key", key(next() < 0.5 ? KEY : KEY2))
        : kind === 2
        ? note(block, name, "~ip", ip4(10, 0, 0, Math.floor(next() * 4)))
        : kind === 3
        ? note(block, name, "~tcp-port", port(9000 + Math.floor(next() * 3)))
        : kind === 4
        ? note(block, name, "~ws-port", next() < 0.2 ? Uint8Array.of(1) : port(8000))
        : kind === 5
        ? note(block, name, "~routers", routers(NAMES[Math.floor(next() * NAMES.length)]!))
        : note(block, "zz.os", "~ip", ip4(1, 1, 1, 1)) // parent never minted: parked
      logs.push(log)
    }
    return logs
  }
  const dump = (s: IndexerState) =>
    JSON.stringify({
      names: [...s.allNames()].sort(),
      nodes: [...s.allNodes()].map((n) => JSON.stringify(n)).sort(),
      pending: s.pendingCount
    })
  const build = (logs: ReadonlyArray<KimapLog>) => {
    const s = fresh()
    s.applyAll(logs)
    return s
  }
  /** What the identity port holds after replaying every outcome. */
  const pushed = (s: IndexerState, outcomes: ReadonlyArray<Outcome>) => {
    const pki = new Map<string, string>()
    for (const o of outcomes) for (const c of o.changes) c.record === undefined ? pki.delete(c.name) : pki.set(c.name, JSON.stringify(c.record))
    const expected = new Map(s.completeRecords().map((r) => [r.name, JSON.stringify(r)]))
    assert.deepStrictEqual([...pki.entries()].sort(), [...expected.entries()].sort())
  }

  it("removing any one log equals never having applied it; the pushed records follow", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const next = rng(seed)
      const logs = randomLogs(next)
      const k = 1 + Math.floor(next() * (logs.length - 1))
      const s = fresh()
      const outcomes = [s.applyAll(logs)]
      outcomes.push(s.apply(removed(logs[k]!)))
      assert.strictEqual(dump(s), dump(build(logs.filter((_, i) => i !== k))), `seed ${seed}, log ${k}`)
      pushed(s, outcomes)
    }
  })

  it("logs arriving in any order end in the state of the chain's order", () => {
    for (let seed = 100; seed <= 140; seed++) {
      const next = rng(seed)
      const logs = randomLogs(next)
      const shuffled = [...logs]
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1))
        ;[shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!]
      }
      const s = fresh()
      const outcomes = shuffled.map((l) => s.apply(l))
      assert.strictEqual(dump(s), dump(build(logs)), `seed ${seed}`)
      pushed(s, outcomes)
    }
  })

  it("rollbackTo(b) equals applying only the logs up to b", () => {
    for (let seed = 200; seed <= 240; seed++) {
      const next = rng(seed)
      const logs = randomLogs(next)
      const last = logs[logs.length - 1]!.blockNumber
      const b = Math.floor(next() * last)
      const s = fresh()
      const outcomes = [s.applyAll(logs), s.rollbackTo(b)]
      assert.strictEqual(dump(s), dump(build(logs.filter((l) => l.blockNumber <= b))), `seed ${seed}, block ${b}`)
      pushed(s, outcomes)
    }
  })
})
