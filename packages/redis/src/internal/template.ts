/** @internal */
import { randomBytes, randomInt } from "node:crypto"
import type * as History from "@tether/runtime/History"

// The offset is assigned inside Redis, by the publish script, but the payload
// is rendered here from it. So `render` runs with marks in place of the epoch,
// the offset and the time, the text is cut at the marks, and the script joins
// the parts around the real values. The marks are random per node and never
// leave the process; a second render with other marks checks that `render`
// writes the values verbatim (as any JSON or text codec does).

interface Marks {
  readonly epoch: string
  readonly offset: number
  readonly at: number
}

const makeMarks = (): Marks => {
  const offset = randomInt(2 ** 46, 2 ** 47)
  return { epoch: `m${randomBytes(12).toString("hex")}`, offset, at: offset + 2 ** 47 }
}

/** @internal */
export type Render = (position: History.Position, at: number) => string

/** @internal */
export interface Compiler {
  /** part, kind, part, ..., part (kind: e | o | t); undefined when render is not verbatim. */
  readonly compile: (render: Render) => ReadonlyArray<string> | undefined
}

/** @internal */
export const makeCompiler = (): Compiler => {
  const a = makeMarks()
  const b = makeMarks()
  const kinds = new Map([[a.epoch, "e"], [String(a.offset), "o"], [String(a.at), "t"]])
  const other = new Map([[a.epoch, b.epoch], [String(a.offset), String(b.offset)], [String(a.at), String(b.at)]])
  const pattern = new RegExp(`${a.epoch}|${a.offset}|${a.at}`, "g")
  return {
    compile: (render) => {
      const text = render({ epoch: a.epoch, offset: a.offset }, a.at)
      const check = render({ epoch: b.epoch, offset: b.offset }, b.at)
      if (text.replace(pattern, (mark) => other.get(mark)!) !== check) return undefined
      const out: Array<string> = []
      let last = 0
      for (const match of text.matchAll(pattern)) {
        out.push(text.slice(last, match.index), kinds.get(match[0])!)
        last = match.index + match[0].length
      }
      out.push(text.slice(last))
      return out
    }
  }
}
