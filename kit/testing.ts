/// <reference types="node" />
/**
 * `kinode-ts/testing`: what a package's tests are given by `kit-ts run-tests`.
 *
 * A test file is `test/<anything>.test.ts` in the package folder. Every function it
 * exports is one test, run in file order with a node on which the package was just
 * installed (a throwaway node on the local chain, removed afterwards); a test passes
 * when it returns (or its promise resolves) and fails when it throws. Tests run on Node,
 * outside the node, and reach the package's processes as local tools do (the node's RPC
 * path, `POST /rpc:distro:sys/message`), so the processes they talk to must be public or
 * grant `http-server:distro:sys` messaging. Import types only from here
 * (`import type { TestNode } from "kinode-ts/testing"`); assertions from
 * `node:assert/strict`.
 *
 * ```ts
 * import assert from "node:assert/strict"
 * import type { TestNode } from "kinode-ts/testing"
 *
 * export async function greets(node: TestNode): Promise<void> {
 *   const answer = await node.request("hello:hello:template.os", "kinode")
 *   assert.equal(answer.text, "hello, kinode")
 * }
 * ```
 */

/** A process's answer. */
export interface Answer {
  /** The response body. */
  readonly bytes: Uint8Array
  /** The body as UTF-8 text. */
  readonly text: string
  /** The body parsed as JSON; throws if it is not JSON. */
  readonly json: <T = unknown>() => T
  /** The response's blob, if it had one. */
  readonly blob: Uint8Array | undefined
}

export interface RequestOptions {
  /** Seconds to wait for the answer (default 5). */
  readonly timeout?: number
  /** A blob sent with the request. */
  readonly blob?: Uint8Array
}

export interface TestNode {
  /** The node's name, e.g. `dev-k3x9qa.dev`. */
  readonly name: string
  /** Its HTTP address, e.g. `http://127.0.0.1:8080`. */
  readonly url: string
  /** The package under test, `<package>:<publisher>`. */
  readonly package: string
  /**
   * Sends a request to a process of the node (`<process>:<package>:<publisher>`) and
   * waits for its answer. A string body is sent as it is, `{ json }` as JSON text.
   * Throws an Error saying why when the node refuses the message or no answer comes
   * in time.
   */
  readonly request: (process: string, body: string | { readonly json: unknown }, options?: RequestOptions) => Promise<Answer>
  /** Everything the node has printed so far (its terminal: what processes print at verbosity 0). */
  readonly output: () => string
}

/** One test: an exported function of a `test/*.test.ts` file. */
export type Test = (node: TestNode) => void | Promise<void>
