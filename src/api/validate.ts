// Request validation helpers: every message names the field, in its proto spelling.
import { invalidArgument } from "../domain/errors.js";
import { checkUuid, type Check } from "../domain/names.js";

/** Throws INVALID_ARGUMENT `field: problem` when `check` finds one. */
export function validate(field: string, value: string, check: Check): string {
  const problem = check(value);
  if (problem !== undefined) throw invalidArgument(`${field}: ${problem}`);
  return value;
}

export function requireId(field: string, value: string): string {
  return validate(field, value, checkUuid).toLowerCase();
}

/** An optional id filter: empty means "no filter". */
export function optionalId(field: string, value: string): string | undefined {
  return value === "" ? undefined : requireId(field, value);
}

/** An optional filter checked by `check`: empty means "no filter". */
export function optional(field: string, value: string, check: Check): string | undefined {
  return value === "" ? undefined : validate(field, value, check);
}

/**
 * A list's parent, named by id or by name (at most one of them): its id, or undefined for every
 * parent. `resolve` finds the id of a name (NOT_FOUND when the caller may not see it).
 */
export async function parentId(
  [idField, id]: [string, string],
  [nameField, name]: [string, string],
  resolve: (name: string) => Promise<{ id: string }>,
): Promise<string | undefined> {
  if (id !== "" && name !== "") throw invalidArgument(`${nameField}: set ${idField} or ${nameField}, not both`);
  return name !== "" ? (await resolve(name)).id : optionalId(idField, id);
}

export function requireMessage<T>(field: string, value: T | undefined): T {
  if (value === undefined) throw invalidArgument(`${field}: is required`);
  return value;
}
