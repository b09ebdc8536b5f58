import { assert, describe, it } from "@effect/vitest"
import * as Frame from "@tether/protocol/Frame"

describe("smoke", () => {
  it("frames", () => {
    const d = Frame.lengthPrefixed().decoder()
    const out = d.push(new Uint8Array([0, 0, 0, 1, 7]))
    assert.deepStrictEqual(out, [new Uint8Array([7])])
  })
})
