import { assert, describe, it } from "@effect/vitest"
import * as Cli from "@tether/node/Cli"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as TestClock from "effect/TestClock"

/** A hygienic logger over one that records what it was asked to write. */
const recording = (options: Cli.LogHygieneOptions = {}) => {
  const lines: Array<{ message: string; annotations: Record<string, unknown> }> = []
  const inner = Logger.make<unknown, void>(({ annotations, message }) => {
    lines.push({
      message: String(Array.isArray(message) ? message[0] : message),
      annotations: Object.fromEntries(HashMap.toEntries(annotations))
    })
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, Cli.hygienic(inner, options)) }
}

describe("Cli.hygienic", () => {
  it.effect("escapes and bounds messages and annotations: no forged line, no terminal escape", () => {
    const log = recording({ maxMessageChars: 100, maxAnnotationChars: 50 })
    return Effect.gen(function*() {
      yield* Effect.logWarning("closed: bad frame\n[12:00:00] ERROR (#1): FORGED\r\u001b[2J" + "x".repeat(10_000)).pipe(
        Effect.annotateLogs({ user: "eve\u001b]52;c;aGk=\u0007" + "y".repeat(1000), n: 3 })
      )
      assert.strictEqual(log.lines.length, 1)
      const { annotations, message } = log.lines[0]!
      assert.notMatch(message, /[\u0000-\u001f\u007f-\u009f]/)
      assert.include(message, "bad frame\\x0a[12:00:00] ERROR (#1): FORGED\\x0d\\x1b[2J")
      assert.isAtMost(message.length, 100 * 4 + 32)
      assert.notMatch(String(annotations.user), /[\u0000-\u001f]/)
      assert.isAtMost(String(annotations.user).length, 50 * 4 + 32)
      assert.strictEqual(annotations.n, 3, "non-string annotations pass as they are")
    }).pipe(Effect.provide(log.layer))
  })

  it.effect("a repeated line is written `burst` times per window; the rest are counted and reported when the window has passed", () => {
    const log = recording({ burst: 5, window: "10 seconds" })
    return Effect.gen(function*() {
      for (let i = 0; i < 100; i++) yield* Effect.logWarning("refused connection: too many connections")
      yield* Effect.logInfo("another line is not limited by the first")
      assert.strictEqual(log.lines.length, 6)
      yield* TestClock.adjust("10 seconds")
      yield* Effect.logWarning("refused connection: too many connections")
      const summary = log.lines.find((l) => l.message.startsWith("suppressed"))
      assert.isDefined(summary)
      assert.strictEqual(summary!.message, "suppressed 95 lines like: refused connection: too many connections")
      assert.strictEqual(summary!.annotations.suppressed, 95)
      assert.strictEqual(log.lines.at(-1)!.message, "refused connection: too many connections")
      // a count is reported even if that line never comes back: on the next line of any kind
      for (let i = 0; i < 10; i++) yield* Effect.logWarning("login failed")
      yield* TestClock.adjust("11 seconds")
      yield* Effect.logInfo("something else")
      assert.isTrue(log.lines.some((l) => l.message === "suppressed 5 lines like: login failed"))
    }).pipe(Effect.provide(log.layer))
  })

  it.effect("the tracked messages are capped", () => {
    const log = recording({ burst: 1, maxKeys: 10 })
    return Effect.gen(function*() {
      for (let i = 0; i < 1000; i++) yield* Effect.logWarning(`distinct ${i}`)
      assert.strictEqual(log.lines.length, 1000)
    }).pipe(Effect.provide(log.layer))
  })

  it.effect("logAlways logs whatever the minimum level", () => {
    const log = recording()
    return Effect.gen(function*() {
      yield* Effect.logInfo("hidden")
      yield* Cli.logAlways("listening on 127.0.0.1:1")
      assert.deepStrictEqual(log.lines.map((l) => l.message), ["listening on 127.0.0.1:1"])
    }).pipe(Effect.provide(log.layer), Logger.withMinimumLogLevel(LogLevel.None))
  })
})
