/**
 * The messages of rooms and resume: joining and leaving rooms, listing them,
 * the server's answer for each room a login resumed, and the refusal of a
 * line the server cannot take right now. All are members of
 * `Message.Message` and re-exported by `Message`.
 *
 * Order on one connection (see the package README):
 * - after `LoginResult` (status 0), for each resumed room: `Recovered`
 *   followed by exactly `replayed` `Said`s of that room in offset order, or
 *   `Unrecoverable`; live `Said`s of that room come only after them;
 * - without resume (or an empty one): `RoomJoined` for `#lobby`;
 * - `Join` is answered by `RoomJoined` or `RoomRefused`, `Leave` by
 *   `RoomLeft` or `RoomRefused`, `Rooms` by `RoomList`.
 *
 * @since 0.2.0
 */
import * as Schema from "effect/Schema"
import { Epoch, Millis, Offset, RoomName, U32, maxRoomsPerSession } from "./Fields.js"

const Detail = Schema.String.pipe(Schema.maxLength(256))

/**
 * Join `room`. Answered by {@link RoomJoined} or {@link RoomRefused}; the
 * room's other members get `Joined`.
 *
 * @since 0.2.0
 * @category messages
 */
export const Join = Schema.TaggedStruct("Join", { room: RoomName })
/**
 * @since 0.2.0
 * @category messages
 */
export type Join = typeof Join.Type

/**
 * Leave `room`. Answered by {@link RoomLeft} or {@link RoomRefused}; the
 * room's other members get `Left`.
 *
 * @since 0.2.0
 * @category messages
 */
export const Leave = Schema.TaggedStruct("Leave", { room: RoomName })
/**
 * @since 0.2.0
 * @category messages
 */
export type Leave = typeof Leave.Type

/**
 * Which rooms am I in? Answered by {@link RoomList}.
 *
 * @since 0.2.0
 * @category messages
 */
export const Rooms = Schema.TaggedStruct("Rooms", {})
/**
 * @since 0.2.0
 * @category messages
 */
export type Rooms = typeof Rooms.Type

/**
 * The rooms this session is in, sorted.
 *
 * @since 0.2.0
 * @category messages
 */
export const RoomList = Schema.TaggedStruct("RoomList", {
  rooms: Schema.Array(RoomName).pipe(Schema.maxItems(maxRoomsPerSession))
})
/**
 * @since 0.2.0
 * @category messages
 */
export type RoomList = typeof RoomList.Type

/**
 * This session is now in `room`, whose history stands at (`epoch`,
 * `offset`): the client records that position, so that after a reconnect it
 * can resume from it even if nothing was said in between.
 *
 * @since 0.2.0
 * @category messages
 */
export const RoomJoined = Schema.TaggedStruct("RoomJoined", { room: RoomName, epoch: Epoch, offset: Offset })
/**
 * @since 0.2.0
 * @category messages
 */
export type RoomJoined = typeof RoomJoined.Type

/**
 * This session is no longer in `room`.
 *
 * @since 0.2.0
 * @category messages
 */
export const RoomLeft = Schema.TaggedStruct("RoomLeft", { room: RoomName })
/**
 * @since 0.2.0
 * @category messages
 */
export type RoomLeft = typeof RoomLeft.Type

/**
 * Why a `Join` or `Leave` of `room` was refused:
 * - `TooManyRooms`: the session is already in `maxRoomsPerSession` rooms;
 * - `NotMember`: a `Leave` of a room the session is not in;
 * - `Unavailable`: the server cannot reach its room state now (retry later).
 *
 * @since 0.2.0
 * @category messages
 */
export const RoomRefused = Schema.TaggedStruct("RoomRefused", {
  room: RoomName,
  code: Schema.Literal("TooManyRooms", "NotMember", "Unavailable"),
  detail: Schema.optionalWith(Detail, { exact: true })
})
/**
 * @since 0.2.0
 * @category messages
 */
export type RoomRefused = typeof RoomRefused.Type

/**
 * The answer to one resumed room of a `Login`: the next `replayed` messages
 * of this connection are that room's `Said`s the client missed, in offset
 * order, complete; after them the room stands at (`epoch`, `offset`) and live
 * lines follow with greater offsets. A client does not move its position to
 * `offset` on this message: the replayed `Said`s carry their own.
 *
 * @since 0.2.0
 * @category messages
 */
export const Recovered = Schema.TaggedStruct("Recovered", {
  room: RoomName,
  epoch: Epoch,
  offset: Offset,
  replayed: Offset
})
/**
 * @since 0.2.0
 * @category messages
 */
export type Recovered = typeof Recovered.Type

/**
 * The answer to one resumed room of a `Login` whose missed lines cannot all
 * be replayed, so none are: the client tells its user ("missed messages in
 * #name could not be recovered") and continues from (`epoch`, `offset`).
 * - `EpochChanged`: the history the client's position refers to is gone
 *   (e.g. an in-memory server restarted);
 * - `TooOld`: lines after the client's position were already trimmed from
 *   the room's bounded history.
 *
 * @since 0.2.0
 * @category messages
 */
export const Unrecoverable = Schema.TaggedStruct("Unrecoverable", {
  room: RoomName,
  reason: Schema.Literal("EpochChanged", "TooOld"),
  epoch: Epoch,
  offset: Offset
})
/**
 * @since 0.2.0
 * @category messages
 */
export type Unrecoverable = typeof Unrecoverable.Type

/**
 * Codes of {@link SayRefused}:
 * - `Unavailable`: the room's history cannot take the line now (retryable);
 * - `RateLimited`: too many lines too fast (retryable, after `retryAfter`);
 * - `NotMember`: the session is not in the `Say`'s room (not retryable).
 *
 * @since 0.2.0
 * @category fields
 */
export const SayRefusedCode = Schema.Literal("Unavailable", "RateLimited", "NotMember")

/**
 * @since 0.2.0
 * @category fields
 */
export type SayRefusedCode = typeof SayRefusedCode.Type

/**
 * Whether a client should keep a refused line queued and send it again
 * (with the same id) rather than drop it.
 *
 * @since 0.2.0
 * @category utils
 */
export const isRetryable = (code: SayRefusedCode): boolean => code !== "NotMember"

/**
 * The server did not accept the `Say` with this `id`, and did not broadcast
 * it. For a retryable `code` the client keeps the line and sends it again,
 * no sooner than `retryAfter` ms when given.
 *
 * @since 0.2.0
 * @category messages
 */
export const SayRefused = Schema.TaggedStruct("SayRefused", {
  id: U32,
  code: SayRefusedCode,
  retryAfter: Schema.optionalWith(Millis, { exact: true }),
  detail: Schema.optionalWith(Detail, { exact: true })
})
/**
 * @since 0.2.0
 * @category messages
 */
export type SayRefused = typeof SayRefused.Type
