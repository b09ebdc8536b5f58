/**
 * A fault-injecting TCP proxy for tests and benches: listens on 127.0.0.1
 * port 0 and relays each accepted connection to a target, breaking
 * connections on a schedule or on demand. Bounded (it only ever cuts what
 * it is told to) and deterministic given its schedule and choices, so a
 * seeded run is reproducible.
 *
 * - **By schedule**: the k-th connection accepted gets `schedule[k]`: once
 *   `afterBytes` bytes have passed in its `direction` (`up`: client to
 *   server; `down`: server to client) the rest of that chunk is dropped (so a
 *   cut usually lands mid-frame) and both sockets are destroyed. Connections
 *   past the end of the schedule are never cut that way, so a test settles.
 * - **On demand**: `cut(pick)` breaks the live connections `pick` chooses,
 *   now: `"reset"` destroys both sockets wherever the byte stream is;
 *   `"silent"` stops relaying in both directions but keeps both sockets open
 *   (a network that drops packets without a word: each side learns it only
 *   from its own timeouts).
 *
 * @example
 * ```ts
 * const proxy = yield* FaultProxy.make({ port: serverPort }, [])
 * // ...clients dial proxy.port...
 * proxy.cut((k) => k % 10 === 0)            // reset every tenth live connection
 * proxy.cut(() => true, "silent")           // blackhole all of them
 * ```
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import type * as Scope from "effect/Scope"
import * as net from "node:net"

/**
 * One scheduled cut.
 *
 * @since 0.2.0
 * @category models
 */
export interface Cut {
  readonly direction: "up" | "down"
  readonly afterBytes: number
}

/**
 * How `cut` breaks a connection: `reset` destroys both sockets, `silent`
 * drops everything from then on and keeps both open.
 *
 * @since 0.2.0
 * @category models
 */
export type Break = "reset" | "silent"

/**
 * @since 0.2.0
 * @category models
 */
export interface FaultProxy {
  readonly port: number
  /** Connections accepted so far. */
  readonly connections: () => number
  /** Connections cut so far (by schedule or on demand, reset or silent). */
  readonly cuts: () => number
  /** Connections relaying now (accepted, neither cut nor closed). */
  readonly live: () => number
  /**
   * Breaks each live connection for which `pick(k)` is true (`k`: 0, 1, ...
   * over the live ones, oldest first); returns how many it broke.
   */
  readonly cut: (pick: (k: number) => boolean, how?: Break) => number
}

/**
 * A drop schedule: up to `maxCuts` cuts, each after 1 to `maxBytes` bytes.
 *
 * @since 0.2.0
 * @category constructors
 */
export const arbitrarySchedule = (maxCuts: number, maxBytes: number): FastCheck.Arbitrary<ReadonlyArray<Cut>> =>
  FastCheck.array(
    FastCheck.record({
      direction: FastCheck.constantFrom("up" as const, "down" as const),
      afterBytes: FastCheck.integer({ min: 1, max: maxBytes })
    }),
    { maxLength: maxCuts }
  )

/** One relayed connection. */
interface Pair {
  /** Cut, closed or silenced: relays nothing more. */
  done: boolean
  readonly destroy: () => void
}

/**
 * Starts a proxy to `target` (default host 127.0.0.1); closing the scope
 * destroys every socket it holds and stops listening.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  target: { readonly port: number; readonly host?: string },
  schedule: ReadonlyArray<Cut> = []
): Effect.Effect<FaultProxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ server: net.Server; proxy: FaultProxy; sockets: Set<net.Socket> }>((resume) => {
      let accepted = 0
      let cutCount = 0
      const sockets = new Set<net.Socket>()
      const pairs = new Set<Pair>()
      const finish = (pair: Pair) => {
        pair.done = true
        pairs.delete(pair)
      }
      const track = (socket: net.Socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
        socket.on("error", () => {})
      }
      const server = net.createServer((client) => {
        const plan = schedule[accepted++]
        track(client)
        const upstream = net.connect({ port: target.port, host: target.host ?? "127.0.0.1" })
        track(upstream)
        let passed = 0
        const pair: Pair = {
          done: false,
          destroy: () => {
            client.destroy()
            upstream.destroy()
          }
        }
        pairs.add(pair)
        const relay = (from: net.Socket, to: net.Socket, direction: Cut["direction"]) => {
          from.on("data", (chunk: Buffer) => {
            if (pair.done) return
            if (plan === undefined || plan.direction !== direction || passed + chunk.length < plan.afterBytes) {
              if (plan?.direction === direction) passed += chunk.length
              to.write(chunk)
              return
            }
            finish(pair)
            cutCount++
            const part = chunk.subarray(0, plan.afterBytes - passed)
            if (part.length === 0) return pair.destroy()
            to.write(part, pair.destroy)
          })
          from.on("end", () => {
            if (!pair.done) to.end()
          })
          from.on("close", () => {
            if (!pair.done) (finish(pair), pair.destroy())
          })
        }
        upstream.on("connect", () => {
          relay(client, upstream, "up")
          relay(upstream, client, "down")
        })
      })
      const cut = (pick: (k: number) => boolean, how: Break = "reset") => {
        let k = 0
        let broken = 0
        for (const pair of Array.from(pairs)) {
          if (!pick(k++)) continue
          finish(pair)
          cutCount++
          broken++
          if (how === "reset") pair.destroy()
        }
        return broken
      }
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as net.AddressInfo).port
        resume(Effect.succeed({
          server,
          sockets,
          proxy: { port, connections: () => accepted, cuts: () => cutCount, live: () => pairs.size, cut }
        }))
      })
    }),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ proxy }) => proxy))
