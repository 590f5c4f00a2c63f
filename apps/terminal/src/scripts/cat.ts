/** `cat <vfs path>`: a file of the vfs as text. */
import type { Address } from "kinode:process/standard@1.0.0"
import { text } from "../../../sdk/index.ts"
import { VfsError, vfsRead } from "../lib/node.ts"

const USAGE = "\x1b[1mUsage:\x1b[0m cat <file_path>"

export const cat = (_our: Address, args: string): string => {
  if (args === "") return `Print the contents of a file to the terminal.\n${USAGE}`
  try {
    return text(vfsRead(args, 5))
  } catch (e) {
    if (e instanceof VfsError) return `failed to read file ${args} from VFS: ${e.message}\n${USAGE}`
    throw e
  }
}
