/** Kinode identifiers as text (`node@process:package:publisher`) and as WIT records. */
import type { Address, ProcessId } from "kinode:process/standard@1.0.0"

export type { Address, ProcessId }

export class BadAddress extends Error {
  readonly _tag = "BadAddress"
  readonly text: string
  constructor(text: string) {
    super(`not an address: ${text}`)
    this.text = text
  }
}

export const processId = (text: string): ProcessId => {
  const parts = text.split(":")
  if (parts.length !== 3 || parts.some((p) => p.length === 0)) throw new BadAddress(text)
  return { processName: parts[0]!, packageName: parts[1]!, publisherNode: parts[2]! }
}

/** `node@process:package:publisher`. */
export const address = (text: string): Address => {
  const at = text.indexOf("@")
  if (at <= 0) throw new BadAddress(text)
  return { node: text.slice(0, at), process: processId(text.slice(at + 1)) }
}

export const processIdText = (p: ProcessId): string => `${p.processName}:${p.packageName}:${p.publisherNode}`
export const addressText = (a: Address): string => `${a.node}@${processIdText(a.process)}`

/** Our address as `init` gets it (`node@process:package:publisher`) or as `our()` returns it. */
export type Our = Address | string

const ourAddress = (our: Our): Address => (typeof our === "string" ? address(our) : our)

/**
 * `process:package:publisher` on our node: `local(our, "counter:counter:sys")`, with
 * `our` as `init(our)` got it or `our()`. Throws `BadAddress`.
 */
export const local = (our: Our, process: string): Address => ({ node: ourAddress(our).node, process: processId(process) })

/** The process `processName` of our own package, on our node: `sibling(our, "worker")`. Throws `BadAddress`. */
export const sibling = (our: Our, processName: string): Address => {
  const a = ourAddress(our)
  return { node: a.node, process: { ...a.process, processName } }
}
