// The lean echo plus some ordinary app work per request (JSON round trip of a small
// record list, a sort, string building), so the rt/s row compares the engines on
// interpreted JS rather than on the host boundary. Only for the study.
import * as wit from "kinode:process/standard@1.0.0"

const records = Array.from({ length: 40 }, (_, i) => ({ id: i, name: `process-${i}:pkg:sys`, caps: [`cap-${i}`, `cap-${i * 7}`], on: i % 3 === 0 }))

const work = (seed) => {
  const copy = JSON.parse(JSON.stringify(records))
  copy.sort((a, b) => ((a.id * 31 + seed) % 97) - ((b.id * 31 + seed) % 97))
  let s = ""
  for (const r of copy) if (r.on) s += `${r.name}@${r.caps.join(",")};`
  return s.length
}

export function init(_our) {
  let seed = 0
  while (true) {
    const [, m] = wit.receive()
    if (m.tag !== "request") continue
    seed = (seed + work(seed)) % 1000
    const blob = wit.getBlob()
    wit.sendResponse({ inherit: false, body: m.val.body, metadata: undefined, capabilities: [] }, blob ?? undefined)
  }
}
