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

export function requireMessage<T>(field: string, value: T | undefined): T {
  if (value === undefined) throw invalidArgument(`${field}: is required`);
  return value;
}
