/** kv's body helpers: the fast body parse (shared, in `src/Json.ts`) and plain JSON bytes. */
export { parseBody } from "../../src/Json.ts"

const encoder = new TextEncoder()
/** Bytes of a JSON body without bigints (`JSON.stringify`, no replacer). */
export const plainBytes = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value))
