/**
 * The errors that cross HTTP, declared once: a `Schema.TaggedError` whose status is its HttpApiSchema
 * annotation, and whose `HttpServerRespondable` (what a plain HttpServer / HttpRouter app answers when
 * the error reaches it) is derived from that same annotation.
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

/** A `Schema.TaggedError` class whose instances are `HttpServerRespondable`. */
export type Class<Self, Tag extends string, Fields extends Schema.Struct.Fields> =
  & Schema.TaggedErrorClass<Self, Tag, { readonly _tag: Schema.tag<Tag> } & Fields>
  // the mixin form (`any[]`) is what lets a class extend the intersection and see both instance types
  & (new(...args: Array<any>) => Respondable)

/** An error's own response: it never fails. */
export interface Respondable extends HttpServerRespondable.Respondable {
  [HttpServerRespondable.symbol](): Effect.Effect<HttpServerResponse.HttpServerResponse>
}

/**
 * `Schema.TaggedError<Self>(identifier)(tag, fields)` annotated with `status`, answering an empty
 * response of that status (with `headers`) when it reaches the HTTP server.
 */
export const TaggedError = <Self>(identifier: string) =>
<Tag extends string, Fields extends Schema.Struct.Fields>(
  tag: Tag,
  fields: Fields,
  options: { readonly status: number; readonly headers?: Readonly<Record<string, string>> | undefined }
): Class<Self, Tag, Fields> => {
  const base = Schema.TaggedError<never>(identifier)(
    tag,
    fields,
    HttpApiSchema.annotations({ status: options.status })
  ) as unknown as Schema.TaggedErrorClass<Self, Tag, { readonly _tag: Schema.tag<Tag> } & Fields>
  // derived from the annotation, so that the status is written once; one response serves every instance
  const response = Effect.succeed(HttpServerResponse.empty({
    status: HttpApiSchema.getStatusErrorAST(base.ast),
    ...(options.headers === undefined ? {} : { headers: options.headers })
  }))
  Object.defineProperty(base.prototype, HttpServerRespondable.symbol, {
    value: () => response,
    enumerable: false,
    writable: false,
    configurable: false
  })
  return base as Class<Self, Tag, Fields>
}
