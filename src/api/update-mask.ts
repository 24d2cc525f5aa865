// update_mask handling for every Update method, driven by the google.api.field_behavior
// annotations in the protos: OUTPUT_ONLY and IMMUTABLE fields can never be named; INPUT_ONLY
// (write-only) fields are replaced only when asked, because a client can never read them
// back to send them again.
import { getOption, type DescField, type DescMessage } from "@bufbuild/protobuf";
import type { FieldMask } from "@bufbuild/protobuf/wkt";
import { FieldBehavior, field_behavior } from "../../gen/google/api/field_behavior_pb.js";
import { invalidArgument } from "../domain/errors.js";

const NEVER_UPDATED = new Set(["id", "etag"]);

function behaviors(field: DescField): FieldBehavior[] {
  return getOption(field, field_behavior);
}

function isMutable(field: DescField): boolean {
  const b = behaviors(field);
  return !NEVER_UPDATED.has(field.name) && !b.includes(FieldBehavior.OUTPUT_ONLY) && !b.includes(FieldBehavior.IMMUTABLE);
}

/**
 * The proto names of the fields an update changes. An empty mask (or "*") means every
 * mutable field, except write-only ones, which change only when named or when `isSet` says
 * the request carries them.
 */
export function fieldsToUpdate(schema: DescMessage, mask: FieldMask | undefined, isSet: (field: string) => boolean): Set<string> {
  const paths = mask?.paths ?? [];
  if (paths.length === 0 || (paths.length === 1 && paths[0] === "*")) {
    return new Set(
      schema.fields
        .filter(isMutable)
        .filter((f) => !behaviors(f).includes(FieldBehavior.INPUT_ONLY) || isSet(f.name))
        .map((f) => f.name),
    );
  }
  const fields = new Set<string>();
  for (const path of paths) {
    const field = schema.fields.find((f) => f.name === path || f.jsonName === path);
    if (!field) {
      const known = schema.fields.filter(isMutable).map((f) => f.name);
      throw invalidArgument(`update_mask: "${path.slice(0, 64)}" is not a field of ${schema.name}; fields that can be updated: ${known.join(", ")}`);
    }
    if (!isMutable(field)) throw invalidArgument(`update_mask: ${schema.name}.${field.name} cannot be changed`);
    fields.add(field.name);
  }
  return fields;
}
