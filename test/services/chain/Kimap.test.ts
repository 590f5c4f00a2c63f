import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { bytesToHex, hexToBytes, keccak256, stringToBytes } from "viem"
import {
  contractLabelError,
  decodeIp,
  decodeNetKey,
  decodePort,
  decodeRouters,
  encodeIp,
  encodeNetKey,
  encodePort,
  encodeRouters,
  eventTopics,
  FACT_TOPIC,
  GENE_TOPIC,
  KNS_NOTE_LABEL_HASHES,
  KNS_NOTE_LABELS,
  labelhash,
  leaf,
  MINT_TOPIC,
  namehash,
  NOTE_TOPIC,
  ROOT_HASH,
  TRANSFER_TOPIC,
  validFact,
  validName,
  validNote,
  ZERO_TOPIC
} from "../../../services/chain/index.ts"

const ok = <A, E>(r: Result.Result<A, E>): A => {
  if (Result.isFailure(r)) assert.fail(`expected success, got ${String(r.failure)}`)
  return (r as Result.Success<A, E>).success
}
const failTag = <A, E extends { readonly _tag: string }>(r: Result.Result<A, E>): string => {
  if (Result.isSuccess(r)) assert.fail("expected failure")
  return (r as Result.Failure<A, E>).failure._tag
}

describe("Kimap facts", () => {
  it("namehash matches the verified vectors (§1.2)", () => {
    const vectors: ReadonlyArray<readonly [string, string]> = [
      ["os", "0xdeeac81ae11b64e7cab86d089c306e5d223552a630f02633ce170d2786ff1bbd"],
      ["dev", "0x137d9e4cc0479164d40577620cb3b41b083c6e8dbf58f8523be76d207d6fd8ea"],
      ["kino", "0xa97b78a60e0b2cabb62703473679a95c9b516efee10a3a77e064de823e201c84"],
      ["fake.dev", "0xab5fa7fb3fb1a074e0e4cafe7c9dd070c7ca078fab9ce533828eaa89de850115"],
      ["~net-key.fake.dev", "0x838a181dcdc035c544978f149af4a836e51e0bfb04c62a84eb0352bfa1a5f313"],
      ["default-router-1.kino", "0xf62e57a8845cf65a6157583f06e18482539671d4f78bd378c639fdc5101b1653"]
    ]
    for (const [name, hash] of vectors) assert.strictEqual(namehash(name), hash, name)
    assert.strictEqual(namehash(""), ROOT_HASH)
    assert.strictEqual(ROOT_HASH, `0x${"0".repeat(64)}`)
    assert.strictEqual(leaf(namehash("os"), "alice"), namehash("alice.os"))
    assert.strictEqual(labelhash("os"), keccak256(stringToBytes("os")))
  })

  it("event topics equal the doc's constants and the ABI's selectors (§1.3)", () => {
    assert.strictEqual(MINT_TOPIC, "0xb59dae5eda69178326b6517bb1aa33e208bf2ac347e30d3a5daf0ecb6249f7b1")
    assert.strictEqual(NOTE_TOPIC, "0xe40d9f1ec78dfc3c5a94c3edae28058ba092a8f65ce8a199731840a3d20f82f4")
    assert.deepStrictEqual(eventTopics(), {
      Mint: MINT_TOPIC,
      Note: NOTE_TOPIC,
      Fact: FACT_TOPIC,
      Gene: GENE_TOPIC,
      Zero: ZERO_TOPIC,
      Transfer: TRANSFER_TOPIC
    })
  })

  it("KNS note labels and their hashes (§1.3)", () => {
    assert.deepStrictEqual([...KNS_NOTE_LABELS], ["~net-key", "~ip", "~tcp-port", "~ws-port", "~routers"])
    assert.strictEqual(KNS_NOTE_LABEL_HASHES["~net-key"], "0xa5373a61425ed8131f531e016a0201b9a2ede9433815077c8afab1eaa138c07c")
    assert.strictEqual(KNS_NOTE_LABEL_HASHES["~routers"], "0x751ddce9620f1d08e231830adaabfa32644d6a586cbd4b9f29c43557dc24530a")
    for (const l of KNS_NOTE_LABELS) assert.strictEqual(labelhash(l), KNS_NOTE_LABEL_HASHES[l], l)
  })

  it("label validators follow process_lib; contractLabelError follows the contract", () => {
    assert.isTrue(validName("alice-1"))
    for (const bad of ["", "Alice", "a.b", "a_b", "~a", "ä"]) assert.isFalse(validName(bad), bad)
    assert.isTrue(validName("a".repeat(100))) // no upper length off-chain
    assert.isTrue(validNote("~net-key"))
    for (const bad of ["~", "net-key", "~Net", "!x", ""]) assert.isFalse(validNote(bad), bad)
    assert.isTrue(validFact("!x"))
    assert.isFalse(validFact("~x"))
    assert.strictEqual(contractLabelError("name", "a".repeat(63)), undefined)
    assert.strictEqual(contractLabelError("name", "a".repeat(64)), "LabelTooLong")
    assert.strictEqual(contractLabelError("name", ""), "LabelTooShort")
    assert.strictEqual(contractLabelError("name", "A"), "InvalidLabelCharacter")
    assert.strictEqual(contractLabelError("note", "x"), "NoteMustBeginWithTilde")
    assert.strictEqual(contractLabelError("note", "~"), "LabelTooShort")
    assert.strictEqual(contractLabelError("note", "~" + "a".repeat(63)), "LabelTooLong")
    assert.strictEqual(contractLabelError("fact", "x"), "FactMustBeginWithBang")
  })

  it("ip codec: IPv4 → 4 bytes, IPv6 → 16, round trip; bad text is a typed failure", () => {
    assert.strictEqual(bytesToHex(ok(encodeIp("127.0.0.1"))), "0x7f000001")
    assert.strictEqual(ok(encodeIp("::1")).length, 16)
    assert.strictEqual(bytesToHex(ok(encodeIp("2001:db8::1"))), "0x20010db8000000000000000000000001")
    for (const ip of ["127.0.0.1", "10.1.2.3", "::1", "2001:db8::1", "fe80::1:2", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "::"]) {
      assert.strictEqual(ok(decodeIp(ok(encodeIp(ip)))), ip, ip)
    }
    assert.strictEqual(ok(decodeIp("0x7f000001")), "127.0.0.1")
    for (const bad of ["", "1.2.3", "256.1.1.1", "01.2.3.4", "a.b.c.d", "1::2::3", "1:2:3:4:5:6:7:8:9", "localhost"]) {
      assert.strictEqual(failTag(encodeIp(bad)), "InvalidIp", bad)
    }
    assert.strictEqual(failTag(decodeIp(new Uint8Array(3))), "InvalidNoteBytes")
  })

  it("port codec: 2 bytes big-endian", () => {
    assert.strictEqual(bytesToHex(ok(encodePort(9100))), "0x238c")
    assert.strictEqual(ok(decodePort(ok(encodePort(65535)))), 65535)
    assert.strictEqual(ok(decodePort("0x0000")), 0)
    for (const bad of [-1, 65536, 1.5, Number.NaN]) assert.strictEqual(failTag(encodePort(bad)), "InvalidPort")
    assert.strictEqual(failTag(decodePort("0x01")), "InvalidNoteBytes")
  })

  it("routers codec: concatenated namehashes", () => {
    const bytes = ok(encodeRouters(["router-a.os", "default-router-1.kino"]))
    assert.strictEqual(bytes.length, 64)
    assert.deepStrictEqual(ok(decodeRouters(bytes)), [namehash("router-a.os"), namehash("default-router-1.kino")])
    assert.deepStrictEqual(ok(decodeRouters(new Uint8Array(0))), [])
    assert.strictEqual(failTag(decodeRouters(new Uint8Array(33))), "InvalidNoteBytes")
    assert.strictEqual(failTag(encodeRouters(["Bad.os"])), "InvalidName")
  })

  it("net-key codec: exactly 32 bytes", () => {
    const hex = `0x${"ab".repeat(32)}` as const
    assert.strictEqual(bytesToHex(ok(encodeNetKey(hex))), hex)
    assert.strictEqual(bytesToHex(ok(encodeNetKey("ab".repeat(32)))), hex)
    assert.strictEqual(ok(decodeNetKey(hexToBytes(hex))), hex)
    assert.strictEqual(failTag(encodeNetKey("abcd")), "InvalidNoteBytes")
    assert.strictEqual(failTag(decodeNetKey(new Uint8Array(31))), "InvalidNoteBytes")
  })
})
