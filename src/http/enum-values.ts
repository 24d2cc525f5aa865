// protobuf-es refuses a JSON enum value it does not know with "cannot decode enum
// artifact.v1.RegistryKind from JSON: "FOO"": it says what is wrong, not what would be right. The
// edges that pass such a message on (the REST transcoder, and the Connect adapter for the JSON
// forms of Connect, gRPC and gRPC-Web) add the valid names with this.
import { createRegistry, type DescFile, type Registry } from "@bufbuild/protobuf";

const UNKNOWN_ENUM = /cannot decode enum ([\w.]+) from JSON/;
const SUFFIX = "; expected one of ";
const registries = new WeakMap<DescFile, Registry>();

/** The types of `file` and of every file it imports. */
function registryOf(file: DescFile): Registry {
  let registry = registries.get(file);
  if (!registry) {
    const files = new Set<DescFile>();
    const add = (f: DescFile) => {
      if (files.has(f)) return;
      files.add(f);
      f.dependencies.forEach(add);
    };
    add(file);
    registry = createRegistry(...files);
    registries.set(file, registry);
  }
  return registry;
}

/**
 * `message` with "; expected one of …" when it is protobuf-es's refusal of an unknown enum value
 * of a type `scope` (a service or message) can reach.
 */
export function withEnumValues(message: string, scope: { file: DescFile }): string {
  const typeName = UNKNOWN_ENUM.exec(message)?.[1];
  if (typeName === undefined || message.includes(SUFFIX)) return message;
  const enumType = registryOf(scope.file).getEnum(typeName);
  if (!enumType) return message;
  const names = enumType.values.filter((v) => !(v.number === 0 && v.name.endsWith("_UNSPECIFIED"))).map((v) => v.name);
  return `${message}${SUFFIX}${names.join(", ")}`;
}
