/**
 * `kfetch`: this node at a glance (Kinode's neofetch): name, networking key, routing,
 * eth providers and subscriptions (when `eth:distro:sys` answers), process count.
 */
import type { Address } from "kinode:process/standard@1.0.0"
import { SendFailed } from "../../../sdk/index.ts"
import { askJson, askNet, ETH, identityOf, processMap, routingText } from "../lib/node.ts"

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

const failure = (what: string, e: unknown): string =>
  `${what}: ${e instanceof SendFailed ? `no answer (${e.kind})` : e instanceof Error ? e.message : String(e)}`

const ethLines = (): Array<string> => {
  let providers: unknown
  let state: unknown
  try {
    providers = askJson(ETH, "GetProviders", 10)
    state = askJson(ETH, "GetState", 10)
  } catch (e) {
    return [failure("eth", e)]
  }
  const list = isRecord(providers) && Array.isArray(providers["Providers"]) ? providers["Providers"] as Array<unknown> : undefined
  const chains = [...new Set((list ?? []).map((p) => (isRecord(p) ? String(p["chain_id"]) : "?")))]
  const s = isRecord(state) && isRecord(state["State"]) ? state["State"] : undefined
  const subs = s !== undefined && isRecord(s["active_subscriptions"])
    ? Object.values(s["active_subscriptions"]).reduce<number>((n, v) => n + (isRecord(v) ? Object.keys(v).length : 0), 0)
    : undefined
  const outstanding = s !== undefined && Array.isArray(s["outstanding_requests"]) ? s["outstanding_requests"].length : undefined
  return [
    list === undefined ? `eth providers: unexpected answer ${JSON.stringify(providers).slice(0, 100)}` : `${list.length} eth providers for chain IDs ${chains.join(", ") || "(none)"}`,
    `${subs ?? "?"} active eth subscriptions`,
    `${outstanding ?? "?"} outstanding eth requests`
  ]
}

export const kfetch = (our: Address, _args: string): string => {
  const info: Array<string> = [our.node, "kinode-ts (Kinode-compatible node)"]
  try {
    const answer = askNet({ GetPeer: our.node }, 10)
    const id = identityOf(isRecord(answer) ? answer["Peer"] : undefined)
    if (id === undefined) info.push(`net: unexpected answer ${JSON.stringify(answer).slice(0, 100)}`)
    else info.push(`pubkey: ${id.networking_key}`, `routing: ${routingText(id.routing)}`)
  } catch (e) {
    info.push(failure("net", e))
  }
  info.push("", ...ethLines(), "")
  try {
    info.push(`${Object.keys(processMap(10)).length} running processes`)
  } catch (e) {
    info.push(failure("kernel", e))
  }
  const bird = [
    "    .`",
    "`@@,,                     ,*",
    "  `@%@@@,            ,~-##`",
    "    ~@@#@%#@@,      #####",
    "      ~-%######@@@, #####",
    "         -%%#######@#####,",
    "           ~^^%##########@",
    "              >^#########@",
    "                `>#######`",
    "               .>######%",
    "              /###%^#%",
    "            /##%@#  `",
    "         ./######`",
    "       /.^`.#^#^`",
    "      `   ,#`#`#,"
  ]
  const rows = Math.max(bird.length, info.length)
  const out: Array<string> = []
  for (let i = 0; i < rows; i++) out.push(`${(bird[i] ?? "").padEnd(30)} ${info[i] ?? ""}`.trimEnd())
  return `\n${out.join("\n")}`
}
