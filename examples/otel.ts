/**
 * The CSRF example server with its sessions' spans and metrics sent to OpenTelemetry.
 *
 * ```sh
 * COOKIE_SECURE=false npm run example:otel
 * curl -i http://127.0.0.1:3000/issue
 * ```
 *
 * Spans (`Sessions.issue`, `Sessions.extend`, … and the HTTP server's request spans, annotated with
 * `session.result`) and the `effect_sessions_*` metrics print to the console every few seconds. For a
 * real collector, swap the console exporters for OTLP ones (`@opentelemetry/exporter-trace-otlp-http`,
 * or `@effect/opentelemetry/Otlp`). Environment: as examples/csrf.ts, plus `OTEL_EXPORT_INTERVAL`
 * (milliseconds, default 5000).
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as HttpServer from "@effect/platform/HttpServer"
import {
  ConsoleMetricExporter,
  PeriodicExportingMetricReader,
  type PushMetricExporter
} from "@opentelemetry/sdk-metrics"
import { BatchSpanProcessor, ConsoleSpanExporter, type SpanExporter } from "@opentelemetry/sdk-trace-base"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { pathToFileURL } from "node:url"
import * as CsrfExample from "./csrf.js"

/**
 * The OpenTelemetry SDK for the example: spans are batched to `spans` and the metric registry is pushed
 * to `metrics`, both every `intervalMillis`.
 */
export const telemetry = (options: {
  readonly spans: SpanExporter
  readonly metrics: PushMetricExporter
  readonly intervalMillis: number
}) =>
  NodeSdk.layer(() => ({
    resource: { serviceName: "effect-sessions-example" },
    spanProcessor: new BatchSpanProcessor(options.spans, { scheduledDelayMillis: options.intervalMillis }),
    metricReader: new PeriodicExportingMetricReader({
      exporter: options.metrics,
      exportIntervalMillis: options.intervalMillis
    })
  }))

const MainLive = Layer.unwrapEffect(
  Effect.map(
    Config.all({
      port: Config.withDefault(Config.port("PORT"), 3000),
      host: Config.withDefault(Config.string("HOST"), "127.0.0.1"),
      interval: Config.withDefault(Config.integer("OTEL_EXPORT_INTERVAL"), 5000)
    }),
    ({ host, interval, port }) =>
      HttpServer.withLogAddress(CsrfExample.layer({ port, host })).pipe(
        Layer.provide(
          telemetry({
            spans: new ConsoleSpanExporter(),
            metrics: new ConsoleMetricExporter(),
            intervalMillis: interval
          })
        )
      )
  )
)

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  NodeRuntime.runMain(Layer.launch(MainLive))
}
