/**
 * Body parsing on the hot path. `src/Json.ts`'s BigInt-safe `parse` runs a reviver on
 * every value, which made it a third of a kv `Get`'s cost; an integer above 2^53 needs
 * at least 16 digits, so bodies without a 16-digit run parse with plain `JSON.parse`
 * (identical result) and only the rest take the BigInt-safe path.
 */
import { Result } from "effect"
import * as Json from "../../src/Json.ts"

const utf8 = new TextDecoder("utf-8", { fatal: true })
const longInteger = /\d{16}/

export const parseBody = (bytes: Uint8Array): Result.Result<unknown, Json.JsonParseError> => {
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return Result.fail(new Json.JsonParseError({ reason: "body is not valid UTF-8" }))
  }
  if (longInteger.test(text)) return Json.parse(text)
  try {
    return Result.succeed(JSON.parse(text))
  } catch (e) {
    return Result.fail(new Json.JsonParseError({ reason: e instanceof Error ? e.message : String(e) }))
  }
}

const encoder = new TextEncoder()
/** Bytes of a JSON body without bigints (`JSON.stringify`, no replacer). */
export const plainBytes = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value))
