/** The scripts of the terminal package, by the name their Wasm file has (`<name>.wasm`). */
import type { Address } from "kinode:process/standard@1.0.0"
import { alias } from "./alias.ts"
import { cat } from "./cat.ts"
import { echo } from "./echo.ts"
import { help } from "./help.ts"
import { hi } from "./hi.ts"
import { kfetch } from "./kfetch.ts"
import { kill } from "./kill.ts"
import { kns } from "./kns.ts"
import { m } from "./m.ts"
import { netDiagnostics } from "./net-diagnostics.ts"
import { peer } from "./peer.ts"
import { peers } from "./peers.ts"
import { top } from "./top.ts"

/** Runs on the arguments; the result is printed (or sent back as the response). */
export type Script = (our: Address, args: string) => string

export const SCRIPTS: Readonly<Record<string, Script>> = {
  alias,
  cat,
  echo,
  help,
  hi,
  kfetch,
  kill,
  kns,
  m,
  "net-diagnostics": netDiagnostics,
  peer,
  peers,
  top
}
