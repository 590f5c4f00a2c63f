import * as os from "node:os"
import * as path from "node:path"
import { configDefaults, defineConfig } from "vitest/config"

const BROWSER_TESTS = "test/browser/**/*.test.ts"

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Two test files at once. Vitest's default on 2 cores is one (cores - 1), which ran the
    // suite one file after another (~12.5 min); two took ~7 min on the 2-core machine with
    // every test passing (the CLI tests' nodes pick their own ports for this).
    maxWorkers: 2,
    // Instrumented core modules, shared by every test home (and node processes the CLI
    // tests start): an app's 12 MB module is instrumented once, not per boot.
    env: { KINODE_TS_METERED_CACHE: process.env["KINODE_TS_METERED_CACHE"] ?? path.join(os.tmpdir(), "kinode-ts-test-metered") },
    projects: [
      { extends: true, test: { name: "node", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, BROWSER_TESTS] } },
      // A project of its own so that its global setup (unpacking Chromium, ~2 s the
      // first time) runs only when a browser test is in the run.
      {
        extends: true,
        test: { name: "browser", include: [BROWSER_TESTS], globalSetup: ["test/support/BrowserSetup.ts"] }
      }
    ]
  }
})
