/**
 * The server the HTTP benchmark drives: the routes of bench/app.ts on Effect's Node HTTP server, with or
 * without sessions.
 *
 * ```sh
 * npm run -s bench:server -- --port 4000 --mode session --store redis --redis-url redis://127.0.0.1:<port> --tracer on
 * ```
 *
 * `--near-cache on` (with `--store redis`) turns on the Redis store's near-cache (capacity 100,000, the
 * default maximum age); `off` is the default.
 *
 * `<port>` is that of a throwaway `redis-server` of your own: the server writes sessions to it. `--store
 * postgres --database-url postgres://…` serves the SQL store on that PostgreSQL (the table created at
 * start); there is no default database either.
 *
 * `--mode floor` serves the `session` routes behind `constantSession` (bench/app.ts): one session issued at
 * startup is added to every request's context, nothing is read. It measures what the structure of a
 * session middleware costs by itself. `--mode floor-vary` adds the `Vary`/`Cache-Control` pre-response hook
 * the session middleware registers for every request with a token.
 *
 * `--tracer off` applies `HttpMiddleware.withTracerDisabledWhen(() => true)` to the served layer, so the
 * per-request span of `HttpServer.serve` is not created; `on` (the default) leaves Effect's default
 * tracer as an application gets it. No HTTP logger is installed (`HttpMiddleware.logger` is opt-in, and
 * not used here). The signing key is random per process. `GET /cpu` answers `process.cpuUsage()`, so the
 * harness can tell the server's CPU time per request apart from what the shared machine does to it.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Http from "node:http"
import { parseArgs } from "node:util"
import * as Auth from "../src/Auth.js"
import {
  baseRouter,
  BenchHttp,
  BenchSession,
  constantSession,
  constantSessionWithVary,
  sessionRouter,
  sessionsLayer
} from "./app.js"

const usage = "usage: http-server.ts --port <n> --mode base|session|floor|floor-vary --store memory|redis|postgres " +
  "[--redis-url <url>] [--database-url <postgres://…>] [--tracer on|off] [--near-cache on|off]"

const parse = () => {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      mode: { type: "string", default: "session" },
      store: { type: "string", default: "memory" },
      "redis-url": { type: "string" },
      "database-url": { type: "string" },
      tracer: { type: "string", default: "on" },
      "near-cache": { type: "string", default: "off" }
    }
  })
  const port = Number(values.port)
  const { mode, store, tracer } = values
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port is required\n${usage}`)
  if (mode !== "base" && mode !== "session" && mode !== "floor" && mode !== "floor-vary") {
    throw new Error(`--mode must be base, session, floor or floor-vary\n${usage}`)
  }
  if (store !== "memory" && store !== "redis" && store !== "postgres") {
    throw new Error(`--store must be memory, redis or postgres\n${usage}`)
  }
  if (tracer !== "on" && tracer !== "off") throw new Error(`--tracer must be on or off\n${usage}`)
  const nearCache = values["near-cache"]
  if (nearCache !== "on" && nearCache !== "off") throw new Error(`--near-cache must be on or off\n${usage}`)
  // No default: the benchmark must never write to a Redis nobody named.
  const url = values["redis-url"] ?? process.env["REDIS_URL"]
  if (store === "redis" && url === undefined) throw new Error(`--store redis needs --redis-url\n${usage}`)
  // nor to a database: no DATABASE_URL fallback either
  const database = values["database-url"]
  if (store === "postgres" && database === undefined) throw new Error(`--store postgres needs --database-url\n${usage}`)
  return {
    port,
    mode,
    tracer,
    store: store === "redis"
      ? { _tag: "redis" as const, url: url!, nearCache: nearCache === "on" ? { capacity: 100_000 } : undefined }
      : store === "postgres"
      ? { _tag: "postgres" as const, url: database! }
      : { _tag: "memory" as const }
  }
}

const options = parse()

// The process's CPU time so far (µs, user and system), read by the harness before and after a measured run.
const cpu = HttpRouter.get("/cpu", Effect.sync(() => HttpServerResponse.unsafeJson(process.cpuUsage())))

const floor = (middleware: typeof constantSession) =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.flatMap(BenchSession, (sessions) => sessions.issue("u1", { csrf: Auth.randomId(16) })),
      ({ session }) => HttpServer.serve(sessionRouter.pipe(cpu), middleware(session))
    )
  )

const served = options.mode === "base"
  ? HttpServer.serve(baseRouter.pipe(cpu))
  : options.mode === "floor" || options.mode === "floor-vary"
  ? floor(options.mode === "floor" ? constantSession : constantSessionWithVary).pipe(
    Layer.provide(sessionsLayer(options.store))
  )
  : HttpServer.serve(sessionRouter.pipe(cpu), BenchHttp.middleware).pipe(Layer.provide(sessionsLayer(options.store)))

served.pipe(
  options.tracer === "off" ? HttpMiddleware.withTracerDisabledWhen(() => true) : (layer) => layer,
  Layer.provide(NodeHttpServer.layer(() => Http.createServer(), { port: options.port, host: "127.0.0.1" })),
  Layer.launch,
  NodeRuntime.runMain
)
