/** `hi <node> <message>`: a text to another node's net, printed there; it answers `ack`. */
import type { Address } from "kinode:process/standard@1.0.0"
import { call, processId, SendFailed, text } from "../../../sdk/index.ts"
import { NET } from "../lib/node.ts"

const USAGE = "\x1b[1mUsage:\x1b[0m hi <node_id> <message>"
const SECONDS = 10

export const hi = (our: Address, args: string): string => {
  if (args === "") return `Send a text message to another node's terminal.\n${USAGE}`
  const space = args.indexOf(" ")
  if (space < 0) return `Not enough arguments given.\n${USAGE}`
  const given = args.slice(0, space)
  const node = given === "our" ? our.node : given
  try {
    const { response } = call({ node, process: processId(NET) }, args.slice(space + 1), { timeout: SECONDS })
    return `response from ${node}: ${text(response.body)}`
  } catch (e) {
    if (!(e instanceof SendFailed)) throw e
    return e.kind === "offline" ? `${node} is offline or does not exist` : `message to ${node} timed out (no answer within ${SECONDS}s)`
  }
}
