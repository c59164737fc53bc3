/**
 * What the HTTP app on the SQL store does when its database goes away and comes back, against a real
 * PostgreSQL and a real MariaDB started by the harnesses (never `DATABASE_URL` / `MYSQL_URL`: these tests
 * stop the server) and a real HTTP listener on 127.0.0.1.
 *
 * Requests keep coming the whole time, from a client that never stops: while the database is down each
 * answers 503 (never 500) within a bounded time; once it is back on the same data dir and port the pool
 * connects again and the same session answers 200, without an application restart.
 *
 * Everything runs on the real clock and is bounded: each request has a deadline, each poll a limit.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as MysqlClient from "@effect/sql-mysql2/MysqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Auth from "../../src/Auth.js"
import * as SessionHttp from "../../src/layers/Http.js"
import * as Sql from "../../src/layers/Sql.js"
import * as Session from "../../src/Session.js"
import * as Transport from "../../src/Transport.js"
import type { DatabaseServer } from "../support/databaseServer.js"
import { startMariadbServer } from "../support/mariadb.js"
import { startPostgresServer } from "../support/postgres.js"

class AppSession extends Session.Tag<AppSession>()("test/SqlFault/AppSession", {
  data: Schema.Struct({ csrf: Schema.String })
}) {}

const AppHttp = SessionHttp.make(AppSession)

const router = HttpRouter.empty.pipe(
  HttpRouter.get("/login", Effect.as(AppHttp.issue("u1", { csrf: Auth.randomId(16) }), HttpServerResponse.text("in"))),
  HttpRouter.get("/me", Effect.map(AppHttp.require, (session) => HttpServerResponse.text(session.userId)))
)

const queryTimeout = Duration.millis(500)
/** What one request may take while the database is down: the query timeout, the connect timeout, slack. */
const requestDeadline = Duration.seconds(4)
/** How long the pool may take to connect again once the database is back. */
const recoveryDeadline = Duration.seconds(20)

/** A database server the test may stop and start, and its client (a pool that outlives the outage). */
interface Database {
  readonly name: string
  readonly start: Effect.Effect<
    DatabaseServer<unknown> & { readonly client: Layer.Layer<SqlClient.SqlClient, unknown> },
    unknown,
    Scope.Scope
  >
}

const databases: ReadonlyArray<Database> = [
  {
    name: "PostgreSQL",
    start: Effect.map(startPostgresServer, (server) => ({
      ...server,
      client: PgClient.layer({ url: Redacted.make(server.url), connectTimeout: "1 second", maxConnections: 10 })
    }))
  },
  {
    name: "MariaDB",
    start: Effect.map(startMariadbServer, (server) => ({
      ...server,
      client: MysqlClient.layer({
        url: Redacted.make(server.url),
        maxConnections: 10,
        poolConfig: { connectTimeout: 1_000 }
      })
    }))
  }
]

const appLayer = (client: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  HttpServer.serve(router, AppHttp.middleware).pipe(
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provide(
      Session.layer(AppSession, { ttl: "1 hour" }).pipe(
        Layer.provideMerge(Layer.mergeAll(
          Sql.layer({ migrate: true, prune: false, queryTimeout }).pipe(Layer.provide(client)),
          Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] }),
          Transport.layerCookie({ secure: false })
        ))
      )
    )
  )

interface Reply {
  readonly status: number
  readonly millis: number
  readonly retryAfter: string | undefined
  readonly cookie: string | undefined
}

/** One request, its status and wall-clock time; a request slower than `requestDeadline` fails the test. */
const request = (path: string, cookie?: string): Effect.Effect<Reply, Error, HttpClient.HttpClient> =>
  HttpClient.get(path, { headers: cookie === undefined ? {} : { cookie } }).pipe(
    Effect.tap((response) => response.text),
    Effect.scoped,
    Effect.timed,
    Effect.timeoutFail({
      duration: requestDeadline,
      onTimeout: () => new Error(`GET ${path} took longer than ${Duration.format(requestDeadline)}`)
    }),
    Effect.map(([elapsed, response]) => {
      const header = response.headers["set-cookie"] as string | ReadonlyArray<string> | undefined
      const line = (typeof header === "string" ? [header] : header ?? []).find((line) => line.startsWith("session="))
      return {
        status: response.status,
        millis: Duration.toMillis(elapsed),
        retryAfter: response.headers["retry-after"],
        cookie: line?.slice(0, line.indexOf(";"))
      }
    }),
    Effect.catchTag("RequestError", "ResponseError", (error) => Effect.fail(new Error(error.message)))
  )

/** Polls `path` until it answers `status`, for at most `recoveryDeadline`. */
const awaitStatus = (path: string, status: number, cookie?: string) =>
  request(path, cookie).pipe(
    Effect.filterOrFail((reply) => reply.status === status, (reply) => reply.status),
    Effect.retry({ schedule: Schedule.spaced("100 millis"), while: (e) => typeof e === "number" }),
    Effect.timeoutFail({
      duration: recoveryDeadline,
      onTimeout: () => new Error(`GET ${path} did not answer ${status} within ${Duration.format(recoveryDeadline)}`)
    })
  )

for (const database of databases) {
  describe(`SQL store on ${database.name}: faults over HTTP`, () => {
    it.scopedLive(
      "a stopped database gives bounded 503s, never 500, and the app recovers when it returns on the same port",
      () =>
        Effect.gen(function*() {
          const server = yield* database.start
          const app = yield* Layer.build(appLayer(server.client)).pipe(
            Effect.provide(Logger.remove(Logger.defaultLogger))
          )
          yield* Effect.gen(function*() {
            const login = yield* request("/login")
            expect(login.status).toBe(200)
            const cookie = login.cookie!
            expect(cookie).toBeDefined()
            expect((yield* request("/me", cookie)).status).toBe(200)

            // a client that keeps asking, through the outage and the recovery
            const replies: Array<Reply> = []
            let running = true
            const load = yield* Effect.forkScoped(
              Effect.whileLoop({
                while: () => running,
                body: () => Effect.zipLeft(request("/me", cookie), Effect.sleep("20 millis")),
                step: (reply) => replies.push(reply)
              })
            )

            yield* server.stop
            expect(yield* server.pid).toBeUndefined()
            const down: Array<Reply> = []
            for (let i = 0; i < 10; i++) down.push(yield* request("/me", cookie))
            down.push(yield* request("/login"))
            down.push(
              ...yield* Effect.all(Array.from({ length: 20 }, () => request("/me", cookie)), {
                concurrency: "unbounded"
              })
            )
            for (const reply of down) expect(reply.status).toBe(503)
            // the middleware's own 503 (a session could not be read) tells the client when to retry
            expect(down[0]!.retryAfter).toBe("1")
            // no session at all needs no store: 401, not 503
            expect((yield* request("/me")).status).toBe(401)

            // back on the same data dir and port: the session written before the outage answers again
            yield* server.start
            yield* awaitStatus("/me", 200, cookie)
            expect((yield* request("/login")).status).toBe(200)
            yield* Effect.sleep("300 millis")
            running = false
            yield* load.await

            const statuses = new Set(replies.map((reply) => reply.status))
            expect([...statuses].sort()).toEqual([200, 503])
            expect(replies.at(-1)!.status).toBe(200)
            const slowest = Math.max(...replies.map((reply) => reply.millis), ...down.map((reply) => reply.millis))
            expect(slowest).toBeLessThan(Duration.toMillis(requestDeadline))
            console.log(
              `${database.name} outage over HTTP: ${replies.length} requests from the steady client ` +
                `(${replies.filter((reply) => reply.status === 503).length} answered 503), the slowest of all ` +
                `${Math.round(slowest)} ms`
            )
          }).pipe(Effect.provide(app))
        }),
      90_000
    )
  })
}
