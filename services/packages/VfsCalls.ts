/** vfs requests as the kernel (which vfs lets do anything), for the installer and the app store. */
import { Effect, Result } from "effect"
import { address } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import type { KernelApi } from "../../src/Kernel.ts"
import { type LazyLoadBlob, request } from "../../src/Message.ts"
import { VfsFailed } from "./Manifest.ts"

/** `(pkg, path, action, blob?)`: the decoded JSON reply and its blob; an `{"Err"}` reply or no reply fails `VfsFailed` (`pkg` names whose). */
export const makeVfsCalls = (kernel: KernelApi) => {
  const vfsAddress = address(`${kernel.node}@vfs:distro:sys`)
  return (pkg: string, path: string, action: string, blob?: Uint8Array): Effect.Effect<{ readonly body: unknown; readonly blob: LazyLoadBlob | undefined }, VfsFailed> =>
    Effect.gen(function*() {
      const req = request({ body: Json.toBytes({ path, action }), expectsResponse: 30n })
      const r = yield* kernel.call(vfsAddress, req, blob === undefined ? undefined : { mime: undefined, bytes: blob }).pipe(
        Effect.mapError((e) => new VfsFailed({ package: pkg, action, path, reply: e._tag === "CallTimedOut" ? "timeout" : e.reason }))
      )
      const parsed = Json.parseBytes(r.message.body)
      const body = Result.isSuccess(parsed) ? parsed.success : undefined
      if (typeof body === "object" && body !== null && "Err" in body) {
        return yield* new VfsFailed({ package: pkg, action, path, reply: JSON.stringify(body) })
      }
      return { body, blob: r.blob }
    })
}
