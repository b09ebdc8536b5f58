/**
 * Codecs: frame payload <-> message, from a Schema. Decoders and encoders are
 * built once per codec (not per call) and never throw: hostile bytes give a
 * {@link DecodeError}.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import { Packr } from "msgpackr"
import * as FastDecode from "./internal/fastDecode.js"
import * as Printable from "./Printable.js"
import * as Utf8 from "./internal/utf8.js"

/**
 * Why a frame could not be turned into a message (or a message into a frame).
 * Safe to log as it is: `detail` is a bounded, escaped summary (the message
 * type, the path of the first failing field and why, never the whole value
 * or the whole union's description), `head` the first bytes of the frame,
 * escaped.
 *
 * @since 0.1.0
 * @category errors
 */
export class DecodeError extends Data.TaggedError("DecodeError")<{
  readonly reason:
    | "InvalidJson"
    | "InvalidMessagePack"
    | "UnknownType"
    | "InvalidMessage"
    | "WrongSize"
    | "Malformed"
    | "InvalidField"
  readonly codec: string
  readonly detail: string
  /** The frame's first bytes as escaped text (at most {@link maxHeadChars} characters, plus a note of the rest). */
  readonly head?: string
}> {
  override get message(): string {
    return `${this.codec}: ${this.reason}: ${this.detail}${this.head === undefined ? "" : ` (frame: ${this.head})`}`
  }
}

/**
 * How much of a failing frame a {@link DecodeError} quotes.
 *
 * @since 0.1.0
 * @category errors
 */
export const maxHeadChars = 64

/**
 * The longest `detail` of a {@link DecodeError} built by the Schema codecs.
 *
 * @since 0.1.0
 * @category errors
 */
export const maxDetailChars = 256

/**
 * @since 0.1.0
 * @category guards
 */
export const isDecodeError = (u: unknown): u is DecodeError => u instanceof DecodeError

/**
 * A message that could not be encoded (it does not satisfy its Schema).
 *
 * @since 0.1.0
 * @category errors
 */
export class EncodeError extends Data.TaggedError("EncodeError")<{
  readonly codec: string
  readonly detail: string
}> {
  override get message(): string {
    return `${this.codec}: cannot encode: ${this.detail}`
  }
}

/**
 * A synchronous codec. `decode` returns the message or a {@link DecodeError};
 * `encode` returns the payload or an {@link EncodeError}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Codec<A> {
  readonly name: string
  readonly decode: (frame: Uint8Array) => A | DecodeError
  readonly encode: (message: A) => Uint8Array | EncodeError
  /**
   * For text codecs (JSON): the payload as a string whose UTF-8 bytes are
   * what `encode` returns. A connection over a text framing (`Frame.lines`)
   * queues these strings and converts a whole batch to UTF-8 at once: one
   * conversion per socket write instead of one buffer per message.
   */
  readonly encodeText?: (message: A) => string | EncodeError
  /**
   * For text codecs: `decode` of a frame already decoded from UTF-8 (see
   * `Frame.Framing.textDecoder`): a connection over a text framing decodes
   * each chunk to text once instead of each frame.
   */
  readonly decodeText?: (text: string) => A | DecodeError
}

/**
 * Options shared by the Schema codecs.
 *
 * @since 0.1.0
 * @category models
 */
export interface SchemaCodecOptions {
  /**
   * Skip Schema validation on encode. Safe when the message type equals its
   * encoded form and messages are built with the Schemas' `make` (which
   * validates); saves the encode-side check on the hot path. Default false.
   */
  readonly trustedEncode?: boolean
}

/**
 * The `_tag` literals of a union of tagged structs (empty if the schema is not one).
 *
 * @since 0.1.0
 * @category utils
 */
export const tagsOf = (schema: Schema.Schema.Any): ReadonlySet<string> => {
  const tags = new Set<string>()
  const visit = (ast: SchemaAST.AST): void => {
    if (SchemaAST.isUnion(ast)) return ast.types.forEach(visit)
    if (SchemaAST.isTransformation(ast)) return visit(ast.to)
    if (SchemaAST.isRefinement(ast)) return visit(ast.from)
    if (SchemaAST.isTypeLiteral(ast)) {
      const tag = ast.propertySignatures.find((p) => p.name === "_tag")
      if (tag && SchemaAST.isLiteral(tag.type) && typeof tag.type.literal === "string") tags.add(tag.type.literal)
    }
  }
  visit(Schema.typeSchema(schema).ast)
  return tags
}

type Decoder = (u: unknown) => Either.Either<unknown, ParseResult.ParseError>

/**
 * How one member of a schema is decoded: its compiled fast path where its
 * shape allows (see `internal/fastDecode`), else its Schema decoder.
 */
interface MemberDecoder {
  readonly fast: FastDecode.FastDecode | undefined
  readonly decode: Decoder
}

const memberDecoder = (schema: Schema.Schema.Any): MemberDecoder => ({
  fast: FastDecode.compile(schema.ast),
  decode: Schema.decodeUnknownEither(schema as Schema.Schema<unknown, unknown>)
})

/**
 * For a union of tagged structs (as `Schema.TaggedStruct` builds them): one
 * decoder per member, keyed by its `_tag`, so a message is checked against
 * the member its tag names without the union's search. Undefined for any
 * other schema (or duplicate tags): those are decoded through the schema.
 */
const decodersByTag = (schema: Schema.Schema.Any): ReadonlyMap<string, MemberDecoder> | undefined => {
  const ast = schema.ast
  if (!SchemaAST.isUnion(ast)) return undefined
  const members = new Map<string, MemberDecoder>()
  for (const member of ast.types) {
    if (!SchemaAST.isTypeLiteral(member)) return undefined
    const tag = member.propertySignatures.find((p) => p.name === "_tag")
    if (!tag || !SchemaAST.isLiteral(tag.type) || typeof tag.type.literal !== "string") return undefined
    if (members.has(tag.type.literal)) return undefined
    members.set(tag.type.literal, memberDecoder(Schema.make(member)))
  }
  return members
}

/** @internal */
const makeSchemaCodec = <A, I>(
  name: string,
  schema: Schema.Schema<A, I>,
  parse: (frame: Uint8Array) => unknown,
  parseText: ((text: string) => unknown) | undefined,
  serialize: { readonly bytes: (encoded: I) => Uint8Array } | { readonly text: (encoded: I) => string },
  parseFailure: "InvalidJson" | "InvalidMessagePack",
  options: SchemaCodecOptions
): Codec<A> => {
  const decodeUnknown = Schema.decodeUnknownEither(schema)
  const encodeEither = Schema.encodeEither(schema)
  const tags = tagsOf(schema)
  const members = decodersByTag(schema)
  const fastWhole = members === undefined ? FastDecode.compile(schema.ast) : undefined
  // A frame (bytes, or text from a text framing) parsed, then checked against the Schema.
  const parsing = <In>(f: (input: In) => unknown, head: (input: In) => string) => (input: In): A | DecodeError => {
    let value: unknown
    try {
      value = f(input)
    } catch (error) {
      return new DecodeError({
        reason: parseFailure,
        codec: name,
        detail: Printable.forLog(String(error), maxDetailChars),
        head: head(input)
      })
    }
    const result = validate(value)
    return result instanceof DecodeError ? new DecodeError({ ...result, head: head(input) }) : result
  }
  const decode = parsing(parse, headOfBytes)
  const validate = (value: unknown): A | DecodeError => {
    const tag = typeof value === "object" && value !== null ? (value as { _tag?: unknown })._tag : undefined
    // The member the tag names decides, as in the union; a failure is
    // decoded again through the union for the union's own error message.
    const member = members !== undefined && typeof tag === "string" ? members.get(tag) : undefined
    let result: Either.Either<A, ParseResult.ParseError>
    try {
      const fast = member !== undefined ? member.fast : fastWhole
      if (fast !== undefined) {
        const decoded = fast(value)
        if (decoded !== FastDecode.Fail) return decoded as A
      }
      if (member !== undefined) {
        // The member the tag names is the only candidate the union would try:
        // its error says what is wrong without describing every other member.
        const decoded = member.decode(value)
        if (Either.isRight(decoded)) return decoded.right as A
        result = decoded as Either.Either<A, ParseResult.ParseError>
      } else if (members !== undefined) {
        return unknownType(tag)
      } else {
        result = decodeUnknown(value)
      }
    } catch (error) {
      // A user Schema that recurses without bound can overflow the stack on
      // hostile nesting: still a typed error, never a throw.
      return new DecodeError({ reason: "InvalidMessage", codec: name, detail: Printable.forLog(String(error), maxDetailChars) })
    }
    if (Either.isRight(result)) return result.right
    if (tags.size > 0 && !(typeof tag === "string" && tags.has(tag))) return unknownType(tag)
    return new DecodeError({ reason: "InvalidMessage", codec: name, detail: summarize(tag, result.left) })
  }
  const unknownType = (tag: unknown) =>
    new DecodeError({ reason: "UnknownType", codec: name, detail: `unknown message type ${describe(tag)}` })
  // The encoded form of a message: validated by its Schema unless trusted.
  const encoded = (message: A): I | EncodeError => {
    if (options.trustedEncode) return message as unknown as I
    const result = encodeEither(message)
    return Either.isLeft(result)
      ? new EncodeError({ codec: name, detail: Printable.forLog(formatError(result.left), 1024) })
      : result.right
  }
  const serializeWith = <Out>(f: (encoded: I) => Out) => (message: A): Out | EncodeError => {
    const value = encoded(message)
    if (value instanceof EncodeError) return value
    try {
      return f(value)
    } catch (error) {
      // e.g. a BigInt or a cycle JSON.stringify cannot write
      return new EncodeError({ codec: name, detail: String(error) })
    }
  }
  const decodeText = parseText && parsing(parseText, headOfText)
  if ("bytes" in serialize) return { name, decode, encode: serializeWith(serialize.bytes) }
  const stringify = serialize.text
  return {
    name,
    decode,
    encode: serializeWith((value) => Utf8.encode(stringify(value))),
    encodeText: serializeWith(stringify),
    ...(decodeText ? { decodeText } : {})
  }
}

const headOfText = (text: string): string => Printable.forLog(text.slice(0, maxHeadChars + 1), maxHeadChars)
// Not fatal: the first bytes may end inside a character, or not be UTF-8 at all.
const lenientUtf8 = new TextDecoder("utf-8")
const headOfBytes = (frame: Uint8Array): string => {
  const head = Printable.forLog(lenientUtf8.decode(frame.subarray(0, maxHeadChars)), maxHeadChars)
  return frame.length > maxHeadChars ? `${head}...(${frame.length} bytes)` : head
}

/**
 * A bounded, escaped summary of why a value failed its Schema: its tag, the
 * path of the first failing field and that failure's message (which may
 * quote the value: cut), and how many other failures there were.
 */
const summarize = (tag: unknown, error: ParseResult.ParseError): string => {
  let issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>
  try {
    issues = ParseResult.ArrayFormatter.formatErrorSync(error)
  } catch {
    return "the message does not match its Schema (the error is too deep to print)"
  }
  const first = issues[0]
  const where = typeof tag === "string" ? `${describe(tag)}` : "message"
  if (first === undefined) return `${where}: does not match its Schema`
  const path = first.path.length === 0 ? "" : ` at ${Printable.forLog(first.path.map((k) => `[${String(k)}]`).join(""), 64)}`
  const more = issues.length > 1 ? ` (+${issues.length - 1} more)` : ""
  return `${where}${path}: ${Printable.forLog(first.message, maxDetailChars - 96)}${more}`
}

/** The Schema's error message; printing a hostile value can itself overflow the stack. */
const formatError = (error: ParseResult.ParseError): string => {
  try {
    return ParseResult.TreeFormatter.formatErrorSync(error)
  } catch {
    return "the message does not match its Schema (the error is too deep to print)"
  }
}

const describe = (tag: unknown): string => {
  if (tag === undefined) return "(no _tag)"
  const text = typeof tag === "string" ? JSON.stringify(tag.slice(0, 65)) : typeof tag === "object" && tag !== null ? "(an object)" : String(tag)
  return Printable.forLog(text, 64)
}

/**
 * JSON codec: UTF-8 JSON text per frame.
 *
 * @since 0.1.0
 * @category constructors
 */
export const json = <A, I>(schema: Schema.Schema<A, I>, options: SchemaCodecOptions = {}): Codec<A> =>
  makeSchemaCodec(
    "json",
    schema,
    (frame) => JSON.parse(Utf8.decoder.decode(frame)),
    (text) => JSON.parse(text),
    { text: (encoded) => JSON.stringify(encoded) },
    "InvalidJson",
    options
  )

/**
 * MessagePack codec (via msgpackr, the library `@effect/platform` uses), with
 * msgpackr's record extension off so any MessagePack peer can read it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const msgpack = <A, I>(schema: Schema.Schema<A, I>, options: SchemaCodecOptions = {}): Codec<A> => {
  const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true })
  return makeSchemaCodec(
    "msgpack",
    schema,
    (frame) => packr.unpack(frame),
    undefined,
    {
      bytes: (encoded) => {
        // msgpackr may hand out a view of a buffer it reuses: copy out.
        const packed = packr.pack(encoded)
        return new Uint8Array(packed.buffer.slice(packed.byteOffset, packed.byteOffset + packed.byteLength))
      }
    },
    "InvalidMessagePack",
    options
  )
}

/**
 * The identity codec: frames are the messages (raw bytes, e.g. the echo contract).
 *
 * @since 0.1.0
 * @category constructors
 */
export const bytes: Codec<Uint8Array> = {
  name: "bytes",
  decode: (frame) => frame,
  encode: (message) => message
}
