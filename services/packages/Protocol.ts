/**
 * `main:app-store:sys` wire protocol: the local part of Kinode's app store API
 * (`kinode/packages/app-store/api/app-store:sys-v1.wit`, interface `main`, serde JSON of
 * the wit-bindgen types), the part sideloading uses (`kit start-package`) and Kinode's
 * `install` / `uninstall` scripts send.
 *
 * Requests (the body; a `LocalRequest`):
 * - `{"NewPackage":{"package_id":{"package_name","publisher_node"},"mirror":bool}}`,
 *   the zip as the blob → `{"NewPackageResponse":"Success"|"NoBlob"|"InstallFailed"}`
 *   (`AlreadyExists` is never sent, as in Kinode 1.0);
 * - `{"Install":{"package_id":{…},"metadata":<OnchainMetadata>|null,"version_hash":"<hex>"}}`
 *   → `{"InstallResponse":"Success"|"Failure"}`;
 * - `{"Uninstall":{"package_name","publisher_node"}}` → `{"UninstallResponse":"Success"|"Failure"}`;
 * - `"Apis"` → `{"ApisResponse":{"apis":[{"package_name","publisher_node"}]}}`;
 * - `{"GetApi":{…}}` → `{"GetApiResponse":"Success"|"Failure"}`, on success the
 *   package's `api.zip` as the blob;
 * - `"Installed"` (kinode-ts, not Kinode's) → `{"InstalledResponse":{"packages":
 *   [{"package_id":{…},"version_hash","processes":[…]}]}}`.
 * A body that is none of these is answered `{"Err":"<why>"}` (Kinode answers nothing).
 */
import { Schema } from "effect"

/** The process id the module runs under (Kinode's app store's main process). */
export const APP_STORE = "main:app-store:sys"

/** `PackageId` of the WIT (`standard.package-id`), as serde writes it. */
export const PackageIdJson = Schema.Struct({ package_name: Schema.String, publisher_node: Schema.String })
export type PackageIdJson = typeof PackageIdJson.Type

export const NewPackageRequest = Schema.Struct({ package_id: PackageIdJson, mirror: Schema.Boolean })

/**
 * `metadata`: Kinode's `OnchainMetadata` (what `kit` reads from `metadata.json`). Only
 * `properties.wit_version` is used (a number), and only its shape's outline is checked.
 */
export const InstallPackageRequest = Schema.Struct({
  package_id: PackageIdJson,
  metadata: Schema.optionalKey(Schema.NullOr(Schema.Struct({
    properties: Schema.Struct({ wit_version: Schema.optionalKey(Schema.NullOr(Schema.Unknown)) })
  }))),
  version_hash: Schema.String
})

export const LocalRequest = Schema.Union([
  Schema.Struct({ NewPackage: NewPackageRequest }),
  Schema.Struct({ Install: InstallPackageRequest }),
  Schema.Struct({ Uninstall: PackageIdJson }),
  Schema.Literal("Apis"),
  Schema.Struct({ GetApi: PackageIdJson }),
  Schema.Literal("Installed")
])
export type LocalRequest = typeof LocalRequest.Type

export const NewPackageResponse = Schema.Literals(["Success", "NoBlob", "InstallFailed", "AlreadyExists"])
export const SuccessOrFailure = Schema.Literals(["Success", "Failure"])

export const InstalledEntry = Schema.Struct({
  package_id: PackageIdJson,
  version_hash: Schema.String,
  processes: Schema.Array(Schema.String)
})

export const LocalResponse = Schema.Union([
  Schema.Struct({ NewPackageResponse }),
  Schema.Struct({ InstallResponse: SuccessOrFailure }),
  Schema.Struct({ UninstallResponse: SuccessOrFailure }),
  Schema.Struct({ ApisResponse: Schema.Struct({ apis: Schema.Array(PackageIdJson) }) }),
  Schema.Struct({ GetApiResponse: SuccessOrFailure }),
  Schema.Struct({ InstalledResponse: Schema.Struct({ packages: Schema.Array(InstalledEntry) }) })
])
export type LocalResponse = typeof LocalResponse.Type

/** Where `NewPackage` keeps a zip until `Install` (Kinode's downloads folder). */
export const downloadPath = (pkg: string, versionHash: string) => `/app-store:sys/downloads/${pkg}/${versionHash}.zip`
