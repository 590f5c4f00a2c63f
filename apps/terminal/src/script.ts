/**
 * A script's life (Kinode's `script!`): take the first request, run the named script on
 * its body (the arguments, lossy UTF-8), answer with the result if a response is
 * expected, else print it when it is not empty; then exit (the kernel removes the
 * process: the terminal starts scripts with on-exit `None`).
 */
import type { Address } from "kinode:process/standard@1.0.0"
import { addressText, awaitMessage, print, respond, text } from "../../sdk/index.ts"
import { SCRIPTS } from "./scripts/index.ts"

/** The request metadata naming the script to run: `{"script": "<name>"}`. */
export const scriptMetadata = (name: string): string => JSON.stringify({ script: name })

const scriptOf = (metadata: string | undefined): string | undefined => {
  if (metadata === undefined) return undefined
  try {
    const v = JSON.parse(metadata) as unknown
    return typeof v === "object" && v !== null && typeof (v as { script?: unknown }).script === "string"
      ? (v as { script: string }).script
      : undefined
  } catch {
    return undefined
  }
}

export const runScript = (self: Address): void => {
  const m = awaitMessage()
  if (m.kind !== "request") return
  const from = m.source
  const fromTerminal = from.node === self.node && from.process.processName === "terminal" &&
    from.process.packageName === self.process.packageName && from.process.publisherNode === self.process.publisherNode
  const name = scriptOf(m.request.metadata ?? undefined)
  let out: string
  if (!fromTerminal || name === undefined) {
    out = `${addressText(self)} is a script of the terminal package; it runs only when the terminal starts it (from ${addressText(from)}, script ${name ?? "not named"})`
  } else {
    const script = SCRIPTS[name]
    if (script === undefined) out = `no script ${name} in this package`
    else {
      try {
        out = script(self, text(m.request.body))
      } catch (e) {
        out = `${name} failed: ${e instanceof Error ? e.message : String(e)}`
      }
    }
  }
  if (m.request.expectsResponse != null) respond(out)
  else if (out !== "") print(out)
}
