/** `peer <name>`: a node's identity as this node's PKI knows it (net `GetPeer`). */
import type { Address } from "kinode:process/standard@1.0.0"
import { SendFailed } from "../../../sdk/index.ts"
import { askNet, identityOf, routingText } from "../lib/node.ts"

const USAGE = "\x1b[1mUsage:\x1b[0m peer <name>"

export const peer = (_our: Address, args: string): string => {
  const name = args.trim()
  if (name === "") return `Print a node's PKI entry.\n${USAGE}`
  let answer: unknown
  try {
    answer = askNet({ GetPeer: name }, 10)
  } catch (e) {
    if (e instanceof SendFailed) return `Failed to get response from networking module (${e.kind})`
    return `Got malformed response from networking module: ${e instanceof Error ? e.message : String(e)}`
  }
  if (typeof answer !== "object" || answer === null || !("Peer" in answer)) {
    return `Got malformed response from networking module: ${JSON.stringify(answer)}`
  }
  const found = (answer as { Peer: unknown }).Peer
  if (found === null || found === undefined) return `no PKI entry found with name ${name}`
  const id = identityOf(found)
  if (id === undefined) return `Got malformed response from networking module: ${JSON.stringify(found)}`
  return `peer identity for ${id.name}:\n    networking key: ${id.networking_key}\n    routing: ${routingText(id.routing)}`
}
