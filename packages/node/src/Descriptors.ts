/**
 * Watching file descriptors. When a process runs out of them, Node (libuv)
 * keeps its listening socket alive by accepting and at once closing the
 * connections it cannot take, and tells no one: this module is how a server
 * finds out. It counts the process's open descriptors (`/proc/self/fd`)
 * against its soft limit every `interval` and logs a warning (the apps'
 * loggers rate-limit repeats) while the count is near the limit. Linux only;
 * elsewhere it does nothing.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"

/**
 * Open file descriptors of this process.
 *
 * @since 0.1.0
 * @category metrics
 */
export const open = Metric.gauge("tether_file_descriptors_open", { description: "Open file descriptors" })

/**
 * @since 0.1.0
 * @category models
 */
export interface Usage {
  readonly open: number
  /** The soft limit (`ulimit -n`). */
  readonly limit: number
}

/**
 * This process's descriptors in use and its soft limit; "exhausted" when
 * there is none left to count them with; undefined where `/proc` does not
 * say (not Linux).
 *
 * @since 0.1.0
 * @category utils
 */
export const usage = (): Usage | "exhausted" | undefined => {
  try {
    const limits = fs.readFileSync("/proc/self/limits", "utf8")
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(limits)
    if (match === null) return undefined
    const limit = match[1] === "unlimited" ? Number.POSITIVE_INFINITY : Number(match[1])
    // The directory listing itself holds one descriptor while it is read.
    return { open: fs.readdirSync("/proc/self/fd").length - 1, limit }
  } catch (error) {
    // Counting needs a descriptor too: failing for want of one says it all.
    const code = (error as NodeJS.ErrnoException).code
    return code === "EMFILE" || code === "ENFILE" ? "exhausted" : undefined
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface WatchOptions {
  /** How often to count (default 5 s). */
  readonly interval?: Duration.DurationInput
  /** Warn from this share of the limit on (default 0.9). */
  readonly threshold?: number
}

/**
 * Counts descriptors every `interval` for as long as the scope is open and
 * logs a warning while they are above `threshold` of the limit.
 *
 * @since 0.1.0
 * @category constructors
 */
export const watch = (options: WatchOptions = {}): Effect.Effect<void, never, Scope.Scope> => {
  const threshold = options.threshold ?? 0.9
  const check = Effect.suspend(() => {
    const now = usage()
    if (now === undefined) return Effect.void
    if (now === "exhausted") {
      return Effect.logWarning("file descriptors exhausted (EMFILE): new connections are being dropped (raise `ulimit -n`)")
    }
    return Effect.zipRight(
      Metric.set(open, now.open),
      now.open >= now.limit * threshold
        ? Effect.logWarning(
          `file descriptors nearly exhausted: ${now.open} of ${now.limit} in use; new connections are being dropped (raise \`ulimit -n\`)`
        )
        : Effect.void
    )
  })
  return Effect.asVoid(Effect.forkScoped(Effect.repeat(check, Schedule.spaced(Duration.decode(options.interval ?? "5 seconds")))))
}
