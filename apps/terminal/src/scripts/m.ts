/**
 * `m <address> <body> [-a <seconds>]`: sends `<body>` as a request to `<address>`
 * (`our` as the node is this node), with every capability we hold that the target
 * issued. With `-a` (anywhere on the line) it waits that long and prints the response
 * body; without, it waits 5 s and prints nothing. A refusal (no such process, no
 * capability to message it) is printed at once, with its reason.
 */
import type { Address } from "kinode:process/standard@1.0.0"
import { address, addressText, BadAddress, call, print, SendFailed, text } from "../../../sdk/index.ts"
import * as wit from "kinode:process/standard@1.0.0"
import { parse, tokens } from "../lib/args.ts"
import { whyFailed } from "../lib/node.ts"

const USAGE = "\x1b[1mUsage:\x1b[0m m <target> <body> [-a <await_time>]"
const SILENT_WAIT = 5

export const m = (our: Address, args: string): string => {
  if (args.trim() === "") return `Send a request to a process.\n${USAGE}`
  const parsed = parse(tokens(args), [{ short: "a", long: "await", value: true }])
  if (typeof parsed === "string") return `Failed to parse args: ${parsed}.\n${USAGE}`
  const [targetText, body, extra] = parsed.positionals
  if (targetText === undefined) return `No target given.\n${USAGE}`
  if (body === undefined) return `No body given.\n${USAGE}`
  if (extra !== undefined) {
    return `Failed to parse args: unexpected argument '${extra}' (a body with spaces goes in single quotes: '...').\n${USAGE}`
  }
  const awaitText = parsed.options.get("await")
  if (awaitText !== undefined && !/^\d+$/.test(awaitText)) {
    return `Failed to parse args: invalid value '${awaitText}' for '--await <await>': not a number of seconds.\n${USAGE}`
  }
  let target: Address
  try {
    target = address(targetText)
  } catch (e) {
    if (e instanceof BadAddress) return `Invalid address: "${targetText}"\n${USAGE}`
    throw e
  }
  if (target.node === "our") target = { node: our.node, process: target.process }
  const who = addressText(target)
  const capabilities = wit.ourCapabilities().filter((c) => addressText(c.issuer) === who)
  const seconds = awaitText === undefined ? SILENT_WAIT : Number(awaitText)
  if (awaitText !== undefined) print(`Awaiting response for ${seconds}s`)
  const started = Date.now()
  try {
    const { response } = call(target, body, { timeout: seconds, capabilities })
    return awaitText === undefined ? "" : text(response.body)
  } catch (e) {
    if (!(e instanceof SendFailed)) throw e
    const why = whyFailed(e, target, seconds, Date.now() - started)
    if (why.kind === "refused") return `refused: ${why.text}`
    if (awaitText === undefined) return ""
    return why.kind === "offline"
      ? "Failed to send message because the target is offline"
      : "Target did not send response in time, try increasing the await time"
  }
}
