/**
 * JSON that keeps u64s exact.
 *
 * Kinode's message ids, kv/sqlite `tx_id`s and random process names are random
 * u64s; `JSON.parse` would round anything above 2^53. `parse` turns every integer
 * literal outside the safe range into a `bigint`, and `stringify` prints bigints as
 * bare JSON numbers, so such values round-trip digit for digit.
 */
import { Result, Schema, SchemaGetter } from "effect"

export class JsonParseError extends Schema.TaggedError<JsonParseError>()("JsonParseError", {
  reason: Schema.String
}) {}

type ReviverContext = { readonly source?: string }

const reviveBigInts = function(this: unknown, _key: string, value: unknown, context?: ReviverContext) {
  if (typeof value === "number" && !Number.isSafeInteger(value) && context?.source !== undefined) {
    const source = context.source
    if (/^-?\d+$/.test(source)) return BigInt(source)
  }
  return value
}

/** 16 digits in a row: the shortest text that can hold an integer beyond 2^53. */
const mayHoldBigInt = /\d{16}/

/** Parses JSON text; unsafe integers come back as `bigint`. */
export const parse = (text: string): Result.Result<unknown, JsonParseError> => {
  try {
    // The reviver costs a call per value; skip it when no number could be unsafe.
    if (!mayHoldBigInt.test(text)) return Result.succeed(JSON.parse(text))
    return Result.succeed(JSON.parse(text, reviveBigInts as (key: string, value: unknown) => unknown))
  } catch (e) {
    return Result.fail(new JsonParseError({ reason: e instanceof Error ? e.message : String(e) }))
  }
}

const rawJson = (JSON as unknown as { rawJSON: (text: string) => unknown }).rawJSON

const replaceBigInts = (_key: string, value: unknown) => typeof value === "bigint" ? rawJson(value.toString()) : value

/** Prints JSON; bigints become bare integer literals. */
export const stringify = (value: unknown): string => JSON.stringify(value, replaceBigInts)

const encoder = new TextEncoder()


/** Prints JSON as UTF-8 bytes (a message body). */
export const toBytes = (value: unknown): Uint8Array => encoder.encode(stringify(value))

/** A u64 from JSON: a safe number or a bigint, in range. */
export const U64 = Schema.Union([Schema.BigInt, Schema.Int]).pipe(
  Schema.decodeTo(Schema.BigInt, {
    decode: SchemaGetter.transform((n: bigint | number) => BigInt(n)),
    encode: SchemaGetter.transform((n: bigint) => n as bigint | number)
  }),
  Schema.check(Schema.makeFilter((n: bigint) => n >= 0n && n < 2n ** 64n ? undefined : "expected a u64"))
)

const strictUtf8 = new TextDecoder("utf-8", { fatal: true })
const longInteger = /\d{16}/

/**
 * `parseBytes` for request bodies on hot paths. `parse`'s BigInt-safe reviver runs on
 * every value, which made it a third of a kv `Get`'s cost; an integer above 2^53 needs
 * at least 16 digits, so bodies without a 16-digit run parse with plain `JSON.parse`
 * (identical result) and only the rest take the BigInt-safe path.
 */
export const parseBody = (bytes: Uint8Array): Result.Result<unknown, JsonParseError> => {
  let text: string
  try {
    text = strictUtf8.decode(bytes)
  } catch {
    return Result.fail(new JsonParseError({ reason: "body is not valid UTF-8" }))
  }
  if (longInteger.test(text)) return parse(text)
  try {
    return Result.succeed(JSON.parse(text))
  } catch (e) {
    return Result.fail(new JsonParseError({ reason: e instanceof Error ? e.message : String(e) }))
  }
}

/** Parses JSON from UTF-8 bytes (a message body); integers above 2^53 come back as bigints. */
export const parseBytes = parseBody
