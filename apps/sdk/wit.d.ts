/**
 * `kinode:process/standard@1.0.0` as componentize-qjs hands it to guest JavaScript:
 * records are camelCase objects, variants are `{ tag, val }`, enums are strings,
 * `u64` is a `number` (a `bigint` traps the process), `list<u8>` is `Uint8Array`, and
 * an import returning `result<T, E>` returns `T` or throws an error whose `payload` is
 * `E`. An `option<T>` that is none arrives as `null` and may be passed as `null` or
 * `undefined` (`Option<T>`): test it with `== null`, never `=== undefined`.
 * Written by hand from wit/kinode-process-1.0.0/process.wit.
 */
declare module "kinode:process/standard@1.0.0" {
  export type Option<T> = T | null | undefined
  export interface ProcessId { processName: string; packageName: string; publisherNode: string }
  export interface Address { node: string; process: ProcessId }
  export interface LazyLoadBlob { mime: Option<string>; bytes: Uint8Array }
  export interface Capability { issuer: Address; params: string }
  export interface Request {
    inherit: boolean
    expectsResponse: Option<number>
    body: Uint8Array
    metadata: Option<string>
    capabilities: Array<Capability>
  }
  export interface Response { inherit: boolean; body: Uint8Array; metadata: Option<string>; capabilities: Array<Capability> }
  export type Message =
    | { tag: "request"; val: Request }
    | { tag: "response"; val: [Response, Option<Uint8Array>] }
  export interface SendError {
    kind: "offline" | "timeout"
    target: Address
    message: Message
    lazyLoadBlob: Option<LazyLoadBlob>
  }
  export type OnExit =
    | { tag: "none" }
    | { tag: "restart" }
    | { tag: "requests"; val: Array<[Address, Request, Option<LazyLoadBlob>]> }

  export function printToTerminal(verbosity: number, message: string): void
  export function our(): Address
  export function getOnExit(): OnExit
  export function setOnExit(onExit: OnExit): void
  export function getState(): Option<Uint8Array>
  export function setState(bytes: Uint8Array): void
  export function clearState(): void
  /** Throws `{ payload: "name-taken" | "no-file-at-path" }`. */
  export function spawn(
    name: Option<string>,
    wasmPath: string,
    onExit: OnExit,
    requestCapabilities: Array<Capability>,
    grantCapabilities: Array<[ProcessId, string]>,
    isPublic: boolean
  ): ProcessId
  export function saveCapabilities(caps: Array<Capability>): void
  export function dropCapabilities(caps: Array<Capability>): void
  export function ourCapabilities(): Array<Capability>
  /** Throws `{ payload: [SendError, Option<Uint8Array>] }` (the context, if any). */
  export function receive(): [Address, Message]
  export function hasBlob(): boolean
  export function getBlob(): Option<LazyLoadBlob>
  export function lastBlob(): Option<LazyLoadBlob>
  export function sendRequest(target: Address, request: Request, context: Option<Uint8Array>, blob: Option<LazyLoadBlob>): void
  export function sendRequests(requests: Array<[Address, Request, Option<Uint8Array>, Option<LazyLoadBlob>]>): void
  export function sendResponse(response: Response, blob: Option<LazyLoadBlob>): void
  /** Throws `{ payload: SendError }`. */
  export function sendAndAwaitResponse(target: Address, request: Request, blob: Option<LazyLoadBlob>): [Address, Message]
}
