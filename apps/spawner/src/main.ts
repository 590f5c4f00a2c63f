/**
 * spawner: spawns children from its own package's Wasm file (this same component;
 * a child knows it is one because its process name is not `spawner`), hands them its
 * read capability on the package drive, and talks to them.
 *
 * Parent requests (JSON): `{"Spawn": {"name": "kid"}}` -> spawns `kid:<our package>`,
 * asks it `"Ping"` and answers `{"child": "kid:spawner:sys", "reply": {...}}`;
 * errors answer `{"error": {"_tag": ..., ...}}`.
 * Child requests: `"Ping"` -> `{"pong": "<child id>", "capabilities": [<params>...]}`.
 */
import {
  awaitMessage, BadBody, callJson, capabilities, json, print, processIdText, respond, SendFailed, sibling, spawn,
  SpawnFailed
} from "../../sdk/index.ts"
import * as wit from "kinode:process/standard@1.0.0"

const runChild = (): void => {
  const me = processIdText(wit.our().process)
  while (true) {
    const m = awaitMessage()
    if (m.kind !== "request") continue
    respond({ json: { pong: me, capabilities: capabilities().map((c) => c.params) } })
  }
}

const handleSpawn = (name: string): unknown => {
  const self = wit.our()
  // Pass on what we hold over our package drive, so the child can read it too.
  const driveCaps = capabilities().filter((c) => c.issuer.process.processName === "vfs")
  const child = spawn("pkg/spawner.wasm", { name, capabilities: driveCaps, public: false })
  const reply = callJson(sibling(self, child.processName), "\"Ping\"", { timeout: 5 })
  return { child: processIdText(child), reply }
}

const runParent = (): void => {
  while (true) {
    const m = awaitMessage()
    if (m.kind !== "request") continue
    try {
      const body = json<{ Spawn?: { name?: unknown } }>(m.request.body)
      const name = body.Spawn?.name
      if (typeof name !== "string") throw new BadBody(JSON.stringify(body), "expected {\"Spawn\": {\"name\": string}}")
      respond({ json: handleSpawn(name) })
    } catch (e) {
      if (e instanceof SpawnFailed) respond({ json: { error: { _tag: e._tag, reason: e.reason } } })
      else if (e instanceof SendFailed) respond({ json: { error: { _tag: e._tag, kind: e.kind } } })
      else if (e instanceof BadBody) respond({ json: { error: { _tag: e._tag, message: e.message } } })
      else throw e
    }
  }
}

export function init(our: string): void {
  const isChild = wit.our().process.processName !== "spawner"
  print(`spawner: ${our} up${isChild ? " (child)" : ""}`, 1)
  if (isChild) runChild()
  else runParent()
}
