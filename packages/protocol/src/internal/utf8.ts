/**
 * UTF-8 conversions. Where the runtime has Node's `Buffer` (Node, Bun, Deno)
 * it is used: for short strings `Buffer.from` measured ~5x faster than
 * `TextEncoder.encode` on Node 20. No import: the package stays runnable in
 * browsers, where the standard encoders are used.
 *
 * @internal
 */
interface BufferLike {
  from(text: string, encoding: "utf8"): Uint8Array
  byteLength(text: string, encoding: "utf8"): number
}

const buffer = (globalThis as { Buffer?: BufferLike }).Buffer
const hasBuffer = typeof buffer?.from === "function" && typeof buffer.byteLength === "function"
const encoder = new TextEncoder()

/** @internal */
export const encode: (text: string) => Uint8Array = hasBuffer
  ? (text) => buffer!.from(text, "utf8")
  : (text) => encoder.encode(text)

/** @internal */
export const byteLength: (text: string) => number = hasBuffer
  ? (text) => buffer!.byteLength(text, "utf8")
  : (text) => encoder.encode(text).length

/** Strict decoding: invalid UTF-8 throws (a hostile frame, not U+FFFD). @internal */
export const decoder = new TextDecoder("utf-8", { fatal: true })
