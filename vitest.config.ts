import * as os from "node:os"
import * as path from "node:path"
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Instrumented core modules, shared by every test home (and node processes the CLI
    // tests start): an app's 12 MB module is instrumented once, not per boot.
    env: { KINODE_TS_METERED_CACHE: process.env["KINODE_TS_METERED_CACHE"] ?? path.join(os.tmpdir(), "kinode-ts-test-metered") }
  }
})
