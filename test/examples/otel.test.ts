/**
 * examples/otel.ts: the example server's session spans and metrics reach a real OpenTelemetry SDK
 * (in-memory exporters here, console exporters in the example).
 */
import * as HttpServer from "@effect/platform/HttpServer"
import { describe, expect, it } from "@effect/vitest"
import { AggregationTemporality, InMemoryMetricExporter } from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import { ConfigProvider, Effect, Exit, Layer, Scope } from "effect"
import * as CsrfExample from "../../examples/csrf.js"
import { telemetry } from "../../examples/otel.js"
import * as Auth from "../../src/Auth.js"

describe("examples/otel.ts", () => {
  it.live("exports the sessions' spans, the request span's session.result and the metrics", () =>
    Effect.gen(function*() {
      const spans = new InMemorySpanExporter()
      const metrics = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE)
      const config = ConfigProvider.fromMap(
        new Map([["SESSION_KEYS", Auth.randomId(48)], ["COOKIE_SECURE", "false"]])
      )
      const app = CsrfExample.layer({ port: 0, host: "127.0.0.1" }).pipe(
        Layer.provide(telemetry({ spans, metrics, intervalMillis: 50 })),
        Layer.provide(Layer.setConfigProvider(config))
      )
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(app, scope)
      const base = yield* HttpServer.addressWith((address) =>
        Effect.succeed(address._tag === "TcpAddress" ? `http://127.0.0.1:${address.port}` : "")
      ).pipe(Effect.provide(context))

      const issued = yield* Effect.promise(() => fetch(`${base}/issue`))
      expect(issued.status).toBe(200)
      const cookies = issued.headers.getSetCookie().map((line) => line.slice(0, line.indexOf(";")))
      const csrf = cookies.find((pair) => pair.startsWith("csrf="))!.slice("csrf=".length)
      const required = yield* Effect.promise(() =>
        fetch(`${base}/require`, { headers: { cookie: cookies.join("; "), "x-csrf-token": csrf } })
      )
      expect(required.status).toBe(200)
      const forged = yield* Effect.promise(() => fetch(`${base}/require`, { headers: { cookie: "session=x.y" } }))
      expect(forged.status).toBe(401)
      // both exporters are flushed every 50 ms; read them before closing the SDK (its shutdown empties them)
      yield* Effect.sleep("300 millis")
      const finished = spans.getFinishedSpans()
      const names = finished.map((span) => span.name)
      expect(names).toEqual(expect.arrayContaining(["Sessions.issue", "Sessions.extend"]))
      const results = finished.map((span) => span.attributes["session.result"]).filter((r) => r !== undefined)
      expect(results).toEqual(expect.arrayContaining(["valid", "BadSignature"]))

      const exported = metrics.getMetrics().flatMap((resource) =>
        resource.scopeMetrics.flatMap((scopeMetrics) => scopeMetrics.metrics.map((metric) => metric.descriptor.name))
      )
      expect(exported).toEqual(
        expect.arrayContaining([
          "effect_sessions_issued_total",
          "effect_sessions_validated_total",
          "effect_sessions_rejected_total",
          "effect_sessions_store_latency"
        ])
      )
      yield* Scope.close(scope, Exit.void)
    }))
})
