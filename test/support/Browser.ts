/**
 * A real headless Chromium for tests, from `npm install` alone: `@sparticuz/chromium`
 * ships a brotli-packed Chromium that is unpacked once (~2 s, ~210 MB) into
 * `node_modules/.cache/kinode-ts-chromium/<version>/`, and `puppeteer-core` drives it.
 *
 * The unpack happens in `test/support/BrowserSetup.ts`, the global setup of vitest's
 * `browser` project (so only runs that include browser tests pay for it, and only the
 * first time), and again lazily in `launchBrowser` when that setup did not run. It is
 * atomic: the files go to a staging folder renamed into place, so runs racing each
 * other never see half a browser, and a new package version gets a new folder.
 *
 *   const browser = yield* scopedBrowser                       // closed with the scope
 *   const page = yield* Effect.promise(() => newPage(browser)) // page errors go to stdout
 *   yield* Effect.promise(() => screenshot(page, "login"))     // test-artifacts/screenshots/login.png
 *
 * The browser gets minimal flags of our own (`--no-sandbox`, which root needs, and
 * puppeteer's `--headless=new`), never `chromium.args`, whose Lambda flags
 * (`--single-process`, `--disable-web-security`) would weaken what security tests see.
 */
import chromium from "@sparticuz/chromium"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import puppeteer, { type Browser, type LaunchOptions, type Page } from "puppeteer-core"

const repo = path.resolve(import.meta.dirname, "..", "..")

/** PNGs written by `screenshot` (gitignored). */
export const SCREENSHOT_DIR = path.join(repo, "test-artifacts", "screenshots")

const chromiumVersion = (): string => {
  // The package's `exports` hide its package.json from `import`; read the file.
  const file = path.join(repo, "node_modules", "@sparticuz", "chromium", "package.json")
  const pkg = JSON.parse(fs.readFileSync(file, "utf8")) as { version: string }
  return pkg.version
}

/** Where this version of Chromium is unpacked. */
export const chromiumDir = (): string => path.join(repo, "node_modules", ".cache", "kinode-ts-chromium", chromiumVersion())

/**
 * Our fontconfig file: the system's fonts plus the Open Sans the package ships (its own
 * `fonts.conf` names `/tmp/fonts`), so text renders even where no fonts are installed.
 */
const fontsConf = (dir: string) => `<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>
  <dir>${path.join(dir, "fonts", "fonts")}</dir>
  <cachedir>${path.join(dir, "fonts-cache")}</cachedir>
</fontconfig>
`

/** Staging folders of unpacks that were killed (an hour old: no unpack takes that long). */
const removeStaleStaging = (parent: string): void => {
  for (const name of fs.readdirSync(parent)) {
    const full = path.join(parent, name)
    if (name.includes(".tmp-") && fs.statSync(full).mtimeMs < Date.now() - 3_600_000) fs.rmSync(full, { recursive: true, force: true })
  }
}

/**
 * The path of the Chromium binary, unpacking it first if needed. The package unpacks
 * into `os.tmpdir()` (and reuses any `chromium` it finds there without a version
 * check), so `TMPDIR` points at a fresh staging folder while it reads that; the package
 * reads it synchronously, before its first `await`, so the change is not visible to
 * anything else.
 */
export const ensureChromium = async (): Promise<string> => {
  const dir = chromiumDir()
  const binary = path.join(dir, "chromium")
  if (fs.existsSync(binary)) return binary
  fs.mkdirSync(path.dirname(dir), { recursive: true })
  removeStaleStaging(path.dirname(dir))
  const staging = fs.mkdtempSync(`${dir}.tmp-`)
  try {
    const saved = process.env["TMPDIR"]
    process.env["TMPDIR"] = staging
    let unpacked: Promise<string>
    try {
      unpacked = chromium.executablePath()
    } finally {
      if (saved === undefined) delete process.env["TMPDIR"]
      else process.env["TMPDIR"] = saved
    }
    const exe = await unpacked
    if (exe !== path.join(staging, "chromium")) throw new Error(`@sparticuz/chromium unpacked to ${exe}, not into ${staging}`)
    fs.writeFileSync(path.join(staging, "fonts.conf"), fontsConf(dir))
    try {
      fs.renameSync(staging, dir)
    } catch (e) {
      // Another run got there first (the folder exists and is not empty): use theirs.
      if (!fs.existsSync(binary)) throw e
    }
  } finally {
    fs.rmSync(staging, { recursive: true, force: true })
  }
  return binary
}

export interface BrowserOptions {
  /** Extra Chromium flags, after `--no-sandbox`. */
  readonly args?: ReadonlyArray<string>
  /** Default 1024x768. */
  readonly viewport?: { readonly width: number; readonly height: number }
}

export const launchBrowser = async (options: BrowserOptions = {}): Promise<Browser> => {
  const executablePath = await ensureChromium()
  const dir = path.dirname(executablePath)
  const launch: LaunchOptions = {
    executablePath,
    headless: true,
    args: ["--no-sandbox", ...(options.args ?? [])],
    defaultViewport: options.viewport ?? { width: 1024, height: 768 },
    env: { ...process.env, FONTCONFIG_FILE: path.join(dir, "fonts.conf") }
  }
  return puppeteer.launch(launch)
}

/** A browser closed when the scope closes. */
export const scopedBrowser = (options: BrowserOptions = {}) =>
  Effect.acquireRelease(
    Effect.promise(() => launchBrowser(options)),
    (browser) => Effect.promise(() => browser.close())
  )

/** A new page whose uncaught errors and console errors are printed to the test output. */
export const newPage = async (browser: Browser): Promise<Page> => {
  const page = await browser.newPage()
  page.on("pageerror", (e) => console.log(`[page error] ${e instanceof Error ? e.message : String(e)}`))
  page.on("console", (m) => {
    if (m.type() === "error") console.log(`[page console.error] ${m.text()}`)
  })
  return page
}

/**
 * Writes a full-page PNG to `test-artifacts/screenshots/<name>.png` and prints its
 * absolute path (it shows in the test output); returns the path.
 */
export const screenshot = async (page: Page, name: string): Promise<string> => {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true })
  const file = path.join(SCREENSHOT_DIR, `${name.replace(/[^A-Za-z0-9._-]/g, "_")}.png`)
  await page.screenshot({ path: file as `${string}.png`, fullPage: true })
  console.log(`screenshot: ${file}`)
  return file
}
