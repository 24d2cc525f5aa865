// Image names, `<registry>/<namespace>/<repository...>`, namespace names `<registry>/<namespace>`
// and image references (`…:tag`, `…@digest`): the one parser of each (every edge calls them) and
// the one length rule (every store that creates or renames a part of a name checks it).
import { nameInvalid } from "./errors.js";
import { checkPathComponent, checkRegistryName, checkRepositoryName, MAX_IMAGE_NAME } from "./names.js";
import { parseReference, type Reference } from "./reference.js";

export interface ImageName {
  registry: string;
  namespace: string;
  /** One or more `/`-separated components. */
  repository: string;
  /** The whole name as written. */
  full: string;
}

/** The characters of `<registry>/<namespace>/<repository>`, from its parts or their lengths. */
export function imageNameLength(registry: string | number, namespace: string | number, repository: string | number): number {
  const length = (part: string | number) => (typeof part === "number" ? part : part.length);
  return length(registry) + length(namespace) + length(repository) + 2;
}

/**
 * DomainError name-invalid when an image name of `length` characters breaks the limit; `subject`
 * starts the message: `the image name "a/b/c"`, `renaming the namespace to "x"`.
 */
export function checkImageNameLength(length: number, subject: string): void {
  if (length > MAX_IMAGE_NAME) throw nameInvalid(`${subject} would make an image name ${length} characters long; at most ${MAX_IMAGE_NAME} allowed`);
}

/**
 * `full` checked against the grammar and the length rule; DomainError name-invalid otherwise, its
 * message starting with `field` (a request field, or "repository name" on /v2/).
 */
export function parseImageName(full: string, field = "repository name"): ImageName {
  const parts = full.split("/");
  if (parts.length < 3) {
    throw nameInvalid(`${field}: expected <registry>/<namespace>/<repository> (e.g. local/team/app), got ${JSON.stringify(full.slice(0, 255))}`);
  }
  const [registry, namespace, ...rest] = parts as [string, string, ...string[]];
  const repository = rest.join("/");
  const problem =
    (checkRegistryName(registry) && `registry ${checkRegistryName(registry)}`) ||
    (checkPathComponent(namespace) && `namespace ${checkPathComponent(namespace)}`) ||
    (checkRepositoryName(repository) && `repository ${checkRepositoryName(repository)}`) ||
    (full.length > MAX_IMAGE_NAME && `the name is ${full.length} characters long; at most ${MAX_IMAGE_NAME} allowed`);
  if (problem) throw nameInvalid(`${field}: ${problem}`);
  return { registry, namespace, repository, full };
}

/** A namespace's full name, `<registry>/<namespace>`. */
export interface NamespaceName {
  registry: string;
  namespace: string;
}

/** `full` as `<registry>/<namespace>`; DomainError name-invalid, its message starting with `field`, otherwise. */
export function parseNamespaceName(full: string, field: string): NamespaceName {
  const parts = full.split("/");
  if (parts.length !== 2) {
    throw nameInvalid(`${field}: expected <registry>/<namespace> (e.g. local/team), got ${JSON.stringify(full.slice(0, 255))}`);
  }
  const [registry, namespace] = parts as [string, string];
  const problem =
    (checkRegistryName(registry) && `registry ${checkRegistryName(registry)}`) ||
    (checkPathComponent(namespace) && `namespace ${checkPathComponent(namespace)}`);
  if (problem) throw nameInvalid(`${field}: ${problem}`);
  return { registry, namespace };
}

/**
 * An image reference, `<image name>:<tag>` or `<image name>@<digest>` (names hold neither ":"
 * nor "@", so the first "@", or else the last ":", splits it). Errors as parseImageName and
 * parseReference give them, starting with `field`.
 */
export function parseImageReference(full: string, field: string): { image: ImageName; reference: Reference } {
  const at = full.indexOf("@");
  const colon = full.lastIndexOf(":");
  const split = at >= 0 ? at : colon > full.lastIndexOf("/") ? colon : -1;
  if (split < 0) {
    throw nameInvalid(`${field}: expected <registry>/<namespace>/<repository>:<tag> (e.g. local/team/app:1.0), got ${JSON.stringify(full.slice(0, 255))}`);
  }
  return { image: parseImageName(full.slice(0, split), field), reference: parseReference(full.slice(split + 1), field) };
}
