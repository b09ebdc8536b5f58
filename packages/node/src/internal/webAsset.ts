/**
 * What the web pages share: a built script read once from `dist/web/`, and
 * the headers every page is served with.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs"

/** The file at `url`, read on first use and kept; undefined while it is not built. @internal */
export const cachedFile = (url: URL): Effect.Effect<string | undefined> => {
  let text: string | undefined
  return Effect.sync(() => {
    if (text === undefined) {
      try {
        text = fs.readFileSync(url, "utf8")
      } catch {
        return undefined
      }
    }
    return text
  })
}

/** Headers of a page with no inline script (`extraCsp` appended to the policy). @internal */
export const pageHeaders = (extraCsp = "") => ({
  "content-security-policy":
    `default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self'${extraCsp}`,
  "x-content-type-options": "nosniff",
  "cache-control": "no-store"
})
