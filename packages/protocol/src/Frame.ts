/**
 * Framings: how a byte stream is cut into frames, and frames are put back on
 * the wire. Each connection gets its own incremental {@link Decoder}; any
 * split of the same bytes yields the same frames, a declared length over the
 * limit fails before its payload is buffered, and no input makes a decoder
 * throw.
 *
 * @since 0.1.0
 */
export { FrameError, gatherThreshold, isFrameError } from "./internal/frameCore.js"
export type { Decoder, Framing } from "./internal/frameCore.js"
export { defaultMaxFrameBytes, lengthPrefixed } from "./internal/lengthPrefixed.js"
export type { LengthPrefixedOptions } from "./internal/lengthPrefixed.js"
export { lines } from "./internal/lines.js"
export type { LinesOptions } from "./internal/lines.js"
export { classic, classicHeaderBytes, classicMaxPacketBytes } from "./internal/classicFraming.js"
export type { ClassicOptions } from "./internal/classicFraming.js"
export { messages } from "./internal/messages.js"
export type { MessagesOptions } from "./internal/messages.js"
