/**
 * `homepage:homepage:sys` wire protocol: Kinode's `HomepageRequest` (the `homepage:sys`
 * v1 WIT, serde JSON) that apps send to put a tile on the node's homepage, its one
 * answer, and the slice of http-server's `{"Http": IncomingHttpRequest}` the homepage
 * reads when a browser asks for one of its pages.
 */
import { Schema } from "effect"

export const HOMEPAGE_PROCESS = "homepage:homepage:sys"

const OptionalText = Schema.optionalKey(Schema.NullOr(Schema.String))

/** `{"Add": {...}}`: the tile of the sending process (icon = base64 image, widget = HTML). */
export const AddRequest = Schema.Struct({
  label: Schema.String,
  icon: OptionalText,
  /** Where the tile links, relative to the app's own prefix `/<process id>/`. */
  path: OptionalText,
  widget: OptionalText
})
export type AddRequest = typeof AddRequest.Type

/**
 * What an app asks: `Add` or `Remove` its own tile, `RemoveOther` (needs the
 * `"RemoveOther"` capability issued by the homepage), `SetStylesheet` (needs
 * `"SetStylesheet"`), `GetApps`.
 */
export const HomepageRequest = Schema.Union([
  Schema.Literals(["Remove", "GetApps"]),
  Schema.Struct({ Add: AddRequest }),
  Schema.Struct({ RemoveOther: Schema.String }),
  Schema.Struct({ SetStylesheet: Schema.String })
])
export type HomepageRequest = typeof HomepageRequest.Type

/** The homepage's capabilities (params JSON text), as Kinode's `homepage::Capability`. */
export const REMOVE_OTHER = "\"RemoveOther\""
export const SET_STYLESHEET = "\"SetStylesheet\""

/** One tile as `GetApps` (and `GET /apps`) lists it: Kinode's `homepage::App`. */
export interface App {
  /** The process id of the app that added it. */
  readonly id: string
  readonly process: string
  readonly package_name: string
  readonly publisher: string
  /** `/<process id>/<path>`, or null for a tile without a link. */
  readonly path: string | null
  readonly label: string
  readonly base64_icon: string | null
  readonly widget: string | null
  readonly order: number
  readonly favorite: boolean
}

/** The answer to `GetApps`. */
export interface HomepageResponse {
  readonly GetApps: ReadonlyArray<App>
}

/**
 * Answers to the other requests, sent only when the request expected one (Kinode
 * sends none): `{"Ok":null}` or `{"Err": HomepageError}`.
 */
export type HomepageError = "MalformedRequest" | "NoCapability" | "TooLarge"

/** The part of http-server's `IncomingHttpRequest` the homepage uses (other keys ignored). */
export const IncomingHttp = Schema.Struct({
  Http: Schema.Struct({
    method: Schema.String,
    url: Schema.String,
    bound_path: Schema.String,
    headers: Schema.Record(Schema.String, Schema.String),
    query_params: Schema.Record(Schema.String, Schema.String)
  })
})
export type IncomingHttp = typeof IncomingHttp.Type
