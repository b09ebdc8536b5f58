/**
 * A redis-server of the test's own on a free port of 127.0.0.1, started and
 * stopped by its pid (the binary is installed on every machine): for fault
 * tests that kill, pause or restart Redis. No persistence unless asked.
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as net from "node:net"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"

/** A free TCP port on 127.0.0.1 (bound to 0, read, released). */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

/** Whether a Redis answers PING on `port`. */
const pong = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1")
    socket.once("error", () => resolve(false))
    socket.once("connect", () => socket.write("PING\r\n"))
    socket.once("data", (data) => {
      socket.destroy()
      resolve(data.toString().startsWith("+PONG"))
    })
  })

/** Asks every 20 ms until Redis answers PING on `port`, for up to 5 s (a defect after that). */
const untilPong = (port: number): Effect.Effect<void> =>
  Effect.promise(() => pong(port)).pipe(
    Effect.filterOrFail((ok) => ok, () => new Error("redis-server did not start")),
    Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("5 seconds"))),
    Effect.orDie
  )

export interface Options {
  /** Append-only file in this directory, fsync always: what was acknowledged survives a kill. */
  readonly appendOnlyDir?: string
}

export interface RedisServer {
  readonly port: number
  readonly url: string
  /** Starts it again (on the same port) and waits until it answers, up to 5 s. */
  readonly start: () => Promise<void>
  /** SIGKILL, as a crash; waits for the exit. */
  readonly stop: () => Promise<void>
  /** SIGSTOP / SIGCONT: Redis hangs without closing its connections. */
  readonly pause: () => void
  readonly resume: () => void
}

/** Starts a redis-server; stop it (`stop`) when done. */
export const start = async (options: Options = {}): Promise<RedisServer> => {
  const port = await freePort()
  const persistence = options.appendOnlyDir === undefined
    ? ["--appendonly", "no"]
    : ["--appendonly", "yes", "--appendfsync", "always", "--dir", options.appendOnlyDir]
  let child: ChildProcess | undefined
  const signal = (name: NodeJS.Signals) => {
    if (child?.pid !== undefined && child.exitCode === null) process.kill(child.pid, name)
  }
  const stop = async () => {
    const current = child
    child = undefined
    if (current?.pid === undefined || current.exitCode !== null) return
    const exited = new Promise((resolve) => current.once("exit", resolve))
    process.kill(current.pid, "SIGCONT")
    process.kill(current.pid, "SIGKILL")
    await exited
  }
  const begin = async () => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...persistence], {
      stdio: "ignore"
    })
    await Effect.runPromise(untilPong(port))
  }
  await begin()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    start: begin,
    stop,
    pause: () => signal("SIGSTOP"),
    resume: () => signal("SIGCONT")
  }
}

/** The same as Effects: started now, killed when the scope closes. */
export interface Scoped {
  readonly port: number
  readonly url: string
  readonly start: Effect.Effect<void>
  readonly kill: Effect.Effect<void>
  readonly pause: Effect.Effect<void>
  readonly resume: Effect.Effect<void>
}

export const make = (options: Options = {}) =>
  Effect.map(
    Effect.acquireRelease(Effect.promise(() => start(options)), (server) => Effect.promise(() => server.stop())),
    (server): Scoped => ({
      port: server.port,
      url: server.url,
      start: Effect.promise(() => server.start()),
      kill: Effect.promise(() => server.stop()),
      pause: Effect.sync(() => server.pause()),
      resume: Effect.sync(() => server.resume())
    })
  )
