/**
 * `alias <name> <process_id>` sets an alias, `alias <name>` removes one: the terminal
 * keeps them (in its state) and answers what it did, which is printed.
 */
import type { Address } from "kinode:process/standard@1.0.0"
import { callJson, SendFailed, sibling } from "../../../sdk/index.ts"

const USAGE = "\x1b[1mUsage:\x1b[0m alias <alias_name> [<process_id>]   (without a process id: remove the alias)"

export const alias = (our: Address, args: string): string => {
  if (args === "") return `Change alias for a process.\n${USAGE}`
  const space = args.indexOf(" ")
  const name = space < 0 ? args : args.slice(0, space)
  const process = space < 0 ? "" : args.slice(space + 1).trim()
  if (name === "") return `No alias given.\n${USAGE}`
  if (process !== "") {
    const parts = process.split(":")
    if (parts.length !== 3 || parts.some((p) => p === "")) return `Invalid process ID.\n${USAGE}`
  }
  let answer: unknown
  try {
    answer = callJson(sibling(our, "terminal"), { json: { EditAlias: { alias: name, process: process === "" ? null : process } } }, { timeout: 5 })
  } catch (e) {
    if (e instanceof SendFailed) return `alias: the terminal did not answer (${e.kind})`
    throw e
  }
  const result = typeof answer === "object" && answer !== null ? (answer as { EditAlias?: unknown }).EditAlias : undefined
  switch (result) {
    case "AliasSet":
      return `alias ${name} set for ${process}`
    case "AliasRemoved":
      return `alias ${name} removed`
    case "AliasNotFound":
      return `alias ${name} not found`
    case "InvalidProcessId":
      return `alias ${name}: ${process} is not a process id`
    default:
      return `alias: unexpected answer from the terminal: ${JSON.stringify(answer)}`
  }
}
