/**
 * `kinode:process/standard@1.0.0` as componentize-js hands it to guest JavaScript:
 * records are camelCase objects, `option<T>` is `T | undefined`, variants are
 * `{ tag, val }`, enums are strings, `u64` is `bigint`, `list<u8>` is `Uint8Array`,
 * and an import returning `result<T, E>` returns `T` or throws an error whose
 * `payload` is `E`. Written by hand from wit/kinode-process-1.0.0/process.wit.
 */
declare module "kinode:process/standard@1.0.0" {
  export interface ProcessId { processName: string; packageName: string; publisherNode: string }
  export interface Address { node: string; process: ProcessId }
  export interface LazyLoadBlob { mime: string | undefined; bytes: Uint8Array }
  export interface Capability { issuer: Address; params: string }
  export interface Request {
    inherit: boolean
    expectsResponse: bigint | undefined
    body: Uint8Array
    metadata: string | undefined
    capabilities: Array<Capability>
  }
  export interface Response { inherit: boolean; body: Uint8Array; metadata: string | undefined; capabilities: Array<Capability> }
  export type Message =
    | { tag: "request"; val: Request }
    | { tag: "response"; val: [Response, Uint8Array | undefined] }
  export interface SendError {
    kind: "offline" | "timeout"
    target: Address
    message: Message
    lazyLoadBlob: LazyLoadBlob | undefined
  }
  export type OnExit =
    | { tag: "none" }
    | { tag: "restart" }
    | { tag: "requests"; val: Array<[Address, Request, LazyLoadBlob | undefined]> }

  export function printToTerminal(verbosity: number, message: string): void
  export function our(): Address
  export function getOnExit(): OnExit
  export function setOnExit(onExit: OnExit): void
  export function getState(): Uint8Array | undefined
  export function setState(bytes: Uint8Array): void
  export function clearState(): void
  /** Throws `{ payload: "name-taken" | "no-file-at-path" }`. */
  export function spawn(
    name: string | undefined,
    wasmPath: string,
    onExit: OnExit,
    requestCapabilities: Array<Capability>,
    grantCapabilities: Array<[ProcessId, string]>,
    isPublic: boolean
  ): ProcessId
  export function saveCapabilities(caps: Array<Capability>): void
  export function dropCapabilities(caps: Array<Capability>): void
  export function ourCapabilities(): Array<Capability>
  /** Throws `{ payload: [SendError, context | undefined] }`. */
  export function receive(): [Address, Message]
  export function hasBlob(): boolean
  export function getBlob(): LazyLoadBlob | undefined
  export function lastBlob(): LazyLoadBlob | undefined
  export function sendRequest(target: Address, request: Request, context: Uint8Array | undefined, blob: LazyLoadBlob | undefined): void
  export function sendRequests(requests: Array<[Address, Request, Uint8Array | undefined, LazyLoadBlob | undefined]>): void
  export function sendResponse(response: Response, blob: LazyLoadBlob | undefined): void
  /** Throws `{ payload: SendError }`. */
  export function sendAndAwaitResponse(target: Address, request: Request, blob: LazyLoadBlob | undefined): [Address, Message]
}
