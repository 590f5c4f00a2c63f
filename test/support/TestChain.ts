/**
 * A real anvil for tests that boot whole nodes (`node dist/main.js`): started on a free
 * port, attached to the test process and killed at the end, never the shared 8545.
 * Nodes join it with `--chain-port`, and the first one installs the registry.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { Effect } from "effect"
import { anvilBinary, freePort, probeChainId } from "../../services/chain/index.ts"

export interface TestChain {
  readonly port: number
  readonly url: string
  readonly stop: () => Promise<void>
}

const answers = (url: string) =>
  Effect.runPromise(probeChainId(url).pipe(Effect.as(true), Effect.orElseSucceed(() => false)))

export const startTestChain = async (): Promise<TestChain> => {
  const port = await Effect.runPromise(freePort)
  const url = `http://127.0.0.1:${port}`
  const child: ChildProcess = spawn(anvilBinary(), ["--host", "127.0.0.1", "--port", String(port), "--chain-id", "31337", "--silent"], {
    stdio: "ignore"
  })
  const t0 = Date.now()
  while (!(await answers(url))) {
    if (Date.now() - t0 > 15_000) {
      child.kill("SIGKILL")
      throw new Error(`anvil did not answer on ${url}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    port,
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once("exit", () => resolve())
        child.kill("SIGTERM")
      })
  }
}
