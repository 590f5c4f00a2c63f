/** Temp dirs a test file makes and removes at the end (`afterAll(dirs.removeAll)`). */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

export const tempDirs = () => {
  const made: Array<string> = []
  return {
    mkdir: (prefix: string): string => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
      made.push(dir)
      return dir
    },
    removeAll: (): void => {
      for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true })
    }
  }
}
