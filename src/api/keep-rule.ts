// A keep rule's message and a policy's durations as the service reads them: the conversions of
// src/client/keep-rule.ts (shared with the CLI) with tag patterns compiled as RE2 and a refusal as
// INVALID_ARGUMENT naming the field path.
import type { Duration } from "@bufbuild/protobuf/wkt";
import type { KeepRule as KeepRuleMessage } from "../../gen/artifact/v1/retention_pb.js";
import { durationMs as durationOf, keepRuleFromProto as ruleOf, type KeepRule } from "../client/keep-rule.js";
import { asInvalidArgument, checkTagPatternOfRule } from "../domain/retention.js";

/** A Duration as whole milliseconds; `path` names it in errors. */
export const durationMs = (path: string, d: Duration | undefined): number => asInvalidArgument(() => durationOf(path, d));

/** The message as the domain's tree, checked. */
export const keepRuleFromProto = (path: string, message: KeepRuleMessage): KeepRule => asInvalidArgument(() => ruleOf(path, message, checkTagPatternOfRule));
