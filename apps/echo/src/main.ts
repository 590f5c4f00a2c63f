/** echo: answers every request with its own body and blob. */
import * as wit from "kinode:process/standard@1.0.0"
import { addressText, awaitMessage, print, respond } from "../../sdk/index.ts"

export function init(our: string): void {
  print(`echo: running as ${our}`, 1)
  while (true) {
    const m = awaitMessage()
    if (m.kind !== "request") continue
    respond(m.request.body, wit.getBlob()?.bytes)
    print(`echo: answered ${addressText(m.source)}`, 3)
  }
}
