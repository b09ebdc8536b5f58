/**
 * What Tether's command-line apps share: duration flags (`500ms`, `5s`,
 * `2m`), log format and level, and exit codes that say what failed.
 *
 * @since 0.1.0
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"

/**
 * Parses `500ms`, `5s`, `1.5s`, `2m`, `1h` (a bare number is milliseconds).
 *
 * @since 0.1.0
 * @category durations
 */
export const parseDuration = (text: string): Duration.Duration | undefined => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text)
  if (match === null) return undefined
  const value = Number(match[1])
  const unit = match[2] ?? "ms"
  const ms = unit === "ms" ? value : unit === "s" ? value * 1000 : unit === "m" ? value * 60_000 : value * 3_600_000
  return Duration.millis(Math.round(ms))
}

/**
 * A duration flag.
 *
 * @since 0.1.0
 * @category options
 */
export const duration = (name: string): Options.Options<Duration.Duration> =>
  Options.text(name).pipe(
    Options.withPseudoName("DURATION"),
    Options.mapEffect((text) => {
      const parsed = parseDuration(text)
      return parsed !== undefined && Duration.toMillis(parsed) > 0
        ? Effect.succeed(parsed)
        : Effect.fail(
          ValidationError.invalidValue(
            HelpDoc.p(`--${name}: "${text}" is not a duration; write it like 500ms, 5s, 1.5s or 2m`)
          )
        )
    })
  )

/**
 * An optional flag as `undefined` when absent (handy with option objects).
 *
 * @since 0.1.0
 * @category options
 */
export const orUndefined = <A>(options: Options.Options<A>): Options.Options<A | undefined> =>
  Options.optional(options).pipe(Options.map(Option.getOrUndefined))

/**
 * `--log-format pretty|json` and `--log-level`.
 *
 * @since 0.1.0
 * @category options
 */
export const logOptions = (defaultLevel: "info" | "warning" = "info") => ({
  format: Options.choice("log-format", ["pretty", "json"]).pipe(
    Options.withDefault("pretty" as const),
    Options.withDescription("pretty: one readable line per event; json: one JSON object per line")
  ),
  level: Options.choice("log-level", ["trace", "debug", "info", "warning", "error", "none"]).pipe(
    Options.withDefault(defaultLevel),
    Options.withDescription(`the least severe level that is logged (default ${defaultLevel})`)
  )
})

/**
 * The logger for the chosen format and level.
 *
 * @since 0.1.0
 * @category logging
 */
export const layerLogger = (
  format: "pretty" | "json",
  level: "trace" | "debug" | "info" | "warning" | "error" | "none"
): Layer.Layer<never> =>
  Layer.merge(
    format === "json" ? Logger.json : Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ colors: false })),
    Logger.minimumLogLevel(
      level === "none" ? LogLevel.None : LogLevel.fromLiteral(
        (level.charAt(0).toUpperCase() + level.slice(1)) as "Trace" | "Debug" | "Info" | "Warning" | "Error"
      )
    )
  )

/**
 * Ends the program with a given exit code and a message for the person
 * running it.
 *
 * @since 0.1.0
 * @category exit codes
 */
export class ExitCode extends Data.TaggedError("ExitCode")<{ readonly code: number; readonly message: string }> {}

/**
 * @since 0.1.0
 * @category exit codes
 */
export const exitWith = (code: number, message: string) => new ExitCode({ code, message })

/**
 * Exit codes: 0 ok (also after SIGINT / SIGTERM and a drain), 1 failure,
 * 2 bad flags, and what the app fails with as {@link exitWith}.
 *
 * @since 0.1.0
 * @category exit codes
 */
export const teardown = <E, A>(exit: Exit.Exit<A, E>, onExit: (code: number) => void): void => {
  if (Exit.isSuccess(exit) || Cause.isInterruptedOnly(exit.cause)) return onExit(0)
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const error = failure.value as unknown
    if (error instanceof ExitCode) return onExit(error.code)
    if (ValidationError.isValidationError(error)) return onExit(2)
  }
  onExit(1)
}

/**
 * Reports an {@link exitWith} failure on stderr (bad flags are reported by
 * @effect/cli itself), leaving the exit code to {@link teardown}.
 *
 * @since 0.1.0
 * @category exit codes
 */
export const reportExit = <A, E, R>(program: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.tapError(program, (error) =>
    Effect.sync(() => {
      if (error instanceof ExitCode && error.message.length > 0) process.stderr.write(`${error.message}\n`)
    }))
