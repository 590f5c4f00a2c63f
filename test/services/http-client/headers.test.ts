/** Headers across http-client's edge: Kinode's filtering out, Pascal-Casing in. */
import { assert, describe, it } from "@effect/vitest"
import * as Headers from "../../../services/http-client/Headers.ts"

describe("http-client: headers", () => {
  it("response names are Pascal-Cased per word, one value per name (the last), non-ASCII values empty", () => {
    const got = Headers.incoming({
      "content-type": "text/html",
      "x-foo-bar": "1",
      "www-authenticate": "Basic",
      "set-cookie": ["a=1", "b=2"],
      "x-odd": "caf\u00e9",
      ["__proto__"]: "kept",
      ":status": "200"
    })
    assert.deepStrictEqual(Object.keys(got), ["Content-Type", "X-Foo-Bar", "Www-Authenticate", "Set-Cookie", "X-Odd", "__proto__"])
    assert.strictEqual(got["Set-Cookie"], "b=2")
    assert.strictEqual(got["X-Odd"], "")
    assert.strictEqual(Object.getOwnPropertyDescriptor(got, "__proto__")?.value, "kept")
    assert.strictEqual(Headers.pascalCase("a--b-"), "A--B-")
  })

  it("request headers: invalid names and values skipped, names lower-cased, framing left to the client", () => {
    const out = Headers.outgoing({
      "Content-Type": "application/json",
      "X-Dup": "first",
      "x-dup": "second",
      "bad name": "x",
      "x-crlf": "a\r\nb",
      "x-utf8": "caf\u00e9",
      "x-tab": "a\tb",
      "Content-Length": "5",
      "Transfer-Encoding": "chunked",
      Connection: "keep-alive",
      Host: "virtual.example"
    })
    assert.deepStrictEqual(out, [
      ["content-type", "application/json"],
      ["x-dup", "second"],
      ["x-tab", "a\tb"],
      ["host", "virtual.example"]
    ])
  })
})
