/** `http-server:distro:sys`: the public surface. */
export { COOKIE_SECONDS, cookieName, makeAuth, subdomainLabel } from "./Auth.ts"
export { HOMEPAGE, type HttpBinding, type WsBinding } from "./Bindings.ts"
export { defaultLimits as defaultHttpLimits, type HttpLimits } from "./Gateway.ts"
export { HTTP_SERVER, HttpListenFailed, HttpServer, type HttpServerOptions, SERVER_OPTIONS } from "./HttpServer.ts"
export * from "./Protocol.ts"
