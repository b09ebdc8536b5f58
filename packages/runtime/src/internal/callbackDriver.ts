/**
 * The callback driver: runs a connection over a {@link Transport.Transport}
 * (`@tether/node`'s `node:net` sockets) driven by the transport's callbacks
 * and, for liveness, the server's shared heartbeat scheduler. An idle
 * connection has no fiber at all; a handler fiber exists only while an
 * Effect-returning handler runs. This is what a server runs at scale.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import { type ConnectionError, Kicked } from "../ConnectionError.js"
import * as Metrics from "../Metrics.js"
import type * as Transport from "../Transport.js"
import { noTags } from "./core.js"
import type { Engine } from "./engine.js"
import type { Handler } from "./inbound.js"
import * as Liveness from "./liveness.js"

/**
 * Starts `engine` over `transport`. `onExit` is called once, after the
 * transport is closed and every fiber of the connection has ended. Returns a
 * function that interrupts it.
 *
 * @internal
 */
export const start = <M, E, R>(
  engine: Engine<M>,
  transport: Transport.Transport,
  runtime: Runtime.Runtime<R>,
  handler: Handler<M>,
  onExit: (exit: Exit.Exit<never, ConnectionError | E>) => void
): () => void => {
  const fork = Runtime.runFork(runtime)
  let handlerFiber: Fiber.RuntimeFiber<void, unknown> | undefined
  let heartbeat: Fiber.RuntimeFiber<void, unknown> | undefined
  let cancelBeat: (() => void) | undefined
  const first = engine.begin(handler, (effect) => {
    const fiber = fork(effect)
    handlerFiber = fiber
    fiber.addObserver((exit) => {
      if (handlerFiber === fiber) handlerFiber = undefined
      if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
        engine.failure ??= Option.getOrElse(
          Cause.failureOption(exit.cause),
          () => new Kicked({ reason: "handler died" })
        ) as ConnectionError
        engine.end(exit.cause)
      }
    })
  })
  Metrics.connectionsActive.unsafeModify(1, noTags)

  const finish = (cause: Cause.Cause<unknown>) => {
    engine.failure ??= new Kicked({ reason: "interrupted" })
    engine.inbound.release()
    engine.outbound.release()
    cancelBeat?.()
    if (engine.deliberate) transport.end()
    else transport.destroy()
    Metrics.connectionsActive.unsafeModify(-1, noTags)
    const exit = Exit.failCause(cause) as Exit.Exit<never, ConnectionError | E>
    const fibers = [handlerFiber, heartbeat].filter((f) => f !== undefined)
    if (fibers.length === 0) return onExit(exit)
    let left = fibers.length
    for (const fiber of fibers) {
      fiber.addObserver(() => {
        if (--left === 0) onExit(exit)
      })
      fiber.unsafeInterruptAsFork(FiberId.none)
    }
  }
  if (engine.endCause !== undefined) {
    // Failed (or closed and flushed) before it started.
    finish(engine.endCause)
  } else {
    engine.ended = finish
    engine.open = true
    transport.start(engine)
    engine.options.onOpen?.()
    engine.outbound.attach(transport)
    if (first !== undefined && engine.failure === undefined) {
      const liveness = engine.liveness
      const scheduler = engine.options.heartbeatScheduler
      if (scheduler !== undefined) {
        cancelBeat = scheduler.add(liveness, first)
        liveness.reschedule = () => {
          cancelBeat?.()
          const due = liveness.nextDue()
          cancelBeat = due === undefined ? undefined : scheduler.add(liveness, due)
        }
      } else {
        // No shared scheduler given: a heartbeat fiber of this connection.
        heartbeat = fork(Liveness.fiber(engine.liveness, engine))
      }
    }
  }
  return () => engine.end(Cause.interrupt(FiberId.none))
}

/**
 * `start` as an Effect: fails with why the connection ended; interrupting it
 * stops the connection and waits until it is closed.
 *
 * @internal
 */
export const run = <M, E, R>(
  engine: Engine<M>,
  transport: Transport.Transport,
  handler: Handler<M>
): Effect.Effect<never, ConnectionError | E, R> =>
  Effect.flatMap(Effect.runtime<R>(), (runtime) =>
    Effect.async<never, ConnectionError | E>((resume) => {
      let done: Exit.Exit<never, ConnectionError | E> | undefined
      let interrupted: (() => void) | undefined
      const stop = start<M, E, R>(engine, transport, runtime, handler, (exit) => {
        done = exit
        if (interrupted !== undefined) interrupted()
        else resume(exit)
      })
      return Effect.async<void>((resumeCancel) => {
        if (done !== undefined) return resumeCancel(Effect.void)
        interrupted = () => resumeCancel(Effect.void)
        stop()
      })
    }))
