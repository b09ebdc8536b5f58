import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const src = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "src")

const files = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(path.join(dir, entry.name)) : [path.join(dir, entry.name)]
  )

describe("@tether/protocol is pure", () => {
  it("no source file imports node:* or a Node built-in, nor reads the wall clock", () => {
    const sources = files(src).filter((f) => f.endsWith(".ts"))
    assert.isAbove(sources.length, 3)
    for (const file of sources) {
      const text = fs.readFileSync(file, "utf8")
      assert.notMatch(text, /from\s+"node:/, file)
      assert.notMatch(text, /from\s+"(fs|net|buffer|stream|os|path)"/, file)
      assert.notMatch(text, /\bDate\.now\(|\bsetTimeout\(|\bsetInterval\(/, file)
    }
  })
})
