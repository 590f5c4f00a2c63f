/**
 * counter: keeps a count in its process state, so it survives restarts of the process
 * and of the node. Requests (JSON): `{"Add": n}`, `"Get"`, `"Reset"`; every answer is
 * `{"count": n}`, sent after the new count is stored.
 */
import { awaitMessage, BadBody, json, print, respond, state } from "../../sdk/index.ts"

type CounterRequest = { readonly Add: number } | "Get" | "Reset"

const decode = (bytes: Uint8Array): CounterRequest => {
  const v = json<unknown>(bytes)
  if (v === "Get" || v === "Reset") return v
  if (typeof v === "object" && v !== null && "Add" in v && Number.isSafeInteger((v as { Add: unknown }).Add)) {
    return v as { Add: number }
  }
  throw new BadBody(JSON.stringify(v), "expected {\"Add\": n}, \"Get\" or \"Reset\"")
}

export function init(our: string): void {
  let count = state.getJson<number>(0)
  print(`counter: ${our} starts at ${count}`, 1)
  while (true) {
    const m = awaitMessage()
    if (m.kind !== "request") continue
    try {
      const req = decode(m.request.body)
      if (req === "Reset") count = 0
      else if (req !== "Get") count += req.Add
      if (req !== "Get") state.setJson(count)
      respond({ json: { count } })
    } catch (e) {
      if (!(e instanceof BadBody)) throw e
      respond({ json: { error: e.message } })
    }
  }
}
