/**
 * Resume secrets: a random per-session secret the server issues in its
 * login answer, and the constant-time comparison of a presented one. No
 * `node:*` import: Web Crypto's `getRandomValues` is global in Node 20 and
 * in browsers.
 *
 * @internal
 */

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

/** The length of an issued secret: 43 characters of 6 random bits each (258 bits). @internal */
export const length = 43

/** A fresh secret (matches `Message.ResumeSecret`). @internal */
export const issue = (): string => {
  const bytes = new Uint8Array(length)
  globalThis.crypto.getRandomValues(bytes)
  let secret = ""
  for (let i = 0; i < length; i++) secret += alphabet[bytes[i]! & 63]
  return secret
}

/**
 * Whether `presented` is `expected`, in time that depends only on the
 * length of `expected` (not on where they first differ). @internal
 */
export const matches = (expected: string, presented: string): boolean => {
  let diff = expected.length ^ presented.length
  for (let i = 0; i < expected.length; i++) {
    diff |= expected.charCodeAt(i) ^ (i < presented.length ? presented.charCodeAt(i) : 0)
  }
  return diff === 0
}
