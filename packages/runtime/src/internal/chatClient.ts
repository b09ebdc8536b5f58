/**
 * The chat client's machinery: the login built from the resume state at
 * each attempt, the outbox flushed in order after each login, Acks and
 * refusals, the replay countdown per room, and the event hub.
 *
 * @internal
 */
import type * as Codec from "@tether/protocol/Codec"
import type * as Frame from "@tether/protocol/Frame"
import * as Message from "@tether/protocol/Message"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import * as PubSub from "effect/PubSub"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as ChatClient from "../ChatClient.js"
import * as Client from "../Client.js"
import * as Outbox from "../Outbox.js"
import * as ResumeState from "../ResumeState.js"
import * as TetherProtocol from "../TetherProtocol.js"

const isText: (u: string) => boolean = Schema.is(Message.Text)
const isRoom: (u: string) => boolean = Schema.is(Message.RoomName)

/** Only requests are correlated by the generic client: Acks belong to the outbox's ids. @internal */
const correlate = (message: Message.Message): number | undefined =>
  message._tag === "Response" || message._tag === "RequestFailed" ? message.id : undefined

/** @internal */
export const make = (
  options: ChatClient.Options,
  framing: Frame.Framing,
  codec: Codec.Codec<Message.Message>
): Effect.Effect<ChatClient.ChatClient, never, Scope.Scope> =>
  Effect.gen(function*() {
    const outbox = yield* Outbox.make({
      ...(options.outboxCapacity !== undefined ? { capacity: options.outboxCapacity } : {}),
      ...(options.firstId !== undefined ? { firstId: options.firstId } : {})
    })
    const resume = ResumeState.unsafeMake()
    const hub = yield* PubSub.bounded<ChatClient.Event>({
      capacity: options.eventCapacity ?? 4096,
      replay: ChatClient.eventReplay
    })
    const publish = (event: ChatClient.Event) => PubSub.publish(hub, event)
    const background = yield* FiberSet.make<void>()
    const retryAfterMs = Duration.toMillis(options.retryAfter ?? "1 second")

    // Who waits for which line's Ack (at most one Deferred per queued line).
    const waiters = new Map<number, Deferred.Deferred<void, ChatClient.SayRejected>>()
    const drainWaiters: Array<Deferred.Deferred<void>> = []
    const settled = (id: number, exit: Exit.Exit<void, ChatClient.SayRejected>) => {
      const waiter = waiters.get(id)
      if (waiter !== undefined) {
        waiters.delete(id)
        Deferred.unsafeDone(waiter, exit)
      }
      if (outbox.size() === 0) for (const d of drainWaiters.splice(0)) Deferred.unsafeDone(d, Exit.void)
    }

    const joined = new Set<string>()
    let current: string = Message.defaultRoom
    let joining: string | undefined
    // Per connection: the waiting lines sent on it (never more than the
    // outbox holds), whether the outbox has been flushed to it (until then
    // `say` only queues, so lines go out in order), the rooms still replaying.
    let sent = new Set<number>()
    let ready = false
    // Counts logins, so a retry scheduled on one connection does nothing on the next.
    let generation = 0
    let retrying = false
    const replaying = new Map<string, { left: number; count: number }>()
    // The resume secret of the last session (from its LoginResult): presented
    // at the next login, it lets that login take over the session if the
    // server has not yet seen its connection drop.
    let resumeSecret: string | undefined
    // The lines resent after a login, until each is acknowledged or dropped.
    const resent = new Set<number>()
    let resentAcked = 0

    const baseLogin = TetherProtocol.clientLogin(options.user, options.password)
    const client: Client.Client<Message.Message> = yield* Client.make<Message.Message>({
      connect: options.connect,
      framing,
      codec,
      dialect: TetherProtocol.dialect,
      ...(options.heartbeat ? { heartbeat: options.heartbeat } : {}),
      ...(options.reconnect !== undefined ? { reconnect: options.reconnect } : {}),
      correlate,
      login: {
        ...baseLogin,
        result: (message) => {
          if (message._tag === "LoginResult" && message.status === 0) resumeSecret = message.resumeSecret
          return baseLogin.result(message)
        },
        // The server may hold the previous session until it notices it is gone
        // (and cannot hand it over: another node of a cluster, or no secret).
        retryOnReconnect: [100],
        // Built at each attempt: a new connection starts unflushed, with the positions seen so far.
        message: () => {
          ready = false
          retrying = false
          generation++
          sent = new Set()
          replaying.clear()
          const positions = resume.positions()
          // Not `Login.make`: a bad name or password is the server's to refuse (LoginRefused), not a throw here.
          const login: Message.Login = typeof options.password === "string"
            ? { _tag: "Login", user: options.user, password: options.password }
            : { _tag: "Login", user: options.user, token: options.password.token }
          return {
            ...login,
            ...(positions.length > 0 ? { resume: positions } : {}),
            ...(resumeSecret !== undefined ? { resumeSecret } : {})
          }
        }
      },
      onLogin: () => flush(true),
      onMessage: (message) => receive(message)
    })

    const sendLine = (line: Outbox.Line) => {
      sent.add(line.id)
      return Effect.ignore(client.send(Message.Say.make({ id: line.id, text: line.text, room: line.room })))
    }

    /**
     * Sends every waiting line not yet sent on this connection, in order; then
     * `say` may send directly. After a login the lines are counted for
     * `QueuedSent`; after a retryable refusal they are not.
     */
    const flush = (afterLogin: boolean): Effect.Effect<void> =>
      Effect.gen(function*() {
        for (;;) {
          const todo = outbox.pending().filter((line) => !sent.has(line.id))
          if (todo.length === 0) break
          for (const line of todo) {
            if (afterLogin) resent.add(line.id)
            yield* sendLine(line)
          }
        }
        ready = true
      })

    const resolved = (id: number, acked: boolean) =>
      Effect.suspend(() => {
        if (!resent.delete(id)) return Effect.void
        if (acked) resentAcked++
        if (resent.size > 0 || resentAcked === 0) return Effect.void
        const count = resentAcked
        resentAcked = 0
        return publish({ _tag: "QueuedSent", count })
      })

    const receive = (message: Message.Message): Effect.Effect<void> =>
      Effect.suspend((): Effect.Effect<unknown> => {
        switch (message._tag) {
          case "Said": {
            const room = message.room ?? Message.defaultRoom
            const observation = resume.receive(message)!
            const replay = replaying.get(room)
            let done: ChatClient.Event | undefined
            if (replay !== undefined) {
              if (--replay.left <= 0) {
                replaying.delete(room)
                done = { _tag: "Replayed", room, count: replay.count }
              }
            }
            if (!ResumeState.isShown(observation)) return done ? publish(done) : Effect.void
            const said: ChatClient.Event = observation._tag === "Gap"
              ? { _tag: "Said", room, said: message, replayed: replay !== undefined, missed: observation.missed }
              : { _tag: "Said", room, said: message, replayed: replay !== undefined }
            return done ? publish(said).pipe(Effect.zipRight(publish(done))) : publish(said)
          }
          case "Ack": {
            // A repeated Ack (of a line resent before its first Ack came) changes nothing.
            if (!outbox.ack(message.id)) return Effect.void
            sent.delete(message.id)
            settled(message.id, Exit.void)
            const room = message.room ?? Message.defaultRoom
            return publish(
              message.offset === undefined
                ? { _tag: "Acked", id: message.id, room }
                : { _tag: "Acked", id: message.id, room, offset: message.offset }
            ).pipe(Effect.zipRight(resolved(message.id, true)))
          }
          case "SayRefused": {
            if (Message.isRetryable(message.code)) {
              // Hold back: new lines queue behind the refused one, and after the
              // delay every line not taken goes again, in order, same ids.
              if (!sent.delete(message.id)) return Effect.void
              ready = false
              if (retrying) return Effect.void
              retrying = true
              const on = generation
              return FiberSet.run(
                background,
                Effect.sleep(message.retryAfter ?? retryAfterMs).pipe(Effect.zipRight(Effect.suspend(() => {
                  if (on !== generation) return Effect.void
                  retrying = false
                  return flush(false)
                })))
              )
            }
            const line = outbox.drop(message.id)
            if (line === undefined) return Effect.void
            sent.delete(message.id)
            settled(
              message.id,
              Exit.fail(new ChatClient.SayRejected({ id: message.id, code: message.code, detail: message.detail ?? "" }))
            )
            return publish({
              _tag: "SayRefused",
              line,
              code: message.code,
              ...(message.detail !== undefined ? { detail: message.detail } : {})
            }).pipe(Effect.zipRight(resolved(message.id, false)))
          }
          case "RoomJoined": {
            resume.receive(message)
            joined.add(message.room)
            const becomesCurrent = joining === message.room
            if (becomesCurrent) (current = message.room, joining = undefined)
            return publish({ _tag: "RoomJoined", room: message.room, current: becomesCurrent })
          }
          case "Recovered": {
            joined.add(message.room)
            if (message.replayed === 0) return publish({ _tag: "Replayed", room: message.room, count: 0 })
            replaying.set(message.room, { left: message.replayed, count: message.replayed })
            return Effect.void
          }
          case "Unrecoverable":
            resume.receive(message)
            joined.add(message.room)
            return publish({ _tag: "Unrecoverable", room: message.room, reason: message.reason })
          case "RoomLeft":
            resume.receive(message)
            joined.delete(message.room)
            if (current === message.room) current = joined.values().next().value ?? Message.defaultRoom
            return publish({ _tag: "RoomLeft", room: message.room })
          case "RoomRefused":
            if (joining === message.room) joining = undefined
            return publish({
              _tag: "RoomRefused",
              room: message.room,
              code: message.code,
              ...(message.detail !== undefined ? { detail: message.detail } : {})
            })
          case "RoomList":
            return publish({ _tag: "RoomList", rooms: message.rooms })
          case "Joined":
            return publish({ _tag: "Joined", room: message.room ?? Message.defaultRoom, user: message.user })
          case "Left":
            return publish({
              _tag: "Left",
              room: message.room ?? Message.defaultRoom,
              user: message.user,
              reason: message.reason
            })
          case "Present":
            return publish({ _tag: "Present", room: message.room ?? Message.defaultRoom, users: message.users })
          case "Bye":
          case "Failure":
            return publish({ _tag: "Notice", message })
          default:
            return Effect.void
        }
      })

    // The connection's state changes, relayed in order.
    yield* client.events.pipe(
      Stream.runForEach((state) => publish({ _tag: "Connection", state })),
      FiberSet.run(background)
    )

    const checkRoom = (room: string) =>
      isRoom(room) ? Effect.void : Effect.fail(
        new ChatClient.InvalidInput({ detail: `not a room name: ${JSON.stringify(room.slice(0, 40))} (# then 1 to 32 of a-z 0-9 _ -)` })
      )

    const say = (text: string, room?: string) =>
      Effect.suspend(() => {
        const target = room ?? current
        if (!isText(text)) {
          return Effect.fail(new ChatClient.InvalidInput({ detail: `a line is at most 16,384 characters (${text.length})` }))
        }
        return Effect.zipRight(
          checkRoom(target),
          Effect.suspend(() => {
            const offered = outbox.offer(target, text)
            if (Either.isLeft(offered)) return Effect.fail(offered.left)
            const line = offered.right
            return ready ? Effect.as(sendLine(line), line) : Effect.succeed(line)
          })
        )
      })

    const awaitAck = (id: number): Effect.Effect<void, ChatClient.SayRejected> =>
      Effect.suspend(() => {
        if (!outbox.pending().some((line) => line.id === id)) return Effect.void
        let waiter = waiters.get(id)
        if (waiter === undefined) {
          waiter = Deferred.unsafeMake<void, ChatClient.SayRejected>(FiberId.none)
          waiters.set(id, waiter)
        }
        return Deferred.await(waiter)
      })

    const awaitDrained: Effect.Effect<void> = Effect.suspend(() => {
      if (outbox.size() === 0) return Effect.void
      return Effect.flatMap(Deferred.make<void>(), (d) => {
        drainWaiters.push(d)
        return Deferred.await(d)
      })
    })

    return {
      user: options.user,
      events: Stream.fromPubSub(hub),
      say,
      awaitAck,
      awaitDrained,
      join: (room) =>
        Effect.zipRight(
          checkRoom(room),
          Effect.suspend(() => {
            joining = room
            return client.send(Message.Join.make({ room }))
          })
        ),
      leave: (room) =>
        Effect.suspend(() => {
          const target = room ?? current
          return Effect.zipRight(checkRoom(target), client.send(Message.Leave.make({ room: target })))
        }),
      listRooms: client.send(Message.Rooms.make({})),
      who: (room) =>
        Effect.suspend(() => {
          const target = room ?? current
          return Effect.zipRight(checkRoom(target), client.send(Message.Who.make({ room: target })))
        }),
      currentRoom: Effect.sync(() => current),
      rooms: Effect.sync(() => Array.from(joined).sort()),
      queued: Effect.sync(() => outbox.size()),
      state: client.state,
      awaitConnected: client.awaitConnected,
      close: client.close
    }
  })
