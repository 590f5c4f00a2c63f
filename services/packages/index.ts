/** The package installer: the public surface. */
export * from "./Manifest.ts"
export { type Installed, Packages, sha256Hex } from "./Packages.ts"
