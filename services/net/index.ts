/** `net:distro:sys` and the `Net` port: the public surface. */
export { NetOfflineModule, NetOfflinePort } from "./NetOffline.ts"
export { ListenFailed } from "./Libp2pHost.ts"
export { type NetOptions, type NetReach, NetLibp2p, NetStatus } from "./NetLibp2p.ts"
export { identityOf, NetModule, readAction } from "./NetModule.ts"
export { defaultLimits, type NetLimits, type PeerView } from "./Peers.ts"
export { peerIdOfKey, libp2pKeyOf } from "./Keys.ts"
export * from "./Protocol.ts"
export { encodeFrame, encodeHello, makeFrameReader, MAX_FRAME_BYTES, PROTOCOL } from "./Wire.ts"
