/**
 * What the three modes share: turning a `Server` into the app's `Running`
 * view and the `Server` options every mode takes from `Modes.Common`.
 */
import type * as SocketServer from "@effect/platform/SocketServer"
import type * as Server from "@tether/runtime/Server"
import type * as Modes from "../Modes.js"

export const tcp = (server: { readonly address: SocketServer.Address }) => server.address as SocketServer.TcpAddress

export const running = <M>(server: Server.Server<M>): Modes.Running => ({
  address: tcp(server),
  stats: server.stats,
  connections: server.connections,
  sessions: () => server.registry.list()
})

export const serverOptions = (options: Modes.Common) => ({
  loginTimeout: options.loginTimeout,
  drainTimeout: options.drainTimeout,
  ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}),
  ...(options.driver !== undefined ? { driver: options.driver } : {}),
  ...(options.maxPending !== undefined ? { maxPending: options.maxPending } : {}),
  ...(options.maxPendingPerAddress !== undefined ? { maxPendingPerAddress: options.maxPendingPerAddress } : {}),
  ...(options.maxLoginBytes !== undefined ? { maxLoginBytes: options.maxLoginBytes } : {})
})
