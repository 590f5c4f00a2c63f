/**
 * `kit-ts new <dir>`: a package folder that builds, installs and passes its own test as
 * it is. The package is named after the folder (Kimap-safe: a-z, 0-9, -).
 *
 * - `ts` (default): `src/main.ts` against the SDK (`kinode-ts/sdk`), answering each
 *   request `<text>` with `hello, <text>`; `tsconfig.json` extending this checkout's
 *   `kit/tsconfig.app.json` (the SDK's types, no Node's); `test/<name>.test.ts`.
 * - `wat`: `src/main.wat`, a core module for the `process-v1` world of
 *   `wit/kinode-process-1.0.0` that answers each request with its own body (the build
 *   embeds the WIT and wraps it into a component); the same kind of test.
 *
 * Both: `metadata.json` (Kinode's current form), `pkg/manifest.json` (one public process
 * named after the package, on-exit Restart, messaging to `http-server:distro:sys` so its
 * answers reach tools on the RPC path), `.gitignore` for the build outputs, a README.
 * No `package.json`: inside the checkout, `npx kit-ts` finds the tool through the
 * checkout's (a folder's own would hide it); the tests are ES modules by their syntax.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const kitDir = path.dirname(fileURLToPath(import.meta.url))

export type Template = "ts" | "wat"
export const TEMPLATES: ReadonlyArray<Template> = ["ts", "wat"]

/** Kinode's default publisher for templates (`kit new` uses it too). */
export const DEFAULT_PUBLISHER = "template.os"

export class NewRefused extends Error {
  readonly _tag = "NewRefused"
}

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`

const metadata = (name: string, publisher: string) =>
  json({
    name,
    description: `${name}: a kinode-ts package`,
    image: "",
    properties: {
      package_name: name,
      current_version: "0.1.0",
      publisher,
      mirrors: [],
      code_hashes: {},
      wit_version: 1,
      dependencies: []
    },
    external_url: "",
    animation_url: ""
  })

const manifest = (name: string) =>
  json([{
    process_name: name,
    process_wasm_path: `/${name}.wasm`,
    on_exit: "Restart",
    request_networking: false,
    // Kinode checks capabilities on responses too: answering a local tool on the RPC
    // path (kit-ts run-tests, curl) is answering http-server, which is not public.
    request_capabilities: ["http-server:distro:sys"],
    grant_capabilities: [],
    public: true
  }])

const mainTs = (name: string) => `/**
 * ${name}: answers each request "<text>" with "hello, <text>".
 *
 * A process exports \`init(our)\` and lives until it returns; \`awaitMessage\` blocks
 * until the next message (other processes run meanwhile). The SDK's functions and
 * errors: docs/apps.md of kinode-ts.
 */
import { awaitMessage, print, respond, text } from "kinode-ts/sdk"

export function init(our: string): void {
  print(\`${name}: running as \${our}\`, 1)
  while (true) {
    const m = awaitMessage()
    if (m.kind !== "request") continue
    respond(\`hello, \${text(m.request.body)}\`)
  }
}
`

const mainWat = (name: string) => `;; ${name}: answers each request with its own body, forever.
;;
;; A core module for the \`process-v1\` world of kinode:process@1.0.0 (wit/ of kinode-ts):
;; it imports the functions it uses from "kinode:process/standard@1.0.0" with their
;; canonical-ABI signatures and exports \`init\`, \`memory\` and \`cabi_realloc\`; the build
;; embeds the WIT and wraps the module into a component.
;;
;; \`receive\` writes its result at the pointer given (32-bit canonical ABI):
;;   +0  result discriminant (0 = ok)
;;   +8  ok: tuple<address, message>; the address is 32 bytes, so the message
;;       variant starts at +40 (discriminant, 0 = request) with its payload at
;;       +48; the request's body (ptr, len) is at +24 within the request.
(module
  (import "kinode:process/standard@1.0.0" "receive" (func $receive (param i32)))
  (import "kinode:process/standard@1.0.0" "send-response"
    (func $send_response (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  ;; A bump allocator: the loop resets it every round, nothing lives longer.
  (func (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32) (local $end i32)
    (local.set $ptr
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1))))))
    (global.set $heap (local.get $end))
    (local.get $ptr))
  (func (export "init") (param $our_ptr i32) (param $our_len i32)
    (loop $forever
      (global.set $heap (i32.const 1024))
      (call $receive (i32.const 16))
      ;; answer requests only (ok, and the request variant)
      (if (i32.and (i32.eqz (i32.load8_u (i32.const 16))) (i32.eqz (i32.load8_u (i32.const 56))))
        (then
          (call $send_response
            (i32.const 0)                                        ;; inherit = false
            (i32.load (i32.const 88)) (i32.load (i32.const 92))  ;; body = the request's body
            (i32.const 0) (i32.const 0) (i32.const 0)            ;; metadata = none
            (i32.const 0) (i32.const 0)                          ;; capabilities = []
            (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))) ;; blob = none
      (br $forever))))
`

const testTs = (name: string, publisher: string, template: Template) => `/**
 * Tests of ${name}, run by \`kit-ts run-tests\`: every exported function is a test, called
 * with a throwaway node on which this package was just installed.
 */
import assert from "node:assert/strict"
import type { TestNode } from "kinode-ts/testing"

const PROCESS = "${name}:${name}:${publisher}"

export async function ${template === "ts" ? "greets" : "echoes"}(node: TestNode): Promise<void> {
  const answer = await node.request(PROCESS, "kinode")
  assert.equal(answer.text, "${template === "ts" ? "hello, kinode" : "kinode"}")
}
`

const tsconfig = () =>
  json({
    extends: path.join(kitDir, "tsconfig.app.json"),
    include: ["src"]
  })

const testTsconfig = () =>
  json({
    extends: path.join(kitDir, "tsconfig.test.json"),
    include: ["."]
  })

const readme = (name: string, publisher: string, template: Template) => `# ${name}

A Kinode package (\`${name}:${publisher}\`), one process \`${name}:${name}:${publisher}\`${
  template === "ts" ? ", written in TypeScript against the kinode-ts SDK" : ", written in WAT"
}.

\`\`\`sh
kit-ts build                 # ${template === "ts" ? "type-checks, then builds" : "builds"} target/${name}:${publisher}.zip
kit-ts boot-dev-node         # (another terminal) a throwaway node at http://127.0.0.1:8080
kit-ts start-package         # installs the zip into that node
kit-ts run-tests             # test/*.test.ts against a node of their own
\`\`\`

(\`kit-ts\` is \`npx kit-ts\` inside a kinode-ts checkout, \`npm exec --prefix <checkout> kit-ts --\`
elsewhere, or plain \`kit-ts\` after \`npm link\` in the checkout.)

At the node's prompt: \`m our@${name}:${name}:${publisher} hello -a 5\`.

- \`pkg/manifest.json\`: the process, its capabilities, \`public\` (a public process takes
  requests from any process). It asks for messaging to \`http-server:distro:sys\`: Kinode
  checks capabilities on responses too, and answers to local tools (RPC, the tests) go
  to http-server.
- \`metadata.json\`: the package's name, publisher and version.
- \`src/${template === "ts" ? "main.ts" : "main.wat"}\`: the process${
  template === "ts" ? "; \`tsconfig.json\` type-checks it against the SDK" : ""
}.
- \`test/\`: tests, run by \`kit-ts run-tests\`.
`

const gitignore = `# kit-ts build outputs
target/
pkg/*.wasm
pkg/.build-hash
pkg/.metered
`

/** The files of a new package, by path relative to its folder. */
export const templateFiles = (name: string, template: Template, publisher: string): Record<string, string> => ({
  "metadata.json": metadata(name, publisher),
  "pkg/manifest.json": manifest(name),
  ...(template === "ts"
    ? { "src/main.ts": mainTs(name), "tsconfig.json": tsconfig() }
    : { "src/main.wat": mainWat(name) }),
  [`test/${name}.test.ts`]: testTs(name, publisher, template),
  "test/tsconfig.json": testTsconfig(),
  ".gitignore": gitignore,
  "README.md": readme(name, publisher, template)
})

const SAFE = /^[a-z0-9][a-z0-9-]*$/

/** Writes a new package folder at `dir`; returns the files written. Throws `NewRefused`. */
export const newPackage = (dir: string, template: Template, publisher: string): Array<string> => {
  const name = path.basename(path.resolve(dir))
  if (!SAFE.test(name)) {
    throw new NewRefused(`${name}: a package name is Kimap-safe: a-z, 0-9 and -, not starting with - (the folder is named after the package)`)
  }
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(publisher)) {
    throw new NewRefused(`--publisher ${publisher}: a node name (labels of a-z, 0-9 and -, separated by dots, e.g. template.os)`)
  }
  if (fs.existsSync(dir) && (!fs.statSync(dir).isDirectory() || fs.readdirSync(dir).length > 0)) {
    throw new NewRefused(`${dir} already exists and is not an empty folder`)
  }
  const files = templateFiles(name, template, publisher)
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(dir, rel)
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, content)
  }
  return Object.keys(files)
}
