/** `kill <process_id>`: stops a process at once (its on-exit is not run), through the kernel. */
import type { Address } from "kinode:process/standard@1.0.0"
import { SendFailed } from "../../../sdk/index.ts"
import { askJson, KERNEL, processEntry } from "../lib/node.ts"

const USAGE = "\x1b[1mUsage:\x1b[0m kill <process_id>"

export const kill = (_our: Address, args: string): string => {
  const id = args.trim()
  const parts = id.split(":")
  if (parts.length !== 3 || parts.some((p) => p === "")) return `Invalid process ID.\n${USAGE}`
  // The kernel does not answer a KillProcess for an unknown id: ask first, so that is said at once.
  if (processEntry(id, 5) === null) return `kill: no process ${id}`
  let answer: unknown
  try {
    answer = askJson(KERNEL, { KillProcess: id }, 60)
  } catch (e) {
    if (e instanceof SendFailed) return `failed to get response from kernel (${e.kind})`
    throw e
  }
  const killed = typeof answer === "object" && answer !== null ? (answer as { KilledProcess?: unknown }).KilledProcess : undefined
  return typeof killed === "string" ? `killed process ${killed}` : `failed to parse kernel response: ${JSON.stringify(answer)}`
}
