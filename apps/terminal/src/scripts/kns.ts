/** `kns <name>`: a node's record through the KNS indexer (kinode-ts's `kns-indexer:kns-indexer:sys`). */
import type { Address } from "kinode:process/standard@1.0.0"
import { SendFailed } from "../../../sdk/index.ts"
import { askJson } from "../lib/node.ts"

const USAGE = "\x1b[1mUsage:\x1b[0m kns <name>"
const INDEXER = "kns-indexer:kns-indexer:sys"

interface Record_ {
  readonly name: string
  readonly public_key: string
  readonly ips: ReadonlyArray<string>
  readonly ports: ReadonlyArray<readonly [string, number]> | Readonly<Record<string, number>>
  readonly routers: ReadonlyArray<string>
}

export const kns = (_our: Address, args: string): string => {
  const name = args.trim()
  if (name === "") return `Look a node up through the KNS indexer.\n${USAGE}`
  let answer: unknown
  try {
    answer = askJson(INDEXER, { NodeInfo: { name, block: 0 } }, 15)
  } catch (e) {
    if (e instanceof SendFailed) return `kns: the indexer did not answer (${e.kind})`
    throw e
  }
  if (typeof answer !== "object" || answer === null || !("NodeInfo" in answer)) return `kns: unreadable answer ${JSON.stringify(answer)}`
  const r = (answer as { NodeInfo: Record_ | null }).NodeInfo
  if (r === null) return `kns: ${name} is not a known node`
  const ports = Array.isArray(r.ports) ? r.ports as ReadonlyArray<readonly [string, number]> : Object.entries(r.ports)
  const reach = r.routers.length > 0
    ? `indirect, routers ${r.routers.join(", ")}`
    : `direct, ${r.ips.join(", ")} ${ports.map(([p, n]) => `${p} ${n}`).join(", ")}`
  return `${r.name}\nnetworking key 0x${r.public_key.replace(/^0x/, "")}\n${reach}`
}
