/** File digests kept across boots: a hit skips reading, any change is noticed, a bad index costs only hashing. */
import { assert, describe, it } from "@effect/vitest"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { makeFileDigests } from "../../services/program-loader/index.ts"

const sha = (b: string) => crypto.createHash("sha256").update(b).digest("hex")

describe("file digests", () => {
  it("hashes a file once, remembers it across instances, and sees a rewrite", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "digests-"))
    try {
      const file = path.join(dir, "app.wasm")
      const index = path.join(dir, "cache", "index.json")
      fs.writeFileSync(file, "version one")
      const first = makeFileDigests(index).of(file)
      assert.strictEqual(first.hash, sha("version one"))
      assert.isDefined(first.bytes, "a miss hands back the bytes it read")
      const again = makeFileDigests(index).of(file)
      assert.strictEqual(again.hash, sha("version one"))
      assert.isUndefined(again.bytes, "a hit from the saved index does not read the file")
      fs.writeFileSync(file, "version two, longer")
      assert.strictEqual(makeFileDigests(index).of(file).hash, sha("version two, longer"))
      fs.writeFileSync(index, "{not json")
      assert.strictEqual(makeFileDigests(index).of(file).hash, sha("version two, longer"))
      assert.throws(() => makeFileDigests(index).of(path.join(dir, "missing.wasm")))
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
