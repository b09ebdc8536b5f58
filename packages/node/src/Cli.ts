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
import * as fs from "node:fs"
import * as HashMap from "effect/HashMap"
import * as Printable from "@tether/protocol/Printable"

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
 * How the apps' loggers keep a hostile peer from filling the disk or forging
 * log lines.
 *
 * @since 0.1.0
 * @category logging
 */
export interface LogHygieneOptions {
  /** Longest message, in characters, before it is cut (default 1,024). */
  readonly maxMessageChars?: number
  /** Longest annotation value (default 256). */
  readonly maxAnnotationChars?: number
  /** Lines with the same level and message logged per window before the rest are counted, not written (default 20; 0: no limit). */
  readonly burst?: number
  /** The window of `burst` (default 10 s). */
  readonly window?: Duration.DurationInput
  /** Distinct messages tracked at most (default 256; past it the oldest are forgotten). */
  readonly maxKeys?: number
}

interface RepeatEntry {
  windowStart: number
  count: number
  suppressed: number
  readonly first: Logger.Logger.Options<unknown>
}

/**
 * Wraps a logger so that every line is safe whatever a peer sent: string
 * messages and annotation values are escaped (`Printable.escape`: no control
 * character, so no forged line at column 0 and no terminal escapes) and cut
 * to a bound; lines repeating the same level and message beyond `burst` per
 * `window` are dropped and counted, and the count is logged once the window
 * has passed (`suppressed N lines like this`). Time is the log's own
 * timestamp (Clock time).
 *
 * @since 0.1.0
 * @category logging
 */
export const hygienic = <O>(logger: Logger.Logger<unknown, O>, options: LogHygieneOptions = {}): Logger.Logger<unknown, void> => {
  const maxMessage = options.maxMessageChars ?? 1024
  const maxAnnotation = options.maxAnnotationChars ?? 256
  const burst = options.burst ?? 20
  const windowMs = Duration.toMillis(options.window ?? "10 seconds")
  const maxKeys = options.maxKeys ?? 256
  const repeats = new Map<string, RepeatEntry>()
  let pending = 0
  let lastSweep = 0
  const clean = (value: unknown, max: number) => typeof value === "string" ? Printable.forLog(value, max) : value
  const sanitize = (o: Logger.Logger.Options<unknown>): Logger.Logger.Options<unknown> => ({
    ...o,
    message: Array.isArray(o.message) ? o.message.map((m) => clean(m, maxMessage)) : clean(o.message, maxMessage),
    annotations: HashMap.map(o.annotations, (value) => clean(value, maxAnnotation))
  })
  const summary = (entry: RepeatEntry, now: number) => {
    const text = Array.isArray(entry.first.message) ? entry.first.message[0] : entry.first.message
    logger.log({
      ...entry.first,
      date: new Date(now),
      message: `suppressed ${entry.suppressed} lines like: ${String(text)}`,
      annotations: HashMap.make(["suppressed", entry.suppressed])
    })
    pending -= entry.suppressed
    entry.suppressed = 0
  }
  // Reports the counts of windows that have passed (at most once a second).
  const sweep = (now: number) => {
    if (pending === 0 || now - lastSweep < 1000) return
    lastSweep = now
    for (const entry of repeats.values()) {
      if (entry.suppressed > 0 && now - entry.windowStart >= windowMs) {
        summary(entry, now)
        entry.windowStart = now
        entry.count = 0
      }
    }
  }
  return Logger.make((raw) => {
    const o = sanitize(raw)
    const now = o.date.getTime()
    sweep(now)
    if (burst <= 0) return void logger.log(o)
    const text = Array.isArray(o.message) ? o.message[0] : o.message
    const key = `${o.logLevel.label} ${typeof text === "string" ? text.slice(0, 200) : String(text)}`
    let entry = repeats.get(key)
    if (entry === undefined || now - entry.windowStart >= windowMs) {
      if (entry !== undefined && entry.suppressed > 0) summary(entry, now)
      entry = { windowStart: now, count: 0, suppressed: 0, first: o }
      repeats.delete(key)
      repeats.set(key, entry)
      while (repeats.size > maxKeys) {
        const oldest = repeats.keys().next().value!
        pending -= repeats.get(oldest)!.suppressed
        repeats.delete(oldest)
      }
    }
    if (entry.count < burst) {
      entry.count++
      return void logger.log(o)
    }
    entry.suppressed++
    pending++
  })
}

/**
 * The logger for the chosen format and level, made {@link hygienic}.
 *
 * @since 0.1.0
 * @category logging
 */
export const layerLogger = (
  format: "pretty" | "json",
  level: "trace" | "debug" | "info" | "warning" | "error" | "none",
  hygiene: LogHygieneOptions = {}
): Layer.Layer<never> =>
  Layer.merge(
    Logger.replace(
      Logger.defaultLogger,
      hygienic(format === "json" ? Logger.withConsoleLog(Logger.jsonLogger) : Logger.prettyLogger({ colors: false }), hygiene)
    ),
    Logger.minimumLogLevel(
      level === "none" ? LogLevel.None : LogLevel.fromLiteral(
        (level.charAt(0).toUpperCase() + level.slice(1)) as "Trace" | "Debug" | "Info" | "Warning" | "Error"
      )
    )
  )

/**
 * Logs `message` at Info whatever the minimum level (e.g. the `listening on`
 * line, which tells a script the port when it asked for `--port 0`).
 *
 * @since 0.1.0
 * @category logging
 */
export const logAlways = (message: string): Effect.Effect<void> =>
  Effect.logInfo(message).pipe(Logger.withMinimumLogLevel(LogLevel.All))

/**
 * Keeps a broken stdout / stderr (EPIPE once the reader of the logs went
 * away, or any other write error) from taking the process down: the error is
 * swallowed and what is written to that stream from then on is dropped.
 * Idempotent.
 *
 * @since 0.1.0
 * @category logging
 */
export const survivableOutput = (
  streams: ReadonlyArray<NodeJS.WriteStream> = [process.stdout, process.stderr]
): void => {
  for (const stream of streams) {
    if ((stream as { [kSurvivable]?: boolean })[kSurvivable]) continue
    ;(stream as { [kSurvivable]?: boolean })[kSurvivable] = true
    stream.on("error", () => {
      // Nowhere left to report it; the process carries on.
    })
  }
}

const kSurvivable = Symbol.for("@tether/node/Cli/survivable")

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
      // Escaped: a message may quote what a server sent.
      if (error instanceof ExitCode && error.message.length > 0) process.stderr.write(`${Printable.escape(error.message)}\n`)
    }))

/**
 * Where a secret (password, token) may come from, in this order: a file
 * (its first line), an environment variable, stdin when it is piped (its
 * first line; only where stdin carries nothing else), or a prompt without
 * echo when stdin is a terminal. Never argv: `/proc/PID/cmdline` is readable
 * by every local user.
 *
 * @since 0.1.0
 * @category secrets
 */
export interface SecretSources {
  readonly file?: string | undefined
  readonly env?: string | undefined
  readonly stdin?: boolean | undefined
  /** The prompt shown on a terminal (no prompt: never asks). */
  readonly prompt?: string | undefined
}

/**
 * Reads a secret from the first of {@link SecretSources} that has one;
 * undefined when none does.
 *
 * @since 0.1.0
 * @category secrets
 */
export const readSecret = (sources: SecretSources): Effect.Effect<string | undefined, ExitCode> =>
  Effect.suspend(() => {
    if (sources.file !== undefined) {
      try {
        return Effect.succeed(fs.readFileSync(sources.file, "utf8").split(/\r?\n/)[0]!)
      } catch (error) {
        return Effect.fail(exitWith(2, `cannot read ${sources.file}: ${(error as Error).message}`))
      }
    }
    const fromEnv = sources.env !== undefined ? process.env[sources.env] : undefined
    if (fromEnv !== undefined && fromEnv.length > 0) return Effect.succeed(fromEnv)
    if (process.stdin.isTTY && sources.prompt !== undefined) return promptHidden(sources.prompt)
    if (!process.stdin.isTTY && sources.stdin) return firstLineOfStdin
    return Effect.succeed(undefined)
  })

const firstLineOfStdin: Effect.Effect<string | undefined> = Effect.async((resume) => {
  let text = ""
  const onData = (chunk: Buffer) => {
    text += chunk.toString("utf8")
    const newline = text.search(/\r?\n/)
    if (newline >= 0 || text.length > 4096) finish(text.slice(0, newline >= 0 ? newline : 4096))
  }
  const onEnd = () => finish(text.length > 0 ? text : undefined)
  const finish = (line: string | undefined) => {
    process.stdin.off("data", onData).off("end", onEnd).pause()
    resume(Effect.succeed(line))
  }
  process.stdin.on("data", onData).on("end", onEnd).resume()
})

const promptHidden = (prompt: string): Effect.Effect<string | undefined> =>
  Effect.async((resume) => {
    const stdin = process.stdin
    process.stderr.write(prompt)
    stdin.setRawMode(true)
    let typed = ""
    const finish = (value: string | undefined) => {
      stdin.off("data", onData)
      stdin.setRawMode(false)
      stdin.pause()
      process.stderr.write("\n")
      resume(Effect.succeed(value))
    }
    const onData = (chunk: Buffer) => {
      for (const c of chunk.toString("utf8")) {
        if (c === "\r" || c === "\n") return finish(typed)
        if (c === "\u0003" || c === "\u0004") return finish(undefined)
        if (c === "\u007f" || c === "\b") typed = typed.slice(0, -1)
        else typed += c
      }
    }
    stdin.on("data", onData)
    stdin.resume()
  })
