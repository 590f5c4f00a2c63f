/**
 * `top [-c]`: every process, one line each (handle, on-exit, public, capability count)
 * and `top: N running processes`; `-c` lists each one's capabilities. `top <id>`: one
 * process with its capabilities. From the kernel's `Debug` answers.
 */
import type { Address } from "kinode:process/standard@1.0.0"
import { parse, tokens } from "../lib/args.ts"
import { capabilityText, type ProcessEntry, processEntry, processMap } from "../lib/node.ts"

const USAGE = "\x1b[1mUsage:\x1b[0m\n    top [-c|--show-caps]         all processes\n    top <process_id>             one process and its capabilities"

const onExitText = (o: unknown): string => {
  if (typeof o === "string") return o
  if (typeof o === "object" && o !== null && "Requests" in o && Array.isArray((o as { Requests: unknown }).Requests)) {
    const n = (o as { Requests: Array<unknown> }).Requests.length
    return `Requests (${n})`
  }
  return JSON.stringify(o)
}

const handleText = (p: ProcessEntry) => (p.wasm_bytes_handle === "" ? "(runtime)" : p.wasm_bytes_handle)

const block = (id: string, p: ProcessEntry): string =>
  [
    `${id}:`,
    `    ${handleText(p)}`,
    ...(p.status === undefined ? [] : [`    status: ${p.status}`]),
    `    wit: ${p.wit_version ?? 0}`,
    `    on-exit: ${onExitText(p.on_exit)}`,
    `    public: ${p.public}`,
    `    capabilities (${p.capabilities.length}):`,
    ...[...p.capabilities].map(capabilityText).sort().map((c) => `        ${c}`)
  ].join("\n")

const line = (id: string, p: ProcessEntry): string =>
  `  ${id.padEnd(40)} ${p.status === undefined ? "" : `${p.status.padEnd(9)} `}${p.public ? "public " : "private"}  on-exit ${onExitText(p.on_exit).padEnd(8)}  caps ${String(p.capabilities.length).padStart(3)}  ${handleText(p)}`

export const top = (_our: Address, args: string): string => {
  const parsed = parse(tokens(args), [{ short: "c", long: "show-caps", value: false }])
  if (typeof parsed === "string") return `Failed to parse args: ${parsed}.\n${USAGE}`
  const [target, extra] = parsed.positionals
  if (extra !== undefined) return `Failed to parse args: unexpected argument '${extra}'.\n${USAGE}`
  if (target !== undefined) {
    const parts = target.split(":")
    if (parts.length !== 3 || parts.some((p) => p === "")) return `invalid process id: ${target}\n${USAGE}`
    const p = processEntry(target)
    return p === null ? `top: no process ${target}` : block(target, p)
  }
  const map = processMap()
  const ids = Object.keys(map).sort()
  const showCaps = parsed.options.has("show-caps")
  const rows = ids.map((id) => (showCaps ? block(id, map[id]!) : line(id, map[id]!)))
  return `${rows.join("\n")}\ntop: ${ids.length} running processes`
}
