/** `net-diagnostics`: the network's own report (net `GetDiagnostics`). */
import type { Address } from "kinode:process/standard@1.0.0"
import { SendFailed } from "../../../sdk/index.ts"
import { askNet } from "../lib/node.ts"

export const netDiagnostics = (_our: Address, _args: string): string => {
  let answer: unknown
  try {
    answer = askNet("GetDiagnostics", 60)
  } catch (e) {
    if (e instanceof SendFailed) return `Failed to get diagnostics from networking module (${e.kind})`
    return `Got malformed response from networking module: ${e instanceof Error ? e.message : String(e)}`
  }
  const report = typeof answer === "object" && answer !== null ? (answer as { Diagnostics?: unknown }).Diagnostics : undefined
  return typeof report === "string" ? report : `Got malformed response from networking module: ${JSON.stringify(answer)}`
}
