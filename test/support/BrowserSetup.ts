/**
 * Global setup of vitest's `browser` project (vitest.config.ts): unpacks Chromium once
 * before any browser test file starts, so parallel test files do not each unpack it.
 * Costs ~2 s the first time after `npm install`, a file check after that; runs only
 * when the run includes a browser test.
 */
import { ensureChromium } from "./Browser.ts"

export default async function setup(): Promise<void> {
  await ensureChromium()
}
