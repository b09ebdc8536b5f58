/**
 * The outbound half of a connection: a queue of encoded payloads bounded in
 * messages and bytes, the overflow policy, batching (everything queued in one
 * turn goes out as one write of at most `maxWriteBytes`), and the flush.
 *
 * Two ways to drain it, one per driver: the callback driver attaches a
 * {@link Sink} (writes happen in a microtask after the turn that queued them,
 * or inside the data callback for a synchronous handler's replies); the fiber
 * driver's writer fiber waits with `onWork` and takes batches with `take`.
 *
 * @internal
 */
import * as Socket from "@effect/platform/Socket"
import { FrameError } from "@tether/protocol/Frame"
import * as Wire from "@tether/protocol/Wire"
import * as Effect from "effect/Effect"
import { type Kicked, SlowConsumer } from "../ConnectionError.js"
import * as Metrics from "../Metrics.js"
import { type Core, noTags, releaseAll, type Stats, waitFor, type Waiters } from "./core.js"

/** What an empty queue slot holds (no reference to a payload sent). */
const noPayload: Wire.Payload = new Uint8Array(0)

/** Where the callback driver writes (a Transport's write half). @internal */
export interface Sink {
  write(bytes: Uint8Array, done: (error?: Error | null) => void): boolean
  readonly writev?: ((chunks: ReadonlyArray<Uint8Array>, done: (error?: Error | null) => void) => boolean) | undefined
  readonly allocate?: ((size: number) => Uint8Array) | undefined
}

/** @internal */
export interface Limits {
  readonly capacity: number
  readonly maxBytes: number
  readonly backpressure: boolean
  readonly maxWriteBytes: number
}

/** @internal */
export class Outbound<M> {
  /**
   * The queue: `slots[0, count)`. Emptied by overwriting, not by a new array
   * or `length = 0`: V8 frees an emptied array's storage and the next push
   * allocates 17 slots again, ~180 B per write (a third of what a heartbeat
   * ping cost beyond a raw server's, with 10,000 idle connections).
   */
  private slots: Array<Wire.Payload> = [noPayload]
  private count = 0
  /** The batch of one payload (the usual one), reused. */
  private readonly one: Array<Wire.Payload> = [noPayload]
  /** Payload bytes queued (text: UTF-16 units). */
  private bytes = 0
  /** A write is in flight (the sink asked to wait for drain, or the writer fiber is writing). */
  writing = false
  /** A deliberate close: once everything queued is written, the connection ends with it. */
  closing: Kicked | undefined = undefined
  private sink: Sink | undefined = undefined
  private gather = false
  private allocate: ((size: number) => Uint8Array) | undefined = undefined
  private wake: (() => void) | undefined = undefined
  private flushScheduled = false
  /**
   * Inside the transport's data callback: a push queues no flush microtask
   * (`queueMicrotask` allocates); the callback flushes, or queues once, at its end.
   */
  inData = false
  private flushTask: (() => void) | undefined = undefined
  private writeDone: ((error?: Error | null) => void) | undefined = undefined
  private roomWaiters: Waiters = undefined
  private flushWaiters: Waiters = undefined
  /** Room granted beyond the bounds for a burst (`pushBurst`), until the queue is back under them. */
  private extraBytes = 0
  private extraCount = 0

  constructor(
    private readonly core: Core,
    private readonly wire: Wire.Wire<M>,
    private readonly limits: Limits,
    private readonly stats: Stats
  ) {}

  size(): number {
    return this.count
  }

  /** At or over a bound: under backpressure the senders wait, else the next push fails. */
  isFull(): boolean {
    return this.count >= this.limits.capacity + this.extraCount || this.bytes >= this.limits.maxBytes + this.extraBytes
  }

  /** Under backpressure, over a bound: the handler's next batch waits for room. */
  holds(): boolean {
    return this.limits.backpressure && this.core.failure === undefined && this.isFull()
  }

  /** Whether the connection may still queue (not ended, not closing). */
  accepts(): boolean {
    return this.core.failure === undefined && this.closing === undefined
  }

  /**
   * Queues `payload`. Over a bound: under `disconnect` the connection fails
   * with `SlowConsumer` and this returns false; under `backpressure` it is
   * queued all the same (the caller holds its input until there is room).
   */
  push(payload: Wire.Payload): boolean {
    if (!this.accepts()) return false
    if (!this.limits.backpressure && this.isFull()) {
      const limits = this.limits
      this.core.fail(
        this.count >= limits.capacity
          ? new SlowConsumer({ queued: this.count, capacity: limits.capacity })
          : new SlowConsumer({
            queued: this.count,
            capacity: limits.capacity,
            queuedBytes: this.bytes,
            maxBytes: limits.maxBytes
          })
      )
      return false
    }
    if (this.count < this.slots.length) this.slots[this.count] = payload
    else this.slots.push(payload)
    this.count++
    this.bytes += payload.length
    this.kick()
    return true
  }

  /**
   * Queues every payload of a bounded burst the program owes the peer (a
   * resume's replay): the bounds are raised by the burst's size until the
   * queue has drained back under them, so the burst itself never makes a
   * slow consumer; a peer that does not read still meets the raised bounds.
   */
  pushBurst(messages: ReadonlyArray<M | Wire.Encoded>): boolean | Error {
    if (!this.accepts()) return false
    const payloads: Array<Wire.Payload> = []
    for (const message of messages) {
      const payload = this.payloadOf(message)
      if (payload instanceof Error) return payload
      payloads.push(payload)
    }
    for (const payload of payloads) this.extraBytes += payload.length
    this.extraCount += payloads.length
    for (const payload of payloads) if (!this.push(payload)) return false
    return true
  }

  /** Encodes and queues `message` (or a payload encoded once for many). */
  pushMessage(message: M | Wire.Encoded): boolean | Error {
    const payload = this.payloadOf(message)
    return payload instanceof Error ? payload : this.push(payload)
  }

  /** `message` encoded by the wire (a shared payload as it is), or the codec's error. */
  private payloadOf(message: M | Wire.Encoded): Wire.Payload | Error {
    return message instanceof Wire.Encoded ? message.payload : this.wire.encode(message)
  }

  /** Waits until the queue is under its bounds (or the connection ended). */
  whenRoom(): Effect.Effect<void> {
    return waitFor((resume) => (this.roomWaiters ??= []).push(resume))
  }

  /** Waits until every queued payload has been written (or the connection ended). */
  get flushed(): Effect.Effect<void> {
    return Effect.suspend(() =>
      (this.count > 0 || this.writing) && this.core.failure === undefined
        ? waitFor((resume) => (this.flushWaiters ??= []).push(resume))
        : Effect.void
    )
  }

  /** Closes after the flush: the connection ends with `kicked` once the queue is empty. */
  closeWith(kicked: Kicked): void {
    if (this.core.failure !== undefined) return
    this.closing = kicked
    this.kick()
  }

  /** The connection ended: wake everyone who waits. */
  release(): void {
    const room = this.roomWaiters
    const flush = this.flushWaiters
    this.roomWaiters = this.flushWaiters = undefined
    releaseAll(room)
    releaseAll(flush)
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  // --- draining ---

  /** The callback driver: write to `sink` from now on. */
  attach(sink: Sink): void {
    this.sink = sink
    this.allocate = sink.allocate?.bind(sink)
    this.gather = sink.writev !== undefined
    this.kick()
  }

  /** The fiber driver: `resume` is called once there is work (a payload or a close). */
  onWork(resume: () => void): void {
    if (this.count > 0 || this.closing !== undefined || this.core.failure !== undefined) resume()
    else this.wake = resume
  }

  /** Makes the writer look at the queue. */
  private kick(): void {
    if (this.sink !== undefined) {
      if (!this.flushScheduled && !this.writing) {
        this.flushScheduled = true
        if (!this.inData) this.queueFlush()
      }
    } else if (this.wake !== undefined) {
      const wake = this.wake
      this.wake = undefined
      wake()
    }
  }

  /** Whether a flush is due that the data callback may do at once. */
  get pending(): boolean {
    return this.flushScheduled
  }

  /** Flushes in a microtask (after the current callback and what it queued). */
  queueFlush(): void {
    queueMicrotask(this.flushTask ??= () => {
      // A flush that ran meanwhile (from the data callback) leaves nothing for this one.
      if (this.flushScheduled) this.flush()
    })
  }

  /**
   * Takes the next batch off the queue (up to `maxWriteBytes`, at least one
   * payload) and frames it for one write. Releases senders waiting for room.
   */
  take(gather: boolean): Wire.Batch | FrameError {
    const maxWriteBytes = this.limits.maxWriteBytes
    const slots = this.slots
    const queued = this.count
    let size = 0
    let count = 0
    while (count < queued && (count === 0 || size + slots[count]!.length <= maxWriteBytes)) {
      size += slots[count]!.length
      count++
    }
    let batch: Array<Wire.Payload>
    if (count === 1) {
      batch = this.one
      batch[0] = slots[0]!
    } else {
      batch = slots.slice(0, count)
    }
    this.dropFirst(count)
    this.bytes -= size
    if (this.extraCount > 0 && this.bytes <= this.limits.maxBytes && this.count <= this.limits.capacity) {
      // The burst has drained: the usual bounds again.
      this.extraBytes = 0
      this.extraCount = 0
    }
    if (this.roomWaiters !== undefined && !this.isFull()) {
      const room = this.roomWaiters
      this.roomWaiters = undefined
      releaseAll(room)
    }
    const framed = this.wire.frame(batch, gather, this.allocate, size)
    const frames = batch.length
    this.one[0] = noPayload
    if (framed instanceof FrameError) return framed
    const length = Wire.batchLength(framed)
    this.stats.framesOut += frames
    this.stats.bytesOut += length
    Metrics.framesOut.unsafeUpdate(frames, noTags)
    Metrics.bytesOut.unsafeUpdate(length, noTags)
    return framed
  }

  /** Removes the first `n` queued payloads, keeping the slots (a long queue's are let go). */
  private dropFirst(n: number): void {
    const slots = this.slots
    const left = this.count - n
    if (left === 0 && slots.length > 64) {
      this.slots = [noPayload]
    } else {
      for (let i = 0; i < left; i++) slots[i] = slots[i + n]!
      for (let i = left; i < this.count; i++) slots[i] = noPayload
    }
    this.count = left
  }

  /** The queue is empty and nothing is in flight: release flush waiters; a requested close happens now. */
  idle(): void {
    this.writing = false
    const waiters = this.flushWaiters
    if (waiters !== undefined) {
      this.flushWaiters = undefined
      releaseAll(waiters)
    }
    if (this.closing !== undefined) this.core.fail(this.closing)
  }

  /** The callback driver's flush: batches to the sink while it takes them at once. */
  flush(): void {
    this.flushScheduled = false
    const sink = this.sink
    if (sink === undefined || this.core.failure !== undefined || this.writing) return
    while (this.count > 0) {
      const bytes = this.take(this.gather)
      if (bytes instanceof FrameError) return this.core.fail(bytes)
      this.writing = true
      const done = this.writeDone ??= (error?: Error | null) => {
        this.writing = false
        if (error) return this.core.fail(new Socket.SocketGenericError({ reason: "Write", cause: error }))
        this.flush()
      }
      const taken = Array.isArray(bytes) ? sink.writev!(bytes, done) : sink.write(bytes, done)
      if (!taken) return
      this.writing = false
      if (this.core.failure !== undefined) return
    }
    this.idle()
  }
}
