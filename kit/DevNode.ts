/**
 * A node for development: `node dist/main.js` of this checkout on the embedded local
 * chain (started on port 8545, or joined if running; it keeps running afterwards, as for
 * any node), under a fresh name `dev-<6 hex>.dev` with a fresh password.
 *
 * Without `home` it lives in a temporary folder that is removed when the node exits.
 * With `home` the folder is kept, and the name and password are kept in
 * `<home>/.kit-ts-dev-node.json`, so booting the same home again is a later boot of the
 * same node (a home made otherwise boots asking its password).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
export const mainJs = path.join(repo, "dist", "main.js")
const IDENTITY_FILE = ".kit-ts-dev-node.json"

export interface DevNodeOptions {
  /** Keep the node here (default: a temporary folder, removed on exit). */
  readonly home?: string
  /** HTTP port (the node takes the next free one if it is taken; default 8080). */
  readonly port?: number
  /** Run without the terminal, output collected (run-tests), rather than on this terminal. */
  readonly detached: boolean
  /** More flags for `node dist/main.js` (e.g. `--chain-port 8546`, `-v 1`). */
  readonly nodeArgs?: ReadonlyArray<string>
}

export interface DevNode {
  readonly name: string | undefined
  readonly password: string | undefined
  readonly home: string
  readonly temporary: boolean
  readonly child: ChildProcess
  /** What the node printed (detached only). */
  readonly output: () => string
  /** Resolves with the node's URL once it booted (detached only); rejects if it exits first. */
  readonly ready: Promise<string>
  /** Resolves with the exit code once the node exited and a temporary home is removed. */
  readonly exited: Promise<number>
  /** SIGTERM (a clean shutdown), then waits for `exited`. */
  readonly stop: () => Promise<number>
}

export class DevNodeFailed extends Error {
  readonly _tag = "DevNodeFailed"
}

interface Identity {
  readonly name: string
  readonly password: string
}

const readIdentity = (home: string): Identity | undefined => {
  try {
    const v = JSON.parse(fs.readFileSync(path.join(home, IDENTITY_FILE), "utf8")) as Identity
    return typeof v.name === "string" && typeof v.password === "string" ? v : undefined
  } catch {
    return undefined
  }
}

const fresh = (): Identity => ({
  name: `dev-${crypto.randomBytes(3).toString("hex")}.dev`,
  password: crypto.randomBytes(12).toString("base64url")
})

/** Starts the node; `name`/`password` are undefined for a home made by something else (the node asks). */
export const bootDevNode = (options: DevNodeOptions): DevNode => {
  if (!fs.existsSync(mainJs)) throw new DevNodeFailed(`${mainJs} is missing: run npm install (or npm run build) in ${repo}`)
  const temporary = options.home === undefined
  const home = temporary ? fs.mkdtempSync(path.join(os.tmpdir(), "kit-ts-dev-node-")) : path.resolve(options.home!)
  const known = temporary ? undefined : readIdentity(home)
  const existing = !temporary && fs.existsSync(path.join(home, ".keys"))
  const identity = known ?? (existing ? undefined : fresh())
  if (!temporary && identity !== undefined && known === undefined) {
    fs.mkdirSync(home, { recursive: true })
    fs.writeFileSync(path.join(home, IDENTITY_FILE), `${JSON.stringify(identity)}\n`, { mode: 0o600 })
  }
  const args = [
    mainJs,
    "--home",
    home,
    ...(identity !== undefined && !existing ? ["--name", identity.name] : []),
    ...(options.port === undefined ? [] : ["--port", String(options.port)]),
    ...(options.detached ? ["--detached"] : []),
    ...(options.nodeArgs ?? [])
  ]
  const env = { ...process.env, ...(identity === undefined ? {} : { KINODE_PASSWORD: identity.password }) }
  const child = spawn(process.execPath, args, { stdio: options.detached ? ["ignore", "pipe", "pipe"] : "inherit", env })
  let out = ""
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()))
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()))
  const exited = new Promise<number>((resolve) => {
    child.on("exit", (code, signal) => {
      if (temporary) fs.rmSync(home, { recursive: true, force: true })
      resolve(code ?? (signal === null ? 1 : 128))
    })
  })
  const ready = options.detached
    ? new Promise<string>((resolve, reject) => {
      const look = () => {
        const m = /open (http:\/\/\S+) in a browser/.exec(out)
        if (m !== null) {
          child.stdout?.off("data", look)
          resolve(m[1]!)
        }
      }
      child.stdout?.on("data", look)
      child.stderr?.on("data", look)
      void exited.then((code) => reject(new DevNodeFailed(`the node exited (code ${code}) before it booted:\n${out.trimEnd()}`)))
    })
    : exited.then((code) => Promise.reject(new DevNodeFailed(`the node exited (code ${code})`)))
  ready.catch(() => undefined)
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
    return exited
  }
  return { name: identity?.name, password: identity?.password, home, temporary, child, output: () => out, ready, exited, stop }
}
