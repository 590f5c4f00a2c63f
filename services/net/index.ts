/** `net:distro:sys`: the public surface. */
export { NetOfflineModule, NetOfflinePort } from "./NetOffline.ts"
export * from "./Protocol.ts"
