/**
 * echo: answers every request with its own body and blob. It prints nothing per
 * message: at verbosity 3 the node prints every message it routes (`v 3`).
 */
import * as wit from "kinode:process/standard@1.0.0"
import { awaitMessage, print, respond } from "../../sdk/index.ts"

export function init(our: string): void {
  print(`echo: running as ${our}`, 1)
  while (true) {
    const m = awaitMessage()
    if (m.kind !== "request") continue
    respond(m.request.body, wit.getBlob()?.bytes)
  }
}
