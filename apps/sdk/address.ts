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

/** Another process of the same node. */
export const local = (our: Address, process: string): Address => ({ node: our.node, process: processId(process) })

/** `process:package:publisher` of a sibling in our own package. */
export const sibling = (our: Address, processName: string): Address => ({
  node: our.node,
  process: { ...our.process, processName }
})
