// The echo without the SDK: answers every request with its body and blob, nothing else
// (no per-message print, no Incoming objects). Only for the rt/s rows of the study.
import * as wit from "kinode:process/standard@1.0.0"

export function init(_our) {
  while (true) {
    const [, m] = wit.receive()
    if (m.tag !== "request") continue
    const blob = wit.getBlob()
    wit.sendResponse({ inherit: false, body: m.val.body, metadata: undefined, capabilities: [] }, blob ?? undefined)
  }
}
