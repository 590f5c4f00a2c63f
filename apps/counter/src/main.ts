/**
 * counter: keeps a count in its process state, so it survives restarts of the process
 * and of the node. Requests (JSON): `{"Add": n}`, `"Get"`, `"Reset"`, from processes or
 * local tools (`POST /rpc:distro:sys/message`, which http-server delivers); every answer
 * is `{"count": n}`, sent after the new count is stored.
 *
 * It also has a web UI (`pkg/ui/index.html`, at `/counter:counter:sys/` behind the
 * node's login) and a homepage tile. The page talks over a WebSocket at
 * `/counter:counter:sys/updates`: it sends `{"Add": 1}` or `"Reset"` as text frames,
 * and every change of the count (from the page or from a process) is pushed to every
 * open page as `{"count": n}`. `GET /counter:counter:sys/api` answers `{"count": n}`.
 * Without http-server or the homepage (test kernels) the bindings fail, which is
 * printed, and the counter works as before.
 */
import { awaitMessage, BadBody, http, json, print, respond, state } from "../../sdk/index.ts"

type CounterRequest = { readonly Add: number } | "Get" | "Reset"

const decode = (bytes: Uint8Array): CounterRequest => {
  const v = json<unknown>(bytes)
  if (v === "Get" || v === "Reset") return v
  if (typeof v === "object" && v !== null && "Add" in v && Number.isSafeInteger((v as { Add: unknown }).Add)) {
    return v as { Add: number }
  }
  throw new BadBody(JSON.stringify(v), "expected {\"Add\": n}, \"Get\" or \"Reset\"")
}

const UPDATES = "/updates"

/** Runs one setup step; a failure is printed, not fatal. */
const attempt = (what: string, step: () => void): void => {
  try {
    step()
  } catch (e) {
    print(`counter: ${what} failed: ${e instanceof Error ? e.message : String(e)}`, 0)
  }
}

export function init(our: string): void {
  let count = state.getJson<number>(0)
  print(`counter: ${our} starts at ${count}`, 1)
  attempt("serving the UI", () => void http.serveUi("ui", { authenticated: true }))
  attempt("binding /api", () => http.bind("/api", { authenticated: true, localOnly: false }))
  attempt("binding /updates", () => http.bindWebSocket(UPDATES, { authenticated: true, extension: false }))
  attempt("adding the homepage tile", () => http.homepageAdd("Counter", "/counter:counter:sys/"))
  const channels = http.wsChannels()

  /** Applies a request; pushes the new count to every open page when it changed. */
  const apply = (req: CounterRequest): void => {
    if (req === "Get") return
    count = req === "Reset" ? 0 : count + req.Add
    state.setJson(count)
    channels.pushAll(UPDATES, "Text", { json: { count } })
  }

  /**
   * A request from http-server as HTTP or WebSocket traffic; undefined for anything else,
   * such as a counter request sent with `POST /rpc:distro:sys/message` (also from http-server).
   */
  const serverRequest = (body: Uint8Array): http.ServerRequest | undefined => {
    try {
      return http.parseRequest(body)
    } catch (e) {
      if (e instanceof BadBody) return undefined
      throw e
    }
  }

  const fromHttpServer = (r: http.ServerRequest): void => {
    if (channels.track(r)) {
      if (r.kind === "ws-open") http.wsPush(r.channelId, "Text", { json: { count } })
      return
    }
    if (r.kind === "ws-push") {
      if (r.messageType !== "Text") return
      try {
        apply(decode(r.data))
      } catch (e) {
        if (!(e instanceof BadBody)) throw e
        http.wsPush(r.channelId, "Text", { json: { error: e.message } })
      }
      return
    }
    if (r.kind !== "http") return
    if (r.path !== "/api") return http.respond(404, {}, "not found")
    if (r.method !== "GET") return http.respond(405, { Allow: "GET" }, "method not allowed")
    http.respond(200, { "Content-Type": "application/json" }, { json: { count } })
  }

  while (true) {
    const m = awaitMessage()
    if (m.kind !== "request") continue
    try {
      const r = http.isHttpServer(m.source) ? serverRequest(m.request.body) : undefined
      if (r !== undefined) {
        fromHttpServer(r)
        continue
      }
      apply(decode(m.request.body))
      respond({ json: { count } })
    } catch (e) {
      if (!(e instanceof BadBody)) throw e
      respond({ json: { error: e.message } })
    }
  }
}
