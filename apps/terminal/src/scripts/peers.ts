/** `peers`: the nodes this one holds connections with (net `GetPeers`). */
import type { Address } from "kinode:process/standard@1.0.0"
import { SendFailed } from "../../../sdk/index.ts"
import { askNet, identityOf, routingText } from "../lib/node.ts"

export const peers = (_our: Address, _args: string): string => {
  let answer: unknown
  try {
    answer = askNet("GetPeers", 10)
  } catch (e) {
    if (e instanceof SendFailed) return `Failed to get peers from networking module (${e.kind})`
    return `Got malformed response from networking module: ${e instanceof Error ? e.message : String(e)}`
  }
  const list = typeof answer === "object" && answer !== null ? (answer as { Peers?: unknown }).Peers : undefined
  if (!Array.isArray(list)) return `Got malformed response from networking module: ${JSON.stringify(answer)}`
  if (list.length === 0) return "identities of current connected peers: none"
  const lines = list.map((p) => {
    const id = identityOf(p)
    return id === undefined ? `  ${JSON.stringify(p)}` : `${id.name}:\n    networking key: ${id.networking_key}\n    routing: ${routingText(id.routing)}`
  })
  return `identities of current connected peers (${list.length}):\n${lines.join("\n")}`
}
