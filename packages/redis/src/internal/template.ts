/** @internal */
import { randomBytes, randomInt } from "node:crypto"
import type * as History from "@tether/runtime/History"

// The offset is assigned inside Redis, by the publish script, but the payload
// is rendered here from it. So `render` runs with marks in place of the epoch,
// the offset and the time, and the script replaces the marks with the real
// values (one argument per line, not one per part). The marks are random per node and never
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
  /** The marks of this compiler, as the publish script takes them: epoch, offset, time. */
  readonly marks: readonly [string, string, string]
  /**
   * The text rendered with the marks in place of the values (the script
   * puts the real ones in); undefined when render is not verbatim (checked
   * with a second render under other marks, unless the caller vouches).
   */
  readonly compile: (render: Render, checked?: boolean) => string | undefined
  /** A compiled text with the values in place of the marks, as the publish script writes it. */
  readonly fill: (text: string, epoch: string, offset: number, at: number) => string
}

/** @internal */
export const makeCompiler = (): Compiler => {
  const a = makeMarks()
  const b = makeMarks()
  const other = new Map([[a.epoch, b.epoch], [String(a.offset), String(b.offset)], [String(a.at), String(b.at)]])
  const pattern = new RegExp(`${a.epoch}|${a.offset}|${a.at}`, "g")
  const markOffset = String(a.offset)
  return {
    marks: [a.epoch, String(a.offset), String(a.at)],
    compile: (render, checked) => {
      const text = render({ epoch: a.epoch, offset: a.offset }, a.at)
      if (checked === true) return text
      const check = render({ epoch: b.epoch, offset: b.offset }, b.at)
      return text.replace(pattern, (mark) => other.get(mark)!) === check ? text : undefined
    },
    fill: (text, epoch, offset, at) =>
      text.replace(pattern, (mark) => mark === a.epoch ? epoch : mark === markOffset ? String(offset) : String(at))
  }
}
