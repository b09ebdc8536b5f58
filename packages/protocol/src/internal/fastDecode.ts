/**
 * A decoder compiled once from a Schema's AST for the shapes messages are
 * made of: structs of literals, strings, numbers, booleans, refinements
 * (their own filters, called as Schema calls them), declarations (their own
 * `decodeUnknown`), arrays, and unions of literals. It does what Schema's
 * decoder does for these shapes (same checks, output objects holding only the
 * declared keys), without the per-field `Either`s and option merging that
 * make Schema's generic decoder cost ~250 ns per small message.
 *
 * It only ever says "valid, here is the value" or "not sure": on {@link Fail}
 * the caller decodes through the Schema, which gives the answer and the error
 * message. An AST with anything else in it (transformations, suspensions,
 * index signatures, unions of structs, parse-option or fallback annotations)
 * does not compile, and the Schema decodes everything.
 *
 * @internal
 */
import * as Option from "effect/Option"
import * as SchemaAST from "effect/SchemaAST"

/** @internal */
export const Fail: unique symbol = Symbol.for("@tether/protocol/fastDecode/Fail")

/** @internal */
export type FastDecode = (input: unknown) => unknown

type Check = (input: unknown) => unknown

const parseOptions = SchemaAST.defaultParseOption

/** The compiled decoder, or undefined when the AST has a shape this does not handle. */
export const compile = (ast: SchemaAST.AST): FastDecode | undefined => {
  try {
    return go(ast)
  } catch (error) {
    if (error === unsupported) return undefined
    throw error
  }
}

const unsupported = Symbol("unsupported")

const go = (ast: SchemaAST.AST): Check => {
  if (
    Option.isSome(SchemaAST.getParseOptionsAnnotation(ast)) ||
    Option.isSome(SchemaAST.getDecodingFallbackAnnotation(ast))
  ) throw unsupported
  switch (ast._tag) {
    case "Literal": {
      const literal = ast.literal
      return (u) => (u === literal ? u : Fail)
    }
    case "StringKeyword":
      return (u) => (typeof u === "string" ? u : Fail)
    case "NumberKeyword":
      return (u) => (typeof u === "number" ? u : Fail)
    case "BooleanKeyword":
      return (u) => (typeof u === "boolean" ? u : Fail)
    case "UndefinedKeyword":
      return (u) => (u === undefined ? u : Fail)
    case "Refinement": {
      const from = go(ast.from)
      const filter = ast.filter
      return (u) => {
        const value = from(u)
        return value === Fail || Option.isSome(filter(value, parseOptions, ast)) ? Fail : value
      }
    }
    case "Declaration": {
      const decode = ast.decodeUnknown(...ast.typeParameters)
      return (u) => {
        // An Either (a synchronous answer) or an Effect: only a Right is taken.
        // (`_tag` rather than `Either.isEither`: measured ~12 ns less per field.)
        const result = decode(u, parseOptions, ast) as { readonly _tag?: unknown; readonly right?: unknown }
        return result._tag === "Right" ? result.right : Fail
      }
    }
    case "Union": {
      // Only unions of literals and primitives: the value is the input
      // whichever member matches. (Which struct of a union decodes an input
      // follows Schema's candidate search; that is left to Schema.)
      const members = ast.types.map((member) => {
        if (!isPrimitive(member)) throw unsupported
        return go(member)
      })
      return (u) => {
        for (let i = 0; i < members.length; i++) if (members[i]!(u) !== Fail) return u
        return Fail
      }
    }
    case "TupleType": {
      if (ast.elements.length !== 0 || ast.rest.length !== 1) throw unsupported
      const item = go(ast.rest[0]!.type)
      return (u) => {
        if (!Array.isArray(u)) return Fail
        const out = new Array(u.length)
        for (let i = 0; i < u.length; i++) {
          const value = item(u[i])
          if (value === Fail) return Fail
          out[i] = value
        }
        return out
      }
    }
    case "TypeLiteral": {
      if (ast.indexSignatures.length > 0) throw unsupported
      const fields = ast.propertySignatures.map((ps) => {
        if (typeof ps.name !== "string") throw unsupported
        return { name: ps.name, optional: ps.isOptional, check: go(ps.type) }
      })
      const hasOwn = Object.prototype.hasOwnProperty
      return (u) => {
        if (typeof u !== "object" || u === null || Array.isArray(u)) return Fail
        const input = u as Record<string, unknown>
        const out: Record<string, unknown> = {}
        for (let i = 0; i < fields.length; i++) {
          const field = fields[i]!
          // As Schema: a missing optional key is skipped; a missing required
          // one is checked as the value read (undefined, or inherited).
          if (field.optional && !hasOwn.call(input, field.name)) continue
          const value = field.check(input[field.name])
          if (value === Fail) return Fail
          out[field.name] = value
        }
        return out
      }
    }
    default:
      throw unsupported
  }
}

const isPrimitive = (ast: SchemaAST.AST): boolean => {
  switch (ast._tag) {
    case "Literal":
    case "StringKeyword":
    case "NumberKeyword":
    case "BooleanKeyword":
    case "UndefinedKeyword":
      return true
    case "Refinement":
      return isPrimitive(ast.from)
    default:
      return false
  }
}
