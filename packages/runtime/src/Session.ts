/**
 * A session: one peer's standing with a server (who it logged in as, where
 * from), apart from the connection that carries it now. A connection ends
 * with its socket; a session is the thing a later reconnect can resume (the
 * rooms it is in, the last offsets it was sent), so it holds its current
 * connection rather than being it.
 *
 * @since 0.2.0
 */
import type * as Wire from "@tether/protocol/Wire"
import type * as Effect from "effect/Effect"
import type * as Connection from "./Connection.js"
import type { Kicked, ProtocolError, SlowConsumer } from "./ConnectionError.js"

let nextId = 1

/**
 * @since 0.2.0
 * @category models
 */
export class Session<M> {
  /** Unique within the process (log lines carry it as `session`). */
  readonly id: number = nextId++
  /** The user name it logged in with; undefined before login, or on a server without a login step. */
  user: string | undefined = undefined

  constructor(
    /** The peer's address, `host:port`, when the transport knows it. */
    readonly remote: string,
    /** The connection that carries the session now. */
    public connection: Connection.Connection<M>
  ) {}

  /** `Connection.send` on the current connection. */
  send(message: M | Wire.Encoded): Effect.Effect<void, SlowConsumer | Kicked | ProtocolError> {
    return this.connection.send(message)
  }

  /** `Connection.unsafeSend` on the current connection: true when queued. */
  unsafeSend(message: M | Wire.Encoded): boolean {
    return this.connection.unsafeSend(message)
  }

  /** `Connection.unsafeSendBurst` on the current connection. */
  unsafeSendBurst(messages: ReadonlyArray<M | Wire.Encoded>): boolean {
    return this.connection.unsafeSendBurst(messages)
  }
}

/**
 * A session of any message type (what protocol-agnostic services hold).
 *
 * @since 0.2.0
 * @category models
 */
export type Any = Session<any>
