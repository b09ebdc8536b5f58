/**
 * The fiber driver, the card's shape: a reader, a writer and a heartbeat
 * fiber joined fail-fast in a `FiberSet` (Go's errgroup), over any
 * `@effect/platform` `Socket`. The first failure of any of them, or of the
 * engine (a bad frame, a full queue, a deliberate close), completes the set;
 * closing the set interrupts and awaits the rest, and the socket is closed
 * (destroyed outright unless the close was a deliberate, flushed one).
 *
 * @internal
 */
import * as Socket from "@effect/platform/Socket"
import { FrameError } from "@tether/protocol/Frame"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import { type ConnectionError, Kicked } from "../ConnectionError.js"
import * as Metrics from "../Metrics.js"
import { noTags, waitFor } from "./core.js"
import type { Engine } from "./engine.js"
import type { Handler } from "./inbound.js"
import * as Liveness from "./liveness.js"

/** Runs `engine` over its platform socket. @internal */
export const run = <M, E, R>(engine: Engine<M>, handler: Handler<M>): Effect.Effect<never, ConnectionError | E, R> =>
  Effect.scoped(
    Effect.gen(function*() {
      const socket = engine.socket
      const write = yield* socket.writer
      const set = yield* FiberSet.make<unknown, unknown>()
      const runFork = (yield* FiberSet.runtime(set)<R>()) as (effect: Effect.Effect<void, unknown, any>) => unknown
      // The engine's end (its first failure, or an interruption) completes the set.
      engine.ended = (cause) => Deferred.unsafeDone(set.deferred, Exit.failCause(cause))
      if (engine.endCause !== undefined) Deferred.unsafeDone(set.deferred, Exit.failCause(engine.endCause))
      const first = engine.begin(handler, (effect) => void runFork(effect))
      Metrics.connectionsActive.unsafeModify(1, noTags)
      yield* Effect.addFinalizer(() => Effect.sync(() => Metrics.connectionsActive.unsafeModify(-1, noTags)))

      // The reader: every chunk through the engine's inbound, synchronously.
      const reader = yield* FiberSet.run(
        set,
        socket.run((chunk) => engine.inbound.onData(chunk), {
          onOpen: Effect.sync(() => {
            engine.open = true
            engine.options.onOpen?.()
          })
        }).pipe(
          Effect.zipRight(engine.inbound.whenIdle),
          // The peer closed: the engine ends (PeerClosed, or Truncated inside a frame) and so does the reader.
          Effect.zipRight(Effect.suspend(() => {
            engine.inbound.onEnd()
            return engine.failure !== undefined ? Effect.fail(engine.failure) : Effect.void
          }))
        )
      )
      // The writer: one socket write per batch of everything queued.
      yield* FiberSet.run(set, writerFiber(engine, write))
      // The heartbeat.
      if (first !== undefined) yield* FiberSet.run(set, Liveness.fiber(engine.liveness, engine))

      // Runs before the FiberSet closes: a connection that did not end by a
      // deliberate, flushed close is destroyed outright, so a peer that does
      // not read cannot keep it (and its buffers) alive.
      yield* Effect.addFinalizer(() =>
        Effect.suspend(() => {
          if (engine.deliberate || !engine.open || reader.unsafePoll() !== null) return Effect.void
          return Effect.ignore(write(new Socket.CloseEvent(1000)))
        })
      )
      yield* FiberSet.join(set)
      return yield* Effect.die("unreachable: a connection's fibers never all succeed")
    }).pipe(
      Effect.tapErrorCause((cause) =>
        Effect.sync(() => {
          engine.failure ??= Option.getOrElse(
            Cause.failureOption(cause),
            () => new Kicked({ reason: "interrupted" })
          ) as ConnectionError
          engine.inbound.release()
          engine.outbound.release()
        })
      )
    )
  ) as Effect.Effect<never, ConnectionError | E, R>

/** The writer fiber: waits for work, writes a batch, repeats; ends the connection after a deliberate close's flush. */
const writerFiber = <M>(
  engine: Engine<M>,
  write: (chunk: Uint8Array | Socket.CloseEvent) => Effect.Effect<void, Socket.SocketError>
): Effect.Effect<void, ConnectionError> => {
  const outbound = engine.outbound
  const work = waitFor((resume) => outbound.onWork(resume))
  const turn: Effect.Effect<void, ConnectionError> = Effect.suspend(() => {
    if (engine.failure !== undefined) return Effect.never
    if (outbound.size() === 0) {
      outbound.idle()
      return engine.failure !== undefined ? Effect.never : Effect.flatMap(work, () => turn)
    }
    outbound.writing = true
    const bytes = outbound.take(false)
    if (bytes instanceof FrameError) return Effect.fail(bytes)
    // A message framing's batch is one buffer per message: one write each.
    return Array.isArray(bytes)
      ? Effect.flatMap(Effect.forEach(bytes, write, { discard: true }), () => turn)
      : Effect.flatMap(write(bytes), () => turn)
  })
  return turn
}

/** `run` in a fiber of its own, for `unsafeStart` over a platform socket. @internal */
export const start = <M, E, R>(
  engine: Engine<M>,
  runtime: Runtime.Runtime<R>,
  handler: Handler<M>,
  onExit: (exit: Exit.Exit<never, ConnectionError | E>) => void
): () => void => {
  const fiber = Runtime.runFork(runtime)(run<M, E, R>(engine, handler))
  fiber.addObserver(onExit)
  return () => fiber.unsafeInterruptAsFork(FiberId.none)
}
