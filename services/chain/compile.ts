/**
 * Build step: compile the registry contracts and write
 * `dist/chain/artifacts.json` (or the path given as the first argument).
 * Skips solc when that file already holds artifacts for the current sources.
 *
 *   node services/chain/compile.ts [out.json]
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { buildArtifactsPath, loadArtifacts, writeArtifacts } from "./Artifacts.ts"

const program = Effect.gen(function*() {
  const out = process.argv[2] ?? buildArtifactsPath()
  const artifacts = yield* loadArtifacts()
  yield* writeArtifacts(out, artifacts)
  yield* Effect.logInfo(`chain artifacts ${artifacts.sourceHash} (solc ${artifacts.solcVersion}) -> ${out}`)
})

if (import.meta.main) NodeRuntime.runMain(program)
