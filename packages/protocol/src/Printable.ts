/**
 * Text that came from the network, made safe to show: in a terminal, in a
 * log line, in a user list. Pure functions, shared by the CLI client, the
 * server's logs and (later) the web page.
 *
 * - {@link escape} turns every character that could move the cursor, clear
 *   the screen, start an escape sequence (ESC, CSI, OSC, C1), fake a new line
 *   (`\r`, `\n`, U+2028/9) or reorder the line (bidi overrides and isolates)
 *   into a visible `\x1b` / `\u{202e}` form. Everything else is unchanged.
 * - {@link bounded} cuts a string to a length, saying how much was cut.
 * - {@link nameProblem} says why a string is not acceptable as a user name.
 *
 * @since 0.1.0
 */

// C0, DEL and C1 controls; bidi marks, embeddings, overrides and isolates; line and paragraph separators.
const unsafe = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g
const unsafeTest = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/

const escapeOne = (c: string): string => {
  const code = c.charCodeAt(0)
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`
}

/**
 * `text` with every control character (C0 including `\r` `\n` `\t`, DEL,
 * C1), bidi control and line / paragraph separator written as a visible
 * escape (`\x1b`, `\x0a`, `\u{202e}`): printed, it stays on one line, cannot
 * move the cursor, start an ANSI / OSC sequence or reorder what follows.
 * Cheap when there is nothing to escape.
 *
 * @example
 * ```ts
 * import * as Printable from "@tether/protocol/Printable"
 *
 * Printable.escape("hi\u001b[2J") // "hi\\x1b[2J"
 * ```
 *
 * @since 0.1.0
 * @category escaping
 */
export const escape = (text: string): string => unsafeTest.test(text) ? text.replace(unsafe, escapeOne) : text

/**
 * True when {@link escape} would change nothing.
 *
 * @since 0.1.0
 * @category escaping
 */
export const isPrintable = (text: string): boolean => !unsafeTest.test(text)

/**
 * `text` cut to at most `max` UTF-16 code units, plus a note of how many
 * were left out (`...(+1048000 chars)`). A surrogate pair is never split.
 *
 * @since 0.1.0
 * @category escaping
 */
export const bounded = (text: string, max: number): string => {
  if (text.length <= max) return text
  let end = Math.max(0, max)
  const last = text.charCodeAt(end - 1)
  if (last >= 0xd800 && last <= 0xdbff) end--
  return `${text.slice(0, end)}...(+${text.length - end} chars)`
}

/**
 * {@link escape}, then {@link bounded}: what a log line about a peer holds.
 * The cut comes first so that a huge input costs no more than `max` to escape.
 *
 * @since 0.1.0
 * @category escaping
 */
export const forLog = (text: string, max = 256): string => {
  if (text.length <= max) return escape(text)
  let end = max
  const last = text.charCodeAt(end - 1)
  if (last >= 0xd800 && last <= 0xdbff) end--
  return `${escape(text.slice(0, end))}...(+${text.length - end} chars)`
}

// Controls, format characters (bidi, zero-width, soft hyphen, BOM, tags),
// lone surrogates, line / paragraph separators, and the rest of the default
// ignorables (Hangul fillers, variation selectors, ...): invisible or
// reordering, so `bob\u200b` could pass for `bob`.
const forbiddenInName = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/u
const plainAscii = /^[\x20-\x7e]*$/

/**
 * Why `name` is not acceptable as a user name, or undefined when it is.
 * A name must be in Unicode NFKC form (`ｂｏｂ` and `bob` cannot be two
 * users; clients normalise with `name.normalize("NFKC")` before sending) and
 * hold no control, format (bidi, zero-width), separator or other invisible
 * character. Length limits are the Schema's.
 *
 * @since 0.1.0
 * @category names
 */
export const nameProblem = (name: string): string | undefined => {
  if (plainAscii.test(name)) return undefined
  if (forbiddenInName.test(name)) return "a user name cannot hold control, bidi, separator or invisible characters"
  if (name.normalize("NFKC") !== name) return "a user name must be in Unicode NFKC form"
  return undefined
}

/**
 * A user name as a client should send it: NFKC-normalised.
 *
 * @since 0.1.0
 * @category names
 */
export const normalizeName = (name: string): string => name.normalize("NFKC")
