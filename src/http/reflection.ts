// gRPC server reflection, grpc.reflection.v1 and v1alpha (grpcurl tries v1 first, older clients
// only know v1alpha), so grpcurl, buf curl and Postman work without proto files.
//
// Lives in http/ beside health: it describes what the transport serves and is no catalog API.
// Files come from gen/descriptors.binpb (written by `npm run generate`), not from the generated
// *_pb.ts descriptors, because only the buf-built set keeps source info: the proto comments.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createFileRegistry, fromBinary, toBinary, type DescFile, type DescMessage, type FileRegistry } from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { ServerReflection as ServerReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { packageRoot } from "../paths.js";

export const reflectionServices = [ServerReflectionV1, ServerReflectionV1alpha] as const;

export const descriptorSetFile = join(packageRoot, "gen", "descriptors.binpb");

// What both protocol versions ask and answer: the messages are the same field for field.
interface ReflectionRequest {
  host: string;
  messageRequest:
    | { case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices"; value: string }
    | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
    | { case: undefined; value?: undefined };
}

type Answer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/** The served files, indexed by every name a client may ask for. */
export class ReflectionIndex {
  private readonly registry: FileRegistry;
  private readonly encoded = new Map<DescFile, Uint8Array>();
  private readonly symbols = new Map<string, DescFile>();

  /** `services`: the fully qualified names list_services reports. */
  constructor(
    descriptorSet: Uint8Array,
    private readonly services: readonly string[],
  ) {
    this.registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, descriptorSet));
    for (const file of this.registry.files) {
      this.encoded.set(file, toBinary(FileDescriptorProtoSchema, file.proto));
      this.indexSymbols(file);
    }
    const missing = services.filter((name) => !this.symbols.has(name));
    if (missing.length > 0) {
      throw new Error(`${descriptorSetFile} does not describe ${missing.join(", ")}: run npm run generate`);
    }
  }

  /** Answers one request; `sent` holds the files this stream already carried (each dependency goes once). */
  answer(req: ReflectionRequest, sent: Set<string>): Answer {
    const r = req.messageRequest;
    switch (r.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: this.services.map((name) => ({ name })) } };
      case "fileByFilename": {
        const file = this.registry.getFile(r.value);
        return file ? this.files(file, sent) : notFound(`file ${JSON.stringify(r.value)} is not served here`);
      }
      case "fileContainingSymbol": {
        const file = this.symbols.get(r.value.replace(/^\./, ""));
        return file ? this.files(file, sent) : notFound(`symbol ${JSON.stringify(r.value)} is not served here`);
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = r.value;
        const extendee = this.registry.getMessage(containingType);
        if (!extendee) return notFound(`message type ${JSON.stringify(containingType)} is not served here`);
        const extension = this.registry.getExtensionFor(extendee, extensionNumber);
        return extension ? this.files(extension.file, sent) : notFound(`${containingType} has no extension number ${extensionNumber} here`);
      }
      case "allExtensionNumbersOfType": {
        const extendee = this.registry.getMessage(r.value);
        if (!extendee) return notFound(`message type ${JSON.stringify(r.value)} is not served here`);
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: extendee.typeName, extensionNumber: this.extensionNumbers(extendee) } };
      }
      default:
        return {
          case: "errorResponse",
          value: {
            errorCode: Code.InvalidArgument,
            errorMessage:
              "message_request is not set: expected one of file_by_filename, file_containing_symbol, file_containing_extension, all_extension_numbers_of_type, list_services",
          },
        };
    }
  }

  // The file first, then every transitive dependency this stream has not carried yet (what
  // grpc-go does: clients resolve imports from what they were sent).
  private files(file: DescFile, sent: Set<string>): Answer {
    const out: Uint8Array[] = [];
    const seen = new Set<DescFile>();
    const queue = [file];
    for (let current = queue.shift(); current; current = queue.shift()) {
      if (seen.has(current)) continue;
      seen.add(current);
      const name = current.proto.name;
      if (current === file || !sent.has(name)) {
        out.push(this.encoded.get(current)!);
        sent.add(name);
      }
      queue.push(...current.dependencies);
    }
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: out } };
  }

  private extensionNumbers(extendee: DescMessage): number[] {
    const numbers: number[] = [];
    for (const desc of this.registry) {
      if (desc.kind === "extension" && desc.extendee.typeName === extendee.typeName) numbers.push(desc.number);
    }
    return numbers.sort((a, b) => a - b);
  }

  // Every fully qualified name protobuf defines: types, fields, oneofs, enum values (scoped
  // beside their enum, as in protobuf), services and methods.
  private indexSymbols(file: DescFile): void {
    const add = (name: string) => {
      if (!this.symbols.has(name)) this.symbols.set(name, file);
    };
    for (const desc of nestedTypes(file)) {
      add(desc.typeName);
      switch (desc.kind) {
        case "message":
          for (const field of desc.fields) add(`${desc.typeName}.${field.name}`);
          for (const oneof of desc.oneofs) add(`${desc.typeName}.${oneof.name}`);
          break;
        case "enum": {
          const scope = desc.typeName.slice(0, desc.typeName.lastIndexOf(".") + 1);
          for (const value of desc.values) add(scope + value.name);
          break;
        }
        case "service":
          for (const method of desc.methods) add(`${desc.typeName}.${method.name}`);
          break;
      }
    }
  }
}

function notFound(message: string): Answer {
  return { case: "errorResponse", value: { errorCode: Code.NotFound, errorMessage: message } };
}

let loaded: Uint8Array | undefined;

/** Reads gen/descriptors.binpb once per process. */
export function loadDescriptorSet(): Uint8Array {
  loaded ??= readFileSync(descriptorSetFile);
  return loaded;
}

/** Both reflection versions as Connect routes (bidi streaming: HTTP/2 only, as for every gRPC client). */
export function reflectionRoutes(index: ReflectionIndex) {
  async function* info<R extends ReflectionRequest>(requests: AsyncIterable<R>, context: HandlerContext) {
    const sent = new Set<string>();
    try {
      for await (const req of requests) {
        yield { validHost: req.host, originalRequest: req, messageResponse: index.answer(req, sent) };
      }
    } catch (err) {
      // Clients keep this stream open for a whole session and then just hang up: not our error.
      if (context.signal.aborted) throw new ConnectError("the client closed the stream", Code.Canceled);
      throw err;
    }
  }
  return (router: ConnectRouter) => {
    router.service(ServerReflectionV1, { serverReflectionInfo: info });
    router.service(ServerReflectionV1alpha, { serverReflectionInfo: info });
  };
}
