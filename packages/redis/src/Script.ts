/**
 * A Lua script with its SHA1 computed once, run with `EVALSHA`.
 *
 * @since 0.2.0
 */
import { createHash } from "node:crypto"

/**
 * @since 0.2.0
 * @category models
 */
export interface Script {
  readonly name: string
  readonly lua: string
  readonly sha: string
}

/**
 * @since 0.2.0
 * @category constructors
 */
export const make = (name: string, lua: string): Script => ({
  name,
  lua,
  sha: createHash("sha1").update(lua).digest("hex")
})
