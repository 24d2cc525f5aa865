// One of the Connect interceptors (their order and layering: src/api/interceptors/call.ts).
//
// Every string of every request is checked for what the database cannot store (src/domain/text.ts)
// before a handler runs, so a NUL byte in a description or a filter is INVALID_ARGUMENT naming the
// field, for every method and every field a proto will ever have, over every protocol and REST.
import type { DescMessage, Message } from "@bufbuild/protobuf";
import { reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import type { Interceptor } from "@connectrpc/connect";
import { invalidArgument } from "../../domain/errors.js";
import { checkStorableText } from "../../domain/text.js";

export function textInterceptor(): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) {
      checkMessage(req.method.input, req.message);
      return await next(req);
    }
    return await next({ ...req, message: checked(req.method.input, req.message) });
  };
}

async function* checked<T extends Message>(schema: DescMessage, messages: AsyncIterable<T>): AsyncIterable<T> {
  for await (const message of messages) {
    checkMessage(schema, message);
    yield message;
  }
}

/** Throws INVALID_ARGUMENT `path.to.field: problem` for the first string that cannot be stored. */
function checkMessage(schema: DescMessage, message: Message): void {
  walk(reflect(schema, message), "");
}

function walk(r: ReflectMessage, prefix: string): void {
  for (const field of r.fields) {
    if (!r.isSet(field)) continue;
    const path = prefix + field.name;
    switch (field.fieldKind) {
      case "scalar": {
        const value = r.get(field);
        if (typeof value === "string") checkString(path, value);
        break;
      }
      case "message":
        walk(r.get(field), `${path}.`);
        break;
      case "list": {
        let i = 0;
        for (const item of r.get(field)) {
          if (field.listKind === "message") walk(item as ReflectMessage, `${path}[${i}].`);
          else if (typeof item === "string") checkString(`${path}[${i}]`, item);
          i++;
        }
        break;
      }
      case "map":
        for (const [key, value] of r.get(field)) {
          if (typeof key === "string") checkString(`${path} key`, key);
          const entry = `${path}[${JSON.stringify(String(key)).slice(0, 40)}]`;
          if (field.mapKind === "message") walk(value as ReflectMessage, `${entry}.`);
          else if (typeof value === "string") checkString(entry, value);
        }
        break;
    }
  }
}

function checkString(path: string, value: string): void {
  const problem = checkStorableText(value);
  if (problem) throw invalidArgument(`${path}: ${problem}`);
}
