/**
 * Process state kept by the node (`state:distro:sys`) across restarts. Values are
 * stored as JSON text; `set` traps if the node cannot store it (Kinode semantics).
 */
import * as wit from "kinode:process/standard@1.0.0"
import { json, toBytes } from "./message.ts"

/** The stored value, or `fallback` when there is none. */
export const getJson = <T>(fallback: T): T => {
  const bytes = wit.getState()
  return bytes == null ? fallback : json<T>(bytes)
}

export const setJson = (value: unknown): void => wit.setState(toBytes({ json: value }))

export const clear = (): void => wit.clearState()
