import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import { AddressFromString, checkKimapSafe, parseAddress, parsePackageId, parseProcessId, ProcessIdFromString } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"

const reason = (r: Result.Result<unknown, { reason: string }>) => (Result.isFailure(r) ? r.failure.reason : "ok")

describe("identifiers", () => {
  it("parse and print round-trip", () => {
    for (const s of ["alice.os@chess:chess:sys", "our@echo:test:sys", "a@b:c:d"]) {
      assert.strictEqual(Result.getOrThrow(parseAddress(s)).toString(), s)
    }
    assert.strictEqual(Result.getOrThrow(parseProcessId("chess:chess:sys")).toString(), "chess:chess:sys")
    assert.strictEqual(Result.getOrThrow(parsePackageId("chess:sys")).toString(), "chess:sys")
  })

  it("rejects malformed strings with the reason", () => {
    assert.strictEqual(reason(parseProcessId("a:b")), "MissingField")
    assert.strictEqual(reason(parseProcessId("a::c")), "MissingField")
    assert.strictEqual(reason(parseProcessId("a:b:c:d")), "TooManyColons")
    assert.strictEqual(reason(parsePackageId("a:b:c")), "TooManyColons")
    assert.strictEqual(reason(parseAddress("chess:chess:sys")), "MissingNodeId")
    assert.strictEqual(reason(parseAddress("@chess:chess:sys")), "MissingNodeId")
    assert.strictEqual(reason(parseAddress("a@b@c:d:e")), "TooManyAts")
    assert.strictEqual(reason(parseAddress("a@b:c")), "MissingField")
  })

  it("checks Kimap safety separately from parsing", () => {
    const unsafe = Result.getOrThrow(parseProcessId("Bad_Name:pkg:sys"))
    assert.strictEqual(reason(checkKimapSafe(unsafe)), "ProcessNameNotKimapSafe")
    assert.strictEqual(reason(checkKimapSafe(Result.getOrThrow(parseProcessId("ok:Pkg:sys")))), "PackageNameNotKimapSafe")
    assert.strictEqual(reason(checkKimapSafe(Result.getOrThrow(parseProcessId("ok:pkg:s_ys")))), "PublisherNodeNotKimapSafe")
    assert.isTrue(Result.isSuccess(checkKimapSafe(Result.getOrThrow(parseProcessId("ok-1:pkg:a.os")))))
  })

  it("string schemas decode and encode", () => {
    const a = Schema.decodeUnknownSync(AddressFromString)("n.os@p:q:r")
    assert.strictEqual(a.process.packageName, "q")
    assert.strictEqual(Schema.encodeSync(AddressFromString)(a), "n.os@p:q:r")
    assert.throws(() => Schema.decodeUnknownSync(ProcessIdFromString)("p:q"))
    assert.throws(() => Schema.decodeUnknownSync(AddressFromString)(42))
  })
})

describe("u64-exact JSON", () => {
  it("keeps integers above 2^53 digit for digit", () => {
    const text = "{\"tx_id\":18446744073709551615,\"small\":7,\"f\":1.5}"
    const parsed = Result.getOrThrow(Json.parse(text)) as { tx_id: bigint; small: number }
    assert.strictEqual(parsed.tx_id, 18446744073709551615n)
    assert.strictEqual(parsed.small, 7)
    assert.strictEqual(Json.stringify(parsed), text)
  })

  it("U64 rejects negatives and values past 2^64", () => {
    assert.strictEqual(Schema.decodeUnknownSync(Json.U64)(9007199254740993n), 9007199254740993n)
    assert.throws(() => Schema.decodeUnknownSync(Json.U64)(-1))
    assert.throws(() => Schema.decodeUnknownSync(Json.U64)(2n ** 64n))
  })

  it("reports malformed JSON as a typed error", () => {
    assert.strictEqual(Json.parse("{nope").pipe(Result.isFailure), true)
    assert.strictEqual(Json.parseBytes(new Uint8Array([0xff, 0xfe])).pipe(Result.isFailure), true)
  })
})
