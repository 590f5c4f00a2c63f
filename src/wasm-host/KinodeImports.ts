/**
 * The host side of `kinode:process/standard` (0.7.0 and 1.0.0) for one
 * process, built on the kernel's `ProcessApi`.
 *
 * Functions that wait return Promises; the transpiled glue marks them as
 * suspending (JSPI) so the Wasm stack parks until the kernel answers. A thrown
 * `HostTrap` makes the Wasm instance trap, as Kinode's host does for misuse.
 */
import type { ProcessId } from "../Ids.ts"
import type { ProcessApi } from "../ProcessApi.ts"
import {
  blobFromWit,
  capabilitiesFromWit,
  capabilitiesToWit,
  type IdCodec,
  messageToWit,
  onExitFromWit,
  onExitToWit,
  receivedToWit,
  requestFromWit,
  responseFromWit,
  sendErrorToWit,
  type WitAddress,
  type WitBlob,
  type WitCapability,
  type WitOnExit,
  type WitProcessId,
  type WitRequest,
  type WitResponse
} from "./WitValues.ts"
import type { KinodeVersion } from "./ComponentShape.ts"

/** Thrown from a host function to trap the calling Wasm instance with this reason. */
export class HostTrap extends Error {
  override readonly name = "HostTrap"
}

/** Kinode's messaging capability params: the JSON string "messaging". */
const MESSAGING = "\"messaging\""

export const makeKinodeImports = (
  api: ProcessApi,
  ids: IdCodec,
  version: KinodeVersion
): Record<string, unknown> => {
  const ourText = api.our.toString()
  return {
    printToTerminal: (verbosity: number, message: string) => api.printToTerminal(verbosity, message),
    our: () => ids.witAddress(api.our),
    getOnExit: () => onExitToWit(ids, api.getOnExit()),
    setOnExit: (onExit: WitOnExit) => api.setOnExit(onExitFromWit(ids, onExit)),
    getState: () => api.getState(),
    setState: (bytes: Uint8Array) => api.setState(bytes),
    clearState: () => api.clearState(),
    spawn: async (
      name: string | undefined,
      wasmPath: string,
      onExit: WitOnExit,
      requestCapabilities: ReadonlyArray<WitCapability>,
      grantCapabilities: ReadonlyArray<readonly [WitProcessId, string]> | ReadonlyArray<WitProcessId>,
      isPublic: boolean
    ) => {
      // 0.7.0 lists processes that get messaging to the child; 1.0.0 pairs each with params.
      const grants: ReadonlyArray<readonly [ProcessId, string]> = version === "0.7.0"
        ? (grantCapabilities as ReadonlyArray<WitProcessId>).map((p) => [ids.processId(p), MESSAGING] as const)
        : (grantCapabilities as ReadonlyArray<readonly [WitProcessId, string]>).map((
          [p, params]
        ) => [ids.processId(p), params] as const)
      const result = await api.spawn({
        name: name ?? undefined,
        wasmPath,
        onExit: onExitFromWit(ids, onExit),
        requestCapabilities: capabilitiesFromWit(ids, requestCapabilities),
        grantCapabilities: grants,
        public: isPublic
      })
      return "_tag" in result && result._tag === "SpawnFailed"
        ? { tag: "err", val: result.reason }
        : { tag: "ok", val: ids.witProcessId(result as ProcessId) }
    },
    saveCapabilities: (caps: ReadonlyArray<WitCapability>) => api.saveCapabilities(capabilitiesFromWit(ids, caps)),
    dropCapabilities: (caps: ReadonlyArray<WitCapability>) => api.dropCapabilities(capabilitiesFromWit(ids, caps)),
    ourCapabilities: () => capabilitiesToWit(ids, api.ourCapabilities()),
    receive: () => {
      // Most receives find a message waiting: answer without a Promise, so the
      // Wasm stack does not suspend at all.
      const ready = api.tryReceive()
      if (ready !== undefined) return receivedToWit(ids, ready)
      return api.receive().then((r) => receivedToWit(ids, r))
    },
    hasBlob: () => api.hasBlob(),
    getBlob: () => api.getBlob(),
    lastBlob: () => api.lastBlob(),
    sendRequest: (target: WitAddress, request: WitRequest, context: Uint8Array | undefined, blob: WitBlob | undefined) => {
      api.sendRequest(ids.address(target), requestFromWit(ids, request), context ?? undefined, blobFromWit(blob))
    },
    sendRequests: (
      requests: ReadonlyArray<readonly [WitAddress, WitRequest, Uint8Array | undefined, WitBlob | undefined]>
    ) => {
      for (const [target, request, context, blob] of requests) {
        api.sendRequest(ids.address(target), requestFromWit(ids, request), context ?? undefined, blobFromWit(blob))
      }
    },
    sendResponse: (response: WitResponse, blob: WitBlob | undefined) => {
      const refused = api.sendResponse(responseFromWit(ids, response), blobFromWit(blob))
      // Kinode prints this at level 0 and carries on; the Wasm code never learns of it.
      if (refused !== undefined && refused._tag === "NothingToAnswer") {
        api.printToTerminal(0, "send-response: there is no request to answer")
      }
    },
    sendAndAwaitResponse: async (target: WitAddress, request: WitRequest, blob: WitBlob | undefined) => {
      const to = ids.address(target)
      if (request.expectsResponse === undefined || request.expectsResponse === null) {
        throw new HostTrap("send-and-await-response: the request must set expects-response")
      }
      if (to.toString() === ourText) {
        throw new HostTrap("send-and-await-response: a process cannot await a response from itself")
      }
      const result = await api.sendAndAwaitResponse(to, requestFromWit(ids, request), blobFromWit(blob))
      if ("source" in result) {
        return { tag: "ok", val: [ids.witAddress(result.source), messageToWit(ids, result.message)] }
      }
      if ("kind" in result) return { tag: "err", val: sendErrorToWit(ids, result) }
      throw new HostTrap(result.reason)
    }
  }
}
