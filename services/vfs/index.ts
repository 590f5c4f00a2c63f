/** `vfs:distro:sys`: the public surface. */
export { MAX_CURSORS, MAX_UNZIPPED_BYTES, Vfs } from "./Vfs.ts"
export { MAX_NAME_BYTES, MAX_PATH_BYTES } from "./Paths.ts"
export * from "./Protocol.ts"
export { VfsDriveAccess } from "./DriveAccess.ts"
