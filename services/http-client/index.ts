/** `http-client:distro:sys`: the public surface. */
export * as AllowList from "./AllowList.ts"
export * as HttpClient from "./HttpClient.ts"
export { MAX_REDIRECTS } from "./Outgoing.ts"
export * from "./Protocol.ts"
export { MAX_FRAME_BYTES } from "./WsChannels.ts"
