/**
 * The terminal package's one component. As `terminal:terminal:sys` it is the terminal
 * app (app.ts): it takes each line the node's native terminal sends it, resolves the
 * first word through its aliases or as a process id, and runs that script. As any other
 * process of the package it is a script (script.ts), started by the terminal for one
 * line: it reads its arguments from its first request, prints or answers, and exits.
 *
 * Every script of `pkg/scripts.json` is this same component under the script's name
 * (componentize-js puts a whole JS engine in each component, ~12 MB: one build and one
 * compiled module serve them all); the terminal names the script in the metadata of the
 * request that carries its arguments.
 */
import { address } from "../../sdk/index.ts"
import { runTerminal } from "./app.ts"
import { runScript } from "./script.ts"

export function init(our: string): void {
  const self = address(our)
  if (self.process.processName === "terminal") runTerminal(self)
  else runScript(self)
}
