/**
 * A free loopback port, for the servers the tests start (Redis, PostgreSQL, MariaDB, HTTP).
 */
import { Effect } from "effect"
import * as Net from "node:net"

/** A loopback port nothing listens on (bound, then released). */
export const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen({ host: "127.0.0.1", port: 0 }, () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})
