/**
 * The CSRF example (`npm start`) on the SQL store: `DATABASE_URL` points at a throwaway PostgreSQL from the
 * harness (a fresh database: the example must create its table), the app listens on a real socket, and a
 * login round trip goes through it; a client of its own looks at the table the example wrote.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as Csrf from "../../examples/csrf.js"
import * as Auth from "../../src/Auth.js"
import { startPostgres } from "../support/postgres.js"

/** One request over the socket: its status and its `Set-Cookie` values by name. */
const send = (url: string, headers: Record<string, string> = {}) =>
  Effect.promise(async () => {
    const response = await fetch(url, { redirect: "manual", headers, signal: AbortSignal.timeout(5_000) })
    await response.arrayBuffer()
    const cookies = new Map(
      response.headers.getSetCookie().map((line) => {
        const pair = line.slice(0, line.indexOf(";"))
        return [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)] as const
      })
    )
    return { status: response.status, cookies }
  })

describe("examples/csrf.ts on the SQL store (DATABASE_URL)", () => {
  it.scopedLive(
    "creates its table on a fresh PostgreSQL and serves a login round trip from it",
    () =>
      Effect.gen(function*() {
        const url = yield* startPostgres
        const logs: Array<string> = []
        const logger = Logger.replace(
          Logger.defaultLogger,
          Logger.map(Logger.logfmtLogger, (line) => void logs.push(line))
        )
        const app = yield* Csrf.layer({ port: 0, host: "127.0.0.1" }).pipe(
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
            new Map([
              ["SESSION_KEYS", Auth.randomId(48)],
              ["COOKIE_SECURE", "false"],
              ["DATABASE_URL", url]
            ])
          ))),
          Layer.build,
          Effect.provide(logger)
        )
        const address = Context.get(app, HttpServer.HttpServer).address
        if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
        const base = `http://${address.hostname}:${address.port}`
        expect(logs.join("\n")).toContain("session store: SQL (postgres)")

        const issued = yield* send(`${base}/issue`)
        expect(issued.status).toBe(200)
        const session = issued.cookies.get("session")!
        const csrf = issued.cookies.get("csrf")!
        expect(session).toBeDefined()
        expect(csrf).toBeDefined()
        const credentials = { cookie: `session=${session}; csrf=${csrf}`, "x-csrf-token": csrf }
        expect((yield* send(`${base}/require`, credentials)).status).toBe(200)
        // without the header the session alone does not count
        expect((yield* send(`${base}/require`, { cookie: `session=${session}; csrf=${csrf}` })).status).not.toBe(200)

        // the session is a row of the table the example created, and holds no part of the token
        const rows = yield* Effect.flatMap(
          SqlClient.SqlClient,
          (sql) =>
            sql<{ readonly user_key: string; readonly entry: string }>`SELECT user_key, entry FROM effect_sessions`
        ).pipe(Effect.provide(PgClient.layer({ url: Redacted.make(url) })))
        expect(rows).toHaveLength(1)
        const token = decodeURIComponent(session)
        expect(JSON.stringify(rows)).not.toContain(token.slice(0, token.indexOf(".")))

        expect((yield* send(`${base}/clear`, credentials)).status).toBe(200)
        expect((yield* send(`${base}/require`, credentials)).status).toBe(401)
      }),
    60_000
  )
})
